"""Settings: one home for every default; `build` and the stage commands resolve their defaults from it."""

from __future__ import annotations

import dataclasses

import pytest

from openmathmix import settings as settings_mod
from openmathmix.cli import build_parser
from openmathmix.cli.build import build_settings
from openmathmix.cli.options import settings_from_args
from openmathmix.errors import ConfigError
from openmathmix.select.mixture import load_preset
from openmathmix.settings import overlay, profile


def _build_settings(argv):
    args = build_parser().parse_args(["build", "--out", "x", *argv])
    return build_settings(args, load_preset(args.preset))


def test_paper_presets_build_with_the_paper_profile():
    got = _build_settings(["--preset", "openmathmix"])
    paper = profile("paper")
    assert got == paper
    assert (got.quality.n1, got.quality.n2, got.quality.test_source) == (2000, 100, "mathinstruct_math")
    assert (got.scorer.kind, got.scorer.resolved_epochs, got.select.init_size) == ("classifier", 2, 100)
    assert got.quality.max_test_tokens == got.quality.max_example_tokens == 1024
    # the base setting draws Dt from every reasoning source (Appendix A)
    assert _build_settings(["--preset", "sbase_130k"]).quality.test_source is None


def test_demo_preset_builds_with_the_demo_profile_and_flags_override():
    assert _build_settings(["--preset", "demo"]) == profile("demo")
    got = _build_settings(["--preset", "openmathmix", "--n1", "40", "--scorer", "light", "--dtype", "float32"])
    assert (got.quality.n1, got.scorer.kind, got.run.dtype) == (40, "light", "float32")
    assert got.scorer.resolved_epochs == settings_mod.LIGHT_EPOCHS  # the kind's own default, from the same place
    assert _build_settings(["--preset", "demo", "--profile", "paper"]).quality.n1 == 2000
    switched = _build_settings(["--preset", "openmathmix", "--no-hygiene", "--evaluate"])
    assert (switched.hygiene.enabled, switched.evaluate.enabled) == (False, True)
    assert _build_settings(["--preset", "demo", "--no-hygiene"]).evaluate.enabled  # the demo profile's own value


def test_build_and_stage_commands_share_their_defaults(monkeypatch):
    """Change the paper profile in the one place it lives: build, quality, embed and scorer train all follow."""
    paper = profile("paper")
    changed = dataclasses.replace(
        paper,
        quality=dataclasses.replace(paper.quality, n1=123, n2=7, max_test_tokens=99),
        scorer=dataclasses.replace(paper.scorer, heldout=0.25),
        embed=dataclasses.replace(paper.embed, shard_rows=77),
    )
    monkeypatch.setitem(settings_mod.PROFILES, "paper", changed)
    built = _build_settings(["--preset", "openmathmix"])
    parser = build_parser()
    quality = settings_from_args(parser.parse_args(["quality", "--in", "a", "--out", "b"]))
    embed = settings_from_args(parser.parse_args(["embed", "--in", "a", "--out", "b"]))
    scorer = settings_from_args(parser.parse_args(["scorer", "train", "--in", "a", "--out", "b"]))
    assert built.quality == quality.quality == changed.quality
    assert (quality.quality.n1, quality.quality.n2, quality.quality.max_test_tokens) == (123, 7, 99)
    assert embed.embed.shard_rows == built.embed.shard_rows == 77
    assert scorer.scorer.heldout == built.scorer.heldout == 0.25


def test_help_shows_the_profile_default(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["quality", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--n1 N prompt samples per source (Dp) (default: 2000)" in text
    assert build_parser().parse_args(["quality", "--in", "a", "--out", "b"]).quality__n1 is None  # not given


@pytest.mark.parametrize("values, message", [
    ({"quality.nope": 1}, "unknown setting"),
    ({"nope.n1": 1}, "unknown settings section"),
    ({"quality.n1": 0}, "quality.n1 = 0"),
    ({"scorer.kind": "forest"}, "scorer.kind"),
    ({"scorer.heldout": 1.5}, "scorer.heldout"),
])
def test_bad_settings_are_value_errors_that_name_the_key(values, message):
    with pytest.raises(ValueError, match=message) as err:
        overlay(profile("paper"), values)
    assert isinstance(err.value, ConfigError)


def test_unknown_profile_is_refused():
    with pytest.raises(ConfigError, match="demo"):
        profile("fast")


def test_record_is_plain_data():
    import json

    record = settings_mod.as_record(profile("demo"))
    assert json.loads(json.dumps(record)) == record
    assert record["quality"]["n1"] == profile("demo").quality.n1 and record["scorer"]["epochs"] == 100
