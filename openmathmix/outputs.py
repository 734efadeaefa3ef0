"""Output folders that cannot hurt: the one place that deletes or replaces a folder a user named.

Every command that writes a folder (`sources build`, `embed`, `select`, `build`, ...) goes through
`output_folder(out, inputs=..., overwrite=...)`:

1. `check_output` runs before any work: it refuses a file-system root, the home folder or a folder above it, a
   folder that is or contains one of the command's inputs, a path under a file, a folder it cannot write, and an
   existing non-empty folder unless it is one of ours (it holds the marker file `.openmathmix-output` written here)
   and `overwrite` is set.
2. The command writes into a new temporary folder beside `out` (same file system, so the swap is a rename).
3. Only when the block finishes without error is the marker written and the folder swapped in; the previous folder
   (one of ours) is removed after the swap. On any error the temporary folder is removed and `out` is untouched,
   which also covers a full disk.

Temporary folders of runs that were killed (`.<name>.tmp-<pid>-...` whose process is gone) are removed the next time
the same `out` is written.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import OpenMathMixError, OutputError

__all__ = ["MARKER", "check_output", "is_ours", "output_folder", "pid_alive", "remove_ours", "remove_within"]

MARKER = ".openmathmix-output"  # written into every folder a command completes; its presence makes it replaceable


def is_ours(folder: str | os.PathLike) -> bool:
    """True when `folder` is a folder this package completed (it holds the marker file)."""
    return (Path(folder) / MARKER).is_file()


def _resolve(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path))))


def _real(path: Path) -> Path:
    """The path with symbolic links resolved, as far as it exists."""
    return Path(os.path.realpath(path))


def _is_within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def check_output(out: str | os.PathLike, *, inputs: Iterable[str | os.PathLike | None] = (),
                 overwrite: bool = False, what: str = "--out") -> Path:
    """Validate an output folder before any work starts; return its absolute path. Raises `OutputError`."""
    path = _resolve(out)
    real = _real(path)
    home = _real(Path.home())
    if real == Path(real.anchor) or path == Path(path.anchor):
        raise OutputError(f"{what} {out} is the root of a file system; give a new folder for the output")
    if _is_within(home, real):
        raise OutputError(f"{what} {out} is the home folder or holds it; give a new folder for the output")
    for given in inputs:
        if given is None or "://" in str(given):
            continue
        source = _real(_resolve(given))
        if _is_within(source, real):
            relation = "is" if source == real else "contains"
            raise OutputError(f"{what} {out} {relation} the input {given}; write the output to another folder")
    for parent in (real, *real.parents):
        if parent.exists() and not parent.is_dir():
            if parent == real:
                raise OutputError(f"{what} {out} is a file, not a folder; give a folder path (it is not deleted)")
            raise OutputError(f"{what} {out} lies under {parent}, which is a file; choose a folder elsewhere")
        if parent.exists():
            break
    if real.is_dir() and any(real.iterdir()):
        if not is_ours(real):
            raise OutputError(
                f"{what} {out} exists and holds files that openmathmix did not write (no {MARKER} marker); it is "
                "left alone. Choose another folder, or empty this one yourself"
            )
        if not overwrite:
            raise OutputError(f"{what} {out} holds an earlier output; pass --overwrite to replace it, or choose "
                              "another folder")
    _probe_writable(real.parent if not real.exists() else real, what, out)
    return path


def _probe_writable(folder: Path, what: str, out) -> None:
    """Create (if needed) the folder that will hold the output and check that a file can be made in it."""
    anchor = folder
    while not anchor.exists():
        anchor = anchor.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".openmathmix-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        probe.mkdir()
        probe.rmdir()
    except OSError as err:
        raise OutputError(f"{what} {out}: cannot write in {folder} ({_describe(err)}); choose a writable folder") \
            from err


def _describe(err: OSError) -> str:
    if err.errno == errno.ENOSPC:
        return "no space left on the device"
    if err.errno in (errno.EROFS,):
        return "read-only file system"
    if err.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return err.strerror or str(err)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs (temporary files carry their writer's pid)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # gone, or a number no process can have
        return False
    except PermissionError:
        return True
    return True


def _clean_stale(real: Path) -> None:
    """Remove temporary folders that killed runs left beside `real` (named `.<name>.tmp-<pid>-<hex>`)."""
    prefix = f".{real.name}.tmp-"
    if not real.parent.is_dir():
        return
    for entry in real.parent.iterdir():
        if not entry.name.startswith(prefix) or not entry.is_dir():
            continue
        pid = entry.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


@contextlib.contextmanager
def output_folder(out: str | os.PathLike, *, inputs: Iterable[str | os.PathLike | None] = (),
                  overwrite: bool = False, what: str = "--out") -> Iterator[Path]:
    """Yield an empty temporary folder beside `out`; on success mark it and swap it in place of `out`.

    `inputs` are the paths the command reads (they must not be `out` or lie inside it). `overwrite` allows
    replacing an earlier output of ours; a folder we did not write is never replaced.
    """
    inputs = list(inputs)
    path = check_output(out, inputs=inputs, overwrite=overwrite, what=what)
    real = _real(path)
    _clean_stale(real)
    tmp = real.parent / f".{real.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir(parents=True)
        yield tmp
        (tmp / MARKER).write_text(json.dumps({"written_by": "openmathmix"}) + "\n", encoding="utf-8")
        # `out` may have appeared or changed while we worked: check again right before the swap.
        check_output(out, inputs=inputs, overwrite=overwrite, what=what)
        _swap(tmp, real)
    except OpenMathMixError:  # our own errors (some subclass FileNotFoundError) already say what is wrong
        raise
    except OSError as err:
        raise OutputError(f"writing {what} {out} failed ({_describe(err)}); {out} was left as it was") from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap(tmp: Path, real: Path) -> None:
    """Put `tmp` at `real`; an earlier folder there (checked to be ours or empty) is removed only after the swap."""
    if not real.exists():
        os.replace(tmp, real)
        return
    old = real.parent / f".{real.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    os.replace(real, old)
    try:
        os.replace(tmp, real)
    except OSError:
        os.replace(old, real)
        raise
    shutil.rmtree(old, ignore_errors=True)


def remove_within(path: str | os.PathLike, root: str | os.PathLike) -> None:
    """Delete a file or folder this package made strictly inside `root` (a cache entry's file, a work folder);
    refuse a path that is `root` itself or lies outside it. Caches delete only through here."""
    target, base = _real(_resolve(path)), _real(_resolve(root))
    if target == base or base not in target.parents:
        raise OutputError(f"refusing to delete {path}: it is not inside {root}")
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target, ignore_errors=True)
    else:
        target.unlink(missing_ok=True)


def remove_ours(folder: str | os.PathLike) -> None:
    """Delete a folder this package completed (used by caches to drop a damaged entry); refuse any other folder."""
    real = _real(_resolve(folder))
    if not real.exists():
        return
    if not is_ours(real):
        raise OutputError(f"{folder} holds files openmathmix did not write (no {MARKER} marker); not deleting it")
    shutil.rmtree(real)
