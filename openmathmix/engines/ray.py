"""The Ray engine: a model stage over a Ray cluster with Ray Data, one actor per GPU, resumable shard by shard.

    run_stage_ray(ds, EmbedStage(model), folder, address="auto")    # `folder`: the stage's cache entry

How a run goes:
1. the rows are cut into the local runner's contiguous shards (`engines.shards.shard_bounds`). A shard is done when
   its output `shard-IIIII-of-NNNNN.parquet` in `folder` matches its seal (`openmathmix.cache`: size, sha256, row
   count, the stage's counters). The inputs of the other shards (the stage's `requires` columns only) are written
   as parquet into a work folder beside them;
2. Ray Data maps the list of shards to do with `map_batches` over a callable class in an actor pool
   (`ActorPoolStrategy`): each actor sets the stage up once (one GPU per actor when the cluster has GPUs), then
   for each shard reads its input, runs `engines.shards.run_shard` (the whole shard longest first when the stage
   has a `sort_key`), writes the output parquet under its final name and seals it. Rows never travel through the
   object store, only shard descriptors and one summary row per shard, so the object store stays small;
3. the driver shows one progress bar (rows, rate, ETA), then assembles the result in input order: the input
   dataset plus the produced columns, read memory-mapped from a sealed Arrow copy of each output
   (`shard-*.produced.arrow`).

A killed or failed run leaves every finished shard sealed in `folder`; the next call computes only the missing
ones. An actor that dies (a lost node, an OOM kill) is restarted by Ray and its shard retried; an exception raised
by the stage stops the run and is re-raised with the number of shards kept. On a cluster of several machines
`folder` must be on storage every node sees at the same path (NFS or similar), and every node needs openmathmix
and its model files.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import resource
import time
import traceback
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import cache
from ..errors import ConfigError, MissingDependencyError, OpenMathMixError
from ..stages.base import Stage, StageReport, check_columns
from .shards import run_shard, shard_bounds

if TYPE_CHECKING:  # `datasets` and `ray` are imported where they are used
    from datasets import Dataset

__all__ = ["RayStageReport", "ShardWorker", "init_ray", "run_stage_ray"]

logger = logging.getLogger(__name__)

LOCAL_OBJECT_STORE = 256 * 2**20  # a local cluster's object store: it only carries shard descriptors and summaries


@dataclass
class RayStageReport(StageReport):
    """`StageReport` plus the actor pool's shape and the largest resident memory an actor reached."""

    actors: int = 0
    gpus_per_actor: float = 0.0
    cpus_per_actor: float = 0.0
    worker_peak_rss_mib: float = 0.0


def init_ray(address: str | None = None, *, num_cpus: int | None = None,
             object_store_memory: int | None = None) -> None:
    """Connect to the Ray cluster at `address` ("auto", "HOST:PORT", "ray://HOST:10001"), or start a local one
    without a dashboard (`num_cpus`: default all; `object_store_memory`: default 256 MiB). Does nothing when this
    process is already connected."""
    ray = _import_ray()
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address)
    else:
        ray.init(num_cpus=num_cpus, object_store_memory=object_store_memory or LOCAL_OBJECT_STORE,
                 include_dashboard=False)


