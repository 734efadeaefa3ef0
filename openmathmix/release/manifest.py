"""`manifest.json`: what a release holds (settings, versions, row counts, sha256 of every file), and its checks."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import PublishError
from ..outputs import MARKER

__all__ = ["DEFAULT_CONFIG", "MANIFEST", "POOL_CONFIG", "README", "build_manifest", "composition_table", "load_manifest", "release_files",
           "sha256_file", "validate_release"]

MANIFEST = "manifest.json"
README = "README.md"
FORMAT = "openmathmix-release"
FORMAT_VERSION = 2  # 2: `messages` in every config, the `pool` config, per-config columns
DEFAULT_CONFIG = "default"
POOL_CONFIG = "pool"
GITATTRIBUTES = ".gitattributes"  # the Hub writes it into every repository
HUB_LOCAL_DIR_CACHE = ".cache/huggingface/"  # what `hf download --local-dir` keeps beside the files it downloads
PROGRESS_BYTES = 256 * 1024**2  # releases from this size show a progress bar while their files are checked
LIBRARIES = ("datasets", "huggingface_hub", "pyarrow", "numpy", "torch", "transformers", "matplotlib", "jinja2")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def sha256_file(path: Path, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def build_manifest(summary, settings, scorer_report, rows, root: Path) -> dict[str, Any]:
    """The manifest of the release folder `root` (every file but the manifest itself already written)."""
    files = {}
    for path in release_files(root):
        rel = path.relative_to(root).as_posix()
        if rel != MANIFEST:
            files[rel] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    configs = {}
    for c in summary.configs:
        entry = {
            "rows": c.rows,
            "data_dir": c.data_dir,
            "files": sorted(f for f in files if f.startswith(c.data_dir + "/")),
            "rows_per_source": c.per_source,
            "columns": list(c.features),
        }
        if c.kept_rows is not None:
            entry["rows_kept"] = c.kept_rows
        configs[c.name] = entry
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": summary.pretty_name,
        "version": summary.version,
        "repo_id": summary.repo_id,
        "package": {"name": "openmathmix", "version": _version("openmathmix")},
        "libraries": {"python": platform.python_version(), **{lib: _version(lib) for lib in LIBRARIES}},
        "settings": settings,
        "models": settings.get("models"),
        "scorer": scorer_report,
        "columns": [c["name"] for c in summary.columns],
        "embedding_kept": summary.embedding_kept,
        "sources": [s.name for s in summary.sources],
        "licenses": {s.name: list(s.licenses) for s in summary.sources},
        "composition": rows,
        "card_sections": [section.title for section in summary.sections],
        "figures": [fig["path"] for fig in summary.figures],
        "configs": configs,
        "files": files,
    }


def release_files(root: str | os.PathLike) -> list[Path]:
    """The files a release is made of, sorted: every file but hidden ones (the marker, `.gitattributes`, caches)."""
    root = Path(root)
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def _expected_extra(rel: str) -> bool:
    """Files a release folder may hold beside its manifest's files: bookkeeping of openmathmix and of the Hub."""
    return rel in (MANIFEST, MARKER, GITATTRIBUTES) or rel.startswith(HUB_LOCAL_DIR_CACHE)


def composition_table(manifest: Mapping[str, Any]) -> str:
    """The manifest's per-source composition as a markdown table (rows available / kept / per subset)."""
    subsets = [name for name in manifest.get("configs", {}) if name not in (DEFAULT_CONFIG, POOL_CONFIG)]
    head = ["source", "task", "policy", "available", "kept", "ratio", "mean score", "mean score kept", *subsets]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 3 + "---:|" * (len(head) - 3)]

    def num(x):
        return "" if x is None else f"{x:,}"

    def score(x):
        return "" if x is None else f"{x:.2f}"

    for r in manifest.get("composition", []):
        cells = [r["source"], r.get("task") or "", r.get("policy") or "", num(r.get("available")), num(r.get("kept")),
                 "" if r.get("ratio") is None else f"{r['ratio']:.3f}", score(r.get("mean_quality")),
                 score(r.get("mean_quality_kept")), *(num((r.get("subsets") or {}).get(s)) for s in subsets)]
        lines.append("| " + " | ".join(cells) + " |")
    rows = manifest.get("composition", [])
    total = ["**total**", "", "", num(sum(r.get("available") or 0 for r in rows)),
             num(sum(r.get("kept") or 0 for r in rows)), "", "", "",
             *(num(manifest["configs"][s]["rows"]) for s in subsets)]
    lines.append("| " + " | ".join(total) + " |")
    return "\n".join(lines) + "\n"


