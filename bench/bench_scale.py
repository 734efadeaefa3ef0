"""Scale: the whole pipeline on synthetic rows at growing sizes, with a tiny random-weight model, on the CPU.

Steps, each through the public functions a build uses:
  sources  `sources.build_source` over synthetic JSONL files of four sources (gsm8k_screl, metamathqa, mmiqc:
           reasoning; alpaca: general), concatenated;
  embed    `EmbedStage` (a 2-layer Llama, hidden 64, random weights, the embedded model's tokenizer) over every row;
  quality  `compute_quality`: n1 prompt samples per source scored one-shot against n2 tests (fixed work);
  scorer   `train_scorer(kind="light")` on the scored sample (fixed work);
  score    `ScoreStage` over every row;
  select   `select_mixture` with a preset that keeps a fixed count per source (QaDS, a CPU-sized budget: its cost
           grows with n, not n x ratio; bench/bench_kcenter.py measures selection speed);
  write    the kept rows to parquet.
embed, quality and score run on the local engine (`stages.base.run_stage`), or with `--ray-rows` also on the Ray
engine (`engines.ray.run_stage_ray`, a local Ray cluster on this machine's CPUs); the other steps are the same code
in both runs. Every run starts from an empty
cache. Seconds and the peak resident memory of this process during each step (Linux VmHWM, reset before each
step; for the Ray engine the actors' peak is given too) go in one table per size.

    nice .venv/bin/python bench/bench_scale.py                          # 10K, 100K, 1M local + 100K on Ray
    .venv/bin/python bench/bench_scale.py --rows 2000,20000 --ray-rows 20000   # a quick check

The last line is `RESULT bench=scale rows=N slowest_step=S growth_per_row=G ray_overhead=R worst_growth_step=W`:
S is the step that takes longest at the largest size N; G is the largest growth of time per row from the second
largest size to N among steps taking >= 5 % of the time at N (W names it; goal <= 1.2); R is the Ray run's total
time over the local run's at the Ray size (goal <= 1.3).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SOURCES = {  # name -> (question key, answer key, other fields of the native format)
    "gsm8k_screl": ("query", "response", {}),
    "metamathqa": ("query", "response", {}),
    "mmiqc": ("instruction", "output", {}),
    "alpaca": ("instruction", "output", {"input": ""}),
}
WORDS = [
    "the", "a", "of", "to", "and", "is", "in", "that", "for", "it", "with", "as", "on", "be", "by", "this", "are",
    "from", "at", "or", "an", "which", "number", "total", "each", "so", "we", "find", "then", "solve", "equal",
    "sum", "times", "minus", "plus", "divide", "answer", "step", "value", "how", "many", "apples", "train",
    "speed", "hours", "price", "cost", "left", "more", "less", "than", "twice", "half", "2", "3", "5", "7", "10",
    "12", "15", "20", "24", "36", "48", "60", "100", "1000", "x", "y", "n"
]
STEPS = ("sources", "embed", "quality", "scorer", "score", "select", "write")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", default="10000,100000,1000000", help="comma-separated pool sizes (local engine)")
    p.add_argument("--ray-rows", type=int, default=100000, help="pool size of the Ray engine run (0: none)")
    p.add_argument("--keep", type=int, default=500, help="rows kept per source by QaDS")
    p.add_argument("--n1", type=int, default=8, help="prompt samples per source for the quality step")
    p.add_argument("--n2", type=int, default=8, help="test samples for the quality step")
    p.add_argument("--token-budget", type=int, default=8192, help="embedding tokens per forward (build default)")
    p.add_argument("--work-dir", default=None, help="scratch folder (default: a temporary folder, removed)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads, here and in the Ray actor (default 1: on a shared 2-vCPU machine two "
                        "threads ran the tiny model 4-5x slower than one, spinning against other processes)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


# ----- inputs --------------------------------------------------------------------------------------------------------


def write_sources(folder: Path, rows: int, seed: int) -> dict[str, list[str]]:
    """One JSONL file per source with rows // 4 synthetic rows (questions 5-25 words, answers 10-50 words)."""
    rng = np.random.default_rng(seed)
    words = np.array(WORDS)
    files = {}
    per = rows // len(SOURCES)
    for s, (name, (qk, ak, other)) in enumerate(SOURCES.items()):
        n = per + (1 if s < rows % len(SOURCES) else 0)
        q_len, a_len = rng.integers(5, 26, n), rng.integers(10, 51, n)
        picks = rng.integers(0, len(words), int(q_len.sum() + a_len.sum()))
        at = 0
        path = folder / f"{name}.jsonl"
        with path.open("w") as f:
            for i in range(n):
                q = " ".join(words[picks[at:at + q_len[i]]])
                at += q_len[i]
                a = " ".join(words[picks[at:at + a_len[i]]])
                at += a_len[i]
                f.write(json.dumps({qk: f"{name} {i}: {q}?", ak: f"{a}. The answer is {i % 97}.", **other}) + "\n")
        files[name] = [str(path)]
    return files


