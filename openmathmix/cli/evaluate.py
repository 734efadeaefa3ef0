"""`openmathmix evaluate`: compare selection strategies at equal size on a scored pool.

    openmathmix evaluate --in work/scored --out work/eval                       # coverage, quality, duplicates
    openmathmix evaluate --in release/omm --out work/eval --train \\
        --benchmark data/gsm8k_test.jsonl --benchmark HuggingFaceH4/MATH-500     # plus a proxy fine-tune per run

Output folder (``--out``, written beside and swapped in when complete): ``evaluation.json`` (every run, the
summary over seeds, the verdict), ``evaluation.md`` (the table for a dataset card) and ``evaluation.png``.
Finished runs are cached, so an interrupted evaluation continues where it stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from ..select.strategies import STRATEGIES
from ..settings import EvaluateSettings

RESULT_JSON = "evaluation.json"
RESULT_MD = "evaluation.md"
RESULT_PNG = "evaluation.png"
DEFAULTS = EvaluateSettings()


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="compare selection strategies at equal size (coverage, quality; --train: a proxy fine-tune)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--in", dest="inp", required=True, type=Path,
                   help="scored pool: a save_to_disk folder, or a release folder built with --keep-embedding")
    p.add_argument("--out", required=True, type=Path, help="folder for evaluation.json / .md / .png")
    p.add_argument("--split", default=None, help="split to use when --in holds a DatasetDict")
    p.add_argument("--budget", type=float, default=DEFAULTS.budget, help="share of the pool each strategy picks")
    p.add_argument("--strategies", nargs="+", choices=tuple(STRATEGIES), default=list(DEFAULTS.strategies))
    p.add_argument("--seeds", nargs="+", type=int, default=list(DEFAULTS.seeds), help="at least two")
    p.add_argument("--scope", choices=("source", "pool"), default=DEFAULTS.scope,
                   help="source: per-source orders and equal counts per source (as `select`); pool: one order")
    p.add_argument("--init-size", type=int, default=DEFAULTS.init_size, help="|s0| of qads and kcenter per scope")
    p.add_argument("--train", action="store_true", help="fine-tune the proxy model on each subset and score it")
    p.add_argument("--benchmark", action="append", default=[], metavar="FILE_OR_HUB_ID",
                   help="benchmark items: a JSONL/JSON/Parquet/CSV file or org/name[:config][@split] (repeatable)")
    p.add_argument("--benchmark-limit", type=int, default=DEFAULTS.benchmark_limit,
                   help="first N items of each benchmark (0: all)")
    p.add_argument("--model", default=None, help="proxy model (default: the embedded SmolLM2-135M-Instruct)")
    p.add_argument("--device", default=None, help="cpu, cuda (default: cuda when available)")
    p.add_argument("--epochs", type=float, default=DEFAULTS.epochs)
    p.add_argument("--max-steps", type=int, default=None, help="fixed optimizer steps instead of --epochs")
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    p.add_argument("--learning-rate", type=float, default=DEFAULTS.learning_rate)
    p.add_argument("--max-length", type=int, default=DEFAULTS.max_length, help="tokens per training row")
    p.add_argument("--lora", action="store_true", help="train LoRA adapters (peft) instead of every weight")
    p.add_argument("--accuracy", choices=("auto", "on", "off"), default=DEFAULTS.accuracy,
                   help="greedy-decoding accuracy with math-verify (auto: on a GPU only)")
    p.add_argument("--dtype", choices=("auto", "float32", "bfloat16"), default=DEFAULTS.dtype)
    p.add_argument("--cache-dir", default=None, help="where finished runs are kept (default: the openmathmix cache)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier evaluation in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluate import evaluate, evaluation_markdown, load_benchmark, load_pool, write_figure
    from ..outputs import output_folder

    settings = dataclasses.replace(
        DEFAULTS, budget=args.budget, strategies=tuple(args.strategies), seeds=tuple(args.seeds), scope=args.scope,
        init_size=args.init_size, model=args.model, epochs=args.epochs, max_steps=args.max_steps,
        batch_size=args.batch_size, learning_rate=args.learning_rate, max_length=args.max_length, lora=args.lora,
        accuracy=args.accuracy, dtype=args.dtype, benchmark_limit=args.benchmark_limit or None,
    )
    local = [b for b in args.benchmark if Path(b).exists()]
    with output_folder(args.out, inputs=[args.inp, *local], overwrite=args.overwrite) as tmp:
        pool = load_pool(args.inp, args.split)
        benchmarks = [load_benchmark(spec, settings.benchmark_limit) for spec in args.benchmark]
        result = evaluate(pool, settings=settings, benchmarks=benchmarks, train=args.train, device=args.device,
                          cache_dir=args.cache_dir, progress=not args.quiet)
        (tmp / RESULT_JSON).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        markdown = evaluation_markdown(result)
        (tmp / RESULT_MD).write_text("# Selection report\n\n" + markdown, encoding="utf-8")
        write_figure(result, tmp / RESULT_PNG)
    print(markdown, end="")
    if result["runs_reused"]:
        print(f"({result['runs_reused']} run(s) reused from the cache)", file=sys.stderr)
    print(f"wrote {args.out / RESULT_JSON}, {RESULT_MD} and {RESULT_PNG}")
    return 0
