"""`openmathmix sources`: list the registered sources, or build one into a dataset folder.

  openmathmix sources list
  openmathmix sources build NAME --out DIR [--data-files PATH ...] [--limit N] [--overwrite]

Without --data-files a build downloads the source from the Hugging Face Hub; with them it reads local copies of the
source's published files (paths, globs or folders, read recursively). The folder is written with
``Dataset.save_to_disk``, plus ``build_report.json`` (rows in, rows out, rows dropped by reason, files not read).

--out is checked before anything is read (see :mod:`openmathmix.outputs`): it must not be, or hold, an input, the
home folder or a file-system root, and --overwrite replaces only an earlier output of openmathmix. The new folder is
written beside it and swapped in only when complete, so a failed build leaves the old one as it was.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import SourceError

REPORT_JSON = "build_report.json"


def register(subparsers) -> None:
    p = subparsers.add_parser("sources", help="list the sources or build one", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="sources_command", required=True)

    ls = sub.add_parser("list", help="table of the registered sources (name, task, Hub repo, licence, paper size)")
    ls.set_defaults(func=run_list)

    build = sub.add_parser("build", help="build one source into a dataset folder")
    build.add_argument("name", help="source name, as printed by `openmathmix sources list`")
    build.add_argument("--data-files", nargs="+", action="extend", default=None, metavar="PATH",
                       help="local files, globs or folders in the source's native layout (default: the Hub)")
    build.add_argument("--limit", type=int, default=None, help="read at most N input records")
    build.add_argument("--out", required=True, type=Path, help="output folder (Dataset.save_to_disk)")
    build.add_argument("--overwrite", action="store_true",
                       help="replace an earlier output of openmathmix at --out (never a folder it did not write)")
    build.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    build.set_defaults(func=run_build)


def _size(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n / 1e3:g}K" if n >= 1_000 else str(n)


def run_list(args: argparse.Namespace) -> int:
    from ..schema import TASKS
    from ..sources import list_sources

    sources = sorted(list_sources(), key=lambda s: (TASKS.index(s.task), s.name))
    header = ("name", "task", "hub repo", "license", "paper size")
    rows = [
        (s.name, s.task, s.repo or "(not released)", s.license + (" (NC)" if s.non_commercial else ""),
         _size(s.paper_size))
        for s in sources
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for i, row in enumerate((header, *rows)):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print(f"\n{len(rows)} sources; (NC) = non-commercial terms on all or part of the data")
    return 0


def run_build(args: argparse.Namespace) -> int:
    from ..outputs import check_output, output_folder
    from ..sources import build_source, default_cache_dir, get_source, input_files

    if args.limit is not None and args.limit < 1:
        raise SourceError(f"--limit must be >= 1, got {args.limit}")
    source = get_source(args.name)
    # Listing the inputs reads no data; --out is validated against them (and the source cache the build writes to)
    # before the build reads anything.
    inputs = [*args.data_files, *input_files(source, args.data_files)] if args.data_files else []
    inputs.append(default_cache_dir())
    check_output(args.out, inputs=inputs, overwrite=args.overwrite)
    ds, report = build_source(source, args.data_files, args.limit, progress=args.progress)
    # Only writing happens inside the block: its OSErrors are about --out (a full disk, say), and leave it as it was.
    with output_folder(args.out, inputs=inputs, overwrite=args.overwrite) as tmp:
        ds.save_to_disk(str(tmp))
        (tmp / REPORT_JSON).write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    print(report.summary())
    print(f"wrote {args.out}")
    return 0
