"""OpenMathInstruct-1 (Toshniwal et al., 2024), CoT part: correct Mixtral solutions that run no code."""

from openmathmix.formats import Columns, Where
from openmathmix.sources import Source

SOURCE = Source(
    name="openmathinstruct1_cot", title="OpenMathInstruct-1 (CoT part)", task="reasoning",
    license="nvidia-license",
    paper_size=255_000,  # Table 8; Table 1 prints 2.5M, which does not add up to the 4.3M reasoning total
    repo="nvidia/OpenMathInstruct-1", split=("train", "validation"),
    data_files={s: f"correct_solutions/{s}.jsonl" for s in ("train", "validation")},
    homepage="https://github.com/Kipok/NeMo-Skills",
    formats=(
        Columns("question", "generated_solution",
                where=(Where("error_message", "<not_executed>", reason="uses code interpreter"),)),
    ),
    notes="question -> question, generated_solution -> answer; rows whose solution ran code are dropped.",
)
