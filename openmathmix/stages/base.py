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
  folder; any machine (or a last call without `worker`) assembles the result once every shard exists.
"""

from __future__ import annotations

import json
import logging
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from datasets import Dataset, concatenate_datasets
from datasets.fingerprint import Hasher

from ..errors import MissingColumnsError, OpenMathMixError

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


@dataclass
class _BatchFn:
    """Picklable wrapper `datasets.map` calls in each process; sets the stage up once per device."""

    stage: Stage
    devices: tuple[str, ...]

    def __call__(self, batch: dict[str, list], rank: int | None = None) -> dict[str, list]:
        device = self.devices[(rank or 0) % len(self.devices)]
        if getattr(self.stage, "_ready_on", None) != device:
            self.stage.setup(device)
            self.stage._ready_on = device
        return self.stage.process_batch(batch, device)


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
    """Apply `stage` to every row of `ds`, resumably. Returns None when `worker` left shards to other machines."""
    check_columns(ds, stage.requires, f"stage {stage.name!r}")
    clash = [c for c in stage.produces if c in ds.column_names]
    if clash:
        ds = ds.remove_columns(clash)  # recomputing replaces the old values
    folder = Path(cache_dir or DEFAULT_CACHE) / "stages" / f"{stage.name}-{stage_fingerprint(ds, stage)}"
    folder.mkdir(parents=True, exist_ok=True)
    n_shards = max(1, -(-len(ds) // shard_rows))
    paths = [folder / f"shard-{i:05d}-of-{n_shards:05d}.arrow" for i in range(n_shards)]
    (folder / "stage.json").write_text(json.dumps({"stage": stage.name, "config": stage.config(), "rows": len(ds)}))

    devices = available_devices(device)
    fn = _BatchFn(stage, devices)
    mine = range(n_shards) if worker is None else range(worker[0], n_shards, worker[1])
    todo = [i for i in mine if not paths[i].exists()]
    if len(todo) < len(mine):
        logger.info("%s: %d of %d shards already done in %s", stage.name, len(mine) - len(todo), len(mine), folder)
    for n_done, i in enumerate(todo):
        shard = ds.shard(n_shards, i, contiguous=True)
        shard.map(
            fn,
            batched=True,
            batch_size=batch_size,
            with_rank=True,
            num_proc=len(devices) if len(devices) > 1 else None,
            features=_merged_features(shard, stage),
            cache_file_name=str(paths[i]),
            new_fingerprint=Hasher.hash((folder.name, i)),
            desc=f"{stage.name} shard {i + 1}/{n_shards} ({n_done + 1} of {len(todo)} left to run)",
        )
        if len(devices) > 1:  # datasets wrote one file per process: join them into the shard file
            _join_process_files(paths[i], len(devices))
    missing = [p for p in paths if not p.exists()]
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


def _join_process_files(path: Path, num_proc: int) -> None:
    """With num_proc > 1, `datasets` writes `<name>_0000N_of_0000M.arrow`; merge them into `path` atomically."""
    stem, suffix = path.stem, path.suffix
    parts = [path.with_name(f"{stem}_{r:05d}_of_{num_proc:05d}{suffix}") for r in range(num_proc)]
    parts = [p for p in parts if p.exists()]
    merged = concatenate_datasets([Dataset.from_file(str(p)) for p in parts])
    tmp = path.with_name(path.name + ".tmp")
    merged.map(lambda b: b, batched=True, cache_file_name=str(tmp), new_fingerprint=Hasher.hash(str(path)))
    os.replace(tmp, path)
