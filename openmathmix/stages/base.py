"""Stage contract (Dataset -> Dataset through `datasets.map`) and the resumable, sharded runner every stage uses.

A stage is a plain callable over a batch (`process_batch(batch, device) -> new columns`), so any engine can run it
(`local`: this module; `ray`: `openmathmix.engines.ray`). `run_stage` is the only place that calls `Dataset.map`:

- the input is cut into contiguous shards; each finished shard is an Arrow file under
  `<cache_dir>/stages/<stage>-<key>/`, sealed with its row count, checksum and the stage's counters
  (`openmathmix.cache`). A shard is reused only when it matches its seal; a damaged one is recomputed (and said so);
  an interrupted run resumes at the first unfinished shard and a finished run is reused as is;
- the key hashes the input dataset's fingerprint, the stage name and `stage.config()` (model id and revision,
  dtype, budgets...), never a pickled model;
- each shard is computed under a lock, so several processes on one cache share the work;
- with several GPUs, each shard is mapped with `num_proc = number of GPUs` and `with_rank=True`; rank r uses
  `cuda:r`. Without a GPU it runs in this process on the CPU;
- one progress bar per stage (rows, rate, ETA); counters a stage keeps with `self.count(key, n)` are summed into
  `stage.report` (a `StageReport`), reused shards included.
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

from .. import cache
from ..compat import fingerprint
from ..engines.shards import shard_bounds, shard_order
from ..errors import ConfigError, MissingColumnsError
from ..settings import CACHE_DIR

if TYPE_CHECKING:  # `datasets` is imported where it is used, so importing a stage module stays cheap
    from datasets import Dataset

logger = logging.getLogger(__name__)

DEFAULT_CACHE = CACHE_DIR
ENGINES = ("local", "ray")
SUFFIX_TEMPLATE = "_rank{rank:05d}_of_{num_proc:05d}"  # per-process files of a multi-GPU map (passed to datasets)


class Stage(ABC):
    """One batched transformation that adds `produces` columns to rows that have `requires` columns."""

    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()
    produces: ClassVar[tuple[str, ...]] = ()

    def config(self) -> dict[str, Any]:
        """Everything that changes the output (model id and revision, dtype, template...): goes into the cache key."""
        return {}

    def setup(self, device: str) -> None:
        """Load models lazily, once per process, on `device`."""

    @abstractmethod
    def process_batch(self, batch: dict[str, list], device: str) -> dict[str, list]:
        """Return the new columns for this batch (same number of rows, same order)."""

    def features(self):
        """Optional `datasets.Features` of the produced columns (None lets `datasets` infer them)."""
        return

    def describe_work(self, ds: Dataset) -> str:
        """One line on the work `ds` means for this stage (e.g. tokens, pairs), printed before it starts."""
        return f"{len(ds):,} rows"

    def count(self, key: str, n: float = 1) -> None:
        """Add `n` to counter `key` (call it from `process_batch`); `run_stage` sums counters into `self.report`."""
        counts = self.__dict__.setdefault("_counts", Counter())
        counts[key] += n

    def take_counts(self) -> Counter:
        """The counters kept since the last call (and reset them)."""
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
    """Picklable wrapper `datasets.map` calls in each process; sets the stage up once per device and collects the
    stage's counters (in this process: also advances the stage's progress bar)."""

    stage: Stage
    devices: tuple[str, ...]
    bar: Any = None  # a tqdm bar, only when the map runs in this process
    stats_dir: str | None = None  # worker processes write their counters to `<stats_dir>/counters-<rank>.json`

    def __post_init__(self):
        self.totals: Counter = Counter()

    def __call__(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        device = self.devices[(rank or 0) % len(self.devices)]
        if getattr(self.stage, "_ready_on", None) != device:
            self.stage.setup(device)
            self.stage._ready_on = device
        out = self.stage.process_batch(batch, device)
        self.totals.update(self.stage.take_counts())
        self.totals["batches"] += 1
        if self.bar is not None:
            self.bar.update(len(next(iter(batch.values()))) if batch else 0)
        if self.stats_dir is not None:  # rewritten after every batch: complete once the map has returned
            cache.write_json(Path(self.stats_dir) / f"counters-{rank or 0}.json", dict(self.totals))
        return out

    def __getstate__(self):  # the bar stays in the parent process
        state = dict(self.__dict__)
        state["bar"] = None
        return state


def available_devices(device: str | None = None) -> tuple[str, ...]:
    """`device` as given ("cpu", "cuda", "cuda:1"), or every visible GPU, or the CPU."""
    import torch

    if device in (None, "auto", "cuda") and torch.cuda.is_available():
        return tuple(f"cuda:{i}" for i in range(torch.cuda.device_count()))
    if device in (None, "auto"):
        return ("cpu",)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} was asked for, but torch sees no CUDA GPU; use --device cpu")
    return (device,)


def stage_fingerprint(ds: Dataset, stage: Stage) -> str:
    """The cache key of `stage` applied to `ds`: input fingerprint, stage name and settings."""
    return cache.key({"input": fingerprint(ds), "stage": stage.name, "config": stage.config()})


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
    engine: str = "local",
    ray_address: str | None = None,
) -> Dataset | None:
    """Apply `stage` to every row of `ds`, resumably; return `ds` with the stage's columns added.

    `engine="ray"` runs the same stage on a Ray cluster (`openmathmix.engines.ray`; `ray_address` "auto",
    "HOST:PORT", or None for a local cluster) with its outputs in the same cache entry folder.

    `worker=(i, m)` computes only shards i, i+m, ... and returns None while shards of other workers are missing
    (several processes on one cache need no `worker`: the shard locks share the work). Sets `stage.report`.
    """
    from datasets import Dataset, concatenate_datasets

    check_columns(ds, stage.requires, f"stage {stage.name!r}")
    if worker is not None and not (len(worker) == 2 and worker[1] >= 1 and 0 <= worker[0] < worker[1]):
        raise ConfigError(f"worker must be (i, m) with 0 <= i < m, got {worker!r}")
    if batch_size < 1 or shard_rows < 1:
        raise ConfigError(f"batch_size and shard_rows must be positive, got {batch_size} and {shard_rows}")
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; use one of {list(ENGINES)}")
    clash = [c for c in stage.produces if c in ds.column_names]
    if clash:
        ds = ds.remove_columns(clash)  # recomputing replaces the old values
    folder = cache.entry(cache_dir or CACHE_DIR, "stages", stage.name, stage_fingerprint(ds, stage))
    if engine == "ray":
        if worker is not None:
            raise ConfigError("--worker belongs to the local engine; a Ray cluster schedules the shards itself")
        from ..engines.ray import run_stage_ray

        return run_stage_ray(ds, stage, folder / "ray", shard_rows=shard_rows, batch_size=batch_size,
                             address=ray_address, progress=progress)
    cache.clean_stale_work(folder)
    n_shards = len(shard_bounds(len(ds), shard_rows))
    paths = [folder / f"shard-{i:05d}-of-{n_shards:05d}.arrow" for i in range(n_shards)]
    cache.write_json(folder / "stage.json", {"stage": stage.name, "config": stage.config(), "rows": len(ds)})

    devices = available_devices(device)
    mine = list(range(n_shards)) if worker is None else list(range(worker[0], n_shards, worker[1]))
    sizes = [end - start for start, end in shard_bounds(len(ds), shard_rows)]  # as ds.shard(contiguous=True) cuts
    seals: dict[int, dict] = {}
    for i in mine:
        record = cache.check_sealed(paths[i], rows=sizes[i], repair=False)
        if record is not None:
            seals[i] = record
    report = StageReport(stage.name, str(folder), len(ds), n_shards, shards_reused=len(seals))
    computed: Counter = Counter()
    done = sum(sizes[i] for i in seals)
    if progress and len(seals) < len(mine):
        _announce(stage, ds, devices, n_shards, len(seals), done)
    bar = _Progress(stage.name, len(ds), done, progress, on_cpu=devices == ("cpu",))
    try:
        pending = [i for i in mine if i not in seals]
        while pending:
            waiting = []
            for i in pending:
                with cache.lock(paths[i], wait=False) as held:
                    if not held:
                        waiting.append(i)  # another process computes it: come back when it is done
                        continue
                    record = cache.check_sealed(paths[i], rows=sizes[i])
                    if record is None:
                        start = time.perf_counter()
                        record = _compute_shard(ds, stage, i, n_shards, paths[i], devices, batch_size, bar)
                        computed.update(record["counters"])
                        report.shards_computed += 1
                        report.seconds += time.perf_counter() - start
                    else:
                        report.shards_reused += 1
                        bar.update(sizes[i])
                    seals[i] = record
            if waiting:
                logger.info("%s: waiting for %d shard(s) another process is computing", stage.name, len(waiting))
                for i in waiting:
                    with cache.lock(paths[i]):  # blocks until the other process is done with it
                        pass
            pending = waiting
    finally:
        bar.close()
    report.computed = dict(computed)
    for i in set(range(n_shards)) - set(seals):  # shards of other workers that are done
        record = cache.check_sealed(paths[i], rows=sizes[i], repair=False)
        if record is not None:
            seals[i] = record
    totals: Counter = Counter()
    for record in seals.values():
        totals.update(record.get("counters", {}))
    report.totals = dict(totals)
    report.complete = len(seals) == n_shards
    stage.report = report
    if not report.complete:
        logger.info("%s: %d shard(s) still missing (other workers)", stage.name, n_shards - len(seals))
        return None
    return concatenate_datasets([Dataset.from_file(str(p)) for p in paths])


LONG_CPU_RUN_S = 24 * 3600  # a CPU run projected past this gets a warning that names the alternatives
RATE_WINDOW_S = 60  # seconds of work before the projection is made (model loading and warm-up are in the first)


def _announce(stage: Stage, ds, devices: tuple[str, ...], n_shards: int, reused: int, done: int) -> None:
    from tqdm.auto import tqdm

    cached = f", {done:,} rows in {reused} shard(s) already cached" if reused else ""
    tqdm.write(f"{stage.name}: {stage.describe_work(ds)} in {n_shards} shard(s) on {', '.join(devices)}{cached}")


class _Progress:
    """One progress bar per stage over its rows (rate and ETA; reused shards count as done from the start). On a CPU,
    once a minute of work gives a rate, a run projected to take more than a day says so and names the way out."""

    def __init__(self, name: str, total: int, done: int, enabled: bool, on_cpu: bool):
        from tqdm.auto import tqdm

        self.name, self.total, self.start_done, self.on_cpu = name, total, done, on_cpu
        self.bar = tqdm(total=total, initial=done, desc=name, unit="row", disable=not enabled, dynamic_ncols=True,
                        smoothing=0.1)
        self.enabled, self.warned, self.started = enabled, False, time.perf_counter()

    def update(self, n: int) -> None:
        self.bar.update(n)
        if not (self.enabled and self.on_cpu) or self.warned:
            return
        elapsed = time.perf_counter() - self.started
        rows = self.bar.n - self.start_done
        if elapsed < RATE_WINDOW_S or rows <= 0:
            return
        self.warned = True
        left = (self.total - self.bar.n) * elapsed / rows
        if left > LONG_CPU_RUN_S:
            self.bar.write(f"{self.name}: at {rows / elapsed:,.1f} rows/s this CPU needs about {left / 86400:,.1f} "
                           "more days; run it on GPUs (--device cuda, one process per GPU) or on a Ray cluster "
                           "(--engine ray --ray-address HOST:PORT). Finished shards stay cached either way")

    def close(self) -> None:
        self.bar.close()


def _compute_shard(ds: Dataset, stage: Stage, i: int, n_shards: int, path: Path, devices: tuple[str, ...],
                   batch_size: int, bar) -> dict:
    """Map one shard into `path` (through a work folder that a killed run leaves to `clean_stale_work`); seal it.

    A stage with a `sort_key` (the embedding stage: token counts) gets the whole shard longest first, so each map
    batch holds rows of similar length (little padding); the written shard is put back in input order.
    """
    import numpy as np
    from datasets import Dataset

    # python-list batches whatever format the caller set (numpy/torch formats would change process_batch input)
    shard = ds.shard(n_shards, i, contiguous=True).with_format(None)
    order = shard_order(stage, shard.select_columns(list(stage.requires)).to_dict()) if stage.requires else None
    if order is not None:
        shard = shard.select(order)
    num_proc = min(len(devices), len(shard))
    work = cache.work_dir(path)
    target = work / path.name
    fn = _BatchFn(stage, devices, bar if num_proc == 1 else None, None if num_proc == 1 else str(work))
    with _quiet_datasets():
        out = shard.map(
            fn,
            batched=True,
            batch_size=batch_size,
            with_rank=True,
            num_proc=num_proc if num_proc > 1 else None,
            features=_merged_features(shard, stage),
            cache_file_name=str(target),
            suffix_template=SUFFIX_TEMPLATE,
            new_fingerprint=cache.key((str(path), "map")),
            load_from_cache_file=False,
        )
        if num_proc > 1:  # datasets wrote one file per process: write them into one shard file
            out.map(lambda b: b, batched=True, cache_file_name=str(target.with_suffix(".joined.arrow")),
                    new_fingerprint=cache.key((str(path), "join")), load_from_cache_file=False)
            target = target.with_suffix(".joined.arrow")
            bar.update(len(shard))
        if order is not None:  # back to input order
            restored = work / f"restored-{path.name}"
            Dataset.from_file(str(target)).select(np.argsort(order, kind="stable")).flatten_indices(
                cache_file_name=str(restored), new_fingerprint=cache.key((str(path), "restore")))
            target = restored
    counters = fn.totals if num_proc == 1 else Counter()
    for part in work.glob("counters-*.json"):  # the worker processes' counters
        counters.update(json.loads(part.read_text(encoding="utf-8")))
    del out
    os.replace(target, path)
    record = cache.seal(path, rows=len(shard), counters=dict(counters))
    cache.remove_work(work)
    return record


def _merged_features(shard: Dataset, stage: Stage):
    produced = stage.features()
    if produced is None:
        return None
    feats = shard.features.copy()
    feats.update(produced)
    return feats


@contextlib.contextmanager
def _quiet_datasets():
    """No `datasets` progress bars inside (the stage has its own bar); the previous setting restored after."""
    with progress_bars_off():
        yield


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
