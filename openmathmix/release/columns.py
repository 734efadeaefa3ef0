"""The rows of a release: which columns each config holds, the `messages` column, and the pool's consistency check.

Every config carries the flat columns (`question`, `answer`, ...) and `messages`, the same pair as a chat:
`[{"role": "user", "content": question}, {"role": "assistant", "content": answer}]`, the conversational form that
TRL's `SFTTrainer`, axolotl (`type: chat_template`) and LLaMA-Factory (`formatting: sharegpt`) read as it is.

The `pool` config holds every row that entered selection, with `kept` saying whether the mixture kept it; the
mixture must be exactly the pool's kept rows, with the same `qads_rank` (`check_pool`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import MissingColumnsError, PublishError
from ..schema import COLUMNS, EMBEDDING, KEPT, QADS_RANK, QUALITY_SCORE

__all__ = ["COLUMN_DOCS", "KEPT", "MESSAGES", "RELEASE_COLUMNS", "check_pool", "config_columns",
           "messages_feature", "with_messages"]

MESSAGES = "messages"
USER, ASSISTANT = "user", "assistant"
# id, source, task, question, answer, messages, quality_score, qads_rank, license
RELEASE_COLUMNS = (*COLUMNS[:-1], MESSAGES, QUALITY_SCORE, QADS_RANK, COLUMNS[-1])
INPUT_COLUMNS = tuple(c for c in RELEASE_COLUMNS if c != MESSAGES)  # what write_release needs from its inputs

COLUMN_DOCS = {
    "id": "stable row id `<source>/<origin>/<row>`, unique across the mixture",
    "source": "name of the source dataset in the openmathmix registry",
    "task": "`reasoning` (math) or `general` (instruction following)",
    "question": "the prompt",
    "answer": "the reference response",
    MESSAGES: "`question` and `answer` as a chat: `[{role: user, content: question}, {role: assistant, content: "
              "answer}]`, the form chat trainers read",
    QUALITY_SCORE: "expected 1-5 label of the trained quality scorer (higher is more influential)",
    QADS_RANK: "position of the row in its source's selection order, from 0; subsets keep the smallest ranks",
    KEPT: "`pool` config only: true when the mixture (config `default`) kept the row",
    "license": "licence of the row's source",
    EMBEDDING: "mean-pooled last hidden state used for selection",
}


def messages_feature():
    """The `datasets` feature of `messages`: a list of {role, content} strings."""
    from datasets import List, Value

    return List({"role": Value("string"), "content": Value("string")})


def config_columns(ds: Any, *, keep_embedding: bool, pool: bool = False, what: str = "the mixture") -> list[str]:
    """The columns a config is written with (inputs are checked for the ones it needs)."""
    needed = [*INPUT_COLUMNS, *([KEPT] if pool else [])]
    missing = [c for c in needed if c not in ds.column_names]
    if missing:
        hint = (f"mark each pool row with a boolean {KEPT!r} column" if KEPT in missing
                else "score every row and run the selection (select_mixture) first")
        raise MissingColumnsError(f"a release needs column(s) {missing} in {what}; it has {ds.column_names}. {hint}")
    columns = list(RELEASE_COLUMNS)
    if pool:
        columns.insert(columns.index(QADS_RANK) + 1, KEPT)
    if keep_embedding:
        if EMBEDDING not in ds.column_names:
            raise MissingColumnsError(f"keep_embedding=True, but {what} has no {EMBEDDING!r} column")
        columns.append(EMBEDDING)
    return columns


def _messages_batch(batch):
    """An Arrow batch -> the same batch with `messages` (user question, assistant answer) appended."""
    import pyarrow as pa

    n = batch.num_rows
    question = batch.column("question").combine_chunks().cast(pa.string())
    answer = batch.column("answer").combine_chunks().cast(pa.string())
    order = np.empty(2 * n, dtype=np.int64)  # q0, a0, q1, a1, ...
    order[0::2] = np.arange(n)
    order[1::2] = np.arange(n) + n
    content = pa.concat_arrays([question, answer]).take(pa.array(order))
    role = pa.array([USER, ASSISTANT] * n, type=pa.string())
    turns = pa.StructArray.from_arrays([role, content], names=["role", "content"])
    offsets = pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32))
    return batch.append_column(MESSAGES, pa.ListArray.from_arrays(offsets, turns))


def with_messages(ds: Any, columns: Sequence[str]) -> Any:
    """`ds` with the `messages` column (replacing any old one), in `columns` order."""
    from ..stages.base import progress_bars_off

    base = ds.remove_columns(MESSAGES) if MESSAGES in ds.column_names else ds
    features = base.features.copy()
    features[MESSAGES] = messages_feature()
    with progress_bars_off():  # a quick column: one line per release step is enough
        out = base.with_format("arrow").map(_messages_batch, batched=True, batch_size=10_000, features=features)
    return out.with_format(None).select_columns(list(columns))


def _arrow(ds: Any, columns: Sequence[str]):
    return ds.select_columns(list(columns)).with_format("arrow")[:]


def check_pool(pool: Any, mixture: Any, composition_rows: Sequence[Mapping[str, Any]] | None = None) -> int:
    """Check that the mixture is exactly the pool's kept rows, with the same ranks; return the kept count.

    Also checks that pool ids are unique, that `kept` has no nulls, and, when the selection report gives each
    source's `available` count, that the pool holds that many rows of the source (every row that entered selection).
    Raises `PublishError` naming the first offending id or source.
    """
    import pyarrow.compute as pc

    table = _arrow(pool, ["id", "source", QADS_RANK, KEPT])
    if table.column(KEPT).null_count:
        raise PublishError(f"the pool's {KEPT!r} column has {table.column(KEPT).null_count} null value(s); "
                           "mark every pool row true (kept by the mixture) or false")
    ids = table.column("id")
    if pc.count_distinct(ids).as_py() != len(ids):
        counts = pc.value_counts(ids)
        twice = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
        raise PublishError(f"the pool holds id {twice[0].as_py()!r} more than once; every pool row needs its own id")
    kept = table.filter(table.column(KEPT)).select(["id", QADS_RANK]).sort_by("id")
    mix = _arrow(mixture, ["id", QADS_RANK]).sort_by("id")
    if len(kept) != len(mix) or not kept.column("id").equals(mix.column("id")):
        pool_ids, mix_ids = set(kept.column("id").to_pylist()), set(mix.column("id").to_pylist())
        extra, missing = sorted(pool_ids - mix_ids), sorted(mix_ids - pool_ids)
        where = (f"e.g. {missing[0]!r} is in the mixture but not kept in the pool" if missing else
                 f"e.g. {extra[0]!r} is kept in the pool but not in the mixture" if extra else
                 "the mixture repeats ids")
        raise PublishError(f"the mixture ({len(mix):,} rows) is not the pool's kept rows ({len(kept):,}): {where}. "
                           "Pass the pool and the mixture of the same selection run")
    same_rank = pc.equal(kept.column(QADS_RANK), mix.column(QADS_RANK)).fill_null(False)
    if not pc.all(same_rank).as_py():
        first = pc.index(same_rank, False).as_py()
        raise PublishError(f"row {kept.column('id')[first].as_py()!r} has {QADS_RANK} "
                           f"{kept.column(QADS_RANK)[first].as_py()} in the pool but "
                           f"{mix.column(QADS_RANK)[first].as_py()} in the mixture; pass the pool and the mixture of "
                           "the same selection run")
    counts = {str(x["values"]): int(x["counts"]) for x in pc.value_counts(table.column("source")).to_pylist()}
    for row in composition_rows or ():
        available, name = row.get("available"), row["source"]
        if available is None or (row.get("policy") == "excluded" and name not in counts):
            continue
        if counts.get(name, 0) != available:
            raise PublishError(f"the pool holds {counts.get(name, 0):,} rows of {name!r}, but the selection report "
                               f"says {available:,} entered selection; pass the whole scored pool")
    return len(kept)
