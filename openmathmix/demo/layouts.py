"""Demo rows -> each source's native file layout (the layouts `builders/<name>.py` read, as in `builders/fixtures/`).

An `Item` is one generated row: its kind, and either a math `Problem` or a `Chat`. `answer_text` renders the answer
the way the row kind asks (worked steps with the source's closing line, the bare value, a program, or chit-chat),
and one writer per layout turns a list of items into the file's text. Sources whose builder appends the final answer
itself (FLAN CoT's TSV, TAL-SCQ5K's answer letter) get the parts separately.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import DataFileError
from .chatter import Chat
from .problems import Problem

__all__ = ["LAYOUTS", "Item", "Layout", "answer_text"]

STEPWISE, BARE, CODE, UNRELATED = "stepwise", "bare_answer", "code_only", "unrelated"


@dataclass(frozen=True)
class Item:
    kind: str
    problem: Problem | None = None
    chat: Chat | None = None

    @property
    def question(self) -> str:
        return self.problem.question if self.problem else self.chat.question

    @property
    def final(self) -> str:
        return str(self.problem.final) if self.problem else ""


# How a worked solution ends in each source's own style (None: the builder appends the final answer itself).
CLOSINGS: dict[str | None, Callable[[str], str] | None] = {
    "gsm8k": lambda f: f"#### {f}",
    "metamath": lambda f: f"#### {f}\nThe answer is: {f}",
    "answer_is": lambda f: f"The answer is {f}.",
    "answer_colon": lambda f: f"The answer is: {f}",
    "boxed": lambda f: f"So the answer is \\boxed{{{f}}}.",
    "latex": lambda f: f"So the answer is ${f}$.",
    "plain": lambda f: f"So the answer is {f}.",
    None: None,
}


def answer_text(item: Item, style: str | None) -> str:
    """The answer of ``item`` for its kind; ``style`` picks the closing line of worked steps (see CLOSINGS)."""
    if item.kind == UNRELATED:
        return item.chat.output
    if item.kind == BARE:
        return item.final
    if item.kind == CODE:
        return item.problem.code
    steps = item.problem.solution(annotate=style == "gsm8k")
    closing = CLOSINGS[style]
    return f"{steps}\n{closing(item.final)}" if closing else steps


def _parts(item: Item) -> tuple[str, str]:
    """(instruction, input) for instruction/input layouts: math rows put the whole problem in the instruction."""
    return (item.chat.instruction, item.chat.input) if item.chat else (item.problem.question, "")


def _lines(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def _array(records: list) -> str:
    return json.dumps(records, ensure_ascii=False, indent=1) + "\n"


def _choices(item: Item, r: random.Random) -> tuple[list, str]:
    """TAL-SCQ5K options ``[[{aoVal, content}], ...]`` with the right value among distractors, and its letter."""
    if not item.problem:
        return [], ""
    value = item.problem.final
    wrong = r.sample([value + d for d in (-12, -10, -6, -4, -2, -1, 1, 2, 3, 5, 8, 10) if value + d != value], 3)
    values = [value, *wrong]
    r.shuffle(values)
    letters = "ABCD"
    options = [[{"aoVal": letters[i], "content": f"$${v}$$ "}] for i, v in enumerate(values)]
    return options, letters[values.index(value)]


# ---- one writer per layout: (items, style, rng) -> file text -------------------------------------------------------

def _alpaca(items, style, r):
    return _array([{"instruction": _parts(it)[0], "input": _parts(it)[1], "output": answer_text(it, style)}
                   for it in items])


def _baize(items, style, r):
    return _array([{"topic": it.question.split("\n")[0][:60],
                    "input": "The conversation between human and AI assistant.\n"
                             f"[|Human|] {it.question}\n[|AI|] {answer_text(it, style)}\n[|Human|] "}
                   for it in items])


def _cot(items, style, r):
    """FLAN CoT release: question<TAB>final answer<TAB>rationale, no header, newlines written as the text \\n."""
    rows = []
    for it in items:
        final = it.final if it.kind in (STEPWISE, BARE) else ""
        rationale = "" if it.kind == BARE else answer_text(it, None)
        fields = [it.question, final, rationale]
        if any("\t" in f or "\\" in f for f in fields):
            raise DataFileError(f"cot demo row {it.question[:40]!r}: a tab or backslash cannot be written to the TSV")
        rows.append("\t".join(f.replace("\n", "\\n") for f in fields) + "\n")
    return "".join(rows)


def _dmath(items, style, r):
    return json.dumps({str(i + 1): {
        "category": "Arithmetic calculation" if it.problem else "Other",
        "question_en": it.question, "answer_en": answer_text(it, style),
        "solution_code_en": it.problem.code if it.problem else "",
    } for i, it in enumerate(items)}, ensure_ascii=False, indent=1) + "\n"


def _evol(items, style, r):
    return _array([{"idx": f"demo_{i}", "conversations": [{"from": "human", "value": it.question},
                                                           {"from": "gpt", "value": answer_text(it, style)}]}
                   for i, it in enumerate(items)])


def _flan(items, style, r):
    return _lines([{"dataset": "flan_v2", "id": f"flan_v2_{i}",
                    "messages": [{"role": "user", "content": it.question},
                                 {"role": "assistant", "content": answer_text(it, style)}]}
                   for i, it in enumerate(items)])


def _columns(question: str, answer: str, **extra) -> Callable:
    def write(items, style, r):
        return _lines([{question: it.question, answer: answer_text(it, style), **extra} for it in items])
    return write


def _lila(items, style, r):
    return json.dumps({
        "Definition": ["Answer the math question by writing a Python program that prints the answer."],
        "Instances": [{"Input": it.question, "Output Program": [answer_text(it, style)], "Output Answer": [it.final],
                       "split": "train"} for it in items],
    }, ensure_ascii=False, indent=1) + "\n"


def _mathinstruct(origin: str, code_origin: str) -> Callable:
    def write(items, style, r):
        return _array([{"source": code_origin if it.kind == CODE else origin, "instruction": it.question,
                        "output": answer_text(it, style)} for it in items])
    return write


def _metamath(items, style, r):
    return _array([{"type": "GSM_AnsAug", "query": it.question, "original_question": it.question,
                    "response": answer_text(it, style)} for it in items])


def _oasst(items, style, r):
    """Flat oasst1 messages: one prompter root and its top-ranked assistant reply per conversation."""
    common = {"user_id": "demo", "created_date": "2023-02-05T10:00:00.000000+00:00", "lang": "en",
              "review_count": 3, "review_result": True, "deleted": False, "synthetic": False, "model_name": None,
              "detoxify": None, "tree_state": "ready_for_export", "emojis": None, "labels": None}
    records = []
    for i, it in enumerate(items):
        root = f"{it.kind}-{i:05d}"
        records.append({"message_id": root, "parent_id": None, "text": it.question, "role": "prompter",
                        "rank": None, "message_tree_id": root, **common})
        records.append({"message_id": f"{root}-a", "parent_id": root, "text": answer_text(it, style),
                        "role": "assistant", "rank": 0, "message_tree_id": root, **common})
    return _lines(records)


def _openmath(items, style, r):
    """OpenMathInstruct-1 rows; ``<not_executed>`` marks solutions that ran no code (the builder keeps only those)."""
    return _lines([{"question": it.question, "generated_solution": answer_text(it, style), "expected_answer": it.final,
                    "predicted_answer": it.final, "error_message": "<not_executed>", "is_correct": True,
                    "dataset": "gsm8k", "generation_type": "without_reference_solution"} for it in items])


def _platypus(items, style, r):
    return _lines([{"input": _parts(it)[1], "output": answer_text(it, style), "instruction": _parts(it)[0],
                    "data_source": "MATH/PRM-800K" if it.problem else "guanaco"} for it in items])


MATH_INSTRUCTIONS = ("Solve the word problem.", "Answer the math question.", "Work out the answer to the problem.")


def _self_instruct(items, style, r):
    records = []
    for i, it in enumerate(items):
        instruction, given = (it.chat.instruction, it.chat.input) if it.chat else (r.choice(MATH_INSTRUCTIONS),
                                                                                   it.problem.question)
        records.append({"id": f"seed_task_{i}", "name": f"demo_{it.kind}_{i}", "instruction": instruction,
                        "instances": [{"input": given, "output": answer_text(it, style)}],
                        "is_classification": False})
    return _lines(records)


def _tal(dataset_name: str) -> Callable:
    def write(items, style, r):
        records = []
        for i, it in enumerate(items):
            options, letter = _choices(it, r)
            analysis = [] if it.kind == BARE else [answer_text(it, None)]
            records.append({
                "dataset_name": dataset_name, "dataset_version": "2023-07-07", "qid": str(i + 1),
                "queId": f"demo{i:05d}", "competition_source_list": [], "difficulty": "1", "qtype": "single_choice",
                "problem": it.question, "answer_option_list": options, "knowledge_point_routes": [],
                "answer_analysis": analysis, "answer_value": letter if it.kind in (STEPWISE, BARE) else "",
            })
        return _lines(records)
    return write


@dataclass(frozen=True)
class Layout:
    """How one source's demo files are written: file suffix, writer, closing style of worked steps."""

    suffix: str
    write: Callable[[list[Item], str | None, random.Random], str]
    style: str | None = "plain"
    chinese: bool = False  # rows are generated in Chinese


