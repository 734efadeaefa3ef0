"""`run_stage`: resume after an interruption, reuse of a finished run, workers, counters, column checks."""

from __future__ import annotations

import pytest
from datasets import Dataset

from openmathmix.errors import MissingColumnsError, OpenMathMixError
from openmathmix.stages import base
from openmathmix.stages.base import Stage, run_stage


class Interrupted(RuntimeError):
    pass


class Doubler(Stage):
    """y = 2x; counts its calls and can be told to fail after `fail_after` batches (a simulated crash)."""

    name = "doubler"
    requires = ("x",)
    produces = ("y",)

    def __init__(self, fail_after: int | None = None):
        self.calls = 0
        self.fail_after = fail_after

    def config(self):
        return {"factor": 2}

    def process_batch(self, batch, device):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise Interrupted(f"simulated crash in batch {self.calls}")
        xs = list(batch["x"])
        self.count("rows", len(xs))
        self.count("odd", sum(x % 2 for x in xs))
        return {"y": [2 * x for x in xs]}


ROWS = 50
RUN = {"shard_rows": 10, "batch_size": 4, "progress": False}  # 5 shards of 3 batches (4 + 4 + 2 rows)


@pytest.fixture
def ds():
    return Dataset.from_dict({"x": list(range(ROWS)), "tag": [f"r{i}" for i in range(ROWS)]})


def as_rows(d):
    return d.to_dict()


def test_complete_run_output_and_report(ds, tmp_path):
    stage = Doubler()
    out = run_stage(ds, stage, cache_dir=tmp_path, **RUN)
    assert out["y"] == [2 * x for x in range(ROWS)]
    assert out.column_names == ["x", "tag", "y"]
    assert stage.calls == 15
    report = stage.report
    assert (report.shards, report.shards_computed, report.shards_reused, report.complete) == (5, 5, 0, True)
    assert report.totals == {"rows": 50, "odd": 25, "batches": 15}
    assert report.computed == report.totals


def test_interrupted_run_resumes_without_recomputing_finished_shards(ds, tmp_path):
    reference = as_rows(run_stage(ds, Doubler(), cache_dir=tmp_path / "ref", **RUN))

    crashing = Doubler(fail_after=7)  # shards 0 and 1 finish (6 batches); shard 2 dies in its 2nd batch
    with pytest.raises(Interrupted):
        run_stage(ds, crashing, cache_dir=tmp_path / "run", **RUN)
    folder = next((tmp_path / "run" / "stages").iterdir())
    assert sorted(p.name for p in folder.glob("shard-*.arrow")) == [
        "shard-00000-of-00005.arrow", "shard-00001-of-00005.arrow"]

    resumed = Doubler()
    out = run_stage(ds, resumed, cache_dir=tmp_path / "run", **RUN)
    assert resumed.calls == 9  # shards 2, 3, 4 only
    assert as_rows(out) == reference
    assert (resumed.report.shards_computed, resumed.report.shards_reused) == (3, 2)
    # the partial shard's counters were dropped, not added twice
    assert resumed.report.totals == {"rows": 50, "odd": 25, "batches": 15}
    assert resumed.report.computed["rows"] == 30


def test_finished_run_is_reused(ds, tmp_path):
    first = as_rows(run_stage(ds, Doubler(), cache_dir=tmp_path, **RUN))
    again = Doubler()
    out = run_stage(ds, again, cache_dir=tmp_path, **RUN)
    assert again.calls == 0
    assert as_rows(out) == first
    assert (again.report.shards_computed, again.report.shards_reused) == (0, 5)
    assert again.report.totals["rows"] == 50 and again.report.computed == {}


def test_workers_share_a_run(ds, tmp_path):
    reference = as_rows(run_stage(ds, Doubler(), cache_dir=tmp_path / "ref", **RUN))
    w0, w1 = Doubler(), Doubler()
    assert run_stage(ds, w0, cache_dir=tmp_path / "shared", worker=(0, 2), **RUN) is None
    assert w0.calls == 9 and not w0.report.complete  # shards 0, 2, 4
    out = run_stage(ds, w1, cache_dir=tmp_path / "shared", worker=(1, 2), **RUN)
    assert w1.calls == 6  # shards 1, 3; then every shard exists and it assembles
    assert as_rows(out) == reference
    assert w1.report.totals["rows"] == 50
    last = Doubler()
    assert as_rows(run_stage(ds, last, cache_dir=tmp_path / "shared", **RUN)) == reference
    assert last.calls == 0


