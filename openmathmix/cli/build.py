"""`openmathmix build`: a preset -> a release folder (the whole pipeline, `openmathmix.pipeline.build`).

    openmathmix build --preset demo --out release/demo
    openmathmix build --preset openmathmix --out release/omm --paper-settings \\
        --data-files gsm8k_screl=data/train_use.jsonl --data-files alpaca=data/alpaca_data.json ...
"""

from __future__ import annotations

import argparse

from ..settings import Settings
from .options import add_profile_arg, add_setting_args, settings_from_args

# flag -> setting (openmathmix.settings); the stage commands use the same names for the same settings
BUILD_FLAGS = {
    "--device": "run.device", "--dtype": "run.dtype", "--engine": "run.engine", "--ray-address": "run.ray_address",
    "--n1": "quality.n1", "--n2": "quality.n2", "--test-source": "quality.test_source",
    "--max-test-tokens": "quality.max_test_tokens", "--max-example-tokens": "quality.max_example_tokens",
    "--scorer": "scorer.kind", "--epochs": "scorer.epochs", "--heldout": "scorer.heldout",
    "--token-budget": "embed.token_budget", "--project-dim": "embed.project_dim",
    "--init-size": "select.init_size",
}


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
    p.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="stage cache (default: $OPENMATHMIX_CACHE or ~/.cache/openmathmix)")
    p.add_argument("--data-files", action="extend", nargs="+", default=[], metavar="SOURCE=PATH", type=_source_path,
                   help="native files of a source (repeatable; a folder or glob works too). Other sources come from "
                        "their bundled fixtures (preset demo) or the Hub")
    p.add_argument("--benchmark-files", action="extend", nargs="+", default=[], metavar="NAME=PATH",
                   type=_source_path,
                   help="test items to decontaminate against: a registered benchmark's files (gsm8k, math, math500) "
                        "or a test set of your own under a new name (question/answer or problem/solution columns)")
    p.add_argument("--no-hygiene", action="store_const", const=False, dest="hygiene_enabled",
                   help="skip decontamination and deduplication (the paper's raw pool)")
    p.add_argument("--evaluate", action="store_const", const=True, dest="evaluate_enabled",
                   help="compare the selection strategies on the scored pool for the card (no training; on in the "
                        "demo profile)")
    add_profile_arg(p, "the preset's profile: paper for every paper preset, demo for the demo")
    p.add_argument("--paper-settings", action="store_const", const="paper", dest="profile",
                   help="same as --profile paper (Appendix A: n1=2000, n2=100, |s0|=100, classifier scorers)")
    add_setting_args(p, BUILD_FLAGS, choices={"--scorer": ("light", "classifier"), "--engine": ("local", "ray"),
                                              "--dtype": ("auto", "float32", "bfloat16", "float16")})
    p.add_argument("--repo-id", default=None, metavar="ORG/NAME",
                   help="Hub repository the card's usage examples name (the release is not uploaded)")
    p.add_argument("--keep-embedding", action="store_true", help="also write the embedding column")
    p.add_argument("--quiet", action="store_true", help="no progress bars (the step lines stay)")
    p.set_defaults(func=_run_build)


def _source_path(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected SOURCE=PATH, got {text!r}")
    return name.strip(), path


def build_settings(args: argparse.Namespace, preset) -> Settings:
    """The settings `openmathmix build` runs with: the preset's profile (or --profile), then the flags."""
    from ..pipeline import resolve_settings

    switches = {"hygiene.enabled": args.hygiene_enabled, "evaluate.enabled": args.evaluate_enabled}
    return settings_from_args(args, resolve_settings(preset, args.profile, switches))


def _run_build(args) -> int:
    from ..pipeline import build
    from ..select.mixture import load_preset
    from ..sources import get_source

    data_files: dict[str, list[str]] = {}
    for name, path in args.data_files:
        get_source(name)  # an unknown name fails here, with the list of valid ones
        data_files.setdefault(name, []).append(path)
    preset = load_preset(args.preset)
    benchmark_files: dict[str, list[str]] = {}
    for name, path in args.benchmark_files:
        benchmark_files.setdefault(name, []).append(path)
    settings = build_settings(args, preset)
    build(args.preset, args.out, model=args.model, cache_dir=args.cache_dir, data_files=data_files or None,
          benchmark_files=benchmark_files or None, settings=settings, repo_id=args.repo_id, keep_embedding=args.keep_embedding, progress=not args.quiet)
    return 0