def run_stage_ray(
    ds: Dataset,
    stage: Stage,
    folder: str | os.PathLike,
    *,
    shard_rows: int = 8192,
    batch_size: int = 256,
    address: str | None = None,
    actors: int | None = None,
    gpus_per_actor: float | None = None,
    cpus_per_actor: float | None = None,
    progress: bool = True,
) -> Dataset:
    """Apply `stage` to every row of `ds` on a Ray cluster; returns `ds` plus the produced columns, in input order.

    folder: where the shard outputs live (the stage's cache entry); a re-run computes only the missing shards.
    shard_rows / batch_size: rows per shard (the unit of resume and of scheduling) and per `process_batch` call.
    address: the cluster to use when this process is not connected yet (`init_ray`); None starts a local one.
    actors: size of the actor pool (default: one per GPU of the cluster, or one per node without GPUs).
    gpus_per_actor: default 1 when the cluster has GPUs, else 0 (the stage runs on "cuda:0" or "cpu").
    cpus_per_actor: default 1 with GPUs; without GPUs the cluster's CPUs divided among the actors (torch threads).
    Sets `stage.report` (a `RayStageReport`).
    """
    from datasets import concatenate_datasets

    if batch_size < 1 or shard_rows < 1:
        raise ConfigError(f"batch_size and shard_rows must be positive, got {batch_size} and {shard_rows}")
    check_columns(ds, stage.requires, f"stage {stage.name!r}")
    if not stage.requires:
        raise ConfigError(f"stage {stage.name!r} declares no `requires` columns; the Ray engine ships only those to "
                          "the actors, so declare the columns process_batch reads")
    clash = [c for c in stage.produces if c in ds.column_names]
    if clash:
        ds = ds.remove_columns(clash)  # recomputing replaces the old values, as the local runner does
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bounds = shard_bounds(len(ds), shard_rows)
    outputs = [folder / f"shard-{i:05d}-of-{len(bounds):05d}.parquet" for i in range(len(bounds))]
    rows = [b - a for a, b in bounds]
    with cache.lock(folder / "ray-engine"):  # one driver dispatches a folder's shards at a time
        cache.clean_stale_work(folder)
        seals = {i: cache.check_sealed(path, rows=rows[i]) for i, path in enumerate(outputs)}
        todo = [i for i, record in seals.items() if record is None]
        report = RayStageReport(stage.name, str(folder), len(ds), len(bounds), shards_reused=len(bounds) - len(todo))
        if todo:
            init_ray(address)
            start = time.perf_counter()
            _compute(ds, stage, folder, bounds, outputs, todo, batch_size, report, actors, gpus_per_actor,
                     cpus_per_actor, progress)
            report.seconds = time.perf_counter() - start
            seals.update({i: cache.check_sealed(outputs[i], rows=rows[i], repair=False) for i in todo})
        missing = [outputs[i].name for i, record in seals.items() if record is None]
        if missing:
            raise OpenMathMixError(f"stage {stage.name!r}: the Ray run returned but {missing} are not sealed in "
                                   f"{folder}; run it again")
        report.computed = dict(sum((Counter(seals[i].get("counters", {})) for i in todo), Counter()))
        report.totals = dict(sum((Counter(record.get("counters", {})) for record in seals.values()), Counter()))
        report.complete = True
        stage.report = report
        produced = concatenate_datasets([_arrow_view(path, n) for path, n in zip(outputs, rows)])
    return concatenate_datasets([ds, produced], axis=1)


# ----- the Ray part --------------------------------------------------------------------------------------------------


class ShardWorker:
    """Ray Data callable class, one instance per actor: sets the stage up once, then runs whole shards.

    Each call gets shard descriptors (shard, input path, output path) and returns one summary row per shard."""

    def __init__(self, stage: Stage, batch_size: int, use_gpu: bool, features_json: str | None):
        import datasets
        from datasets import Features

        datasets.disable_progress_bars()  # in this actor process only: the driver shows one bar per stage

        self.stage = stage
        self.batch_size = batch_size
        self.device = "cuda:0" if use_gpu else "cpu"  # Ray sets CUDA_VISIBLE_DEVICES to the actor's GPU
        self.features = None if features_json is None else Features.from_dict(json.loads(features_json))
        stage.setup(self.device)
        stage.take_counts()  # whatever setup counted belongs to no shard

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import pyarrow.parquet as pq

        summaries: dict[str, list] = {"shard": [], "rows": [], "peak_rss_mib": [], "error": []}
        for shard, src, dst in zip(batch["shard"], batch["input"], batch["output"]):
            n, error = 0, ""
            self.stage.take_counts()  # counters of a shard that failed before belong to no shard
            try:
                columns = pq.read_table(src).to_pydict()
                n = len(next(iter(columns.values())))
                out = run_shard(self.stage, columns, batch_size=self.batch_size, device=self.device)
                _write_output(Path(dst), out, self.features, n, self.stage.take_counts())
            except Exception:  # noqa: BLE001 - sent to the driver, which raises it (see _compute)
                error = traceback.format_exc()
            summaries["shard"].append(int(shard))
            summaries["rows"].append(n)
            summaries["peak_rss_mib"].append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # Linux: KiB
            summaries["error"].append(error)
        return {key: np.asarray(values) for key, values in summaries.items()}


