"""Model stages on the command line: `embed`, `preexperience`, `quality`, `scorer train`, `score`.

Every command reads a `save_to_disk` folder and writes one. Shared options come from small helpers, so a new
command is one `_add_<name>(sub)` that builds its parser and one `_run_<name>(args)` handler:

- `add_io_args(p, out_help)`: --in, --out, --split;
- `add_model_args(p)`: --model, --revision, --device, --dtype, --threads;
- `add_run_args(p)`: --cache-dir, --worker I/M, --batch-rows, --shard-rows (for stages run with `run_stage`);
- `load_input(args)`, `save_output(ds, args)`, `parse_worker(text)`, `apply_threads(args)`, `print_report(report)`.
Heavy imports (torch, transformers, datasets) happen inside the handlers, so `openmathmix --help` stays fast.
"""

from __future__ import annotations

import argparse
import time

from ..errors import OpenMathMixError


def register(subparsers) -> None:
    _add_embed(subparsers)
    _add_preexperience(subparsers)
    _add_quality(subparsers)
    _add_scorer(subparsers)
    _add_score(subparsers)


# ----- shared arguments and helpers --------------------------------------------------------------------------------


def add_io_args(parser: argparse.ArgumentParser, out_help: str = "output folder (Dataset.save_to_disk)") -> None:
    parser.add_argument("--in", dest="input", required=True, metavar="DIR",
                        help="input folder written by Dataset.save_to_disk (or a DatasetDict folder with --split)")
    parser.add_argument("--out", required=True, metavar="DIR", help=out_help)
    parser.add_argument("--split", default=None, help="split to read when --in holds a DatasetDict")


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None,
                        help="Hub id, local model folder or embedded alias (default: embedded SmolLM2-135M-Instruct)")
    parser.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit) of --model")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda or cuda:N (default: every visible GPU, else the CPU)")
    parser.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"),
                        help="model dtype; auto = bf16 on bf16-capable GPUs and CPUs (AMX, AVX512-BF16), else fp32 (default: auto)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads for torch (default: torch's choice, one per core). On a CPU other jobs "
                             "keep busy, use fewer: oversubscribed OpenMP threads can be several times slower")


def add_run_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", default=None, metavar="DIR",
                        help="where finished shards are kept for resuming (default: $OPENMATHMIX_CACHE or "
                             "~/.cache/openmathmix)")
    parser.add_argument("--worker", type=parse_worker, default=None, metavar="I/M",
                        help="this machine computes shards I, I+M, ... of a run shared by M machines through "
                             "--cache-dir; the output is written by a call that finds every shard done")
    parser.add_argument("--batch-rows", type=int, default=1024, metavar="N",
                        help="rows handed to the stage at once (rows are length-sorted within them; default 1024)")
    parser.add_argument("--shard-rows", type=int, default=8192, metavar="N",
                        help="rows per resumable shard (default 8192)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def parse_worker(text: str) -> tuple[int, int]:
    try:
        i, m = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/M such as 0/4, got {text!r}") from None
    if not 0 <= i < m:
        raise argparse.ArgumentTypeError(f"worker I/M needs 0 <= I < M, got {text!r}")
    return i, m


def apply_threads(args) -> None:
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)


def load_input(args):
    from datasets import Dataset, DatasetDict, load_from_disk

    try:
        ds = load_from_disk(args.input)
    except FileNotFoundError as err:
        raise OpenMathMixError(f"--in {args.input}: not a folder written by save_to_disk ({err})") from err
    if isinstance(ds, DatasetDict):
        split = args.split or (next(iter(ds)) if len(ds) == 1 else None)
        if split not in ds:
            raise OpenMathMixError(f"--in {args.input} holds splits {list(ds)}; pick one with --split")
        ds = ds[split]
    if not isinstance(ds, Dataset):
        raise OpenMathMixError(f"--in {args.input} did not load as a Dataset")
    return ds


def save_output(ds, args) -> None:
    import contextlib

    from ..stages.base import progress_bars_off

    quiet = progress_bars_off() if getattr(args, "quiet", False) else contextlib.nullcontext()
    try:
        with quiet:
            ds.save_to_disk(args.out)
    except PermissionError as err:  # datasets refuses to overwrite the files it is reading
        raise OpenMathMixError(f"cannot write --out {args.out}: {err}; choose another folder") from err