LAYOUTS: dict[str, Layout] = {
    "alpaca": Layout(".json", _alpaca),
    "baize": Layout(".json", _baize),
    "cot": Layout(".tsv", _cot, None),
    "dmath": Layout(".json", _dmath, "answer_is"),
    "evol_instruct_v2": Layout(".json", _evol),
    "flan_v2": Layout(".jsonl", _flan),
    "gsm8k_screl": Layout(".jsonl", _columns("query", "response"), "gsm8k"),
    "kpmath_plus": Layout(".jsonl", _columns("question", "answer"), "answer_is"),
    "lila_ood": Layout(".json", _lila, "answer_is"),
    "mathinstruct": Layout(".json", _mathinstruct("data/CoT/gsm_train.json", "data/PoT/gsm_gpt4.json"), "answer_is"),
    "mathinstruct_math": Layout(".json", _mathinstruct("data/CoT/MATH_train.json", "data/PoT/MATH_train.json"),
                                "answer_is"),
    "metamathqa": Layout(".json", _metamath, "metamath"),
    "mmiqc": Layout(".jsonl", _columns("instruction", "output", source="MATH_Rephrased"), "answer_colon"),
    "oasst1": Layout(".jsonl", _oasst),
    "open_platypus": Layout(".jsonl", _platypus, "latex"),
    "openmathinstruct1_cot": Layout(".jsonl", _openmath, "boxed"),
    "self_instruct": Layout(".jsonl", _self_instruct),
    "tal_scq5k_cn": Layout(".jsonl", _tal("prime_math_competition_cn_single_choice_8K_dev"), None, chinese=True),
    "tal_scq5k_en": Layout(".jsonl", _tal("prime_math_competition_en_single_choice_8K_dev"), None),
}
