"""Command-line flags for settings: every command reads its defaults from `openmathmix.settings`, the same place.

A flag maps to one setting (`--n1` -> `quality.n1`). Flags default to None ("not given"); a command resolves its
settings as `overlay(profile(--profile), given flags)`, so `openmathmix build` and `openmathmix quality` start from the
same values, and the help of each flag shows the paper profile's default.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from ..settings import PROFILES, Settings, overlay, profile

FLAG_TYPES = {int: int, float: float, str: str}


def _field(key: str) -> dataclasses.Field:
    section, _, name = key.partition(".")
    cls = type(getattr(Settings(), section))
    return next(f for f in dataclasses.fields(cls) if f.name == name)


def _kind(field: dataclasses.Field) -> Any:
    text = str(field.type)
    for name, kind in (("int", int), ("float", float), ("str", str)):
        if text.startswith(name):
            return kind
    return str


def add_profile_arg(parser: argparse.ArgumentParser, default_help: str = "paper") -> None:
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None,
                        help=f"settings profile the defaults come from (default: {default_help})")


def add_setting_args(parser: argparse.ArgumentParser, flags: Mapping[str, str],
                     choices: Mapping[str, Sequence[str]] | None = None) -> None:
    """Add one flag per `{"--flag": "section.name"}`; help and default come from the settings field."""
    paper = profile("paper")
    for flag, key in flags.items():
        field = _field(key)
        section, _, name = key.partition(".")
        default = getattr(getattr(paper, section), name)
        kwargs: dict[str, Any] = {"dest": key.replace(".", "__"), "default": None, "metavar": "N",
                                  "help": f"{field.metadata.get('help', '')} (default: {default})"}
        if choices and flag in choices:
            kwargs.update(choices=list(choices[flag]), metavar=None)
        else:
            kind = _kind(field)
            kwargs["type"] = kind
            if kind is str:
                kwargs["metavar"] = "VALUE"
        parser.add_argument(flag, **kwargs)


def settings_from_args(args: argparse.Namespace, base: Settings | None = None) -> Settings:
    """`base` (default: the profile named by --profile, else paper) with every setting flag the user gave."""
    if base is None:
        base = profile(getattr(args, "profile", None) or "paper")
    given = {dest.replace("__", "."): value for dest, value in vars(args).items() if "__" in dest}
    return overlay(base, given)
