"""`openmathmix select`: run a preset's selection over a scored, embedded dataset folder.

Output folder layout (``--out DIR``):

* the mixture, written by ``Dataset.save_to_disk``, with a ``qads_rank`` column (the position in the strategy's
  order within the source);
* ``composition.json``: the per-source report, the strategy and settings used, the row count of every nested
  subset, and the sources whose requested count exceeded their rows;
* ``composition.md``: the same table in markdown.

The subsets are not stored as rows or ids. ``openmathmix.select.mixture.subset_mask(ds, ratio)`` rebuilds any of them
from ``source`` and ``qads_rank``. ``--out`` is written as a new folder and swapped in only when complete
(``openmathmix.outputs``): an earlier output is replaced only with ``--overwrite``, a folder openmathmix did not
write, or one that holds ``--in``, never.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..select.strategies import STRATEGIES

REPORT_JSON = "composition.json"
REPORT_MD = "composition.md"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "select",
        help="select a mixture according to a preset (QaDS by default, or another --strategy)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--preset", required=True, help="packaged preset name (e.g. openmathmix, demo) or a YAML path")
    p.add_argument("--in", dest="inp", required=True, type=Path, help="dataset folder written by save_to_disk")
    p.add_argument("--out", required=True, type=Path, help="output folder for the mixture and its report")
    p.add_argument("--strategy", choices=tuple(STRATEGIES), default=None,
                   help="order within each source (default: the preset's, qads unless it says otherwise)")
    p.add_argument("--split", default=None, help="split to use when --in holds a DatasetDict")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument(
        "--dtype", default=None, help="embedding storage dtype: float32, bfloat16, float16 (default: the preset's)"
    )
    p.add_argument("--chunk-size", type=int, default=None, help="rows per distance GEMV (memory knob)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier output of openmathmix in --out")
    p.add_argument("--progress", action="store_true", help="show a progress bar per source")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluate.inputs import load_dataset_folder
    from ..outputs import output_folder
    from ..select.kcenter import resolve_device
    from ..select.mixture import load_preset, select_mixture

    with output_folder(args.out, inputs=[args.inp], overwrite=args.overwrite) as tmp:
        preset = load_preset(args.preset)
        ds = load_dataset_folder(args.inp, args.split)
        mixture, report = select_mixture(
            ds, preset, strategy=args.strategy, device=args.device, dtype=args.dtype, chunk_size=args.chunk_size,
            progress=args.progress,
        )
        mixture.save_to_disk(str(tmp))
        payload = report.to_dict() | {"input": str(args.inp), "device": resolve_device(args.device)}
        (tmp / REPORT_JSON).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        (tmp / REPORT_MD).write_text(
            f"# Composition of `{report.preset}` ({report.strategy})\n\n{report.to_markdown()}", encoding="utf-8"
        )
    print(report.to_markdown(notes=False), end="")
    for warning in report.warnings:
        print(f"openmathmix select: warning: {warning}", file=sys.stderr)
    print(f"wrote {report.total_kept:,} of {report.total_available:,} rows to {args.out} (strategy {report.strategy})")
    return 0
