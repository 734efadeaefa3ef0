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

from ..errors import ConfigError, InputNotFoundError
from ..outputs import check_output, output_folder
from .options import add_profile_arg, add_setting_args, settings_from_args


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
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier output of openmathmix in --out (other folders are never replaced)")
    parser.add_argument("--split", default=None, help="split to read when --in holds a DatasetDict")
    add_profile_arg(parser)


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None,
                        help="Hub id, local model folder or embedded alias (default: embedded SmolLM2-135M-Instruct)")
    parser.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit) of --model")
    add_setting_args(parser, {"--device": "run.device", "--dtype": "run.dtype"},
                     choices={"--dtype": ("auto", "float32", "bfloat16", "float16")})
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads for torch (default: torch's choice, one per core). On a CPU other jobs "
                             "keep busy, use fewer: oversubscribed OpenMP threads can be several times slower")


def add_run_args(parser: argparse.ArgumentParser, batch_rows: str, shard_rows: str) -> None:
    """--cache-dir, --worker, --quiet and the batch/shard sizes (settings `batch_rows`/`shard_rows` of a section)."""
    parser.add_argument("--cache-dir", default=None, metavar="DIR",
                        help="where finished shards are kept for resuming (default: $OPENMATHMIX_CACHE or "
                             "~/.cache/openmathmix)")
    parser.add_argument("--worker", type=parse_worker, default=None, metavar="I/M",
                        help="compute only shards I, I+M, ... (M machines on one shared --cache-dir); the output is "
                             "written by a call that finds every shard done. Processes on one machine need no "
                             "--worker: they share the shards through locks")
    add_setting_args(parser, {"--batch-rows": batch_rows, "--shard-rows": shard_rows, "--engine": "run.engine",
                              "--ray-address": "run.ray_address"}, choices={"--engine": ("local", "ray")})
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


def start(args):
    """Check --out before any work, then load --in; return (settings, dataset)."""
    check_output(args.out, inputs=[args.input], overwrite=args.overwrite)
    apply_threads(args)
    return settings_from_args(args), load_input(args)


def load_input(args):
    from datasets import Dataset, DatasetDict, load_from_disk

    try:
        ds = load_from_disk(args.input)
    except FileNotFoundError as err:
        raise InputNotFoundError(f"--in {args.input}: not a folder written by save_to_disk ({err})") from err
    if isinstance(ds, DatasetDict):
        split = args.split or (next(iter(ds)) if len(ds) == 1 else None)
        if split not in ds:
            raise ConfigError(f"--in {args.input} holds splits {list(ds)}; pick one with --split")
        ds = ds[split]
    if not isinstance(ds, Dataset):
        raise ConfigError(f"--in {args.input} did not load as a Dataset")
    return ds


def save_output(parts: dict[str, object], args) -> None:
    """Write `{subfolder: Dataset or JSON-able dict}` ("" = the folder itself) into --out, safely and atomically."""
    import json

    from ..stages.base import progress_bars_off

    with output_folder(args.out, inputs=[args.input], overwrite=args.overwrite) as tmp, progress_bars_off():
        for name, part in parts.items():
            target = tmp / name if name else tmp
            if name.endswith(".json"):
                target.write_text(json.dumps(part, indent=2), encoding="utf-8")
            else:
                part.save_to_disk(str(target))


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
    add_setting_args(p, {"--token-budget": "embed.token_budget", "--project-dim": "embed.project_dim"})
    p.add_argument("--max-length", type=int, default=None, metavar="N",
                   help="tokens kept per row (default: the model's limit); longer rows are cut and counted")
    p.add_argument("--project-seed", type=int, default=0, metavar="S", help="seed of the projection (default 0)")
    add_run_args(p, "embed.batch_rows", "embed.shard_rows")
    p.set_defaults(func=_run_embed)


def _run_embed(args) -> int:
    from ..stages.base import run_stage
    from ..stages.embed import EmbedStage

    settings, ds = start(args)
    e, run = settings.embed, settings.run
    stage = EmbedStage(args.model, args.revision, dtype=run.dtype, token_budget=e.token_budget,
                       max_length=args.max_length, project_dim=e.project_dim, project_seed=args.project_seed)
    out = run_stage(ds, stage, cache_dir=args.cache_dir, batch_size=e.batch_rows, shard_rows=e.shard_rows,
                    device=run.device, worker=args.worker, progress=not args.quiet, engine=run.engine,
                    ray_address=run.ray_address)
    print_report(stage.report)
    if out is None:
        print(f"embed: shards of other workers are still missing; run again once they finish to write {args.out}")
        return 0
    save_output({"": out}, args)
    print(f"embed: wrote {len(out)} rows with {stage.dim()}-d embeddings to {args.out}")
    return 0


# ----- preexperience -----------------------------------------------------------------------------------------------


