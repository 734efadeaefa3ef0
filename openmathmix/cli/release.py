"""`openmathmix publish | show`: a release folder -> a Hub dataset repository, and a look at a release folder.

    openmathmix show release/demo
    openmathmix publish release/demo --repo-id ORG/NAME --dry-run
    openmathmix publish release/demo --repo-id ORG/NAME --tag v0.1.0 [--private]

Both commands first check every file of the folder against the sha256 in its manifest and refuse stray files. The
commands only parse arguments and call `openmathmix.release`; heavy libraries are imported inside the handlers so
`openmathmix --help` stays fast.
"""

from __future__ import annotations

from ..errors import OpenMathMixError


def register(subparsers) -> None:
    _add_publish(subparsers)
    _add_show(subparsers)


# ----- publish -------------------------------------------------------------------------------------------------------


def _add_publish(sub) -> None:
    p = sub.add_parser(
        "publish", help="make a Hub dataset repository hold exactly a release folder's files, and tag it",
        description="Check the release folder, create the dataset repository if needed, upload new and changed "
                    "files, delete files the release does not have (one commit; several for a large release) and "
                    "tag the final commit. The token comes from `hf auth login` or HF_TOKEN and is never printed. "
                    "--dry-run lists what would be added, replaced and deleted, and changes nothing.",
    )
    p.add_argument("release_dir", metavar="DIR", help="release folder written by `openmathmix build`")
    p.add_argument("--repo-id", required=True, metavar="ORG/NAME", help="Hub dataset repository")
    p.add_argument("--private", action="store_true", help="create the repository as private (if it is new)")
    p.add_argument("--tag", default=None, metavar="VERSION", help="tag for the upload (default: the release version)")
    p.add_argument("--dry-run", action="store_true", help="list what would be added, replaced and deleted; change "
                                                          "nothing")
    p.set_defaults(func=_run_publish)


def _run_publish(args) -> int:
    from ..release.publish import publish

    publish(args.release_dir, args.repo_id, private=args.private, tag=args.tag, dry_run=args.dry_run)
    return 0


# ----- show ----------------------------------------------------------------------------------------------------------


def _add_show(sub) -> None:
    p = sub.add_parser("show", help="check a release folder, load it back and print its configs and composition",
                       description="Check every file against the manifest's sha256 (and refuse stray files), load "
                                   "every config with datasets.load_dataset, print the row counts (checked against "
                                   "the manifest), the composition table and the card path.")
    p.add_argument("release_dir", metavar="DIR", help="release folder written by `openmathmix build`")
    p.set_defaults(func=_run_show)


def _run_show(args) -> int:
    from pathlib import Path

    import datasets

    from ..release import README, composition_table, validate_release
    from ..stages.base import progress_bars_off

    root = Path(args.release_dir)
    manifest = validate_release(root)
    print(f"{manifest.get('name')} {manifest.get('version')} ({root}): all {len(manifest['files'])} files match "
          "their sha256 in manifest.json")
    print()
    print("| config | rows | files |")
    print("|---|---:|---:|")
    mismatched = []
    with progress_bars_off():
        for name, meta in manifest["configs"].items():
            ds = datasets.load_dataset(str(root), name, split="train")
            kept = f" ({meta['rows_kept']:,} kept)" if "rows_kept" in meta else ""
            print(f"| {name} | {len(ds):,}{kept} | {len(meta['files'])} |")
            if len(ds) != meta["rows"]:
                mismatched.append(f"{name}: loaded {len(ds):,} rows, the manifest says {meta['rows']:,}")
    print()
    print(composition_table(manifest))
    print(f"card: {root / README}")
    if mismatched:
        raise OpenMathMixError("the release does not load as written: " + "; ".join(mismatched))
    return 0
