"""What must never leave the machine in a release: access tokens, and the local absolute paths of this machine.

`check_no_secrets` reads every file of a folder: text and images as bytes, parquet files column by column (every
string, nested ones such as `messages` included, plus the file's metadata), because parquet pages are compressed and
a byte search would miss a token inside a row. `portable` rewrites the settings a build records so that a model
folder or preset file appears by name (and a file by a short sha256), never by path; `check_no_local_paths` then
refuses a card or manifest that still names a folder of this machine.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PublishError

__all__ = ["check_inputs", "check_no_local_paths", "check_no_secrets", "portable"]

TOKEN_REGEX = r"hf_[A-Za-z0-9]{20,}"
TOKEN_PATTERN = re.compile(TOKEN_REGEX.encode())
PARQUET = ".parquet"
SCAN_BATCH_ROWS = 8192
# An absolute POSIX path inside a string: a "/" that does not continue a word, a URL or another path.
PATH_PATTERN = re.compile(r"(?<![\w.:/~-])/[^\s'\"`|,;()\[\]{}<>]+")
TEXT_FILES = ("README.md", "LICENSE.md", "manifest.json")  # the files a build writes from settings and texts
SHORT_HASH = 16


def _current_token() -> str | None:
    from huggingface_hub import get_token

    try:
        return get_token()
    except (OSError, ValueError):  # an unreadable token file: nothing to compare against
        return None


def _token_error(where: str) -> PublishError:
    return PublishError(
        f"{where} contains what looks like a Hugging Face access token; refusing to write or upload it. "
        "Remove the token from the rows, settings or texts that ended up there and rebuild the release"
    )


def _secrets(extra: Iterable[str]) -> list[str]:
    return [s for s in [_current_token(), *extra] if s and len(s) >= 8]


def check_no_secrets(root: str | os.PathLike, extra: Iterable[str] = (), *, skip: Iterable[str] = ()) -> None:
    """Raise `PublishError` if a file under `root` (or the file `root`) holds an `hf_...` token or a known secret.

    Known secrets are the current token (huggingface_hub's lookup) and `extra`. `skip` names subfolders (relative,
    e.g. "data") already scanned. The error names the file (and the parquet column and row), never the secret.
    """
    from tqdm.auto import tqdm

    from .manifest import PROGRESS_BYTES

    secrets = _secrets(extra)
    root = Path(root)
    skipped = [root / s for s in skip]
    paths = [root] if root.is_file() else sorted(
        p for p in root.rglob("*") if p.is_file() and not any(folder in p.parents for folder in skipped))
    total = sum(p.stat().st_size for p in paths)
    with tqdm(total=total, unit="B", unit_scale=True, desc="token scan", disable=total < PROGRESS_BYTES,
              leave=False) as bar:
        for path in paths:
            if path.suffix == PARQUET:
                _scan_parquet(path, secrets)
            else:
                data = path.read_bytes()
                if TOKEN_PATTERN.search(data) or any(s.encode() in data for s in secrets):
                    raise _token_error(str(path))
            bar.update(path.stat().st_size)


def check_inputs(texts: dict[str, str], roots: Iterable[str | os.PathLike] = ()) -> None:
    """Fail fast, before anything is written: no token and no local folder in the texts a card is made from.

    `texts` maps what the caller passed ("settings", "description", "card section 'X'") to its text.
    """
    secrets, local = _secrets(()), _local_roots(roots)
    for what, text in texts.items():
        if TOKEN_PATTERN.search(text.encode()) or any(s in text for s in secrets):
            raise _token_error(f"the {what} given to write_release")
        found = next((r for r in local if r in text), None)
        if found:
            raise PublishError(f"the {what} given to write_release names the local folder {found}; a release records "
                               "models and files by name, not by path. Pass a Hub id or a name instead")


def _scan_parquet(path: Path, secrets: list[str]) -> None:
    import pyarrow.parquet as pq

    try:
        reader = pq.ParquetFile(path)
    except (OSError, ValueError) as err:  # pyarrow raises ArrowInvalid (a ValueError) or OSError on bad bytes
        raise PublishError(f"{path} is not a readable parquet file ({err}); rebuild the release") from None
    metadata = b"".join(k + v for k, v in (reader.metadata.metadata or {}).items())
    if TOKEN_PATTERN.search(metadata) or any(s.encode() in metadata for s in secrets):
        raise _token_error(f"the metadata of {path}")
    offset = 0
    for batch in reader.iter_batches(batch_size=SCAN_BATCH_ROWS):
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            hits = np.flatnonzero(_row_hits(column, secrets))
            if hits.size:
                raise _token_error(f"row {offset + int(hits[0])} of column {name!r} in {path}")
        offset += batch.num_rows


def _row_hits(array, secrets: list[str]) -> np.ndarray:
    """Per row of `array` (any nesting of lists and structs), whether one of its strings holds a secret."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        mask = pc.match_substring_regex(array, TOKEN_REGEX)
        for secret in secrets:
            mask = pc.or_(mask, pc.match_substring(array, secret))
        return mask.fill_null(False).to_numpy(zero_copy_only=False)
    if pa.types.is_struct(kind):
        hits = np.zeros(len(array), dtype=bool)
        for child in array.flatten():
            hits |= _row_hits(child, secrets)
        return hits
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        hits = np.zeros(len(array), dtype=bool)
        inner = _row_hits(array.flatten(), secrets)
        parents = pc.list_parent_indices(array).to_numpy(zero_copy_only=False)
        hits[parents[inner]] = True
        return hits
    return np.zeros(len(array), dtype=bool)  # numbers, booleans: nothing to leak