def tiny_model(folder: Path) -> str:
    """A 2-layer Llama with hidden size 64 and random weights (seed 0), with the embedded model's tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from openmathmix.models import load_tokenizer, resolve

    tok = load_tokenizer(resolve())
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def preset(keep: int, seed: int):
    from openmathmix.select.mixture import parse_preset

    return parse_preset({"name": "scale-bench", "seed": seed, "init_size": 10,
                         "sources": {name: {"policy": "select", "count": keep} for name in SOURCES}})


# ----- measuring -----------------------------------------------------------------------------------------------------


def _peak_rss_mib() -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024


@contextmanager
def measured(table: dict, step: str):
    """Seconds and peak RSS (MiB) of this process during the step; the peak is reset first (Linux clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")
    start = time.perf_counter()
    extra: dict = {}
    yield extra
    table[step] = {"seconds": time.perf_counter() - start, "rss_mib": _peak_rss_mib(), **extra}
    print(f"  {step:8s} {table[step]['seconds']:9.1f} s  peak RSS {table[step]['rss_mib']:7.0f} MiB"
          + (f"  (Ray actors {extra['worker_rss_mib']:.0f} MiB)" if "worker_rss_mib" in extra else ""), flush=True)


def run_pipeline(rows: int, engine: str, args, work: Path, model: str) -> dict:
    import datasets

    from openmathmix.outputs import remove_within
    from openmathmix.select.mixture import select_mixture
    from openmathmix.sources import build_source
    from openmathmix.stages.base import run_stage
    from openmathmix.stages.embed import EmbedStage
    from openmathmix.stages.quality import compute_quality
    from openmathmix.stages.scorer import ScoreStage, train_scorer

    run = work / f"{engine}-{rows}"
    if run.exists():
        remove_within(run, work)  # only the folder this benchmark made inside --work-dir
    (run / "inputs").mkdir(parents=True)
    cache = run / "cache"
    files = write_sources(run / "inputs", rows, args.seed)
    print(f"{rows:,} rows, {engine} engine", flush=True)

    def model_stage(ds, stage, extra: dict):
        if engine == "ray":
            from openmathmix.engines.ray import run_stage_ray

            out = run_stage_ray(ds, stage, cache / "ray" / stage.name, actors=1, cpus_per_actor=args.threads,
                                progress=False)
            extra["worker_rss_mib"] = stage.report.worker_peak_rss_mib
            return out
        return run_stage(ds, stage, cache_dir=cache, device="cpu", progress=False)

    table: dict = {}
    with measured(table, "sources"):
        parts = [build_source(name, paths, cache_dir=cache / "sources", progress=False)[0]
                 for name, paths in files.items()]
        pool = datasets.concatenate_datasets(parts)
    with measured(table, "embed") as extra:
        pool = model_stage(pool, EmbedStage(model, dtype="float32", token_budget=args.token_budget), extra)
    with measured(table, "quality"):
        scored = compute_quality(pool, n1=args.n1, n2=args.n2, test_sources=["gsm8k_screl"], model=model,
                                 device="cpu", dtype="float32", seed=args.seed, max_test_tokens=128,
                                 max_example_tokens=128, cache_dir=str(cache), progress=False, engine=engine)
    with measured(table, "scorer"):
        train_scorer(scored, run / "scorer", kind="light", hidden=32, epochs=20, heldout=0.25, seed=args.seed)
    with measured(table, "score") as extra:
        pool = model_stage(pool, ScoreStage(run / "scorer"), extra)
    with measured(table, "select"):
        mixture, report = select_mixture(pool, preset(args.keep, args.seed), device="cpu")
    with measured(table, "write"):
        mixture.to_parquet(str(run / "mixture.parquet"))
    assert len(mixture) == report.total_kept == min(args.keep, rows // len(SOURCES)) * len(SOURCES)
    remove_within(run, work)
    return table


def print_table(results: dict[tuple[str, int], dict]) -> None:
    runs = list(results)
    head = "| step | " + " | ".join(f"{engine} {rows:,}: s / MiB" for engine, rows in runs) + " |"
    print("\n" + head + "\n|" + "---|" * (len(runs) + 1))
    for step in STEPS:
        cells = []
        for run in runs:
            row = results[run][step]
            cell = f"{row['seconds']:.1f} / {row['rss_mib']:.0f}"
            if "worker_rss_mib" in row:
                cell += f" (actors {row['worker_rss_mib']:.0f})"
            cells.append(cell)
        print(f"| {step} | " + " | ".join(cells) + " |")
    totals = [sum(results[run][s]["seconds"] for s in STEPS) for run in runs]
    print("| total s | " + " | ".join(f"{t:.1f}" for t in totals) + " |")


def main(argv=None) -> int:
    args = parse_args(argv)
    import datasets
    import torch

    datasets.disable_progress_bars()
    torch.set_num_threads(args.threads)
    sizes = sorted(int(x) for x in args.rows.split(","))
    if args.ray_rows and args.ray_rows not in sizes:
        raise SystemExit(f"--ray-rows {args.ray_rows} must be one of --rows {sizes} (its local run is the reference)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; sizes {sizes}, "
          f"Ray at {args.ray_rows or 'none'}; keep {args.keep} per source", flush=True)
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="omm-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        model = tiny_model(work / "model")
        results = {}
        for rows in sizes:
            results[("local", rows)] = run_pipeline(rows, "local", args, work, model)
        if args.ray_rows:
            from openmathmix.engines.ray import init_ray

            init_ray(num_cpus=os.cpu_count())
            results[("ray", args.ray_rows)] = run_pipeline(args.ray_rows, "ray", args, work, model)
    finally:
        if not args.work_dir:  # the temporary folder this run made
            shutil.rmtree(work, ignore_errors=True)
    print_table(results)

    big, ref = sizes[-1], sizes[-2] if len(sizes) > 1 else sizes[-1]
    at_big = results[("local", big)]
    total_big = sum(at_big[s]["seconds"] for s in STEPS)
    growth = {s: (at_big[s]["seconds"] / big) / (results[("local", ref)][s]["seconds"] / ref) for s in STEPS}
    print("\ntime per row, " + f"{big:,} over {ref:,}: " + ", ".join(f"{s} {g:.2f}" for s, g in growth.items()))
    slowest = max(STEPS, key=lambda s: at_big[s]["seconds"])
    heavy = [s for s in STEPS if at_big[s]["seconds"] >= 0.05 * total_big]
    worst = max(heavy, key=lambda s: growth[s])
    ray_overhead = float("nan")
    if args.ray_rows:
        local_total = sum(results[("local", args.ray_rows)][s]["seconds"] for s in STEPS)
        ray_total = sum(results[("ray", args.ray_rows)][s]["seconds"] for s in STEPS)
        ray_overhead = ray_total / local_total
        stages = {s: results[("ray", args.ray_rows)][s]["seconds"] / results[("local", args.ray_rows)][s]["seconds"]
                  for s in ("embed", "score")}
        print(f"Ray / local at {args.ray_rows:,}: whole pipeline {ray_overhead:.2f}, "
              + ", ".join(f"{s} {r:.2f}" for s, r in stages.items()))
    print(f"RESULT bench=scale rows={big} slowest_step={slowest} growth_per_row={growth[worst]:.2f} "
          f"ray_overhead={ray_overhead:.2f} worst_growth_step={worst}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    sys.exit(main())
