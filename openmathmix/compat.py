"""The one place that reaches past the public APIs of `datasets`: each function says what is missing and why.

Everything else in the package uses public APIs only (tests/test_compat.py greps the package for private attributes
of `datasets`, `huggingface_hub` and `argparse`). When a release of `datasets` adds a public way, change it here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["content_key", "fingerprint", "selected_bytes"]


def fingerprint(ds: Any) -> str:
    """The fingerprint `datasets` keeps for a Dataset: a hash of its content and of every transform that made it.

    `datasets` has no public getter for it, yet it is the only cheap, content-derived identity of a dataset (hashing
    the rows of a 5M-row pool would cost minutes). Cache keys of every stage are built on it.
    """
    value = getattr(ds, "_fingerprint", None)
    if not isinstance(value, str) or not value:
        raise TypeError(f"expected a datasets.Dataset with a fingerprint, got {type(ds).__name__}")
    return value


def content_key(obj: Any) -> str:
    """A stable hash of plain data (dicts, lists, strings, numbers), the same hash `datasets` uses for its cache."""
    from datasets.fingerprint import Hasher

    return Hasher.hash(obj)


def selected_bytes(ds: Any) -> int:
    """Arrow bytes of the rows of `ds`; a selection (`ds.select(...)`, an indices mapping) counts its share.

    `Dataset.data.nbytes` is the size of the whole underlying table, whatever selection sits on top of it, so the
    share is taken from the row counts (an unselected dataset gets its whole table).
    """
    total, table_rows = ds.data.nbytes, len(ds.data)
    return int(total * len(ds) / table_rows) if table_rows else int(total)