# ---------------------------------------------------------------------------------------------------------------------
# Local paths
# ---------------------------------------------------------------------------------------------------------------------


def _local_roots(extra: Iterable[str | os.PathLike] = ()) -> list[str]:
    """Folders whose paths name this machine: home, working folder, temp folder, and `extra` (as given and real)."""
    roots = set()
    for folder in [Path.home(), Path.cwd(), Path(tempfile.gettempdir()), *map(Path, extra)]:
        for form in (os.path.abspath(folder), os.path.realpath(folder)):
            if len(Path(form).parts) > 1:  # never "/" itself
                roots.add(form.rstrip("/"))
    return sorted(roots, key=len, reverse=True)


def _portable_path(path: str) -> str:
    """A path as a release records it: a file by name and short sha256, a folder or a missing path by name."""
    from .manifest import sha256_file

    name = Path(path).name or path
    if os.path.isfile(path):
        return f"{name} (sha256 {sha256_file(Path(path))[:SHORT_HASH]})"
    return name


def portable(value: Any, *, roots: Iterable[str | os.PathLike] = ()) -> Any:
    """`value` (settings: dicts, lists, strings) with local absolute paths replaced by names.

    A path is local when it exists on this machine or lies under the home, working, temp or a `roots` folder.
    """
    local = _local_roots(roots)

    def fix(text: str) -> str:
        def one(match: re.Match) -> str:
            path = match.group(0)
            if os.path.exists(path) or any(path == r or path.startswith(r + "/") for r in local):
                return _portable_path(path)
            return path
        return PATH_PATTERN.sub(one, text)

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return fix(item)
        if isinstance(item, dict):
            return {k: walk(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [walk(v) for v in item]
        return item

    return walk(value)


def check_no_local_paths(root: str | os.PathLike, roots: Iterable[str | os.PathLike] = ()) -> None:
    """Raise `PublishError` if the card, licence file or manifest under `root` names a local folder."""
    local = _local_roots(roots)
    for name in TEXT_FILES:
        path = Path(root) / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        found = next((r for r in local if r in text), None)
        if found:
            raise PublishError(
                f"{name} of the release names the local folder {found}; a release records models and files by "
                "name, not by path. Pass a Hub id or a name in the settings, sections or description"
            )