def _compute(ds, stage, folder, bounds, outputs, todo, batch_size, report, actors, gpus_per_actor, cpus_per_actor,
             progress) -> None:
    """Write the inputs of the shards to do into a work folder, run them on the actor pool."""
    import ray
    from ray.data import ActorPoolStrategy
    from tqdm.auto import tqdm

    n_actors, gpus, cpus = _pool_shape(ray, actors, gpus_per_actor, cpus_per_actor, len(todo))
    report.actors, report.gpus_per_actor, report.cpus_per_actor = n_actors, gpus, cpus
    work = cache.work_dir(folder / "inputs")
    needed = ds.select_columns(list(stage.requires))
    items = []
    for i in todo:
        _arrow_path(outputs[i]).unlink(missing_ok=True)  # a stale Arrow copy of an output that is recomputed
        src = work / outputs[i].name
        a, b = bounds[i]
        needed.select(range(a, b)).to_parquet(str(src))
        items.append({"shard": i, "input": str(src), "output": str(outputs[i])})
    features = stage.features()
    rows_todo = sum(bounds[i][1] - bounds[i][0] for i in todo)
    where = f"{n_actors} Ray actor(s), {gpus:g} GPU and {cpus:g} CPU each"
    if progress:
        tqdm.write(f"{stage.name}: {stage.describe_work(ds)} in {len(bounds)} shard(s), {len(todo)} to compute "
                   f"({rows_todo:,} rows) on {where}")
    logger.info("%s: %d shard(s) on %s", stage.name, len(todo), where)
    with _ray_data_bars_off():
        shards = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            ShardWorker,
            batch_size=1,
            batch_format="numpy",
            compute=ActorPoolStrategy(size=n_actors),
            num_gpus=gpus,
            num_cpus=cpus,
            fn_constructor_kwargs={"stage": stage, "batch_size": batch_size, "use_gpu": gpus > 0,
                                   "features_json": None if features is None else json.dumps(features.to_dict())},
        )
        bar = tqdm(total=rows_todo, unit="row", desc=f"{stage.name} (Ray)", disable=not progress, smoothing=0.1)
        summaries = iter(shards.iter_rows())
        failure = None
        try:
            for summary in summaries:
                if summary["error"]:
                    failure = (_cause_line(str(summary["error"])), str(summary["error"]))
                    break  # closing the iteration stops the run and frees the actors
                report.shards_computed += 1
                report.worker_peak_rss_mib = max(report.worker_peak_rss_mib, float(summary["peak_rss_mib"]))
                bar.update(int(summary["rows"]))
        except Exception as err:  # noqa: BLE001 - Ray itself failed (an actor lost for good); re-raised below
            failure = (_cause_line(str(err)), str(err))
        finally:
            summaries.close()
            bar.close()
            cache.remove_work(work)
    if failure is not None:
        # A stage's exception comes back as a summary row, so the execution ends normally and frees its actors.
        # When Ray itself raised, its actors keep their CPUs/GPUs for as long as anything references the execution
        # (the exception's traceback does, in reference cycles): keep only the text, drop the rest, collect.
        del shards, summaries
        gc.collect()
        done = sum(cache.check_sealed(p, repair=False) is not None for p in outputs)
        raise OpenMathMixError(
            f"stage {stage.name!r} failed on the Ray engine ({failure[0]}); {done} of {len(outputs)} shards are "
            f"finished and kept in {folder}: fix the cause and run again to compute the other {len(outputs) - done}"
        ) from RuntimeError(failure[1])


