"""`openmathmix publish | show`: a release folder -> a Hub dataset repository, and a look at a release folder.

    openmathmix show release/demo
    openmathmix publish release/demo --repo-id ORG/NAME --dry-run
    openmathmix publish release/demo --repo-id ORG/NAME --tag v0.1.0 [--private]

The commands only parse arguments and call `openmathmix.publish.publish` and
`openmathmix.release`; heavy libraries are imported inside the handlers so `openmathmix --help` stays fast.
"""

from __future__ import annotations

from ..errors import OpenMathMixError


def register(subparsers) -> None:
    _add_publish(subparsers)
    _add_show(subparsers)


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
    from ..release.publish import publish

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
