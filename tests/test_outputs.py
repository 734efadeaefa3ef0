"""The one output helper: folders a command must never delete or replace, checked on the file system afterwards."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from datasets import Dataset

from openmathmix.cli import main
from openmathmix.errors import OutputError
from openmathmix.outputs import MARKER, check_output, is_ours, output_folder


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_writes_beside_and_swaps_in(tmp_path):
    out = tmp_path / "out"
    with output_folder(out) as tmp:
        assert tmp.parent == tmp_path and tmp != out and not out.exists()
        (tmp / "a.txt").write_text("1")
    assert (out / "a.txt").read_text() == "1" and is_ours(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp folder left behind


def test_an_error_leaves_the_earlier_output_untouched(tmp_path):
    out = tmp_path / "out"
    with output_folder(out) as tmp:
        (tmp / "a.txt").write_text("old")
    before = _tree(out)
    with pytest.raises(RuntimeError), output_folder(out, overwrite=True) as tmp:
        (tmp / "a.txt").write_text("new")
        raise RuntimeError("the command failed half-way")
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_full_disk_is_a_message_and_the_old_output_stays(tmp_path):
    out = tmp_path / "out"
    with output_folder(out) as tmp:
        (tmp / "a.txt").write_text("old")
    before = _tree(out)
    with pytest.raises(OutputError, match="no space left") as err, output_folder(out, overwrite=True):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert str(out) in str(err.value) and "left as it was" in str(err.value)
    assert _tree(out) == before


@pytest.mark.parametrize("case", ["root", "home", "above_home", "is_input", "holds_input", "not_ours",
                                  "ours_without_overwrite", "file", "under_file"])
def test_refusals_name_the_path_and_touch_nothing(case, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home" / "me"))
    (tmp_path / "home" / "me").mkdir(parents=True)
    (tmp_path / "home" / "me" / "notes.txt").write_text("mine")
    data = tmp_path / "proj" / "raw"
    data.mkdir(parents=True)
    (data / "train.jsonl").write_text('{"q": 1}\n')
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "x").write_text("keep")
    ours = tmp_path / "ours"
    with output_folder(ours) as t:
        (t / "y").write_text("keep")
    a_file = tmp_path / "a_file"
    a_file.write_text("keep")
    out, inputs, needle = {
        "root": ("/", [], "root of a file system"),
        "home": (tmp_path / "home" / "me", [], "home folder"),
        "above_home": (tmp_path / "home", [], "home folder"),
        "is_input": (data / "train.jsonl", [data / "train.jsonl"], "the input"),
        "holds_input": (tmp_path / "proj", [data / "train.jsonl"], "contains the input"),
        "not_ours": (stranger, [], "did not write"),
        "ours_without_overwrite": (ours, [], "--overwrite"),
        "file": (a_file, [], "is a file"),
        "under_file": (a_file / "sub", [], "which is a file"),
    }[case]
    before = _tree(tmp_path)
    with pytest.raises(OutputError, match=needle) as err:
        check_output(out, inputs=inputs, overwrite=case not in ("ours_without_overwrite",))
    assert str(out) in str(err.value)
    assert _tree(tmp_path) == before


def test_read_only_file_system_is_refused_before_work(tmp_path, monkeypatch):
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if tmp_path in self.parents or self == tmp_path:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(OutputError, match="read-only file system") as err:
        check_output(tmp_path / "out")
    assert str(tmp_path / "out") in str(err.value)


def test_leftovers_of_killed_runs_are_removed(tmp_path):
    dead = tmp_path / ".out.tmp-4194304999-abcdef01"  # a pid no process can have
    dead.mkdir()
    (dead / "half.arrow").write_bytes(b"x")
    with output_folder(tmp_path / "out") as t:
        (t / "a").write_text("1")
    assert not dead.exists() and (tmp_path / "out" / MARKER).is_file()


@pytest.fixture
def saved(tmp_path):
    ds = Dataset.from_dict({"id": ["a/0/0", "a/0/1"], "source": ["a", "a"], "task": ["reasoning"] * 2,
                            "question": ["1+1?", "2+2?"], "answer": ["2", "4"], "license": ["mit"] * 2})
    ds.save_to_disk(str(tmp_path / "in"))
    return tmp_path / "in"


@pytest.mark.parametrize("where", ["in_itself", "above_input"])
def test_stage_commands_never_write_over_their_input(saved, where, capsys):
    out = saved if where == "in_itself" else saved.parent
    before = _tree(saved.parent)
    code = main(["embed", "--in", str(saved), "--out", str(out), "--overwrite", "--device", "cpu", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "input" in err and str(out) in err and "Traceback" not in err
    assert _tree(saved.parent) == before


def test_build_refuses_a_bad_out_before_any_step(tmp_path, capsys):
    a_file = tmp_path / "release"
    a_file.write_text("not a folder")
    code = main(["build", "--preset", "demo", "--out", str(a_file / "sub"), "--cache-dir", str(tmp_path / "c")])
    captured = capsys.readouterr()
    assert code == 2 and "which is a file" in captured.err and "Traceback" not in captured.err
    assert "[1/" not in captured.out  # no step ran
    assert not (tmp_path / "c").exists()


def test_only_the_output_helper_deletes_folders():
    package = Path(__file__).resolve().parents[1] / "openmathmix"
    users = sorted(str(p.relative_to(package)) for p in package.rglob("*.py") if "rmtree" in p.read_text())
    assert users == ["outputs.py"]


def test_remove_within_refuses_the_root_and_anything_outside(tmp_path):
    from openmathmix.outputs import remove_within

    (tmp_path / "root" / "entry").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    for path in (tmp_path / "root", tmp_path / "elsewhere", tmp_path / "root" / ".." / "elsewhere"):
        with pytest.raises(OutputError, match="not inside"):
            remove_within(path, tmp_path / "root")
    assert (tmp_path / "elsewhere").is_dir() and (tmp_path / "root").is_dir()
    remove_within(tmp_path / "root" / "entry", tmp_path / "root")
    assert not (tmp_path / "root" / "entry").exists()
