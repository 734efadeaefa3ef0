"""TAL-SCQ5K-EN (math-eval, 2023): English single-choice competition math, train part."""

from __future__ import annotations

from openmathmix.formats import FieldError, RecordMap, expect
from openmathmix.sources import Source


def choice_exchange(rec: dict) -> tuple[str | None, str | None]:
    """Options folded into the question as ``(A) ...`` lines; answer = analysis + ``The answer is (X).``"""
    problem = expect(rec, "problem", str, "a string")
    options = expect(rec, "answer_option_list", list, "a list of options", [])
    lines = []
    for opt in options:
        opt = opt[0] if isinstance(opt, list) and len(opt) == 1 else opt
        if not isinstance(opt, dict):
            raise FieldError(0, "answer_option_list", opt, "options like {aoVal, content}")
        lines.append(f"({opt.get('aoVal', '?')}) {str(opt.get('content') or '').strip()}")
    analysis = expect(rec, "answer_analysis", (list, str), "a list of strings", [])
    steps = [analysis] if isinstance(analysis, str) else analysis
    if any(not isinstance(s, str) for s in steps):
        raise FieldError(0, "answer_analysis", steps, "a list of strings")
    letter = str(expect(rec, "answer_value", (str, int), "a letter", "")).strip()
    body = "\n".join(s.strip() for s in steps if s.strip())
    answer = "\n".join(p for p in (body, f"The answer is ({letter})." if letter else "") if p)
    question = "\n".join([problem.strip(), *lines]) if problem else problem
    return question, answer


SOURCE = Source(
    name="tal_scq5k_en", title="TAL-SCQ5K-EN", task="reasoning",
    license="mit", paper_size=3_000,
    repo="math-eval/TAL-SCQ5K", data_dir="TAL-SCQ5K-EN", homepage="https://github.com/math-eval/TAL-SCQ5K",
    formats=(RecordMap(choice_exchange, ("problem", "answer_option_list", "answer_analysis", "answer_value")),),
    notes="problem + '(A) ...' option lines -> question; analysis + 'The answer is (X).' -> answer.",
)