def load_manifest(release_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(release_dir) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PublishError(
            f"{release_dir} has no {MANIFEST}: not a release folder written by `openmathmix build`"
        ) from None
    except json.JSONDecodeError as err:
        raise PublishError(f"{path} is not valid JSON ({err}); rebuild the release") from None


def validate_release(release_dir: str | os.PathLike) -> dict[str, Any]:
    """Check a release folder before it is shown or published; return its manifest.

    Checks: the folder exists; `README.md` parses and has `configs:` whose `data_files` match files; `manifest.json`
    is present; every file it lists exists with the recorded size and sha256; no other file is there (besides the
    output marker, the Hub's `.gitattributes` and huggingface_hub's download cache `.cache/huggingface/`).
    Raises `PublishError` naming the first file that fails and what to do.
    """
    from huggingface_hub import DatasetCard

    root = Path(release_dir)
    if not root.is_dir():
        raise PublishError(f"release folder {root} does not exist; build one with `openmathmix build --out {root}`")
    manifest = load_manifest(root)
    listed = manifest.get("files")
    if not isinstance(listed, dict) or README not in listed:
        raise PublishError(f"{root / MANIFEST} lists no files (or not {README}); rebuild the release")
    on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    stray = [rel for rel in on_disk if rel not in listed and not _expected_extra(rel)]
    if stray:
        shown = ", ".join(stray[:5]) + (f" and {len(stray) - 5} more" if len(stray) > 5 else "")
        raise PublishError(
            f"{root} holds {len(stray)} file(s) that {MANIFEST} does not list: {shown}. A stray parquet file under "
            "data/ would be loaded with the release's rows; remove these files or rebuild the release"
        )
    _check_files(root, listed)
    try:
        card = DatasetCard.load(root / README)
    except ValueError as err:  # huggingface_hub raises ValueError for a broken YAML header
        raise PublishError(f"{root / README} has no valid metadata header ({err}); rebuild the release") from None
    configs = card.data.to_dict().get("configs")
    if not configs:
        raise PublishError(f"{root / README} declares no `configs:`; `load_dataset` would not find the data files")
    for cfg in configs:
        patterns = cfg.get("data_files") or []
        for item in patterns if isinstance(patterns, list) else [patterns]:
            paths = item["path"] if isinstance(item, dict) else item
            for pattern in [paths] if isinstance(paths, str) else paths:
                if not list(root.glob(pattern)):
                    raise PublishError(
                        f"config {cfg.get('config_name')!r} of {root / README} points at {pattern!r}, "
                        "which matches no file; rebuild the release"
                    )
    return manifest


def _check_files(root: Path, listed: Mapping[str, Mapping[str, Any]]) -> None:
    """Every listed file exists with its recorded size and sha256 (a progress bar for large releases)."""
    from tqdm.auto import tqdm

    total = sum(int(meta.get("bytes") or 0) for meta in listed.values())
    with tqdm(total=total, unit="B", unit_scale=True, desc="checking sha256", disable=total < PROGRESS_BYTES,
              leave=False) as bar:
        for rel, meta in listed.items():
            path = root / rel
            if not path.is_file():
                raise PublishError(f"{rel} is listed in {MANIFEST} but missing from {root}; restore it or rebuild "
                                   "the release")
            size = path.stat().st_size
            if size != meta.get("bytes"):
                raise PublishError(f"{rel} in {root} has {size:,} bytes, {MANIFEST} says {meta.get('bytes'):,}: the "
                                   "file changed after the build. Restore it or rebuild the release")
            if sha256_file(path) != meta.get("sha256"):
                raise PublishError(f"{rel} in {root} does not match its sha256 in {MANIFEST} (same size, different "
                                   "bytes): the file was changed or damaged after the build. Restore it or rebuild "
                                   "the release")
            bar.update(size)
