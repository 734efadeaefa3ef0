"""AQuA-RAT: its chain-of-thought rows in MathInstruct (a base-setting source of the paper), or the AQuA release."""

from __future__ import annotations

from openmathmix.builders.mathinstruct import cot_subset

from openmathmix.formats import FieldError, RecordMap, expect


def aqua_exchange(rec: dict) -> tuple[str | None, str | None]:
    """AQuA release rows: options ``A)21`` folded in as ``Answer Choices: (A) 21 ...`` (MathInstruct's style);
    answer = rationale + ``The answer is X.``"""
    question = expect(rec, "question", str, "a string")
    options = expect(rec, "options", list, "a list of 'A)...' strings", [])
    labelled = []
    for opt in options:
        if not isinstance(opt, str):
            raise FieldError(0, "options", opt, "a list of 'A)...' strings")
        letter, sep, text = opt.partition(")")
        labelled.append(f"({letter.strip()}) {text.strip()}" if sep else opt.strip())
    rationale = expect(rec, "rationale", str, "a string", "")
    letter = expect(rec, "correct", str, "a letter", "").strip()
    if question and labelled:
        question = f"{question.strip()}\nAnswer Choices: {' '.join(labelled)}"
    return question, "\n".join(p for p in (rationale.strip(), f"The answer is {letter}." if letter else "") if p)


SOURCE = cot_subset("mathinstruct_aqua_rat", "data/CoT/aqua_rat.json", "AQuA-RAT", 69_000, "apache-2.0",
                    homepage="https://github.com/google-deepmind/AQuA",
                    release=(RecordMap(aqua_exchange, ("question", "options", "rationale", "correct")),))
