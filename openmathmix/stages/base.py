"""Stage contract (Dataset -> Dataset through `datasets.map`) and the resumable, sharded runner every stage uses.

A stage is a plain callable over a batch (`process_batch(batch, device) -> new columns`), so it can run under
another engine later. `run_stage` is the only place that calls `Dataset.map`:

- the input is cut into contiguous shards; each finished shard is an Arrow file under
  `<cache_dir>/<stage>-<fingerprint>/`, written atomically by `datasets`, so an interrupted run resumes at the first
  unfinished shard and a finished run is reused as is;
- the fingerprint hashes the input dataset's fingerprint, the stage name and `stage.config()` (model id and
  revision, dtype, budgets...), never a pickled model;
- with several GPUs, each shard is mapped with `num_proc = number of GPUs` and `with_rank=True`; rank r uses
  `cuda:r`. Without a GPU it runs in this process on the CPU;
- `worker=(i, m)` lets m machines share one run: machine i computes shards i, i+m, ... into a shared cache
  folder; any machine (or a last call without `worker`) assembles the result once every shard exists;
- counters a stage keeps with `self.count(key, n)` (rows truncated, tokens...) are saved beside each shard
  (`<shard>.arrow.stats.json`, rewritten after every batch, so they are complete once the shard file exists) and
  summed into `stage.report` (a `StageReport`) by every `run_stage` call, reused shards included.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import MissingColumnsError, OpenMathMixError

if TYPE_CHECKING:  # `datasets` is imported where it is used, so importing a stage module stays cheap
    from datasets import Dataset

logger = logging.getLogger(__name__)

DEFAULT_CACHE = Path(os.environ.get("OPENMATHMIX_CACHE", Path.home() / ".cache" / "openmathmix"))


class Stage(ABC):
    """One batched transformation that adds `produces` columns to rows that have `requires` columns."""

    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()
    produces: ClassVar[tuple[str, ...]] = ()

    def config(self) -> dict[str, Any]:
        """Everything that changes the output (model id and revision, dtype, template...): goes into the cache key."""
        return {}

    def setup(self, device: str) -> None:  # noqa: B027 - optional hook
        """Load models lazily, once per process, on `device`."""

    @abstractmethod
    def process_batch(self, batch: dict[str, list], device: str) -> dict[str, list]:
        """Return the new columns for this batch (same number of rows, same order)."""

    def features(self):  # noqa: D401 - optional hook
        """Optional `datasets.Features` of the produced columns (None lets `datasets` infer them)."""
        return None

    def count(self, key: str, n: float = 1) -> None:
        """Add `n` to counter `key` (call it from `process_batch`); `run_stage` sums counters into `self.report`."""
        counts = self.__dict__.setdefault("_counts", Counter())
        counts[key] += n

    def _take_counts(self) -> Counter:
        return self.__dict__.pop("_counts", None) or Counter()


@dataclass
class StageReport:
    """What one `run_stage` call did; `totals` sums the stage's counters over every shard, `computed` over the
    shards computed by this call (the others were reused from the cache or left to other workers)."""

    stage: str
    folder: str
    rows: int
    shards: int
    shards_computed: int = 0
    shards_reused: int = 0
    seconds: float = 0.0  # wall time of the shards computed by this call (model loading included)
    totals: dict[str, float] = field(default_factory=dict)
    computed: dict[str, float] = field(default_factory=dict)
    complete: bool = False  # every shard exists (False when other workers still have shards to do)


@dataclass
class _BatchFn:
    """Picklable wrapper `datasets.map` calls in each process; sets the stage up once per device and saves the
    stage's counters beside the shard file it is writing."""

    stage: Stage
    devices: tuple[str, ...]
    stats_path: str | None = None  # "{rank}" is replaced by the process rank when one shard is split over GPUs

    def __call__(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        device = self.devices[(rank or 0) % len(self.devices)]
        if getattr(self.stage, "_ready_on", None) != device:
            self.stage.setup(device)
            self.stage._ready_on = device
        out = self.stage.process_batch(batch, device)
        if self.stats_path is not None:  # one _BatchFn per shard (and per process): its totals start at zero
            totals = self.__dict__.setdefault("_totals", Counter())
            totals.update(self.stage._take_counts())
            totals["batches"] += 1
            _write_json(self.stats_path.format(rank=rank or 0), dict(totals))
        return out


def available_devices(device: str | None = None) -> tuple[str, ...]:
    """`device` as given ("cpu", "cuda", "cuda:1"), or every visible GPU, or the CPU."""
    import torch

    if device in (None, "auto", "cuda") and torch.cuda.is_available():
        return tuple(f"cuda:{i}" for i in range(torch.cuda.device_count()))
    if device in (None, "auto"):
        return ("cpu",)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise OpenMathMixError(f"device {device!r} was asked for, but torch sees no CUDA GPU; use --device cpu")
    return (device,)


def stage_fingerprint(ds: Dataset, stage: Stage) -> str:
    from datasets.fingerprint import Hasher

    return Hasher.hash({"input": ds._fingerprint, "stage": stage.name, "config": stage.config()})


def check_columns(ds: Dataset, needed: tuple[str, ...], what: str) -> None:
    missing = [c for c in needed if c not in ds.column_names]
    if missing:
        raise MissingColumnsError(
            f"{what} needs column(s) {missing}, but the dataset has {ds.column_names}; run the stage that adds them first"
        )


def run_stage(
    ds: Dataset,
    stage: Stage,
    *,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 256,
    shard_rows: int = 8192,
    device: str | None = None,
    worker: tuple[int, int] | None = None,
    progress: bool = True,
) -> Dataset | None:
    """Apply `stage` to every row of `ds`, resumably. Returns None when `worker` left shards to other machines.

    Sets `stage.report` (a `StageReport`) in every case.
    """
    from datasets import Dataset, concatenate_datasets
    from datasets.fingerprint import Hasher

    check_columns(ds, stage.requires, f"stage {stage.name!r}")
    if worker is not None and not (len(worker) == 2 and worker[1] >= 1 and 0 <= worker[0] < worker[1]):
        raise OpenMathMixError(f"worker must be (i, m) with 0 <= i < m, got {worker!r}")
    if batch_size < 1 or shard_rows < 1:
        raise OpenMathMixError(f"batch_size and shard_rows must be positive, got {batch_size} and {shard_rows}")
    clash = [c for c in stage.produces if c in ds.column_names]
    if clash:
        ds = ds.remove_columns(clash)  # recomputing replaces the old values
    folder = Path(cache_dir or DEFAULT_CACHE) / "stages" / f"{stage.name}-{stage_fingerprint(ds, stage)}"
    folder.mkdir(parents=True, exist_ok=True)
    n_shards = max(1, -(-len(ds) // shard_rows))
    paths = [folder / f"shard-{i:05d}-of-{n_shards:05d}.arrow" for i in range(n_shards)]
    _write_json(folder / "stage.json", {"stage": stage.name, "config": stage.config(), "rows": len(ds)})

    devices = available_devices(device)
    mine = range(n_shards) if worker is None else range(worker[0], n_shards, worker[1])
    todo = [i for i in mine if not paths[i].exists()]
    report = StageReport(stage.name, str(folder), len(ds), n_shards, shards_reused=len(mine) - len(todo))
    if len(todo) < len(mine):
        logger.info("%s: %d of %d shards already done in %s", stage.name, len(mine) - len(todo), len(mine), folder)
    computed: Counter = Counter()
    bars = contextlib.nullcontext() if progress else progress_bars_off()
    with bars:
        for n_done, i in enumerate(todo):
            start = time.perf_counter()
            # python-list batches whatever format the caller set (numpy/torch formats would change process_batch input)
            shard = ds.shard(n_shards, i, contiguous=True).with_format(None)
            num_proc = min(len(devices), len(shard))
            part = paths[i] if num_proc == 1 else _process_file(paths[i], "{rank:05d}", num_proc)
            _drop_stale_stats(paths[i], num_proc)
            shard.map(
                _BatchFn(stage, devices, _stats_path(part)),
                batched=True,
                batch_size=batch_size,
                with_rank=True,
                num_proc=num_proc if num_proc > 1 else None,
                features=_merged_features(shard, stage),
                cache_file_name=str(paths[i]),
                new_fingerprint=Hasher.hash((folder.name, i)),
                desc=f"{stage.name} shard {i + 1}/{n_shards} ({len(todo) - n_done} left to run)",
            )
            if num_proc > 1:  # datasets wrote one file per process: join them into the shard file
                _join_process_files(paths[i], num_proc)
            computed.update(_read_stats(_stats_path(paths[i])))
            report.shards_computed += 1
            report.seconds += time.perf_counter() - start
    report.computed = dict(computed)
    totals: Counter = Counter()
    for p in paths:
        if p.exists():
            totals.update(_read_stats(_stats_path(p)))
    report.totals = dict(totals)
    missing = [p for p in paths if not p.exists()]
    report.complete = not missing
    stage.report = report
    if missing:
        logger.info("%s: %d shards still missing (other workers); call again to assemble", stage.name, len(missing))
        return None
    return concatenate_datasets([Dataset.from_file(str(p)) for p in paths])


def _merged_features(shard: Dataset, stage: Stage):
    produced = stage.features()
    if produced is None:
        return None
    feats = shard.features.copy()
    feats.update(produced)
    return feats


def _process_file(path: Path, rank: int | str, num_proc: int) -> Path:
    """The file `datasets.map(num_proc=...)` writes for one process (its default `suffix_template`)."""
    rank_text = rank if isinstance(rank, str) else f"{rank:05d}"
    return path.with_name(f"{path.stem}_{rank_text}_of_{num_proc:05d}{path.suffix}")


def _stats_path(arrow_path: Path) -> str:
    return str(arrow_path) + ".stats.json"


def _read_stats(path: str | Path) -> dict[str, float]:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}


def _write_json(path: str | Path, obj) -> None:
    """Write atomically: a reader sees the old or the new content, never half a file."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, sort_keys=True))
    os.replace(tmp, path)


def _drop_stale_stats(path: Path, num_proc: int) -> None:
    """Counters of a shard (or of a process's part of it) whose Arrow file was never finished belong to an
    interrupted run: that part is recomputed, so its counters start again from zero."""
    Path(_stats_path(path)).unlink(missing_ok=True)
    if num_proc > 1:
        for r in range(num_proc):
            part = _process_file(path, r, num_proc)
            if not part.exists():
                Path(_stats_path(part)).unlink(missing_ok=True)


@contextlib.contextmanager
def progress_bars_off():
    """Context manager: no `datasets` progress bars inside, the previous setting restored after."""
    import datasets

    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()


def _join_process_files(path: Path, num_proc: int) -> None:
    """With num_proc > 1, `datasets` writes `<name>_0000r_of_0000M.arrow`; merge them (and their counters) into
    `path` atomically, then delete the parts."""
    from datasets import Dataset, concatenate_datasets
    from datasets.fingerprint import Hasher

    parts = [_process_file(path, r, num_proc) for r in range(num_proc)]
    missing = [p.name for p in parts if not p.exists()]
    if missing:
        raise OpenMathMixError(f"parallel map left no file {missing} in {path.parent}; run the stage again")
    merged = concatenate_datasets([Dataset.from_file(str(p)) for p in parts])
    counts: Counter = Counter()
    for p in parts:
        counts.update(_read_stats(_stats_path(p)))
    tmp = path.with_name(path.name + ".tmp")
    merged.map(lambda b: b, batched=True, cache_file_name=str(tmp), new_fingerprint=Hasher.hash(str(path)))
    _write_json(_stats_path(path), dict(counts))  # before the shard file: once that exists, its counters are final
    os.replace(tmp, path)
    for p in parts:
        p.unlink(missing_ok=True)
        Path(_stats_path(p)).unlink(missing_ok=True)
