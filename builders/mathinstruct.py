"""MathInstruct (Yue et al., ICLR 2024, MAmmoTH): 262K CoT and program-of-thought rationales from 14 math sets."""

from dataclasses import replace

from openmathmix.formats import Columns, RowMapping, Where
from openmathmix.sources import Source

SOURCE = Source(
    name="mathinstruct", title="MathInstruct", task="reasoning",
    license="mit", paper_size=262_000,
    non_commercial=True,  # the Camel-Math part is CC BY-NC 4.0
    repo="TIGER-Lab/MathInstruct", revision="b4fdc323a7be1379c9c7c0b67b1de72dfee2111a",
    homepage="https://tiger-ai-lab.github.io/MAmmoTH/",
    formats=(Columns("instruction", "output"),),
    notes="instruction -> question, output -> answer; PoT rows keep Python code as the answer.",
)


def cot_subset(name: str, source_file: str, title: str, paper_size: int, license: str,
               release: tuple[RowMapping, ...] = (), **fields) -> Source:
    """A base-setting subset: the MathInstruct rows whose ``source`` column is ``source_file``.

    ``release``: layouts of the subset's own original files, accepted as well when passed as local files.
    """
    fields.setdefault("non_commercial", license.startswith("cc-by-nc"))
    notes = f"MathInstruct rows with source == {source_file}; instruction -> question, output -> answer."
    only = Columns("instruction", "output", where=(Where("source", source_file),))
    return replace(SOURCE, name=name, title=f"{title} (MathInstruct CoT)", paper_size=paper_size, license=license,
                   formats=(only, *release), notes=notes, **fields)