def print_report(report, what: str = "rows") -> None:
    """One line per fact: rows, counters, throughput of the shards computed by this call."""
    totals, computed = report.totals, report.computed
    print(f"{report.stage}: {report.rows} {what}, {report.shards} shard(s): "
          f"{report.shards_computed} computed, {report.shards_reused} reused from {report.folder}")
    if "truncated" in totals:
        print(f"{report.stage}: {int(totals['truncated'])} row(s) truncated to the length limit")
    if report.shards_computed and computed.get("tokens") and report.seconds > 0:
        tokens = computed["tokens"]
        pad = 1 - tokens / computed["padded_tokens"] if computed.get("padded_tokens") else 0.0
        forward = computed.get("forward_seconds", 0.0)
        in_forward = f", {tokens / forward:.0f} tokens/s per device in forward passes" if forward > 0 else ""
        print(f"{report.stage}: {int(tokens)} tokens in {report.seconds:.1f} s = {tokens / report.seconds:.0f} "
              f"tokens/s overall (model loading included){in_forward}, padding {100 * pad:.1f}%")


# ----- embed ---------------------------------------------------------------------------------------------------------


def _add_embed(sub) -> None:
    p = sub.add_parser("embed", help="add the `embedding` column (mean-pooled last hidden state)",
                       description="Add `embedding`: the mean-pooled last hidden state of 'Question: ...\\nAnswer: "
                                   "...' from a headless model, in length-sorted token-budget batches.")
    add_io_args(p)
    add_model_args(p)
    from ..stages.embed import CPU_TOKEN_BUDGET, GPU_TOKEN_BUDGET  # light module: torch loads in setup()

    p.add_argument("--token-budget", type=int, default=None, metavar="N",
                   help=f"padded tokens per forward batch (default {CPU_TOKEN_BUDGET} on the CPU, "
                        f"{GPU_TOKEN_BUDGET} on a GPU)")
    p.add_argument("--max-length", type=int, default=None, metavar="N",
                   help="tokens kept per row (default: the model's limit); longer rows are cut and counted")
    p.add_argument("--project-dim", type=int, default=None, metavar="N",
                   help="store a seeded Gaussian random projection to N dimensions instead of the hidden size")
    p.add_argument("--project-seed", type=int, default=0, metavar="S", help="seed of the projection (default 0)")
    add_run_args(p)
    p.set_defaults(func=_run_embed)


def _run_embed(args) -> int:
    from ..stages.base import run_stage
    from ..stages.embed import EmbedStage

    apply_threads(args)
    ds = load_input(args)
    stage = EmbedStage(args.model, args.revision, dtype=args.dtype, token_budget=args.token_budget,
                       max_length=args.max_length, project_dim=args.project_dim, project_seed=args.project_seed)
    out = run_stage(ds, stage, cache_dir=args.cache_dir, batch_size=args.batch_rows, shard_rows=args.shard_rows,
                    device=args.device, worker=args.worker, progress=not args.quiet)
    print_report(stage.report)
    if out is None:
        print(f"embed: shards of other workers are still missing; run again once they finish to write {args.out}")
        return 0
    save_output(out, args)
    print(f"embed: wrote {len(out)} rows with {stage.dim()}-d embeddings to {args.out}")
    return 0


# ----- preexperience -----------------------------------------------------------------------------------------------