def _add_preexperience(sub) -> None:
    p = sub.add_parser("preexperience", help="briefly fine-tune the embedding model on a seeded subset",
                       description="Fine-tune the embedding model for a few steps (causal LM loss on answers) on a "
                                   "seeded random subset and save it; pass the folder to `embed --model`.")
    add_io_args(p, out_help="folder for the fine-tuned model")
    add_model_args(p)
    add_setting_args(p, {"--rows": "preexperience.rows", "--steps": "preexperience.steps",
                         "--batch-size": "preexperience.batch_size", "--lr": "preexperience.learning_rate",
                         "--max-length": "preexperience.max_length", "--seed": "preexperience.seed"})
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run_preexperience)


def _run_preexperience(args) -> int:
    from ..stages.preexperience import preexperience

    settings, ds = start(args)
    if settings.run.dtype not in ("auto", "float32"):
        print("preexperience: trains float32 weights (bf16 autocast on capable GPUs); --dtype is ignored")
    pre = settings.preexperience
    began = time.perf_counter()
    path = preexperience(ds, args.out, model=args.model, revision=args.revision, settings=pre,
                         device=settings.run.device, progress=not args.quiet)
    print(f"preexperience: {min(pre.rows, len(ds))} rows, {pre.steps} steps in {time.perf_counter() - began:.1f} s; "
          f"model saved to {path} (use: openmathmix embed --model {path})")
    return 0


# ----- quality, scorer train, score ----------------------------------------------------------------------------------


def _add_quality(sub) -> None:
    p = sub.add_parser(
        "quality", help="one-shot quality score (QS, Eq. 1-3) of a per-source sample",
        description="Sample n1 prompt samples per source (Dp), pick n2 test samples (Dt) by K-center Greedy on "
                    "`embedding` from the test sources, and add `qs` (fraction of tests whose answer becomes more "
                    "likely with the prompt sample as a one-shot example) and `oneshot_scores` to Dp. Writes the "
                    "scored sample (one folder per task with --split-by-task) and quality_report.json (sizes, "
                    "speed, Dt with its zero-shot scores).")
    add_io_args(p, out_help="output folder: the scored sample, plus quality_report.json")
    add_model_args(p)
    add_setting_args(p, {"--n1": "quality.n1", "--n2": "quality.n2", "--pool-size": "quality.pool_size",
                         "--test-selection": "quality.test_selection",
                         "--max-test-tokens": "quality.max_test_tokens",
                         "--max-example-tokens": "quality.max_example_tokens",
                         "--chunk-rows": "quality.chunk_rows", "--chunk-tokens": "quality.chunk_tokens"},
                     choices={"--test-selection": ("kcenter", "random")})
    p.add_argument("--test-sources", nargs="+", default=None, metavar="SOURCE",
                   help="sources forming the Dt pool (default: the profile's test source when the data has it, "
                        "else every reasoning source)")
    p.add_argument("--test-data", default=None, metavar="DIR",
                   help="a save_to_disk folder used as the Dt pool instead of --test-sources")
    p.add_argument("--prompt-sources", nargs="+", default=None, metavar="SOURCE",
                   help="sources to sample Dp from (default: every source)")
    p.add_argument("--split-by-task", action="store_true",
                   help="score reasoning and general Dp against the same Dt and write one folder per task "
                        "(OUT/reasoning, OUT/general): one scorer is trained on each (Appendix A, large setting)")
    p.add_argument("--seed", type=int, default=0, help="seed of Dp, of the pool cut and of Dt's first row (default 0)")
    add_run_args(p, "quality.batch_rows", "quality.shard_rows")
    p.set_defaults(func=_run_quality)


