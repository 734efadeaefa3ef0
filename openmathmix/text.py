"""The one prompt template shared by embeddings, the quality score and the scorer.

A question/answer row is rendered as plain text (no chat template, so base and instruct models see the same thing):

    Question: {question}
    Answer: {answer}

- `format_prompt(q)` is the part before the answer: ``"Question: {q}\\nAnswer:"``.
- `format_qa(q, a)` is the whole row: the prompt, one space (`ANSWER_LEAD`), then the answer.
- `format_example(q, a)` is a row used as an in-context example (the one-shot prefix of the quality score):
  the whole row followed by `EXAMPLE_SEPARATOR` (a blank line), so ``format_example(qk, ak) + format_qa(qi, ai)``
  is the one-shot input.

Token ids come from tokenising the prompt and the answer separately (the answer text is `ANSWER_LEAD + answer`,
tokenised without special tokens) and concatenating them. The model input is always `prompt_ids + answer_ids`, so
answer positions are known exactly: no re-tokenisation at the boundary can shift them. Every module that feeds the
template to a model goes through `qa_token_ids` / `encode_qa_batch`.

Bump `TEMPLATE_VERSION` whenever the rendering or the truncation rule changes: stage fingerprints include it.
"""

from __future__ import annotations

from dataclasses import dataclass

TEMPLATE_VERSION = 1

QUESTION_TAG = "Question: "
ANSWER_TAG = "\nAnswer:"
ANSWER_LEAD = " "  # between "Answer:" and the answer text; it belongs to the answer's first token
EXAMPLE_SEPARATOR = "\n\n"  # after an in-context example, before the next "Question:"


def format_prompt(question: str) -> str:
    """The text before the answer: ``"Question: {question}\\nAnswer:"``."""
    return f"{QUESTION_TAG}{question}{ANSWER_TAG}"


def format_qa(question: str, answer: str) -> str:
    """A whole row as the model reads it: ``"Question: {question}\\nAnswer: {answer}"``."""
    return format_prompt(question) + ANSWER_LEAD + answer


def format_example(question: str, answer: str) -> str:
    """A row used as an in-context example: `format_qa(...)` plus `EXAMPLE_SEPARATOR`; prepend it to a prompt."""
    return format_qa(question, answer) + EXAMPLE_SEPARATOR


@dataclass
class EncodedQa:
    """Token ids of a batch of rows; the model input of row i is `prompt_ids[i] + answer_ids[i]`."""

    prompt_ids: list[list[int]]
    answer_ids: list[list[int]]
    truncated: list[bool]  # True where the row had to be cut to `max_len` tokens

    def input_ids(self) -> list[list[int]]:
        return [p + a for p, a in zip(self.prompt_ids, self.answer_ids)]


def encode_qa_batch(tokenizer, questions: list[str], answers: list[str], max_len: int | None = None, *,
                    prefix: str = "", add_special_tokens: bool = True) -> EncodedQa:
    """Tokenise rows with the template; `prefix` (e.g. `format_example(qk, ak)`) goes before each prompt.

    `add_special_tokens` applies to the prompt only (a BOS token where the tokenizer adds one); pass False when the
    ids will follow other ids, e.g. after a cached one-shot prefix. Rows longer than `max_len` are cut by
    `truncate_pair` and flagged.
    """
    if len(questions) != len(answers):
        raise ValueError(f"{len(questions)} questions but {len(answers)} answers")
    prompts = [prefix + format_prompt(q) for q in questions]
    prompt_ids = tokenizer(prompts, add_special_tokens=add_special_tokens)["input_ids"]
    answer_ids = tokenizer([ANSWER_LEAD + a for a in answers], add_special_tokens=False)["input_ids"]
    truncated = [False] * len(prompts)
    if max_len is not None:
        bos = getattr(tokenizer, "bos_token_id", None) if add_special_tokens else None
        for i, (p, a) in enumerate(zip(prompt_ids, answer_ids)):
            if len(p) + len(a) > max_len:
                keep_head = 1 if bos is not None and p and p[0] == bos else 0
                prompt_ids[i], answer_ids[i] = truncate_pair(p, a, max_len, keep_head=keep_head)
                truncated[i] = True
    return EncodedQa(prompt_ids, answer_ids, truncated)


def qa_token_ids(tokenizer, question: str, answer: str, max_len: int | None = None, *, prefix: str = "",
                 add_special_tokens: bool = True) -> tuple[list[int], list[int]]:
    """(prompt_ids, answer_ids) of one row; log-probabilities of the answer are read at the answer_ids positions."""
    enc = encode_qa_batch(tokenizer, [question], [answer], max_len, prefix=prefix,
                          add_special_tokens=add_special_tokens)
    return enc.prompt_ids[0], enc.answer_ids[0]


def truncate_pair(prompt_ids: list[int], answer_ids: list[int], max_len: int, *,
                  keep_head: int = 0) -> tuple[list[int], list[int]]:
    """Cut a row to `max_len` tokens.

    The answer keeps at least `min(len(answer), max_len // 2)` tokens; the prompt gets the rest and, when cut, keeps
    its first `keep_head` tokens (a BOS token) and its END, so the question's last words and "Answer:" stay next to
    the answer (in a one-shot input, the prefix example is what goes first). Whatever room is left goes to the
    answer, which is cut at its end.
    """
    if max_len < keep_head + 2:
        raise ValueError(f"max_len must be at least {keep_head + 2}, got {max_len}")
    if len(prompt_ids) + len(answer_ids) <= max_len:
        return prompt_ids, answer_ids
    answer_floor = min(len(answer_ids), max_len // 2)
    n_prompt = min(len(prompt_ids), max_len - answer_floor)
    if n_prompt < len(prompt_ids):
        n_tail = max(n_prompt - keep_head, 1)
        prompt_ids = prompt_ids[:keep_head] + prompt_ids[len(prompt_ids) - n_tail:]
    return prompt_ids, answer_ids[: max_len - len(prompt_ids)]