def test_bad_worker_is_refused(ds, tmp_path):
    with pytest.raises(OpenMathMixError, match="worker"):
        run_stage(ds, Doubler(), cache_dir=tmp_path, worker=(2, 2), **RUN)


def test_missing_column_names_it(tmp_path):
    ds = Dataset.from_dict({"z": [1, 2]})
    with pytest.raises(MissingColumnsError) as err:
        run_stage(ds, Doubler(), cache_dir=tmp_path, **RUN)
    message = str(err.value)
    assert "doubler" in message and "'x'" in message and "['z']" in message


def test_config_and_input_change_the_cache_folder(ds, tmp_path):
    class Tripler(Doubler):
        def config(self):
            return {"factor": 3}

    s1, s2, s3 = Doubler(), Tripler(), Doubler()
    run_stage(ds, s1, cache_dir=tmp_path, **RUN)
    run_stage(ds, s2, cache_dir=tmp_path, **RUN)
    run_stage(ds.select(range(40)), s3, cache_dir=tmp_path, **RUN)
    assert len({s1.report.folder, s2.report.folder, s3.report.folder}) == 3
    assert s2.calls == 15 and s3.calls == 12


def test_existing_output_column_is_replaced_and_format_ignored(ds, tmp_path):
    stale = ds.add_column("y", [-1] * ROWS).with_format("numpy")
    out = run_stage(stale, Doubler(), cache_dir=tmp_path, **RUN)  # a numpy format must not reach process_batch
    assert out["y"] == [2 * x for x in range(ROWS)]


def test_two_processes_join_into_the_same_result(ds, tmp_path, monkeypatch):
    """The multi-GPU path (one process per device, files joined per shard), exercised with two CPU "devices"."""
    reference = as_rows(run_stage(ds, Doubler(), cache_dir=tmp_path / "ref", **RUN))
    monkeypatch.setattr(base, "available_devices", lambda device=None: ("cpu", "cpu"))
    stage = Doubler()
    out = run_stage(ds, stage, cache_dir=tmp_path / "mp", shard_rows=25, batch_size=4, progress=False)
    assert as_rows(out) == reference
    assert stage.report.totals["rows"] == 50
    folder = tmp_path / "mp" / "stages"
    leftovers = [p.name for p in folder.rglob("*_of_*")]
    assert leftovers == []  # per-process parts were merged and removed


def _shards(tmp_path):
    return sorted((tmp_path / "stages").glob("*/shard-*.arrow"))


def test_corrupted_shard_is_detected_and_recomputed(ds, tmp_path, caplog):
    reference = as_rows(run_stage(ds, Doubler(), cache_dir=tmp_path, **RUN))
    victim = _shards(tmp_path)[2]
    data = bytearray(victim.read_bytes())
    for k in range(len(data) - 64, len(data) - 32):  # same size, flipped bytes inside the Arrow body
        data[k] ^= 0xFF
    victim.write_bytes(bytes(data))
    again = Doubler()
    with caplog.at_level("WARNING"):
        out = run_stage(ds, again, cache_dir=tmp_path, **RUN)
    assert as_rows(out) == reference
    assert again.calls == 3  # only the damaged shard's 3 batches ran again
    assert (again.report.shards_computed, again.report.shards_reused) == (1, 4)
    assert any(victim.name in r.getMessage() and "checksum" in r.getMessage() for r in caplog.records)


def test_truncated_or_unsealed_shard_is_recomputed(ds, tmp_path):
    reference = as_rows(run_stage(ds, Doubler(), cache_dir=tmp_path, **RUN))
    first, second = _shards(tmp_path)[:2]
    first.write_bytes(first.read_bytes()[:100])  # truncated
    (second.parent / (second.name + ".done.json")).unlink()  # written but never sealed
    again = Doubler()
    assert as_rows(run_stage(ds, again, cache_dir=tmp_path, **RUN)) == reference
    assert again.report.shards_computed == 2 and again.calls == 6


