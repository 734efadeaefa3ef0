"""`openmathmix select`: run a preset's QaDS selection over a scored, embedded dataset folder.

Output folder layout (``--out DIR``):

* the mixture, written by ``Dataset.save_to_disk``, with a ``qads_rank`` column;
* ``composition.json``: the per-source report, the settings used, and the row count of every nested subset;
* ``composition.md``: the same table in markdown.

The subsets are not stored as rows or ids. ``openmathmix.select.mixture.subset_mask(ds, ratio)`` rebuilds any of them
from ``source`` and ``qads_rank``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from ..errors import SelectionError

REPORT_JSON = "composition.json"
REPORT_MD = "composition.md"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "select",
        help="select a mixture with QaDS according to a preset",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--preset", required=True, help="packaged preset name (e.g. openmathmix, demo) or a YAML path")
    p.add_argument("--in", dest="inp", required=True, type=Path, help="dataset folder written by save_to_disk")
    p.add_argument("--out", required=True, type=Path, help="output folder for the mixture and its report")
    p.add_argument("--split", default=None, help="split to use when --in holds a DatasetDict")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument(
        "--dtype", default=None, help="embedding storage dtype: float32, bfloat16, float16 (default: the preset's)"
    )
    p.add_argument("--chunk-size", type=int, default=None, help="rows per distance GEMV (memory knob)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    p.add_argument("--progress", action="store_true", help="show a progress bar per source")
    p.set_defaults(func=run)


def _load(path: Path, split: str | None):
    import datasets

    if not path.is_dir():
        raise SelectionError(f"--in {path} is not a folder written by save_to_disk")
    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        if split is None and len(loaded) == 1:
            return next(iter(loaded.values()))
        if split not in loaded:
            raise SelectionError(f"--in {path} holds splits {list(loaded)}; pick one with --split")
        return loaded[split]
    if split is not None:
        raise SelectionError(f"--in {path} is a single Dataset; drop --split")
    return loaded


def run(args: argparse.Namespace) -> int:
    from ..select.kcenter import resolve_device
    from ..select.mixture import load_preset, select_mixture

    out: Path = args.out
    if out.resolve() == args.inp.resolve():
        raise SelectionError("--out must differ from --in (the input would be overwritten while it is read)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not args.overwrite:
            raise SelectionError(f"--out {out} exists and is not empty; pass --overwrite or choose another folder")
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    preset = load_preset(args.preset)
    ds = _load(args.inp, args.split)
    mixture, report = select_mixture(
        ds, preset, device=args.device, dtype=args.dtype, chunk_size=args.chunk_size, progress=args.progress
    )
    mixture.save_to_disk(str(out))
    payload = report.to_dict() | {"input": str(args.inp), "device": resolve_device(args.device)}
    (out / REPORT_JSON).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    table = report.to_markdown()
    (out / REPORT_MD).write_text(f"# Composition of `{report.preset}`\n\n{table}", encoding="utf-8")
    print(table, end="")
    print(f"wrote {report.total_kept:,} of {report.total_available:,} rows to {out}")
    return 0
