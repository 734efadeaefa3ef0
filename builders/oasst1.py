"""OpenAssistant Conversations (Köpf et al., NeurIPS 2023): crowd-written message trees, one conversation per tree.

Layouts: the Hub's flat message rows (``message_id``, ``parent_id``, ...; trees rebuilt per split or file), the
project's export files (``{message_tree_id, prompt: {..., replies: [...]}}``) and nested root messages, and the
``timdettmers/openassistant-guanaco`` re-export (one ``text`` per top-ranked path, turns marked ``### Human:`` /
``### Assistant:``). The tree walk below is this source's own parser.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from openmathmix.errors import DataFileError
from openmathmix.formats import Chunk, FieldError, Mapped, RecordMap, RowMapping, expect
from openmathmix.sources import Source

DROP_DELETED = "deleted message"
DROP_UNDER_DELETED = "reply to a deleted message"
DROP_OFF_PATH = "message not on the top-ranked path"
DROP_LATER_TURN = "later turn of the conversation (only the first exchange is kept)"
DROP_NO_REPLY = "conversation without an assistant reply"
DROP_ORPHAN = "parent message not in the input"
DROP_BAD_ROOT = "tree root is not a prompter message"
DROP_DUPLICATE = "duplicate message_id"
MERGED_ANSWER = "assistant reply used as the answer of its conversation"


def _rank_key(item: tuple[int, dict]) -> tuple:
    pos, msg = item
    rank = msg.get("rank")
    ranked = isinstance(rank, (int, float)) and not isinstance(rank, bool)
    return (not ranked, rank if ranked else 0, pos)


def _subtree_size(node: dict, kids: Callable[[dict], list]) -> int:
    n, stack = 0, [node]
    while stack:
        cur = stack.pop()
        n += 1
        stack.extend(kids(cur))
    return n


def _drop_deleted(msg: dict, kids: Callable[[dict], list], dropped: Counter) -> None:
    dropped[DROP_DELETED] += 1
    below = _subtree_size(msg, kids) - 1
    if below:
        dropped[DROP_UNDER_DELETED] += below


def walk_tree(root: dict, kids: Callable[[dict], list], dropped: Counter) -> tuple[str, str] | None:
    """The first exchange on the top-ranked path of one message tree; every other message is counted in ``dropped``.

    At each level the reply with the lowest ``rank`` wins (0 = best); replies without a rank come after ranked ones,
    and ties go to the reply that comes first in the input. Deleted replies and their subtrees never count.
    """
    if root.get("deleted"):
        _drop_deleted(root, kids, dropped)
        return None
    if root.get("role") != "prompter":
        dropped[DROP_BAD_ROOT] += _subtree_size(root, kids)
        return None
    path, node = [root], root
    while True:
        live = []
        for pos, child in enumerate(kids(node)):
            if child.get("deleted"):
                _drop_deleted(child, kids, dropped)
            else:
                live.append((pos, child))
        if not live:
            break
        live.sort(key=_rank_key)
        for _, other in live[1:]:
            dropped[DROP_OFF_PATH] += _subtree_size(other, kids)
        node = live[0][1]
        path.append(node)
    if len(path) < 2 or path[1].get("role") != "assistant":
        dropped[DROP_NO_REPLY] += len(path)  # the prompt and whatever (malformed) path hangs below it
        return None
    dropped[DROP_LATER_TURN] += len(path) - 2
    return str(root.get("text") or ""), str(path[1].get("text") or "")


@dataclass(frozen=True)
class MessageTrees(RowMapping):
    """OpenAssistant conversations: one row per message tree, from its top-ranked path.

    Accepts the export layout (``{message_tree_id, prompt: {..., replies: [...]}}``), nested root messages
    (``{message_id, role, text, replies: [...]}``) and, with ``flat=True``, oasst1's flat message rows
    (``message_id``, ``parent_id``, ...), whose trees are rebuilt once a whole file or split has been read. rows_in
    counts messages; every message is the question of a row, the answer of a row (merged), or dropped with a reason.
    The id ends in the row index of the tree (nested layouts) or of its root message (flat rows).
    """

    unit = "message"
    prefer_records = True
    flat: bool = False

    @property
    def whole_origin(self) -> bool:
        return self.flat

    def needs(self) -> tuple[str, ...]:
        return ("message_id", "parent_id", "role", "text") if self.flat else ()

    def matches(self, names: Iterable[str]) -> bool:
        names = set(names)
        if self.flat:
            return super().matches(names) and "replies" not in names
        return "prompt" in names or {"replies", "text", "role"} <= names

    def describe(self) -> str:
        return super().describe() if self.flat else "{prompt: message tree} or {message_id, role, text, replies}"

    def extract(self, chunk: Chunk) -> Mapped:
        rows, qs, ans, dropped, units = [], [], [], Counter(), 0
        for i, rec in enumerate(chunk.records()):
            root = rec.get("prompt", rec)
            if not isinstance(root, dict):
                raise FieldError(i, "prompt", root, "a message object")

            def kids(msg: dict, i: int = i) -> list:
                replies = msg.get("replies") or []
                if not isinstance(replies, list) or not all(isinstance(r, dict) for r in replies):
                    raise FieldError(i, "replies", replies, "a list of message objects")
                return replies

            units += _subtree_size(root, kids)
            pair = walk_tree(root, kids, dropped)
            if pair:
                rows.append(int(chunk.rows[i]))
                qs.append(pair[0])
                ans.append(pair[1])
        return Mapped.from_lists(units, rows, qs, ans, dropped, [1] * len(rows), MERGED_ANSWER)

    def map_origin(self, chunks: list[Chunk]) -> Mapped:
        """Flat rows (one message each, linked by ``parent_id``) of one origin -> one conversation per root."""
        dropped: Counter = Counter()
        known: set[str] = set()
        children: dict[str, list[dict]] = {}
        roots: list[tuple[int, dict]] = []
        for chunk in chunks:
            for i, msg in enumerate(chunk.records()):
                mid = msg.get("message_id")
                if not isinstance(mid, str) or not mid:
                    raise DataFileError(f"{chunk.locate(i)}: {FieldError(i, 'message_id', mid).describe()}")
                if mid in known:
                    dropped[DROP_DUPLICATE] += 1
                    continue
                known.add(mid)
                parent = msg.get("parent_id")
                if parent in (None, ""):
                    roots.append((int(chunk.rows[i]), msg))
                else:
                    children.setdefault(str(parent), []).append(msg)

        def kids(msg: dict) -> list:
            return children.get(msg["message_id"], [])

        rows, qs, ans, reached = [], [], [], 0
        for row, root in roots:
            reached += _subtree_size(root, kids)
            pair = walk_tree(root, kids, dropped)
            if pair:
                rows.append(row)
                qs.append(pair[0])
                ans.append(pair[1])
        if len(known) > reached:
            dropped[DROP_ORPHAN] += len(known) - reached
        units = len(known) + dropped[DROP_DUPLICATE]
        return Mapped.from_lists(units, rows, qs, ans, dropped, [1] * len(rows), MERGED_ANSWER)


GUANACO_TURN = re.compile(r"###\s*(Human|Assistant)\s*:")


def guanaco_exchange(rec: dict) -> tuple[str | None, str | None]:
    """``### Human: q ### Assistant: a ### Human: ...`` -> the first human turn and the assistant reply after it."""
    text = expect(rec, "text", str, "a string", "")
    parts = GUANACO_TURN.split(text)  # [preamble, role, text, role, text, ...]
    question = None
    for role, body in zip(parts[1::2], parts[2::2], strict=True):
        if question is None and role == "Human":
            question = body
        elif question is not None and role == "Assistant":
            return question, body
    return question, None


SOURCE = Source(
    name="oasst1", title="Open-Assistant-1", task="general",
    license="apache-2.0", paper_size=10_000,
    repo="OpenAssistant/oasst1", split=("train", "validation"),
    homepage="https://github.com/LAION-AI/Open-Assistant",
    formats=(MessageTrees(flat=True), MessageTrees(), RecordMap(guanaco_exchange, ("text",))),
    notes="Top-ranked path of each tree; its first prompter turn -> question, first assistant turn -> answer.",
)
