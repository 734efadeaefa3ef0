"""The cache every step uses, and the only module that knows its rules: keys, atomic writes, seals, locks.

Layout: `<root>/<kind>/<name>-<key>/` per cached artifact (`kind` is sources, stages, scorers...), where `key` hashes
everything the artifact depends on (input fingerprints, settings, model id and revision).

- A file is *sealed* once complete: `<file>.done.json` beside it records its size, sha256, row count and any
  counters. Before reuse, `check_sealed` verifies the seal against the file; a file that fails (flipped bytes,
  truncation, missing seal) is deleted and reported so the caller recomputes it. Nothing unsealed is ever read.
- A folder artifact (a trained scorer) is sealed as a whole with `seal_folder`/`check_folder` (every file listed).
- Writers take a lock per artifact (`lock(path)`, an `fcntl` lock on `<path>.lock`), so two processes on one cache
  share the work: each computes what nobody else holds, then waits for the rest. Locks work across processes of one
  machine and on file systems with POSIX locks; across machines use the Ray engine (see README).
- Work files go into `<file>.work-<pid>/` folders; those of killed processes are removed by `clean_stale_work`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .compat import content_key
from .errors import CacheError
from .outputs import pid_alive, remove_within

logger = logging.getLogger(__name__)

__all__ = [
    "SEAL_SUFFIX",
    "check_folder",
    "check_sealed",
    "clean_stale_work",
    "entry",
    "key",
    "lock",
    "remove_work",
    "seal",
    "seal_folder",
    "sha256_file",
    "work_dir",
    "write_json",
]

SEAL_SUFFIX = ".done.json"
FOLDER_SEAL = "done.json"
_BLOCK = 1 << 20


def key(obj: Any) -> str:
    """Hash of plain data (what an artifact depends on) used in cache folder names."""
    return content_key(obj)


def entry(root: str | os.PathLike, kind: str, name: str, digest: str) -> Path:
    """The folder of one cached artifact, created if needed: `<root>/<kind>/<name>-<digest>`."""
    folder = Path(root) / kind / f"{name}-{digest}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CacheError(f"cannot create the cache folder {folder} ({err.strerror}); pass --cache-dir with a "
                         "writable folder") from err
    return folder


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically: a reader sees the old content or the new, never half a file."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    try:
        tmp.write_text(json.dumps(obj, sort_keys=True, default=str), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _seal_path(path: Path) -> Path:
    return path.with_name(path.name + SEAL_SUFFIX)


def seal(path: str | os.PathLike, *, rows: int | None = None, **meta: Any) -> dict[str, Any]:
    """Record that `path` is complete: size, sha256, row count and `meta`, written after the file itself."""
    path = Path(path)
    record = {"file": path.name, "bytes": path.stat().st_size, "sha256": sha256_file(path), "rows": rows, **meta}
    write_json(_seal_path(path), record)
    return record


def check_sealed(path: str | os.PathLike, *, rows: int | None = None, repair: bool = True) -> dict[str, Any] | None:
    """The seal of `path` when the file matches it (and has `rows` rows, if given); else None.

    With `repair` (only while holding the file's `lock`), a file that fails its seal is deleted with its seal and
    the reason is logged as a warning, so the caller recomputes it; a file without a seal is an unfinished write and
    is deleted too. Without `repair` nothing is touched (another process may be finishing the file).
    """
    path = Path(path)
    seal_file = _seal_path(path)
    if not path.exists():
        if repair:
            seal_file.unlink(missing_ok=True)
        return None
    problem = None
    try:
        record = json.loads(seal_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        record, problem = None, "it has no seal (an interrupted write)"
    except (OSError, ValueError):
        record, problem = None, "its seal is unreadable"
    if record is not None:
        if record.get("bytes") != path.stat().st_size:
            problem = f"its size changed ({path.stat().st_size:,} bytes, sealed with {record.get('bytes'):,})"
        elif rows is not None and record.get("rows") is not None and record["rows"] != rows:
            problem = f"it holds {record['rows']:,} rows where {rows:,} are expected"
        elif record.get("sha256") != sha256_file(path):
            problem = "its sha256 checksum does not match (the file is damaged)"
    if problem is None:
        return record
    if not repair:
        return None
    logger.warning("cache: %s is not reused: %s; recomputing it", path, problem)
    path.unlink(missing_ok=True)
    seal_file.unlink(missing_ok=True)
    return None


def seal_folder(folder: str | os.PathLike, **meta: Any) -> dict[str, Any]:
    """Seal every file of a folder artifact (a trained scorer): `done.json` lists their sizes and checksums."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != FOLDER_SEAL
                   and not p.name.endswith(".lock"))
    record = {"files": {str(p.relative_to(folder)): {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
                        for p in files}, **meta}
    write_json(folder / FOLDER_SEAL, record)
    return record


def check_folder(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The seal of a folder artifact when every listed file matches it; else None (the folder is emptied)."""
    folder = Path(folder)
    seal_file = folder / FOLDER_SEAL
    if not seal_file.is_file():
        _empty(folder)
        return None
    try:
        record = json.loads(seal_file.read_text(encoding="utf-8"))
        files = record["files"]
    except (OSError, ValueError, KeyError, TypeError):
        logger.warning("cache: %s has an unreadable seal; recomputing it", folder)
        _empty(folder)
        return None
    for name, info in files.items():
        p = folder / name
        if not p.is_file() or p.stat().st_size != info["bytes"] or sha256_file(p) != info["sha256"]:
            logger.warning("cache: %s does not match its seal (%s missing or damaged); recomputing it", folder, name)
            _empty(folder)
            return None
    return record


def _empty(folder: Path) -> None:
    """Delete the contents of a cache entry folder (never the folder itself, never outside it)."""
    if not folder.is_dir():
        return
    for p in folder.iterdir():
        if not p.name.endswith(".lock"):
            remove_within(p, folder)


@contextlib.contextmanager
def lock(path: str | os.PathLike, *, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock named after `path` (`<path>.lock`). Yields True when held; with `wait=False` yields
    False at once when another process holds it."""
    lock_path = Path(str(path) + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise CacheError(f"cannot create the lock file {lock_path} ({err.strerror}); pass --cache-dir with a "
                         "writable folder") from err
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as err:
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                yield False
                return
            raise
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def work_dir(path: str | os.PathLike) -> Path:
    """A fresh folder for the temporary files of one write of `path` (`<path>.work-<pid>`)."""
    folder = Path(f"{path}.work-{os.getpid()}")
    if folder.exists():
        remove_within(folder, folder.parent)
    folder.mkdir(parents=True)
    return folder


def remove_work(folder: str | os.PathLike) -> None:
    """Remove a work folder made by `work_dir` once its result has been moved into the cache."""
    folder = Path(folder)
    if ".work-" not in folder.name:
        raise CacheError(f"{folder} is not a cache work folder; not deleting it")
    remove_within(folder, folder.parent)


def clean_stale_work(folder: str | os.PathLike) -> int:
    """Remove work folders and temp files left in a cache folder by processes that no longer run; return how many."""
    removed = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    for p in folder.iterdir():
        pid = None
        if ".work-" in p.name:
            pid = p.name.rsplit(".work-", 1)[1]
        elif ".tmp-" in p.name:
            pid = p.name.rsplit(".tmp-", 1)[1].split("-", 1)[0]
        if pid is None or not pid.isdigit() or pid_alive(int(pid)):
            continue
        remove_within(p, folder)
        removed += 1
    if removed:
        logger.info("cache: removed %d leftover work file(s) of killed runs in %s", removed, folder)
    return removed
