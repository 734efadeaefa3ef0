"""Execution engines for model stages: how a `Stage` is run over the rows of a dataset.

- `local` (`openmathmix.stages.base.run_stage`): `datasets.map`, one process per visible GPU, on one machine;
- `ray` (`openmathmix.engines.ray.run_stage_ray`): Ray Data, an actor pool over a Ray cluster, one GPU per actor.

Both feed a shard's rows to `Stage.process_batch` through `engines.shards.run_shard`, so a stage that declares a
`sort_key` gets the same whole-shard ordering under either engine.
"""
