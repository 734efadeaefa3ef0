"""Source registry contract (every builder builds from its fixture), the Hub path, the CLI, and registry errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import datasets
import pytest

from openmathmix.cli import main
from openmathmix.errors import DataFileError, DuplicateSourceError, SourceError, UnknownSourceError
from openmathmix.schema import FEATURES, TASKS
from openmathmix.sources import (
    BuildReport,
    build_source,
    discover,
    fixture_files,
    get_source,
    layout_fixtures,
    list_sources,
    source_card,
)

NAMES = [
    "dmath", "gsm8k_screl", "lila_ood", "mathinstruct", "metamathqa", "mmiqc", "kpmath_plus", "openmathinstruct1_cot",
    "open_platypus", "tal_scq5k_cn", "tal_scq5k_en", "alpaca", "baize", "cot", "evol_instruct_v2", "flan_v2", "oasst1",
    "self_instruct", "mathinstruct_aqua_rat", "mathinstruct_camel_math", "mathinstruct_college_math",
    "mathinstruct_gsm8k", "mathinstruct_gsm8k_rft", "mathinstruct_math", "mathinstruct_number_comparison",
    "mathinstruct_theoremqa",
]
REGISTRY = [s.name for s in list_sources()]


def build(name, files=None, tmp_path=None, **kwargs):
    return build_source(name, files if files is not None else fixture_files(name), cache_dir=tmp_path,
                        progress=False, **kwargs)


def test_registry_holds_the_26_sources():
    assert sorted(REGISTRY) == sorted(NAMES)
    assert sorted(REGISTRY) == REGISTRY  # discovery order is the sorted file order
    reasoning = {s.name for s in list_sources() if s.task == "reasoning"}
    assert reasoning == set(NAMES[:11]) | {n for n in NAMES if n.startswith("mathinstruct_")}


@pytest.mark.parametrize("name", REGISTRY)
def test_source_contract(name, tmp_path):
    source = get_source(name)
    module = sys.modules[f"openmathmix.builders.{name}"]
    assert Path(module.__file__).stem == name == source.name
    assert source.task in TASKS
    assert source.license and source.paper_size > 0
    card = source_card(name)
    assert card.startswith("# ") and "```bibtex" in card and "@" in source.citation

    ds, report = build(name, tmp_path=tmp_path)
    assert ds.features == FEATURES
    assert ds.column_names == list(FEATURES)
    assert report.rows_out == len(ds) > 0
    assert 6 <= report.records_in <= 20
    report.check()
    assert len(set(ds["id"])) == len(ds)
    assert all(i.startswith(f"{name}/{Path(fixture_files(name)[0]).stem}/") for i in ds["id"])
    assert set(ds["source"]) == {name} and set(ds["task"]) == {source.task} and set(ds["license"]) == {source.license}
    assert all(q.strip() == q and q for q in ds["question"]) and all(a.strip() == a and a for a in ds["answer"])


@pytest.mark.parametrize("name", REGISTRY)
def test_every_layout_has_a_fixture_that_builds(name, tmp_path):
    """Each layout a source declares is read from at least one fixture in that layout; each fixture builds alone."""
    source = get_source(name)
    read_as = {}
    for path in [*fixture_files(name), *layout_fixtures(name)]:
        ds, report = build(name, [path], tmp_path=tmp_path)
        assert len(ds) >= 1 and ds.features == FEATURES
        report.check()
        read_as[Path(path).name] = report.layouts[path]
    assert set(read_as.values()) == {f.describe() for f in source.formats}, read_as


def test_build_is_deterministic(tmp_path):
    first, r1 = build("oasst1", tmp_path=tmp_path / "a")
    second, r2 = build("oasst1", tmp_path=tmp_path / "b")
    assert first.to_list() == second.to_list()
    assert r1.to_dict() | {"cache_file": ""} == r2.to_dict() | {"cache_file": ""}


def test_rebuilt_source_keeps_its_fingerprint(tmp_path):
    """The Arrow file is rewritten on every build; the stage caches key on the fingerprint, so it must not move."""
    from openmathmix.compat import fingerprint

    first, _ = build("oasst1", tmp_path=tmp_path)
    again, _ = build("oasst1", tmp_path=tmp_path)
    fewer, _ = build("oasst1", tmp_path=tmp_path, limit=2)
    assert fingerprint(first) == fingerprint(again)
    assert fingerprint(fewer) != fingerprint(first)
    assert len(fewer) < len(first) and again.to_list() == first.to_list()


def test_dropped_rows_keep_raw_row_ids(tmp_path):
    ds, report = build("gsm8k_screl", tmp_path=tmp_path)  # the last fixture row has an empty response
    assert report.dropped == {"empty answer": 1}
    assert ds["id"][-1] == "gsm8k_screl/gsm8k_screl/6"
    ds, report = build("flan_v2", tmp_path=tmp_path)  # rows 3 and 6 belong to other Tulu datasets
    assert report.dropped["filtered: dataset != flan_v2"] == 2
    assert "flan_v2/flan_v2/3" not in ds["id"] and "flan_v2/flan_v2/4" in ds["id"]


def test_limit_reads_only_the_first_records(tmp_path):
    ds, report = build("gsm8k_screl", tmp_path=tmp_path, limit=3)
    assert report.records_in == report.rows_in == 3 and len(ds) == 3


def test_unknown_source_lists_valid_names():
    with pytest.raises(UnknownSourceError) as err:
        get_source("gsm8k")
    message = str(err.value)
    assert "unknown source 'gsm8k'" in message and "gsm8k_screl" in message
    assert all(name in message for name in NAMES)
    with pytest.raises(UnknownSourceError):
        build_source("no_such_source", fixture_files("dmath"))


def test_kpmath_plus_without_files_explains_how_to_build_it():
    with pytest.raises(SourceError) as err:
        build_source("kpmath_plus")
    message = str(err.value)
    assert "KPMath-Plus has no public release" in message and "--data-files" in message


def test_duplicate_source_names_both_files(tmp_path):
    extra = tmp_path / "private"
    extra.mkdir()
    (extra / "dmath.py").write_text(
        "from openmathmix.formats import Columns\nfrom openmathmix.sources import Source\n"
        "SOURCE = Source(name='dmath', task='reasoning', license='mit', paper_size=1, formats=(Columns(),))\n"
    )
    with pytest.raises(DuplicateSourceError) as err:
        discover([extra])
    assert str(extra / "dmath.py") in str(err.value) and "builders/dmath.py" in str(err.value)


def test_source_name_must_equal_file_stem(tmp_path):
    (tmp_path / "my_math.py").write_text(
        "from openmathmix.formats import Columns\nfrom openmathmix.sources import Source\n"
        "SOURCE = Source(name='other_name', task='reasoning', license='mit', paper_size=1, formats=(Columns(),))\n"
    )
    with pytest.raises(SourceError, match="must equal the file stem 'my_math'"):
        discover([tmp_path])
    (tmp_path / "my_math.py").write_text("X = 1\n")
    with pytest.raises(SourceError, match="must define SOURCE"):
        discover([tmp_path])


def test_extra_builder_folder_adds_a_source(tmp_path, monkeypatch):
    (tmp_path / "my_math.py").write_text(
        "from openmathmix.formats import Columns\nfrom openmathmix.sources import Source\n"
        "SOURCE = Source(name='my_math', task='reasoning', license='mit', paper_size=1, formats=(Columns(),))\n"
    )
    monkeypatch.setenv("OPENMATHMIX_BUILDERS", str(tmp_path))
    assert [s.name for s in list_sources()] == [*REGISTRY, "my_math"]
    assert get_source("my_math").citation == ""  # no card: no citation, but it still builds


def test_report_check_raises_when_rows_are_lost():
    BuildReport("x", rows_in=5, rows_out=3, dropped={"empty answer": 1}, merged={"reply": 1}).check()
    with pytest.raises(SourceError, match="does not balance"):
        BuildReport("x", rows_in=5, rows_out=3, dropped={"empty answer": 1}).check()


# ---- the Hub path (load_dataset is replaced; the Hub is never contacted) ------------------------------------------


class FakeHub:
    def __init__(self, rows_by_split=None):
        self.calls, self.rows_by_split = [], rows_by_split or {}

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return datasets.Dataset.from_list(self.rows_by_split.get(kwargs["split"], []))


@pytest.mark.parametrize("name", [n for n in REGISTRY if n != "kpmath_plus"])
def test_hub_arguments(name, monkeypatch, tmp_path):
    source = get_source(name)
    fake = FakeHub()  # every split is empty: the build reads them all, then refuses to make an empty dataset
    monkeypatch.setattr(datasets, "load_dataset", fake)
    with pytest.raises(DataFileError, match=rf"{name}: hf://datasets/{source.repo} .* yielded no rows"):
        build_source(name, cache_dir=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []  # no cache file, not even a temporary one
    assert [c[0] for c in fake.calls] == [(source.repo, source.config)] * len(source.splits)
    assert [c[1]["split"] for c in fake.calls] == list(source.splits)
    for _, kwargs in fake.calls:
        assert kwargs == {"data_dir": source.data_dir, "data_files": source.data_files, "split": kwargs["split"],
                          "revision": source.revision}


def test_hub_arguments_of_key_sources():
    assert get_source("gsm8k_screl").hub_arguments("train") == (
        ("openai/gsm8k", "main"), {"data_dir": None, "data_files": None, "split": "train", "revision": None})
    args, kwargs = get_source("lila_ood").hub_arguments("validation")
    assert args == ("allenai/lila", None) and kwargs["revision"] == "refs/convert/parquet"
    assert kwargs["data_files"]["validation"] == "ood/validation/0000.parquet"
    assert get_source("tal_scq5k_cn").hub_arguments("train")[1]["data_dir"] == "TAL-SCQ5K-CN"
    omi = get_source("openmathinstruct1_cot").hub_arguments("train")[1]["data_files"]
    assert omi["train"] == "correct_solutions/train.jsonl"
    assert get_source("mathinstruct_math").repo == "TIGER-Lab/MathInstruct"


def test_hub_rows_are_mapped_with_split_ids(monkeypatch, tmp_path):
    fake = FakeHub({"train": [{"question": "What is 2 + 2?", "answer": "2 + 2 = 4\n#### 4"},
                              {"question": "What is 3 * 3?", "answer": " "}]})
    monkeypatch.setattr(datasets, "load_dataset", fake)
    ds, report = build_source("gsm8k_screl", cache_dir=tmp_path, progress=False)
    assert ds["id"] == ["gsm8k_screl/train/0"] and report.dropped == {"empty answer": 1}
    assert report.inputs == ["hf://datasets/openai/gsm8k:train"]


def test_hub_oasst1_flat_messages_per_split(monkeypatch, tmp_path):
    def msg(mid, parent, role, text, rank=None):
        return {"message_id": mid, "parent_id": parent, "message_tree_id": "t", "role": role, "text": text,
                "rank": rank, "deleted": False, "lang": "en"}

    fake = FakeHub({
        "train": [msg("a", None, "prompter", "Q1"), msg("b", "a", "assistant", "worse", 1),
                  msg("c", "a", "assistant", "best", 0)],
        "validation": [msg("d", None, "prompter", "Q2"), msg("e", "d", "assistant", "only")],
    })
    monkeypatch.setattr(datasets, "load_dataset", fake)
    ds, report = build_source("oasst1", cache_dir=tmp_path, progress=False)
    assert ds["id"] == ["oasst1/train/0", "oasst1/validation/0"]
    assert ds["answer"] == ["best", "only"]
    assert report.rows_in == 5 and report.dropped == {"message not on the top-ranked path": 1}
    assert report.unit == "message"


# ---- CLI ----------------------------------------------------------------------------------------------------------


def test_cli_sources_list(capsys):
    assert main(["sources", "list"]) == 0
    out = capsys.readouterr().out
    lines = [line.split()[0] for line in out.splitlines()[2:] if line.strip() and not line.startswith("26 ")]
    assert sorted(lines) == sorted(NAMES)
    assert "openai/gsm8k" in out and "cc-by-nc-4.0 (NC)" in out and "2.2M" in out and "(not released)" in out


def test_cli_sources_build(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("openmathmix.sources.default_cache_dir", lambda: tmp_path / "cache")
    out = tmp_path / "out"
    assert main(["sources", "build", "flan_v2", "--data-files", *fixture_files("flan_v2"), "--out", str(out),
                 "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "rows in     9 (rows)" in text and "rows out    6" in text and "dropped     3" in text
    assert "filtered: dataset != flan_v2" in text and "empty answer" in text
    assert len(datasets.load_from_disk(str(out))) == 6
    assert json.loads((out / "build_report.json").read_text())["rows_out"] == 6
    # a second build into the same folder needs --overwrite
    assert main(["sources", "build", "flan_v2", "--data-files", *fixture_files("flan_v2"), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_cli_errors_exit_2(capsys, tmp_path):
    assert main(["sources", "build", "gsm8k", "--out", str(tmp_path / "x")]) == 2
    assert "unknown source 'gsm8k'" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "response": "r"}\n{"query": \n')
    assert main(["sources", "build", "gsm8k_screl", "--data-files", str(bad), "--out", str(tmp_path / "y")]) == 2
    assert f"{bad}, line 2" in capsys.readouterr().err


# ---- output folder safety (issue 9): nothing is deleted that should not be ----------------------------------------


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_cli_build_refuses_an_out_that_holds_its_input(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("openmathmix.sources.default_cache_dir", lambda: tmp_path / "cache")
    proj = tmp_path / "proj"
    (proj / "raw").mkdir(parents=True)
    raw = proj / "raw" / "train.jsonl"
    raw.write_bytes(Path(fixture_files("gsm8k_screl")[0]).read_bytes())
    before = _tree(proj)
    rc = main(["sources", "build", "gsm8k_screl", "--data-files", str(raw), "--out", str(proj), "--overwrite"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert str(proj) in err and "contains the input" in err and "another folder" in err
    assert _tree(proj) == before


def _build_cli(out, *extra):
    return main(["sources", "build", "gsm8k_screl", "--data-files", *fixture_files("gsm8k_screl"), "--out", str(out),
                 "--no-progress", *extra])


@pytest.fixture
def no_build(monkeypatch):
    """Fails the test if a build starts: --out must be refused before any input is read."""
    def refuse(*args, **kwargs):
        raise AssertionError("build_source ran although --out should have been refused first")

    monkeypatch.setattr("openmathmix.sources.build_source", refuse)


def test_cli_build_refuses_root_and_home_before_reading(capsys, tmp_path, monkeypatch, no_build):
    home = tmp_path / "home"
    (home / "docs").mkdir(parents=True)
    (home / "docs" / "thesis.tex").write_text("precious\n")
    monkeypatch.setenv("HOME", str(home))
    before = _tree(home)
    for out, why in (("/", "root of a file system"), (str(home), "home folder"), (str(tmp_path), "home folder")):
        assert _build_cli(out, "--overwrite") == 2
        err = capsys.readouterr().err
        assert f"--out {out} " in err and why in err and "Traceback" not in err
        assert "pass --overwrite" not in err  # the refusal never suggests forcing it
    assert _tree(home) == before


def test_cli_build_refuses_folders_it_did_not_write(capsys, tmp_path, no_build):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.md").write_text("keep me\n")
    assert _build_cli(mine, "--overwrite") == 2
    err = capsys.readouterr().err
    assert f"--out {mine} exists and holds files that openmathmix did not write" in err and "Choose another" in err
    assert _tree(mine) == {"notes.md": b"keep me\n"}
    a_file = tmp_path / "data.txt"
    a_file.write_text("x\n")
    for out in (a_file, a_file / "sub"):
        assert _build_cli(out, "--overwrite") == 2
        assert "file" in capsys.readouterr().err
    assert a_file.read_text() == "x\n"


def test_cli_build_replaces_only_its_own_output_and_only_with_overwrite(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("openmathmix.sources.default_cache_dir", lambda: tmp_path / "cache")
    out = tmp_path / "out"
    assert _build_cli(out) == 0
    capsys.readouterr()
    (out / "stale.txt").write_text("from the first build\n")
    first = _tree(out)
    assert _build_cli(out) == 2
    err = capsys.readouterr().err
    assert f"--out {out} holds an earlier output; pass --overwrite to replace it" in err
    assert _tree(out) == first
    assert _build_cli(out, "--overwrite", "--limit", "3") == 0
    assert not (out / "stale.txt").exists() and len(datasets.load_from_disk(str(out))) == 3
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []  # no temporary folder left


def test_cli_build_failures_leave_the_old_output_as_it_was(capsys, tmp_path, monkeypatch):
    import errno

    monkeypatch.setattr("openmathmix.sources.default_cache_dir", lambda: tmp_path / "cache")
    out = tmp_path / "out"
    assert _build_cli(out) == 0
    capsys.readouterr()
    before = _tree(out)

    def disk_full(self, path, *args, **kwargs):
        (Path(path) / "data-00000-of-00001.arrow").write_bytes(b"half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(datasets.Dataset, "save_to_disk", disk_full)
        assert _build_cli(out, "--overwrite") == 2
    err = capsys.readouterr().err
    assert f"writing --out {out} failed (no space left on the device)" in err and "left as it was" in err
    assert "Traceback" not in err
    assert _tree(out) == before and len(datasets.load_from_disk(str(out))) == 7
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "response": "r"}\n{"query": \n')
    assert main(["sources", "build", "gsm8k_screl", "--data-files", str(bad), "--out", str(out), "--overwrite",
                 "--no-progress"]) == 2
    assert f"{bad}, line 2" in capsys.readouterr().err
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "cache", "out"]


def test_cli_build_refuses_an_out_that_holds_the_source_cache(capsys, tmp_path, monkeypatch, no_build):
    monkeypatch.setattr("openmathmix.sources.default_cache_dir", lambda: tmp_path / "work" / "cache")
    assert _build_cli(tmp_path / "work") == 2
    err = capsys.readouterr().err
    assert f"--out {tmp_path / 'work'} contains the input {tmp_path / 'work' / 'cache'}" in err