def test_work_files_of_killed_runs_are_removed(ds, tmp_path):
    run_stage(ds, Doubler(), cache_dir=tmp_path, **RUN)
    folder = _shards(tmp_path)[0].parent
    dead = 2**22 + 12345  # above any pid this machine hands out (pid_max is at most 2**22)
    (folder / f"shard-00003-of-00005.arrow.work-{dead}").mkdir()
    (folder / f"shard-00003-of-00005.arrow.work-{dead}" / "tmpabc").write_bytes(b"x" * 10)
    (folder / f"stage.json.tmp-{dead}-abcdef").write_text("{")
    mine = folder / f"shard-00004-of-00005.arrow.work-{__import__('os').getpid()}"
    mine.mkdir()
    run_stage(ds, Doubler(), cache_dir=tmp_path, **RUN)
    names = {p.name for p in folder.iterdir()}
    assert not any(str(dead) in n for n in names)
    assert mine.name in names  # a live process's work folder is left alone


class SlowDoubler(Doubler):
    def process_batch(self, batch, device):
        import os
        import time

        time.sleep(0.05)
        out = super().process_batch(batch, device)
        self.count(f"pid{os.getpid()}", len(batch["x"]))
        return out


def _run_in_child(ds, cache_dir, queue):
    stage = SlowDoubler()
    out = run_stage(ds, stage, cache_dir=cache_dir, **RUN)
    queue.put((out["y"], stage.report.computed.get("rows", 0), stage.report.totals["rows"]))


def test_two_processes_on_one_cache_share_the_shards(ds, tmp_path):
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    children = [ctx.Process(target=_run_in_child, args=(ds, tmp_path, queue)) for _ in range(2)]
    for c in children:
        c.start()
    results = [queue.get(timeout=120) for _ in children]
    for c in children:
        c.join(timeout=60)
    assert all(c.exitcode == 0 for c in children)
    expected = [2 * x for x in range(ROWS)]
    assert [r[0] for r in results] == [expected, expected]
    assert sum(r[1] for r in results) == ROWS  # every row computed exactly once, across both processes
    assert [r[2] for r in results] == [ROWS, ROWS]


def test_work_is_announced_and_a_days_long_cpu_run_names_the_alternatives(ds, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(base, "RATE_WINDOW_S", 0)
    monkeypatch.setattr(base, "LONG_CPU_RUN_S", 0)  # any remaining work counts as "too long" here
    run_stage(ds, Doubler(), cache_dir=tmp_path, shard_rows=10, batch_size=4, progress=True, device="cpu")
    captured = capsys.readouterr()
    text = " ".join((captured.out + captured.err).split())
    assert "doubler: 50 rows in 5 shard(s) on cpu" in text
    assert "more days" in text and "--device cuda" in text and "--engine ray" in text
    monkeypatch.setattr(base, "LONG_CPU_RUN_S", 10**9)
    run_stage(ds, Doubler(), cache_dir=tmp_path / "b", shard_rows=10, batch_size=4, progress=True, device="cpu")
    assert "more days" not in capsys.readouterr().out


class SortedDoubler(Doubler):
    """Records the order rows reach it in; its sort key asks for the largest x first."""

    seen: list

    def sort_key(self, batch):
        return list(batch["x"])

    def process_batch(self, batch, device):
        self.__dict__.setdefault("seen", []).extend(batch["x"])
        return super().process_batch(batch, device)


def test_uneven_shards_and_whole_shard_ordering(tmp_path):
    ds = Dataset.from_dict({"x": list(range(55))})  # 6 shards of 10, 9, 9, 9, 9, 9 rows (as Dataset.shard cuts)
    stage = SortedDoubler()
    out = run_stage(ds, stage, cache_dir=tmp_path, shard_rows=10, batch_size=4, progress=False)
    assert out["y"] == [2 * x for x in range(55)]  # input order restored
    assert stage.seen[:10] == list(range(9, -1, -1)) and stage.seen[10:19] == list(range(18, 9, -1))
    again = SortedDoubler()
    run_stage(ds, again, cache_dir=tmp_path, shard_rows=10, batch_size=4, progress=False)
    assert again.report.shards_reused == 6 and again.calls == 0  # the uneven shards match their seals
