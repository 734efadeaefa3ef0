"""`openmathmix build | publish | show`: a preset -> a release folder -> a Hub dataset repository.

    openmathmix build --preset demo --out release/demo
    openmathmix build --preset openmathmix --out release/omm --paper-settings \\
        --data-files gsm8k_screl=data/train_use.jsonl --data-files alpaca=data/alpaca_data.json ...
    openmathmix show release/demo
    openmathmix publish release/demo --repo-id ORG/NAME --dry-run
    openmathmix publish release/demo --repo-id ORG/NAME --tag v0.1.0 [--private]

The commands only parse arguments and call `openmathmix.pipeline.build`, `openmathmix.publish.publish` and
`openmathmix.release`; heavy libraries are imported inside the handlers so `openmathmix --help` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses

from ..errors import OpenMathMixError


def register(subparsers) -> None:
    _add_build(subparsers)
    _add_publish(subparsers)
    _add_show(subparsers)


# ----- build ---------------------------------------------------------------------------------------------------------


def _add_build(sub) -> None:
    p = sub.add_parser(
        "build", help="run the whole pipeline for a preset and write a release folder",
        description="Sources -> embeddings -> one-shot quality scores on a sample -> scorer -> scores for every "
                    "row -> QaDS selection -> release folder (parquet configs, card, figures, manifest). Each "
                    "stage is cached under --cache-dir, so a re-run reuses finished work.",
    )
    p.add_argument("--preset", required=True, help="packaged preset (demo, openmathmix, sbase_69k...) or a YAML path")
    p.add_argument("--out", required=True, metavar="DIR", help="release folder to write (an earlier release there is "
                                                               "replaced; any other non-empty folder is refused)")
    p.add_argument("--model", default=None,
                   help="Hub id, local folder or embedded alias (default: embedded SmolLM2-135M-Instruct)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: every visible GPU, else the CPU)")
    p.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="stage cache (default: $OPENMATHMIX_CACHE or ~/.cache/openmathmix)")
    p.add_argument("--data-files", action="extend", nargs="+", default=[], metavar="SOURCE=PATH", type=_source_path,
                   help="native files of a source (repeatable; a folder or glob works too). Other sources come from "
                        "their bundled fixtures (preset demo) or the Hub")
    p.add_argument("--paper-settings", action="store_true",
                   help="Appendix A: n1=2000, n2=100, |s0|=100, classifier scorers trained for 2 epochs")
    p.add_argument("--n1", type=int, default=None, help="prompt samples per source for the quality score")
    p.add_argument("--n2", type=int, default=None, help="test samples (Dt) for the quality score")
    p.add_argument("--scorer", choices=("light", "classifier"), default=None,
                   help="light: MLP on the embeddings (CPU); classifier: fine-tuned LM (the paper's)")
    p.add_argument("--test-source", default=None, help="source whose rows form the test pool Dt")
    p.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), default=None,
                   help="model dtype (default auto: bf16 on capable GPUs and CPUs, else fp32)")
    p.add_argument("--repo-id", default=None, metavar="ORG/NAME",
                   help="Hub repository the card's usage examples name (the release is not uploaded)")
    p.add_argument("--keep-embedding", action="store_true", help="also write the embedding column")
    p.add_argument("--progress", action="store_true", help="show per-shard progress bars")
    p.set_defaults(func=_run_build)


def _source_path(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected SOURCE=PATH, got {text!r}")
    return name.strip(), path


def _run_build(args) -> int:
    from ..pipeline import BuildConfig, build
    from ..sources import get_source

    data_files: dict[str, list[str]] = {}
    for name, path in args.data_files:
        get_source(name)  # an unknown name fails here, with the list of valid ones
        data_files.setdefault(name, []).append(path)
    config = BuildConfig.for_preset(args.preset, paper=args.paper_settings)
    overrides = {k: v for k, v in {"n1": args.n1, "n2": args.n2, "scorer": args.scorer, "dtype": args.dtype,
                                   "test_source": args.test_source}.items() if v is not None}
    if args.scorer and args.scorer != config.scorer:
        overrides["scorer_epochs"] = 2 if args.scorer == "classifier" else BuildConfig.scorer_epochs
    if any(v is not None and v < 1 for v in (args.n1, args.n2)):
        raise OpenMathMixError("--n1 and --n2 must be at least 1")
    config = dataclasses.replace(config, **overrides)
    build(args.preset, args.out, model=args.model, device=args.device, cache_dir=args.cache_dir,
          data_files=data_files or None, config=config, repo_id=args.repo_id, keep_embedding=args.keep_embedding,
          progress=args.progress)
    return 0


# ----- publish -------------------------------------------------------------------------------------------------------


def _add_publish(sub) -> None:
    p = sub.add_parser(
        "publish", help="upload a release folder to a Hub dataset repository and tag it",
        description="Create the dataset repository if needed, upload the release folder and tag the commit. The "
                    "token comes from `hf auth login` or HF_TOKEN and is never printed. --dry-run lists what would "
                    "be uploaded without contacting the Hub.",
    )
    p.add_argument("release_dir", metavar="DIR", help="release folder written by `openmathmix build`")
    p.add_argument("--repo-id", required=True, metavar="ORG/NAME", help="Hub dataset repository")
    p.add_argument("--private", action="store_true", help="create the repository as private (if it is new)")
    p.add_argument("--tag", default=None, metavar="VERSION", help="tag for the upload (default: the release version)")
    p.add_argument("--dry-run", action="store_true", help="list files, sizes and target; upload nothing")
    p.add_argument("--large", action="store_true", default=None,
                   help="force the large-folder upload path (default: chosen by size and file count)")
    p.set_defaults(func=_run_publish)


def _run_publish(args) -> int:
    from ..publish import publish

    publish(args.release_dir, args.repo_id, private=args.private, tag=args.tag, dry_run=args.dry_run,
            large=args.large)
    return 0


# ----- show ----------------------------------------------------------------------------------------------------------


def _add_show(sub) -> None:
    p = sub.add_parser("show", help="load a release folder back and print its configs and composition",
                       description="Load every config of a release with datasets.load_dataset, print the row "
                                   "counts (checked against the manifest), the composition table and the card path.")
    p.add_argument("release_dir", metavar="DIR", help="release folder written by `openmathmix build`")
    p.set_defaults(func=_run_show)


def _run_show(args) -> int:
    from pathlib import Path

    import datasets

    from ..release import README, composition_table, validate_release
    from ..stages.base import progress_bars_off

    root = Path(args.release_dir)
    manifest = validate_release(root)
    print(f"{manifest.get('name')} {manifest.get('version')} ({root})")
    print()
    print("| config | rows | files |")
    print("|---|---:|---:|")
    mismatched = []
    with progress_bars_off():
        for name, meta in manifest["configs"].items():
            ds = datasets.load_dataset(str(root), name, split="train")
            print(f"| {name} | {len(ds):,} | {len(meta['files'])} |")
            if len(ds) != meta["rows"]:
                mismatched.append(f"{name}: loaded {len(ds):,} rows, the manifest says {meta['rows']:,}")
    print()
    print(composition_table(manifest))
    print(f"card: {root / README}")
    if mismatched:
        raise OpenMathMixError("the release does not load as written: " + "; ".join(mismatched))
    return 0
