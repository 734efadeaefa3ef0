"""Native file formats of the sources: the real published files (when ../shared is there) and broken inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openmathmix.builders import oasst1

from openmathmix import readers
from openmathmix.errors import DataFileError, DataFileNotFoundError
from openmathmix.sources import build_source

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
COT_LINES = {"aqua": 2728, "creak": 6915, "ecqa": 7112, "gsm8k": 7473, "qasc": 1084, "sensemaking": 6070,
             "strategyqa": 2061}


@pytest.fixture(scope="module")
def real() -> Path:
    if not REALDATA.is_dir():
        pytest.skip(f"real data folder {REALDATA} is absent")
    return REALDATA


def build(name, files, tmp_path, **kwargs):
    return build_source(name, files, cache_dir=tmp_path, progress=False, **kwargs)


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


# ---- real published files -----------------------------------------------------------------------------------------


def test_real_gsm8k_screl_train_use(real, tmp_path):
    ds, report = build("gsm8k_screl", real / "gsm8k_screl" / "train_use.jsonl", tmp_path)
    assert len(ds) == report.rows_in == 7_473 and report.dropped == {}
    assert ds[0]["id"] == "gsm8k_screl/train_use/0"
    assert ds[0]["answer"].endswith("#### 72") and "<<48/2=24>>" in ds[0]["answer"]


def test_real_tal_scq5k_en_train(real, tmp_path):
    ds, report = build("tal_scq5k_en", real / "tal_scq5k_en" / "en_single_choice_train_3K.jsonl", tmp_path)
    assert len(ds) == 3_000 and report.rows_in == 3_000
    first = ds[0]
    assert first["question"].splitlines()[1:] == ["(A) $$0$$", "(B) $$1$$", "(C) $$2$$", "(D) $$5$$", "(E) $$8$$"]
    assert first["answer"].endswith("\nThe answer is (A).")


def test_real_dmath_test_json(real, tmp_path):
    ds, report = build("dmath", real / "dmath" / "test.json", tmp_path)
    assert len(ds) == 2_079 and report.rows_in == 2_079
    assert ds[0]["answer"] == "14.5" and ds[0]["question"].startswith("We are trying to stick a tape")
    assert ds[-1]["id"] == "dmath/test/2078"


def test_real_flan_cot_tsv_files(real, tmp_path):
    files = sorted((real / "cot").glob("*_train.tsv"))
    assert len(files) == 7
    ds, report = build("cot", files, tmp_path)
    assert report.rows_in == sum(COT_LINES.values()) == 33_443
    assert report.rows_in == report.rows_out + report.n_dropped
    origins = {i.split("/")[1] for i in ds["id"]}
    assert origins == {f"{k}_train" for k in COT_LINES}
    creak = ds.filter(lambda r: r["id"] == "cot/creak_train/0")[0]
    assert "\\n" not in creak["question"] and "\nOptions:\n- yes\n- no" in creak["question"]
    assert creak["answer"].endswith("\nSo the answer is no.")
    # the folder works as well as the file list
    _, again = build("cot", real / "cot", tmp_path)
    assert again.rows_out == report.rows_out


def _count_messages(msg: dict) -> int:
    return 1 + sum(_count_messages(r) for r in msg.get("replies") or [])


def test_real_oasst_trees_account_for_every_message(real, tmp_path):
    tree_file = real / "oasst_format" / "en_100_tree.jsonl"
    message_file = real / "oasst_format" / "en_100_message.jsonl"
    trees = [json.loads(line) for line in tree_file.read_text().splitlines()]
    total = sum(_count_messages(t["prompt"]) for t in trees)
    ds, report = build("oasst1", [tree_file, message_file], tmp_path)
    assert report.unit == "message" and report.records_in == 200
    assert report.rows_in == 2 * total
    assert report.rows_in == report.rows_out + report.n_dropped + report.n_merged
    assert report.merged == {oasst1.MERGED_ANSWER: report.rows_out}
    assert report.dropped[oasst1.DROP_OFF_PATH] > 0
    # both layouts hold the same trees: the same conversations come out
    by_file = {}
    for row in ds:
        by_file.setdefault(row["id"].split("/")[1], []).append((row["question"], row["answer"]))
    assert by_file["en_100_tree"] == by_file["en_100_message"] and len(by_file["en_100_tree"]) == 100
    # the answer is the rank-0 reply of the root prompt
    first = trees[0]["prompt"]
    best = min((r for r in first["replies"] if r.get("rank") is not None), key=lambda r: r["rank"])
    assert by_file["en_100_tree"][0] == (first["text"].strip(), best["text"].strip())


def test_real_oasst_flat_rows_rebuild_the_same_trees(real, tmp_path):
    flat = []

    def flatten(msg, tree_id):
        flat.append({k: v for k, v in msg.items() if k != "replies"} | {"message_tree_id": tree_id})
        for reply in msg.get("replies") or []:
            flatten(reply, tree_id)

    lines = (real / "oasst_format" / "en_100_message.jsonl").read_text().splitlines()
    for line in lines:
        root = json.loads(line)
        flatten(root, root["message_id"])
    path = write_jsonl(tmp_path / "flat.jsonl", flat)
    ds_flat, report = build("oasst1", path, tmp_path)
    ds_tree, _ = build("oasst1", real / "oasst_format" / "en_100_message.jsonl", tmp_path)
    assert report.rows_in == len(flat) == report.rows_out + report.n_dropped + report.n_merged
    assert list(zip(ds_flat["question"], ds_flat["answer"], strict=True)) == list(
        zip(ds_tree["question"], ds_tree["answer"], strict=True))


def test_real_self_instruct_seed_tasks(real, tmp_path):
    ds, report = build("self_instruct", real / "self_instruct" / "seed_tasks.jsonl", tmp_path)
    assert report.unit == "instance" and report.records_in == 175
    assert report.rows_in == report.rows_out + report.n_dropped and len(ds) == 175
    assert ds[0]["id"] == "self_instruct/seed_tasks/0.0"


# ---- mapping details -----------------------------------------------------------------------------------------------


def test_oasst_rank_rules_and_deleted_subtrees(tmp_path):
    tree = {"message_tree_id": "t", "prompt": {
        "message_id": "p", "role": "prompter", "text": "Question?", "replies": [
            {"message_id": "a", "role": "assistant", "text": "unranked", "replies": []},
            {"message_id": "b", "role": "assistant", "text": "deleted", "rank": 0, "deleted": True, "replies": [
                {"message_id": "b1", "role": "prompter", "text": "under deleted", "replies": []}]},
            {"message_id": "c", "role": "assistant", "text": "rank one", "rank": 1, "replies": [
                {"message_id": "c1", "role": "prompter", "text": "follow-up", "replies": [
                    {"message_id": "c2", "role": "assistant", "text": "second answer", "replies": []}]}]},
        ]}}
    lonely = {"message_tree_id": "u", "prompt": {"message_id": "q", "role": "prompter", "text": "Anyone?"}}
    ds, report = build("oasst1", write_jsonl(tmp_path / "trees.jsonl", [tree, lonely]), tmp_path)
    assert ds["answer"] == ["rank one"]  # a ranked reply beats an unranked one; deleted replies never count
    assert report.dropped == {
        oasst1.DROP_DELETED: 1, oasst1.DROP_UNDER_DELETED: 1, oasst1.DROP_OFF_PATH: 1,
        oasst1.DROP_LATER_TURN: 2, oasst1.DROP_NO_REPLY: 1,
    }
    assert report.rows_in == 8 and report.merged == {oasst1.MERGED_ANSWER: 1}


def test_oasst_flat_orphans_and_duplicates(tmp_path):
    rows = [
        {"message_id": "r", "parent_id": None, "role": "prompter", "text": "Hi?"},
        {"message_id": "x", "parent_id": "r", "role": "assistant", "text": "Hello."},
        {"message_id": "x", "parent_id": "r", "role": "assistant", "text": "again"},
        {"message_id": "o", "parent_id": "missing", "role": "assistant", "text": "orphan"},
    ]
    ds, report = build("oasst1", write_jsonl(tmp_path / "flat.jsonl", rows), tmp_path)
    assert ds["id"] == ["oasst1/flat/0"]
    assert report.dropped == {oasst1.DROP_DUPLICATE: 1, oasst1.DROP_ORPHAN: 1} and report.rows_in == 4


def test_self_instruct_hub_prompt_completion(tmp_path):
    rows = [{"prompt": "Give an antonym of the word.\nInput: hot\nOutput:", "completion": " cold<|endoftext|>"},
            {"prompt": "Say nothing.", "completion": " <|endoftext|>"}]
    ds, report = build("self_instruct", write_jsonl(tmp_path / "train.jsonl", rows), tmp_path)
    assert ds["answer"] == ["cold"] and report.dropped == {"empty answer": 1}
    assert ds["question"] == ["Give an antonym of the word.\nInput: hot\nOutput:"]


def test_instruction_and_input_are_joined(tmp_path):
    rows = [{"instruction": "Add the numbers.", "input": "3, 4", "output": "7"},
            {"instruction": "Name a prime.", "input": "  ", "output": "2"}]
    path = tmp_path / "alpaca_data.json"
    path.write_text(json.dumps(rows))
    ds, _ = build("alpaca", path, tmp_path)
    assert ds["question"] == ["Add the numbers.\n\n3, 4", "Name a prime."]


def test_lila_hub_columns_and_parquet(tmp_path):
    table = pa.table({"input": ["What is 6 * 7?", "Compute 2 ** 5."], "output_program": ["print(6 * 7)", None],
                      "output_answer": ["42", "32"]})
    pq.write_table(table, tmp_path / "0000.parquet")
    ds, report = build("lila_ood", tmp_path / "0000.parquet", tmp_path)
    assert ds["answer"] == ["print(6 * 7)"] and report.dropped == {"empty answer": 1}


def test_baize_first_exchange(tmp_path):
    rows = [{"topic": "t", "input": "The conversation between human and AI assistant.\n[|Human|] What is 5 + 5?\n"
                                    "[|AI|] 5 + 5 = 10.\n[|Human|] And 6 + 6?\n[|AI|] 12.\n[|Human|] "},
            {"topic": "t", "input": "The conversation between human and AI assistant.\n[|Human|] Hello?"}]
    path = tmp_path / "quora_chat_data.json"
    path.write_text(json.dumps(rows))
    ds, report = build("baize", path, tmp_path)
    assert (ds["question"], ds["answer"]) == (["What is 5 + 5?"], ["5 + 5 = 10."])
    assert report.dropped == {"empty answer": 1}


def test_evol_instruct_multi_turn_keeps_the_first_exchange(tmp_path):
    rows = [{"idx": "1", "conversations": [{"from": "human", "value": "A?"}, {"from": "gpt", "value": "B."},
                                           {"from": "human", "value": "C?"}, {"from": "gpt", "value": "D."}]}]
    path = tmp_path / "evol.json"
    path.write_text(json.dumps(rows))
    ds, _ = build("evol_instruct_v2", path, tmp_path)
    assert (ds["question"], ds["answer"]) == (["A?"], ["B."])


def test_openmathinstruct_drops_code_solutions(tmp_path):
    rows = [{"question": "1 + 1?", "generated_solution": "It is \\boxed{2}.", "error_message": "<not_executed>"},
            {"question": "2 + 2?", "generated_solution": "<llm-code>2+2</llm-code>", "error_message": ""},
            {"question": "3 + 3?", "generated_solution": "<llm-code>3+</llm-code>", "error_message": "SyntaxError"}]
    ds, report = build("openmathinstruct1_cot", write_jsonl(tmp_path / "train.jsonl", rows), tmp_path)
    assert ds["question"] == ["1 + 1?"] and report.dropped == {"uses code interpreter": 2}


def test_numbers_become_text_and_dates_stay_text(tmp_path):
    rows = [{"question": "2023-07-07", "answer": 12}, {"question": "Half of 5?", "answer": 2.5}]
    ds, _ = build("kpmath_plus", write_jsonl(tmp_path / "kp.jsonl", rows), tmp_path)
    assert ds["question"] == ["2023-07-07", "Half of 5?"] and ds["answer"] == ["12", "2.5"]


def test_json_array_is_decoded_in_small_pieces(tmp_path, monkeypatch):
    rows = [{"source": "s", "instruction": f"Question {i} " + "é" * (i % 17), "output": "}]," * (i % 4) + str(i)}
            for i in range(200)]
    path = tmp_path / "MathInstruct.json"
    path.write_text(json.dumps(rows, indent=1, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setattr(readers, "READ_BYTES", 29)
    ds, report = build("mathinstruct", path, tmp_path, batch_rows=16)
    assert report.rows_out == 200 and ds["answer"] == [r["output"] for r in rows]


def test_jsonl_switches_to_python_when_pyarrow_gives_up(tmp_path, monkeypatch):
    # the answer column changes type after the first block; pyarrow stops, Python reads the rest
    rows = [{"query": f"q{i}", "response": "r"} for i in range(50)] + [{"query": "q50", "response": {"x": 1}}]
    monkeypatch.setattr(readers, "JSON_BLOCK_BYTES", 256)
    with pytest.raises(DataFileError, match=r"line 51 \(row 50\): column 'response' holds an object"):
        build("gsm8k_screl", write_jsonl(tmp_path / "mixed.jsonl", rows), tmp_path)
    rows[-1]["response"] = 7
    ds, _ = build("gsm8k_screl", write_jsonl(tmp_path / "mixed.jsonl", rows), tmp_path, batch_rows=8)
    assert len(ds) == 51 and ds[-1]["answer"] == "7" and ds[-1]["id"] == "gsm8k_screl/mixed/50"


# ---- broken inputs -------------------------------------------------------------------------------------------------


def test_invalid_json_line_names_file_and_line(tmp_path):
    path = tmp_path / "train_use.jsonl"
    path.write_text('{"query": "a", "response": "b"}\n\n{"query": "c", "response": "d"}\n{"query": "e", "resp\n')
    with pytest.raises(DataFileError) as err:
        build("gsm8k_screl", path, tmp_path)
    message = str(err.value)
    assert f"{path}, line 4" in message and "invalid JSON" in message
    assert "expected one complete JSON object" in message


def test_missing_required_column(tmp_path):
    rows = [{"query": "q", "answer_text": "a"}, {"query": "q", "answer_text": "b"}]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(DataFileError) as err:
        build("gsm8k_screl", path, tmp_path)
    message = str(err.value)
    assert str(path) in message and "missing required column(s) ['response']" in message
    assert "found columns ['answer_text', 'query']" in message and "{query, response} or {question, answer}" in message


def test_wrong_type_names_the_line_the_column_and_the_type(tmp_path):
    rows = [{"query": "q", "response": "r"}, {"query": ["not", "text"], "response": "r"}]
    with pytest.raises(DataFileError) as err:
        build("gsm8k_screl", write_jsonl(tmp_path / "t.jsonl", rows), tmp_path)
    assert "t.jsonl, line 2 (row 1): column 'query' holds a list, expected a string" in str(err.value)
    tal = {"problem": "p", "answer_option_list": "A", "answer_analysis": [], "answer_value": "A"}
    with pytest.raises(DataFileError, match="column 'answer_option_list' holds a string 'A', expected a list"):
        build("tal_scq5k_en", write_jsonl(tmp_path / "tal.jsonl", [tal, tal]), tmp_path)


def test_empty_question_and_answer_are_counted(tmp_path):
    rows = [{"query": "q", "response": "r"}, {"query": "  ", "response": "r"}, {"query": "q", "response": ""},
            {"query": None, "response": None}, {"query": "q2", "response": "r2"}]
    ds, report = build("gsm8k_screl", write_jsonl(tmp_path / "t.jsonl", rows), tmp_path)
    assert report.dropped == {"empty question": 2, "empty answer": 1}
    assert ds["id"] == ["gsm8k_screl/t/0", "gsm8k_screl/t/4"]


def test_bad_tsv_line(tmp_path):
    path = tmp_path / "qasc_train.tsv"
    path.write_text("q1\ta1\tr1\nq2\ta2\n")
    with pytest.raises(DataFileError, match=r"qasc_train.tsv, line 2: found 2 tab-separated fields, expected 3"):
        build("cot", path, tmp_path)
    with pytest.raises(DataFileError, match="no tab-separated release"):
        build("gsm8k_screl", path, tmp_path)


def test_broken_json_array(tmp_path):
    path = tmp_path / "alpaca_data.json"
    path.write_text('[\n {"instruction": "a", "output": "b"},\n {"instruction": "c", "output": }\n]\n')
    with pytest.raises(DataFileError, match=r"alpaca_data.json, line 3 \(row 1\): found invalid JSON"):
        build("alpaca", path, tmp_path)
    path.write_text('[{"instruction": "a", "output": "b"}, "just text"]')
    with pytest.raises(DataFileError, match="expected a JSON object for each record"):
        build("alpaca", path, tmp_path)


def test_not_json_and_unknown_suffix(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('"a bare string"\n"another"\n')
    with pytest.raises(DataFileError, match="line 1: found .* expected JSON"):
        build("gsm8k_screl", path, tmp_path)
    other = tmp_path / "x.csv"
    other.write_text("a,b\n")
    with pytest.raises(DataFileError, match="unsupported file type '.csv'"):
        build("gsm8k_screl", other, tmp_path)
    with pytest.raises(DataFileNotFoundError, match="absent.jsonl: no such file or folder") as err:
        build("gsm8k_screl", tmp_path / "absent.jsonl", tmp_path)
    assert isinstance(err.value, FileNotFoundError)


def test_real_aqua_rat_release_through_the_mathinstruct_subset(real, tmp_path):
    ds, report = build("mathinstruct_aqua_rat", real / "aqua_rat" / "dev.json", tmp_path)
    assert len(ds) == report.rows_in == 254
    assert ds[0]["question"].endswith("\nAnswer Choices: (A) 32400 (B) 6000 (C) 600 (D) 60000 (E) 10")
    assert ds[0]["answer"].endswith("\nThe answer is A.")


def test_real_math_release_layout(real, tmp_path):
    ds, report = build("mathinstruct_math", real / "math_hendrycks_test" / "test.jsonl", tmp_path)
    assert len(ds) == report.rows_in == 5_000 and "\\boxed" in ds[0]["answer"]


def test_streaming_reads_match_whole_file_reads(tmp_path, monkeypatch):
    from openmathmix.sources import fixture_files

    whole = {name: build(name, fixture_files(name), tmp_path / "a")[0].to_list() for name in ("gsm8k_screl", "cot")}
    monkeypatch.setattr(readers, "WHOLE_FILE_BYTES", 0)  # every file streams block by block
    monkeypatch.setattr(readers, "JSON_BLOCK_BYTES", 2048)
    for name, rows in whole.items():
        assert build(name, fixture_files(name), tmp_path / "b", batch_rows=3)[0].to_list() == rows


# ---- the other published layouts (fixtures under builders/fixtures/layouts/) --------------------------------------


def layout(name: str, file: str) -> str:
    from openmathmix.sources import layout_fixtures

    return next(p for p in layout_fixtures(name) if p.endswith(file))


def test_hub_parquet_layouts(tmp_path):
    ds, report = build("dmath", layout("dmath", "train-00000-of-00001.parquet"), tmp_path)
    assert len(ds) == 5 and report.dropped == {"empty answer": 1} and ds[0]["answer"] == "36"
    ds, _ = build("gsm8k_screl", layout("gsm8k_screl", ".parquet"), tmp_path)
    assert ds[1]["id"] == "gsm8k_screl/train-00000-of-00001/1" and ds[1]["answer"].endswith("#### 15")
    ds, report = build("lila_ood", layout("lila_ood", "0000.parquet"), tmp_path)
    assert ds[0]["answer"] == "print(2024 % 7)" and report.dropped == {"empty answer": 1}


def test_openmathinstruct_decides_from_the_solution_without_error_message(tmp_path):
    ds, report = build("openmathinstruct1_cot", layout("openmathinstruct1_cot", "without_error_message.jsonl"),
                       tmp_path)
    assert report.dropped == {"uses code interpreter": 2} and len(ds) == 4
    assert not any("<llm-code>" in a for a in ds["answer"])
    # where error_message is there it decides; null falls back to the solution; is_correct false is dropped
    rows = [{"question": "a", "generated_solution": "no tag, but it ran code", "error_message": ""},
            {"question": "b", "generated_solution": "plain text", "error_message": None},
            {"question": "c", "generated_solution": "<llm-code>1</llm-code>", "error_message": None},
            {"question": "d", "generated_solution": "plain", "error_message": "<not_executed>", "is_correct": False},
            {"question": "e", "generated_solution": "plain", "error_message": "<not_executed>", "is_correct": True}]
    ds, report = build("openmathinstruct1_cot", write_jsonl(tmp_path / "mixed.jsonl", rows), tmp_path)
    assert ds["question"] == ["b", "e"]
    assert report.dropped == {"uses code interpreter": 2, "incorrect solution (is_correct is false)": 1}


def test_cot_and_flan_templated_and_tulu_layouts(tmp_path):
    ds, report = build("cot", layout("cot", "part.0.parquet"), tmp_path)
    assert len(ds) == 5 and report.dropped == {"empty answer": 1}
    assert ds[1]["answer"] == "She had 5 and ate 2, so 5 - 2 = 3 remain. So the answer is 3."
    ds, report = build("cot", layout("cot", "tulu_v2_sft_mixture.jsonl"), tmp_path)
    assert ds["id"] == ["cot/tulu_v2_sft_mixture/0", "cot/tulu_v2_sft_mixture/2", "cot/tulu_v2_sft_mixture/3",
                        "cot/tulu_v2_sft_mixture/5"]
    assert report.dropped == {"filtered: dataset != cot": 2} and ds[0]["question"].endswith("step by step.")
    ds, report = build("flan_v2", layout("flan_v2", "resampled_flan_50k.jsonl"), tmp_path)
    assert len(ds) == 5 and report.dropped == {"empty answer": 1} and ds[4]["answer"] == "vielen Dank"


def test_oasst_tree_export_and_guanaco_layouts(tmp_path):
    ds, report = build("oasst1", layout("oasst1", "oasst_ready.trees.jsonl"), tmp_path)
    assert ds["answer"][:3] == ["Put it in a bowl of water: a fresh egg sinks and lies flat.",
                                ("Weather is the state of the air on a given day; climate is its long-term average "
                                "over decades."), "Start with scarves: they fall slowly and give you time."]
    assert ds["answer"][-1] == "Chess never gets old, and you can play it anywhere."  # the rank-0 reply is deleted
    assert report.rows_in == 16 and report.merged == {oasst1.MERGED_ANSWER: 5}
    assert report.dropped == {oasst1.DROP_LATER_TURN: 2, oasst1.DROP_OFF_PATH: 2, oasst1.DROP_DELETED: 1,
                              oasst1.DROP_NO_REPLY: 1}
    ds, report = build("oasst1", layout("oasst1", "guanaco_train.jsonl"), tmp_path)
    assert ds["question"][1] == "Name a prime number between 20 and 30."
    assert ds["answer"][1] == "23 is one; 29 is another."  # the first exchange of a multi-turn path
    assert ds["answer"][2] == "La capital de Perú es Lima." and report.dropped == {"empty answer": 1}


def test_self_instruct_layouts_and_math_release_folders(tmp_path):
    ds, report = build("self_instruct", layout("self_instruct", "gpt3_finetuning_data.jsonl"), tmp_path)
    assert ds["answer"][:2] == ["fast", "Wash and put away your dishes the same day."]
    assert report.dropped == {"empty answer": 1}
    ds, _ = build("self_instruct", layout("self_instruct", "all_instances_82K.jsonl"), tmp_path)
    assert ds["question"][:2] == ["Convert the temperature from Celsius to Fahrenheit.\n\n25 C",
                                  "Write a haiku about the sea."]
    folder = Path(layout("mathinstruct_math", "17.json")).parents[1]  # train/: one JSON object per problem
    ds, report = build("mathinstruct_math", folder, tmp_path)
    assert report.inputs == sorted(report.inputs) and len(report.inputs) == 3 and len(ds) == 3
    assert ds[0]["question"] == "What is the value of $x$ if $3x - 4 = 11$?"
    assert ds[0]["id"] == "mathinstruct_math/17/0"
    ds, _ = build("mathinstruct_aqua_rat", layout("mathinstruct_aqua_rat", "train.json"), tmp_path)
    assert ds[0]["question"].endswith("Answer Choices: (A) $9 (B) $12 (C) $15 (D) $18 (E) $24")
    assert ds[0]["answer"] == "8 pens are 4 groups of 2, so they cost 4 * 3 = $12.\nThe answer is B."
