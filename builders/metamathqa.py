"""MetaMathQA (Yu et al., ICLR 2024): 395K rephrased and backward-reasoning GSM8K/MATH questions."""

from openmathmix.formats import Columns
from openmathmix.sources import Source

SOURCE = Source(
    name="metamathqa", title="MetaMathQA", task="reasoning",
    license="mit", paper_size=395_000,
    repo="meta-math/MetaMathQA", revision="aa4f34d3d2d3231299b5b03d9b3e5a20da45aa18",
    homepage="https://meta-math.github.io/",
    formats=(Columns("query", "response"),),
    notes="query -> question, response -> answer (ends in 'The answer is: X').",
)
