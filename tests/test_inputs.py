"""Inputs a build must not trust blindly (issue 9): bad bytes, empty files, folders, compressed files, the Hub.

Every case checks the error type and that the message names the file and the line or offset; CLI cases also check
the exit status and that no traceback reaches the user.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openmathmix import readers
from openmathmix.cli import main
from openmathmix.errors import DataFileError, DataFileNotFoundError, SourceError
from openmathmix.sources import build_source, fixture_files, input_files

ROWS = [{"query": f"What is {i} + {i}?", "response": f"{i} + {i} = {2 * i}.\n#### {2 * i}"} for i in range(12)]


def build(name, files, tmp_path, **kwargs):
    return build_source(name, files, cache_dir=tmp_path / "cache", progress=False, **kwargs)


def jsonl_bytes(rows) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def cli(capsys, *argv) -> tuple[int, str, str]:
    rc = main(list(argv))
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setattr("openmathmix.sources.default_cache_dir", lambda: tmp_path / "cli-cache")


# ---- UTF-8 ---------------------------------------------------------------------------------------------------------


def test_bad_byte_in_json_lines_names_line_and_offset(tmp_path, capsys):
    data = bytearray(jsonl_bytes(ROWS))
    at = data.index(b"What is 7")
    data[at + 5] = 0xFF  # inside the question of line 8
    path = tmp_path / "train_use.jsonl"
    path.write_bytes(bytes(data))
    with pytest.raises(DataFileError) as err:
        build("gsm8k_screl", path, tmp_path)
    assert f"{path}, line 8, byte offset {at + 5:,}: invalid UTF-8 (bytes ff" in str(err.value)
    out = tmp_path / "out"
    rc, _, stderr = cli(capsys, "sources", "build", "gsm8k_screl", "--data-files", str(path), "--out", str(out))
    assert rc == 2 and f"{path}, line 8" in stderr and "UTF-8" in stderr and "Traceback" not in stderr
    assert not out.exists()


def test_bad_byte_on_line_1_and_binary_file_starting_with_a_brace(tmp_path, capsys):
    first = tmp_path / "first.jsonl"
    first.write_bytes(b'{"query": "caf\xe9", "response": "r"}\n' + jsonl_bytes(ROWS[:2]))
    with pytest.raises(DataFileError, match=r"first.jsonl, line 1, byte offset 14: invalid UTF-8 \(bytes e9"):
        build("gsm8k_screl", first, tmp_path)
    binary = tmp_path / "model.jsonl"
    binary.write_bytes(b"{" + bytes(range(255, -1, -1)) * 64)
    rc, _, stderr = cli(capsys, "sources", "build", "gsm8k_screl", "--data-files", str(binary), "--out",
                        str(tmp_path / "out"), "--no-progress")
    assert rc == 2 and "Traceback" not in stderr
    assert f"{binary}, line 1, byte offset 1: invalid UTF-8 (bytes ff" in stderr and "binary file" in stderr


def test_bad_byte_inside_a_json_array_on_a_block_boundary(tmp_path, monkeypatch):
    rows = [{"instruction": f"Say {'é' * (i % 5)} {'😀' * (i % 3)} {i}", "input": "", "output": str(i)}
            for i in range(40)]
    good = tmp_path / "alpaca_data.json"
    good.write_bytes(json.dumps(rows, indent=1, ensure_ascii=False).encode("utf-8"))
    monkeypatch.setattr(readers, "READ_BYTES", 7)  # multi-byte characters are cut by nearly every block
    ds, _ = build("alpaca", good, tmp_path)
    assert ds["question"] == [r["instruction"] for r in rows]
    data = bytearray(good.read_bytes())
    at = data.index("Say éé".encode()) + 5  # second byte of an 'é' -> a lone continuation byte
    data[at - 1] = ord("x")
    bad = tmp_path / "alpaca_bad.json"
    bad.write_bytes(bytes(data))
    line = data[:at].count(b"\n") + 1
    with pytest.raises(DataFileError, match=rf"alpaca_bad.json, line {line}, byte offset {at:,}: invalid UTF-8"):
        build("alpaca", bad, tmp_path)


def test_bad_byte_in_a_json_object_and_a_tsv_file(tmp_path):
    obj = tmp_path / "test.json"
    obj.write_bytes(b'{\n "1": {"question_en": "A \xff B", "answer_en": "3"}\n}\n')
    with pytest.raises(DataFileError, match=r"test.json, line 2, byte offset 27: invalid UTF-8"):
        build("dmath", obj, tmp_path)
    tsv = tmp_path / "qasc_train.tsv"
    tsv.write_bytes(b"q1\ta1\tr1\nq2\ta\x802\tr2\n")
    with pytest.raises(DataFileError, match=r"qasc_train.tsv, line 2, byte offset 13: invalid UTF-8 \(bytes 80"):
        build("cot", tsv, tmp_path)


def test_bad_utf8_in_parquet_names_the_row_and_column(tmp_path):
    values = [b"fine", b"also fine", b"bro\xffken"]
    offsets = pa.array([0, 4, 13, 20], pa.int32())
    broken = pa.Array.from_buffers(pa.string(), 3, [None, offsets.buffers()[1], pa.py_buffer(b"".join(values))])
    table = pa.table({"question": broken, "answer": pa.array(["1", "2", "3"])})
    path = tmp_path / "train-00000-of-00001.parquet"
    pq.write_table(table, path)
    with pytest.raises(DataFileError, match=r"train-00000-of-00001.parquet, row 2: column 'question' holds invalid"):
        build("gsm8k_screl", path, tmp_path)


def test_lone_surrogate_escape_is_refused(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(jsonl_bytes(ROWS[:3]) + b'{"query": "half \\ud83d pair", "response": "r"}\n')
    with pytest.raises(DataFileError, match=r"t.jsonl, line 4: a \\u escape encodes half of a surrogate pair"):
        build("gsm8k_screl", path, tmp_path)
    ok = tmp_path / "ok.jsonl"
    ok.write_bytes(b'{"query": "a whole pair \\ud83d\\ude00", "response": "r"}\n')
    ds, _ = build("gsm8k_screl", ok, tmp_path)
    assert ds["question"] == ["a whole pair \U0001f600"]


# ---- empty inputs and inputs without rows --------------------------------------------------------------------------


@pytest.mark.parametrize("name, content", [
    ("empty.jsonl", b""), ("blank.jsonl", b"\n  \n\n"), ("empty_array.json", b"[ ]\n"), ("empty.tsv", b""),
])
def test_empty_files_are_errors(tmp_path, capsys, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    source = "cot" if name.endswith(".tsv") else "gsm8k_screl"
    with pytest.raises(DataFileError, match=rf"{name}: the file (is empty|holds no records)"):
        build(source, path, tmp_path)
    out = tmp_path / "out"
    rc, _, stderr = cli(capsys, "sources", "build", source, "--data-files", str(path), "--out", str(out),
                        "--no-progress")
    assert rc == 2 and name in stderr and "Traceback" not in stderr and not out.exists()


def test_empty_parquet_and_an_empty_file_in_a_folder(tmp_path):
    pq.write_table(pa.table({"question": pa.array([], pa.string()), "answer": pa.array([], pa.string())}),
                   tmp_path / "test.parquet")
    with pytest.raises(DataFileError, match="test.parquet: the file holds no records"):
        build("gsm8k_screl", tmp_path / "test.parquet", tmp_path)
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "a.jsonl").write_bytes(jsonl_bytes(ROWS))
    (folder / "b.jsonl").write_bytes(b"")
    with pytest.raises(DataFileError, match=r"b.jsonl: the file is empty"):
        build("gsm8k_screl", folder, tmp_path)


def test_inputs_that_yield_no_rows_are_errors(tmp_path, capsys):
    rows = [{"question": "q", "generated_solution": "<llm-code>1+1</llm-code>", "error_message": ""},
            {"question": "q", "generated_solution": "<llm-code>2+2</llm-code>", "error_message": "NameError"},
            {"question": " ", "generated_solution": "text", "error_message": "<not_executed>"}]
    path = tmp_path / "train.jsonl"
    path.write_bytes(jsonl_bytes(rows))
    with pytest.raises(DataFileError) as err:
        build("openmathinstruct1_cot", path, tmp_path)
    message = str(err.value)
    assert f"openmathinstruct1_cot: {path} yielded no rows (3 records read" in message
    assert "2 uses code interpreter" in message and "1 empty question" in message
    assert not list((tmp_path / "cache").glob("*"))  # nothing left in the cache
    rc, _, stderr = cli(capsys, "sources", "build", "openmathinstruct1_cot", "--data-files", str(path), "--out",
                        str(tmp_path / "out"))
    assert rc == 2 and "yielded no rows" in stderr and "Traceback" not in stderr


# ---- folders, globs, missing paths ---------------------------------------------------------------------------------


def _messy_folder(root: Path) -> Path:
    folder = root / "raw"
    (folder / "sub" / "deeper").mkdir(parents=True)
    (folder / ".cache" / "huggingface").mkdir(parents=True)
    (folder / "train.jsonl").write_bytes(jsonl_bytes(ROWS[:5]))
    (folder / "sub" / "more.jsonl.gz").write_bytes(gzip.compress(jsonl_bytes(ROWS[5:9])))
    (folder / "sub" / "deeper" / "last.json").write_text(json.dumps(ROWS[9:]), encoding="utf-8")
    (folder / "notes.txt").write_text("not data\n")
    (folder / "table.csv").write_text("query,response\nq,r\n")
    (folder / "sub" / "split.tsv").write_text("q\ta\tr\n")
    (folder / "README.md").write_text("# readme\n")
    (folder / ".gitattributes").write_text("*.jsonl filter=lfs\n")
    (folder / ".cache" / "huggingface" / "train.jsonl.metadata").write_text("x\n")
    return folder


def test_folders_are_read_recursively_and_every_file_not_read_is_named(tmp_path, capsys):
    folder = _messy_folder(tmp_path)
    ds, report = build("gsm8k_screl", folder, tmp_path)
    assert len(ds) == len(ROWS) and report.rows_in == len(ROWS)
    read = [folder / "train.jsonl", folder / "sub" / "more.jsonl.gz", folder / "sub" / "deeper" / "last.json"]
    assert report.inputs == [str(p) for p in sorted(read, key=lambda p: (len(p.parts), str(p)))]
    assert input_files("gsm8k_screl", folder) == [Path(p) for p in report.inputs]
    assert {i.split("/")[1] for i in ds["id"]} == {"train", "more", "last"}
    skipped = report.skipped
    assert set(skipped) == {str(folder / n) for n in ("notes.txt", "table.csv", "README.md", ".gitattributes",
                                                      "sub/split.tsv")} | {str(folder / ".cache") + "/"}
    assert "unsupported file type '.txt'" in skipped[str(folder / "notes.txt")]
    assert "no tab-separated release" in skipped[str(folder / "sub" / "split.tsv")]
    assert skipped[str(folder / ".cache") + "/"] == "hidden folder (1 file(s) not read)"
    # the command prints them, and writes them into build_report.json
    out = tmp_path / "out"
    rc, stdout, _ = cli(capsys, "sources", "build", "gsm8k_screl", "--data-files", str(folder), "--out", str(out),
                        "--no-progress")
    assert rc == 0 and "not read    6 file(s)" in stdout and f"{folder / 'table.csv'}: unsupported" in stdout
    assert json.loads((out / "build_report.json").read_text())["skipped"] == skipped


def test_a_folder_with_nothing_readable_and_missing_paths(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("x")
    with pytest.raises(DataFileError, match=r"no readable data file found \(not read: .*a.txt: unsupported"):
        build("gsm8k_screl", folder, tmp_path)
    with pytest.raises(DataFileError, match=r"a.txt: cannot be read: unsupported file type '.txt'"):
        build("gsm8k_screl", folder / "a.txt", tmp_path)  # a file named on its own must be readable
    for missing in (tmp_path / "absent.jsonl", tmp_path / "absent" / "*.jsonl"):
        with pytest.raises(DataFileNotFoundError) as err:
            input_files("gsm8k_screl", [missing])
        assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, SourceError)
        assert str(missing) in str(err.value)


def test_globs_skip_what_they_cannot_read_and_the_same_file_twice_is_refused(tmp_path):
    folder = _messy_folder(tmp_path)
    files = input_files("gsm8k_screl", str(folder / "**" / "*"))
    assert [p.name for p in files] == ["last.json", "more.jsonl.gz", "train.jsonl"]  # sorted by path
    with pytest.raises(DataFileError, match="the same file is given twice"):
        input_files("gsm8k_screl", [folder / "train.jsonl", folder])


def test_files_with_the_same_stem_get_distinct_origins(tmp_path):
    for part in ("a", "b"):
        (tmp_path / part / "x").mkdir(parents=True)
        (tmp_path / part / "x" / "train.jsonl").write_bytes(jsonl_bytes(ROWS[:2]))
    (tmp_path / "a" / "test.jsonl").write_bytes(jsonl_bytes(ROWS[:1]))
    ds, _ = build("gsm8k_screl", [tmp_path / "a", tmp_path / "b"], tmp_path)
    assert sorted({i.rsplit("/", 1)[0] for i in ds["id"]}) == [
        "gsm8k_screl/a.x.train", "gsm8k_screl/b.x.train", "gsm8k_screl/test"]


# ---- compressed files ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix, compress", [
    (".gz", gzip.compress), (".bz2", bz2.compress), (".xz", lzma.compress),
    (".zst", lambda b: pa.compress(b, codec="zstd", asbytes=True)),
])
def test_compressed_json_lines_arrays_and_tsv(tmp_path, monkeypatch, suffix, compress):
    plain, _ = build("gsm8k_screl", fixture_files("gsm8k_screl"), tmp_path / "plain")
    packed = tmp_path / f"gsm8k_screl.jsonl{suffix}"
    packed.write_bytes(compress(Path(fixture_files("gsm8k_screl")[0]).read_bytes()))
    ds, report = build("gsm8k_screl", packed, tmp_path)
    assert ds.to_list() == plain.to_list() and report.inputs == [str(packed)]
    array = tmp_path / f"alpaca_data.json{suffix}"
    array.write_bytes(compress(Path(fixture_files("alpaca")[0]).read_bytes()))
    assert build("alpaca", array, tmp_path)[0]["answer"] == build("alpaca", fixture_files("alpaca"), tmp_path)[0][
        "answer"]
    tsv = tmp_path / f"cot.tsv{suffix}"
    tsv.write_bytes(compress(Path(fixture_files("cot")[0]).read_bytes()))
    assert build("cot", tsv, tmp_path)[0].to_list() == build("cot", fixture_files("cot"), tmp_path)[0].to_list()
    monkeypatch.setattr(readers, "WHOLE_FILE_BYTES", 0)  # the streamed path reads compressed files too
    assert build("gsm8k_screl", packed, tmp_path / "streamed")[0].to_list() == plain.to_list()


def test_errors_inside_compressed_files_name_the_line(tmp_path, capsys):
    packed = tmp_path / "train.jsonl.gz"
    packed.write_bytes(gzip.compress(jsonl_bytes(ROWS[:4]) + b'{"query": "broken\n'))
    with pytest.raises(DataFileError, match=r"train.jsonl.gz, line 5: invalid JSON"):
        build("gsm8k_screl", packed, tmp_path)
    bad_byte = tmp_path / "bad.jsonl.gz"
    bad_byte.write_bytes(gzip.compress(jsonl_bytes(ROWS[:2]) + b'{"query": "\xc3(", "response": "r"}\n'))
    with pytest.raises(DataFileError, match=r"bad.jsonl.gz, line 3, byte offset \(decompressed\) \d+: invalid UTF-8"):
        build("gsm8k_screl", bad_byte, tmp_path)
    truncated = tmp_path / "cut.jsonl.gz"
    truncated.write_bytes(gzip.compress(jsonl_bytes(ROWS))[:-30])
    rc, _, stderr = cli(capsys, "sources", "build", "gsm8k_screl", "--data-files", str(truncated), "--out",
                        str(tmp_path / "out"))
    assert rc == 2 and f"{truncated}: cannot be read" in stderr and "complete gzip file" in stderr
    assert "Traceback" not in stderr


# ---- the Hub -------------------------------------------------------------------------------------------------------


def test_hub_unreachable_gives_a_message(tmp_path, capsys, monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'openai/gsm8k' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    out = tmp_path / "out"
    rc, _, stderr = cli(capsys, "sources", "build", "gsm8k_screl", "--out", str(out))
    assert rc == 2 and "Traceback" not in stderr and not out.exists()
    assert "gsm8k_screl: cannot reach the Hugging Face Hub to load openai/gsm8k (split 'train'" in stderr
    assert "HF_HUB_OFFLINE" in stderr and "--data-files PATH" in stderr


def test_hub_repo_not_found_gives_a_message(tmp_path, monkeypatch):
    from datasets.exceptions import DatasetNotFoundError

    def missing(*args, **kwargs):
        raise DatasetNotFoundError("Dataset 'TIGER-Lab/MathInstruct' doesn't exist on the Hub or cannot be accessed.")

    monkeypatch.setattr(datasets, "load_dataset", missing)
    with pytest.raises(SourceError, match=r"TIGER-Lab/MathInstruct .* was not found on the Hub, or it is gated"):
        build_source("mathinstruct", cache_dir=tmp_path, progress=False)


def test_files_that_cannot_get_distinct_origins_are_refused(tmp_path):
    (tmp_path / "train.jsonl").write_bytes(jsonl_bytes(ROWS[:2]))
    (tmp_path / "train.json.gz").write_bytes(gzip.compress(jsonl_bytes(ROWS[2:4])))
    with pytest.raises(DataFileError) as err:
        build("gsm8k_screl", tmp_path, tmp_path)
    assert str(err.value).startswith(f"{tmp_path / 'train.json.gz'}, {tmp_path / 'train.jsonl'}: these files differ "
                                     "only in their suffixes")