def _add_preexperience(sub) -> None:
    from ..stages.preexperience import PreexperienceSettings

    d = PreexperienceSettings()
    p = sub.add_parser("preexperience", help="briefly fine-tune the embedding model on a seeded subset",
                       description="Fine-tune the embedding model for a few steps (causal LM loss on answers) on a "
                                   "seeded random subset and save it; pass the folder to `embed --model`.")
    add_io_args(p, out_help="folder for the fine-tuned model")
    add_model_args(p)
    p.add_argument("--rows", type=int, default=d.rows, help=f"rows in the random subset (default {d.rows})")
    p.add_argument("--steps", type=int, default=d.steps, help=f"optimiser steps (default {d.steps})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"rows per step (default {d.batch_size})")
    p.add_argument("--lr", type=float, default=d.learning_rate, help=f"learning rate (default {d.learning_rate})")
    p.add_argument("--max-length", type=int, default=d.max_length, help=f"tokens per row (default {d.max_length})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"subset, order and optimiser seed (default {d.seed})")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run_preexperience)


def _run_preexperience(args) -> int:
    from ..stages.preexperience import PreexperienceSettings, preexperience

    apply_threads(args)
    if args.dtype not in ("auto", "float32"):
        print("preexperience: trains float32 weights (bf16 autocast on capable GPUs); --dtype is ignored")
    ds = load_input(args)
    settings = PreexperienceSettings(rows=args.rows, steps=args.steps, batch_size=args.batch_size,
                                     learning_rate=args.lr, max_length=args.max_length, seed=args.seed)
    start = time.perf_counter()
    path = preexperience(ds, args.out, model=args.model, revision=args.revision, settings=settings,
                         device=args.device, progress=not args.quiet)
    print(f"preexperience: {min(args.rows, len(ds))} rows, {args.steps} steps in {time.perf_counter() - start:.1f} s; "
          f"model saved to {path} (use: openmathmix embed --model {path})")
    return 0


# ----- quality, scorer train, score ----------------------------------------------------------------------------------


def _set_default(parser: argparse.ArgumentParser, dest: str, default, help_text: str) -> None:
    """Change the default and help of an option added by a shared helper (e.g. --batch-rows counts prompt samples)."""
    for action in parser._actions:
        if action.dest == dest:
            action.default = default
            action.help = help_text
            return
    raise KeyError(dest)


def _add_quality(sub) -> None:
    from ..stages.quality import DEFAULT_MAX_EXAMPLE_TOKENS, DEFAULT_MAX_TEST_TOKENS, DEFAULT_N1, DEFAULT_N2

    p = sub.add_parser(
        "quality", help="one-shot quality score (QS, Eq. 1-3) of a per-source sample",
        description="Sample n1 prompt samples per source (Dp), pick n2 test samples (Dt) by K-center Greedy on "
                    "`embedding` from the test sources, and add `qs` (fraction of tests whose answer becomes more "
                    "likely with the prompt sample as a one-shot example) and `oneshot_scores` to Dp. Writes the "
                    "scored sample (one folder per task with --split-by-task) and quality_report.json (sizes, "
                    "speed, Dt with its zero-shot scores).")
    add_io_args(p, out_help="output folder: the scored sample, plus quality_report.json")
    add_model_args(p)
    p.add_argument("--n1", type=int, default=DEFAULT_N1, help=f"prompt samples per source (default {DEFAULT_N1})")
    p.add_argument("--n2", type=int, default=DEFAULT_N2, help=f"test samples (default {DEFAULT_N2})")
    p.add_argument("--test-sources", nargs="+", default=None, metavar="SOURCE",
                   help="sources forming the Dt pool (default: mathinstruct_math when present, else every "
                        "reasoning source)")
    p.add_argument("--test-data", default=None, metavar="DIR",
                   help="a save_to_disk folder used as the Dt pool instead of --test-sources")
    p.add_argument("--prompt-sources", nargs="+", default=None, metavar="SOURCE",
                   help="sources to sample Dp from (default: every source)")
    p.add_argument("--split-by-task", action="store_true",
                   help="score reasoning and general Dp against the same Dt and write one folder per task "
                        "(OUT/reasoning, OUT/general): one scorer is trained on each (Appendix A, large setting)")
    p.add_argument("--test-selection", choices=("kcenter", "random"), default="kcenter",
                   help="how Dt is drawn from its pool (default kcenter, which needs `embedding`)")
    p.add_argument("--pool-size", type=int, default=None, metavar="N",
                   help="draw at most N random pool rows before K-center Greedy (default: the whole pool)")
    p.add_argument("--seed", type=int, default=0, help="seed of Dp, of the pool cut and of Dt's first row (default 0)")
    p.add_argument("--max-test-tokens", type=int, default=DEFAULT_MAX_TEST_TOKENS, metavar="N",
                   help=f"tokens kept per test sample (default {DEFAULT_MAX_TEST_TOKENS})")
    p.add_argument("--max-example-tokens", type=int, default=DEFAULT_MAX_EXAMPLE_TOKENS, metavar="N",
                   help=f"tokens kept per in-context example (default {DEFAULT_MAX_EXAMPLE_TOKENS})")
    p.add_argument("--chunk-rows", type=int, default=None, metavar="N",
                   help="test rows per forward after a cached prefix (default 8 on CPU, 32 on GPU)")
    p.add_argument("--chunk-tokens", type=int, default=None, metavar="N",
                   help="padded test tokens per forward (default 2048 on CPU, 32768 on GPU)")
    add_run_args(p)
    _set_default(p, "batch_rows", 4, "prompt samples handed to the stage at once (default 4)")
    _set_default(p, "shard_rows", 64, "prompt samples per resumable shard (default 64)")
    p.set_defaults(func=_run_quality)


def _run_quality(args) -> int:
    import json
    from pathlib import Path

    from datasets import load_from_disk

    from ..stages.quality import compute_quality

    apply_threads(args)
    ds = load_input(args)
    test_ds = None
    if args.test_data:
        try:
            test_ds = load_from_disk(args.test_data)
        except FileNotFoundError as err:
            raise OpenMathMixError(f"--test-data {args.test_data}: not a save_to_disk folder ({err})") from err
    scored, report = compute_quality(
        ds, n1=args.n1, n2=args.n2, test_sources=args.test_sources, test_ds=test_ds,
        prompt_sources=args.prompt_sources, split_by_task=args.split_by_task, test_selection=args.test_selection,
        pool_size=args.pool_size, model=args.model, revision=args.revision, device=args.device, dtype=args.dtype,
        seed=args.seed, max_test_tokens=args.max_test_tokens, max_example_tokens=args.max_example_tokens,
        chunk_rows=args.chunk_rows, chunk_tokens=args.chunk_tokens, cache_dir=args.cache_dir,
        batch_size=args.batch_rows, shard_rows=args.shard_rows, worker=args.worker, progress=not args.quiet,
        return_report=True,
    )
    print(report.summary())
    if scored is None:
        print(f"quality: shards of other workers are still missing; run again once they finish to write {args.out}")
        return 0
    out = Path(args.out)
    if args.split_by_task:
        for task in sorted(set(scored["task"])):
            part = scored.filter(lambda t, want=task: t == want, input_columns="task")
            args_part = argparse.Namespace(out=str(out / task))
            save_output(part, args_part)
            print(f"quality: {task}: {len(part)} scored rows -> {out / task} "
                  f"(train its scorer: openmathmix scorer train --in {out / task} --out SCORER_DIR)")
    else:
        save_output(scored, args)
        print(f"quality: {len(scored)} scored rows -> {out}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "quality_report.json").write_text(json.dumps(report.to_dict(), indent=2))
    for source, mean in report.mean_qs_per_source.items():
        print(f"quality: mean QS {mean:.3f}  {source}")
    return 0


def _add_scorer(sub) -> None:
    p = sub.add_parser("scorer", help="train a quality scorer on a scored sample",
                       description="Quality scorer commands.")
    scorer_sub = p.add_subparsers(dest="scorer_command", required=True)
    t = scorer_sub.add_parser(
        "train", help="train a scorer (QS binned to labels 1-5) and print its held-out Pearson r",
        description="Bin `qs` into labels 1-5 (equal width: 1 + min(4, floor(5 qs))) and train either a "
                    "sequence classifier on a causal-LM backbone (--kind classifier, transformers Trainer) or a "
                    "small MLP on the frozen `embedding` column (--kind light, CPU friendly). Prints the Pearson "
                    "correlation between the scorer's expected label and the real QS on held-out rows.")
    add_io_args(t, out_help="scorer folder to write (weights + scorer.json)")
    add_model_args(t)
    t.add_argument("--kind", choices=("classifier", "light"), default="classifier",
                   help="classifier (fine-tuned LM, default) or light (MLP on `embedding`)")
    t.add_argument("--epochs", type=float, default=None,
                   help="training epochs (default: 2 for classifier as in the paper, 100 for light)")
    t.add_argument("--lr", type=float, default=None, help="learning rate (default: 2e-5 classifier, 1e-3 light)")
    t.add_argument("--batch-size", type=int, default=None, help="rows per step (default: 8 classifier, 64 light)")
    t.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps (classifier; default 1)")
    t.add_argument("--max-length", type=int, default=512, help="tokens per row (classifier; default 512)")
    t.add_argument("--hidden", type=int, default=256, help="hidden width, 0 = softmax regression (light; default 256)")
    t.add_argument("--heldout", type=float, default=0.1, help="fraction of rows held out for Pearson (default 0.1)")
    t.add_argument("--task", default=None, help="train on the rows of this task only (e.g. reasoning)")
    t.add_argument("--seed", type=int, default=0, help="seed of the split, the initialisation and the order")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.set_defaults(func=_run_scorer_train)


def _run_scorer_train(args) -> int:
    from ..stages.scorer import train_scorer

    apply_threads(args)
    ds = load_input(args)
    common = dict(seed=args.seed, heldout=args.heldout, task=args.task)
    if args.kind == "classifier":
        if args.dtype not in ("auto", "float32"):
            print("scorer train: the classifier trains float32 weights (bf16 autocast on capable GPUs); "
                  "--dtype is ignored")
        kwargs = dict(model=args.model, revision=args.revision, epochs=args.epochs or 2,
                      learning_rate=args.lr or 2e-5, batch_size=args.batch_size or 8, grad_accum=args.grad_accum,
                      max_length=args.max_length, device=args.device, progress=not args.quiet)
    else:
        kwargs = dict(hidden=args.hidden, epochs=int(args.epochs or 100), learning_rate=args.lr or 1e-3,
                      batch_size=args.batch_size or 64)
    result = train_scorer(ds, args.out, kind=args.kind, **common, **kwargs)
    print(result.summary())
    r = "nan" if result.pearson is None else f"{result.pearson:.4f}"
    print(f"scorer train: held-out Pearson r = {r} (n = {result.heldout_rows}); labels {result.label_counts}; "
          f"saved to {result.out_dir}")
    return 0


def _parse_scorers(values: list[str]):
    """`DIR` (every row) or `TASK=DIR` (rows of that task), repeatable."""
    import os

    mapping: dict[str, str] = {}
    for value in values:
        task, sep, path = value.partition("=")
        if not sep or os.path.isdir(value):
            task, path = "*", value
        if task in mapping:
            raise OpenMathMixError(f"--scorer given twice for {'all rows' if task == '*' else 'task ' + task}")
        mapping[task] = path
    return mapping


def _add_score(sub) -> None:
    p = sub.add_parser("score", help="add `quality_score` (expected 1-5 label) to every row with a trained scorer",
                       description="Score every row with a trained scorer: `quality_score` is the expected label "
                                   "(1-5) under the scorer's softmax. Prints the mean score per source.")
    add_io_args(p)
    p.add_argument("--scorer", action="append", required=True, metavar="[TASK=]DIR",
                   help="scorer folder for every row, or TASK=DIR for the rows of one task (repeatable: "
                        "--scorer reasoning=R --scorer general=G)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: every visible GPU, else the CPU)")
    p.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"),
                   help="classifier inference dtype (default auto = bf16 where supported)")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads for torch")
    add_run_args(p)
    _set_default(p, "batch_rows", 256, "rows handed to the scorer at once (default 256)")
    p.set_defaults(func=_run_score)


def _run_score(args) -> int:
    from ..stages.scorer import mean_score_per_source, score_dataset

    apply_threads(args)
    ds = load_input(args)
    out = score_dataset(ds, _parse_scorers(args.scorer), device=args.device, dtype=args.dtype,
                        cache_dir=args.cache_dir, batch_size=args.batch_rows, shard_rows=args.shard_rows,
                        worker=args.worker, progress=not args.quiet)
    if out is None:
        print(f"score: shards of other workers are still missing; run again once they finish to write {args.out}")
        return 0
    save_output(out, args)
    print(f"score: wrote {len(out)} rows with quality_score to {args.out}")
    for source, mean in sorted(mean_score_per_source(out).items(), key=lambda kv: -kv[1]):
        print(f"score: mean {mean:.3f}  {source}")
    return 0
