"""OpenMathInstruct-1 (Toshniwal et al., 2024), CoT part: correct Mixtral solutions that run no code.

The release marks a solution that ran no code with ``error_message == "<not_executed>"``. Exports without that
column (or rows where it is null) are judged by the solution itself: code runs only inside ``<llm-code>`` blocks.
Rows that an ``is_correct`` column marks as wrong (the repository's incorrect_solutions files) are dropped too.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from openmathmix.formats import Chunk, Columns, Keep
from openmathmix.sources import Source

NOT_EXECUTED = "<not_executed>"
CODE_TAG = "<llm-code>"


def is_correct(chunk: Chunk) -> np.ndarray:
    """False only where an ``is_correct`` column says false; files without it hold correct solutions only."""
    if "is_correct" not in chunk.column_names:
        return np.ones(len(chunk), dtype=bool)
    col = chunk.table().column("is_correct")
    if pa.types.is_boolean(col.type) or pa.types.is_null(col.type):
        flags = pc.cast(col, pa.bool_())
    else:  # "true"/"false" written as text
        flags = pc.invert(pc.is_in(pc.utf8_lower(chunk.text("is_correct")), pa.array(["false", "0"])))
    return pc.fill_null(flags, True).to_numpy(zero_copy_only=False)


def runs_no_code(chunk: Chunk) -> np.ndarray:
    """``error_message == "<not_executed>"`` where the row has one, else no ``<llm-code>`` block in the solution."""
    no_code = pc.invert(pc.fill_null(pc.match_substring(chunk.text("generated_solution"), CODE_TAG), False))
    if "error_message" in chunk.column_names:
        message = chunk.text("error_message")
        no_code = pc.if_else(pc.is_null(message), no_code, pc.equal(message, NOT_EXECUTED))
    return no_code.to_numpy(zero_copy_only=False)


SOURCE = Source(
    name="openmathinstruct1_cot", title="OpenMathInstruct-1 (CoT part)", task="reasoning",
    license="nvidia-license",
    paper_size=255_000,  # Table 8; Table 1 prints 2.5M, which does not add up to the 4.3M reasoning total
    repo="nvidia/OpenMathInstruct-1", split=("train", "validation"),
    data_files={s: f"correct_solutions/{s}.jsonl" for s in ("train", "validation")},
    homepage="https://github.com/Kipok/NeMo-Skills",
    formats=(
        Columns("question", "generated_solution",
                where=(Keep(is_correct, "incorrect solution (is_correct is false)"),
                       Keep(runs_no_code, "uses code interpreter"))),
    ),
    notes="question -> question, generated_solution -> answer; solutions that ran code (error_message, or an "
          "<llm-code> block where that column is missing) and incorrect ones are dropped.",
    version=2,  # 1 kept rows that is_correct marks false, and needed error_message
)