def _pool_shape(ray, actors: int | None, gpus_per_actor: float | None, cpus_per_actor: float | None,
                n_shards: int) -> tuple[int, float, float]:
    """(actors, GPUs per actor, CPUs per actor) from the cluster's resources and the caller's choices."""
    resources = ray.cluster_resources()
    cluster_gpus, cluster_cpus = resources.get("GPU", 0.0), resources.get("CPU", 0.0)
    gpus = (1.0 if cluster_gpus >= 1 else 0.0) if gpus_per_actor is None else float(gpus_per_actor)
    if gpus > cluster_gpus:
        raise ConfigError(f"gpus_per_actor={gpus:g} but the Ray cluster has {cluster_gpus:g} GPU(s)")
    if gpus > 0:
        n_actors = actors or int(cluster_gpus // gpus)
        cpus = 1.0 if cpus_per_actor is None else float(cpus_per_actor)
    else:
        nodes = max(1, sum(1 for node in ray.nodes() if node.get("Alive")))
        n_actors = actors or nodes
        cpus = float(cpus_per_actor or max(1, int(cluster_cpus // n_actors)))
    if n_actors < 1:
        raise ConfigError(f"the actor pool needs at least one actor, got actors={actors}")
    return min(n_actors, n_shards), gpus, cpus


@contextmanager
def _ray_data_bars_off():
    """Ray Data's own progress bars off while ours (rows, rate, ETA) runs; the caller's setting restored after."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    saved = ctx.enable_progress_bars
    ctx.enable_progress_bars = False
    try:
        yield
    finally:
        ctx.enable_progress_bars = saved


# ----- files ---------------------------------------------------------------------------------------------------------


def _write_output(path: Path, out: dict[str, list], features, rows: int, counts: Counter) -> None:
    """The shard's produced columns as parquet (features as the stage declares them, else inferred as `datasets`
    infers them in the local runner), moved under its final name, then sealed with the stage's counters."""
    from datasets import Dataset

    work = cache.work_dir(path)
    tmp = work / path.name
    Dataset.from_dict(out, features=features).to_parquet(str(tmp))
    os.replace(tmp, path)
    cache.seal(path, rows=rows, counters=dict(counts))
    cache.remove_work(work)


def _arrow_path(parquet: Path) -> Path:
    """`shard-IIIII-of-NNNNN.produced.arrow`: never the local runner's shard name, should both share a folder."""
    return parquet.with_suffix(".produced.arrow")


def _arrow_view(parquet: Path, rows: int):
    """The output shard as a memory-mapped `datasets.Dataset`, through a sealed Arrow stream copy made once."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Dataset

    arrow = _arrow_path(parquet)
    if cache.check_sealed(arrow, rows=rows) is None:
        source = pq.ParquetFile(parquet)
        work = cache.work_dir(arrow)
        tmp = work / arrow.name
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_stream(sink, source.schema_arrow) as writer:
            for record_batch in source.iter_batches(batch_size=8192):
                writer.write_batch(record_batch)
        os.replace(tmp, arrow)
        cache.seal(arrow, rows=rows)
        cache.remove_work(work)
    return Dataset.from_file(str(arrow))


def _cause_line(text: str) -> str:
    """The line that ends the first traceback in `text` ("Crash: simulated crash in batch 4"): the cause. Ray's own
    exceptions append their wrappers after a "direct cause" line."""
    text = text.split("The above exception was the direct cause")[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _import_ray():
    try:
        import ray
    except ImportError as err:
        raise MissingDependencyError("the Ray engine needs Ray Data: pip install 'openmathmix[ray]' "
                                     "(or pip install 'ray[data]')") from err
    return ray
