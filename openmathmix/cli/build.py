"""`openmathmix build`: a preset -> a release folder (the whole pipeline, `openmathmix.pipeline.build`).

    openmathmix build --preset demo --out release/demo
    openmathmix build --preset openmathmix --out release/omm --paper-settings \\
        --data-files gsm8k_screl=data/train_use.jsonl --data-files alpaca=data/alpaca_data.json ...
"""

from __future__ import annotations

import argparse
import dataclasses

from ..errors import OpenMathMixError


def register(subparsers) -> None:
    _add_build(subparsers)


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
