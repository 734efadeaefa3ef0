"""Source builder throughput: `build_source` on real published files against reading the same files with pyarrow.

Default input: the seven FLAN CoT release files in ../shared/realdata/cot (33,443 rows, 10 MB, the largest real set
on disk), built through the `cot` builder: read the TSV, unescape newlines, append the final-answer sentence, drop
blank rows, make ids, write the Arrow file and memory-map it as a `datasets.Dataset`. The baseline is
`pyarrow.csv.read_csv` of the same files with the same parse options and nothing else: the floor for reading them.

    .venv/bin/python bench/bench_sources.py
    .venv/bin/python bench/bench_sources.py --source gsm8k_screl --files ../shared/realdata/gsm8k_screl/train_use.jsonl

For a .jsonl input the baseline is `pyarrow.json.read_json` (compressed inputs such as .jsonl.gz are decompressed
by pyarrow on both sides). Each side runs --repeats times in the same process,
alternating, and the best time of each is kept. The last line is

    RESULT bench=sources rows=N rows_per_s=X ratio_vs_pyarrow=Y

where rows_per_s is output rows per second of our build and ratio_vs_pyarrow = our time / pyarrow's time (1.0 would
mean the mapping and writing cost nothing on top of parsing).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

COT = REPO.parent / "shared" / "realdata" / "cot"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default="cot", help="registered source name (default: cot)")
    p.add_argument("--files", nargs="+", default=None, help="input files (default: the 7 FLAN CoT TSV files)")
    p.add_argument("--repeats", type=int, default=10, help="timed runs of each side; the best is kept")
    return p.parse_args(argv)


def read_with_pyarrow(files: list[Path], columns: tuple[str, ...] | None) -> int:
    from openmathmix.readers import file_kind

    rows = 0
    for f in files:
        if file_kind(f)[0] == ".tsv":
            table = pcsv.read_csv(
                f,
                read_options=pcsv.ReadOptions(column_names=list(columns)),
                parse_options=pcsv.ParseOptions(delimiter="\t", quote_char=False, escape_char=False,
                                                double_quote=False),
                convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(columns, pa.string())),
            )
        else:
            table = pjson.read_json(f)
        rows += table.num_rows
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    from datasets.utils.logging import disable_progress_bar

    from openmathmix.sources import build_source, get_source

    disable_progress_bar()
    source = get_source(args.source)
    files = [Path(f) for f in args.files] if args.files else sorted(COT.glob("*_train.tsv"))
    if not files:
        print(f"no input files: {COT} is absent; pass --files", file=sys.stderr)
        return 2
    size_mb = sum(f.stat().st_size for f in files) / 1e6
    print(f"source {source.name}: {len(files)} file(s), {size_mb:.1f} MB")

    ours, base = [], []
    with tempfile.TemporaryDirectory() as cache:
        for i in range(args.repeats + 1):  # the first round warms caches and imports and is not timed
            t0 = time.perf_counter()
            # a fresh folder each round, so no round pays for replacing the previous round's file
            ds, report = build_source(source.name, files, cache_dir=Path(cache) / str(i), progress=False)
            n_out = len(ds)
            t1 = time.perf_counter()
            n_read = read_with_pyarrow(files, source.tsv_columns)
            t2 = time.perf_counter()
            if i:
                ours.append(t1 - t0)
                base.append(t2 - t1)
            del ds
    best_ours, best_base = min(ours), min(base)
    print(f"rows in {report.rows_in:,}, rows out {n_out:,}, dropped {report.n_dropped:,}; pyarrow read {n_read:,}")
    print(f"ours:    best {best_ours * 1e3:8.1f} ms of {len(ours)}  ({n_out / best_ours:,.0f} rows/s)")
    print(f"pyarrow: best {best_base * 1e3:8.1f} ms of {len(base)}  ({n_read / best_base:,.0f} rows/s)")
    # ratio = our time / pyarrow-only time (lower is better; 1.0 = no cost beyond parsing)
    print(f"RESULT bench=sources rows={n_out} rows_per_s={n_out / best_ours:.0f} "
          f"ratio_vs_pyarrow={best_ours / best_base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