def _run_quality(args) -> int:
    from datasets import load_from_disk

    from ..stages.quality import compute_quality

    settings, ds = start(args)
    q, run = settings.quality, settings.run
    test_ds = None
    if args.test_data:
        try:
            test_ds = load_from_disk(args.test_data)
        except FileNotFoundError as err:
            raise InputNotFoundError(f"--test-data {args.test_data}: not a save_to_disk folder ({err})") from err
    test_sources = args.test_sources
    if test_sources is None and test_ds is None and q.test_source in set(ds.unique("source")):
        test_sources = [q.test_source]
    scored, report = compute_quality(
        ds, n1=q.n1, n2=q.n2, test_sources=test_sources, test_ds=test_ds,
        prompt_sources=args.prompt_sources, split_by_task=args.split_by_task, test_selection=q.test_selection,
        pool_size=q.pool_size, model=args.model, revision=args.revision, device=run.device, dtype=run.dtype,
        seed=args.seed, max_test_tokens=q.max_test_tokens, max_example_tokens=q.max_example_tokens,
        chunk_rows=q.chunk_rows, chunk_tokens=q.chunk_tokens, cache_dir=args.cache_dir,
        batch_size=q.batch_rows, shard_rows=q.shard_rows, worker=args.worker, progress=not args.quiet,
        return_report=True, engine=run.engine, ray_address=run.ray_address,
    )
    print(report.summary())
    if scored is None:
        print(f"quality: shards of other workers are still missing; run again once they finish to write {args.out}")
        return 0
    parts: dict[str, object] = {}
    if args.split_by_task:
        for task in sorted(set(scored["task"])):
            parts[task] = scored.filter(lambda t, want=task: t == want, input_columns="task")
    else:
        parts[""] = scored
    parts["quality_report.json"] = report.to_dict()
    save_output(parts, args)
    for task, part in parts.items():
        if task and not task.endswith(".json"):
            print(f"quality: {task}: {len(part)} scored rows -> {args.out}/{task} "
                  f"(train its scorer: openmathmix scorer train --in {args.out}/{task} --out SCORER_DIR)")
    if "" in parts:
        print(f"quality: {len(scored)} scored rows -> {args.out}")
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
                    "sequence classifier on a causal-LM backbone (--kind classifier, transformers Trainer) or "
                    "heads on the frozen `embedding` column chosen by cross-validation (--kind light, CPU "
                    "friendly). Prints the Pearson correlation between the scorer's score and the real QS on rows "
                    "its training never saw.")
    add_io_args(t, out_help="scorer folder to write (weights + scorer.json)")
    add_model_args(t)
    add_setting_args(t, {"--kind": "scorer.kind", "--epochs": "scorer.epochs", "--lr": "scorer.learning_rate",
                         "--batch-size": "scorer.batch_size", "--grad-accum": "scorer.grad_accum",
                         "--max-length": "scorer.max_length", "--hidden": "scorer.hidden", "--folds": "scorer.folds",
                         "--heldout": "scorer.heldout", "--ensemble": "scorer.ensemble", "--margin": "scorer.margin"},
                     choices={"--kind": ("classifier", "light")})
    t.add_argument("--task", default=None, help="train on the rows of this task only (e.g. reasoning)")
    t.add_argument("--seed", type=int, default=0, help="seed of the split, the initialisation and the order")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.set_defaults(func=_run_scorer_train)


def _run_scorer_train(args) -> int:
    from ..stages.scorer import train_scorer

    settings, ds = start(args)
    s = settings.scorer
    common = {"seed": args.seed, "heldout": s.heldout, "task": args.task, "epochs": s.resolved_epochs,
              "folds": s.folds,
              "learning_rate": s.resolved_learning_rate, "batch_size": s.resolved_batch_size}
    if s.kind == "classifier":
        if settings.run.dtype not in ("auto", "float32"):
            print("scorer train: the classifier trains float32 weights (bf16 autocast on capable GPUs); "
                  "--dtype is ignored")
        kwargs = {"model": args.model, "revision": args.revision, "grad_accum": s.grad_accum,
                  "max_length": s.max_length, "device": settings.run.device, "progress": not args.quiet}
    else:
        kwargs = {"hidden": s.hidden, "ensemble": s.ensemble, "margin": s.margin}
        common["epochs"] = int(common["epochs"])
    with output_folder(args.out, inputs=[args.input], overwrite=args.overwrite) as tmp:
        result = train_scorer(ds, tmp, kind=s.kind, **common, **kwargs)
    print(result.summary())
    r = "nan" if result.pearson is None else f"{result.pearson:.4f}"
    print(f"scorer train: held-out Pearson r = {r} (n = {result.heldout_rows}); labels {result.label_counts}; "
          f"saved to {args.out}")
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
            raise ConfigError(f"--scorer given twice for {'all rows' if task == '*' else 'task ' + task}")
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
    add_setting_args(p, {"--device": "run.device", "--dtype": "run.dtype"},
                     choices={"--dtype": ("auto", "float32", "bfloat16", "float16")})
    p.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads for torch")
    add_run_args(p, "scorer.score_batch_rows", "scorer.score_shard_rows")
    p.set_defaults(func=_run_score)


def _run_score(args) -> int:
    from ..stages.scorer import mean_score_per_source, score_dataset

    settings, ds = start(args)
    s, run = settings.scorer, settings.run
    out = score_dataset(ds, _parse_scorers(args.scorer), device=run.device, dtype=run.dtype,
                        cache_dir=args.cache_dir, batch_size=s.score_batch_rows, shard_rows=s.score_shard_rows,
                        worker=args.worker, progress=not args.quiet, engine=run.engine,
                        ray_address=run.ray_address)
    if out is None:
        print(f"score: shards of other workers are still missing; run again once they finish to write {args.out}")
        return 0
    save_output({"": out}, args)
    print(f"score: wrote {len(out)} rows with quality_score to {args.out}")
    for source, mean in sorted(mean_score_per_source(out).items(), key=lambda kv: -kv[1]):
        print(f"score: mean {mean:.3f}  {source}")
    return 0
