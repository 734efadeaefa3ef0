"""`openmathmix` command line: a thin argparse layer; each submodule registers its own sub-commands."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..errors import OpenMathMixError

# Each module defines `register(subparsers)`; a sub-command sets `func(args) -> int | None` as its default.
# Modules import heavy libraries (torch, transformers) inside their handlers, so `--help` stays fast.
COMMAND_MODULES = ("sources", "build", "stages", "select", "release", "evaluate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openmathmix", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except OpenMathMixError as err:
        print(f"openmathmix {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
