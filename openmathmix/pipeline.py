"""The whole OpenMathMix pipeline, preset -> release folder: sources, embeddings, quality scores, scorer, QaDS.

    build("demo", "release/demo")                                   # bundled fixtures, embedded model, CPU, minutes
    build("openmathmix", "release/omm", data_files={...}, config=BuildConfig.paper())   # the paper's settings

Read `build` from top to bottom: one block per stage, each printing one progress line. Every expensive stage is
cached under `cache_dir` (default `$OPENMATHMIX_CACHE` or `~/.cache/openmathmix`) and keyed by its inputs and
settings, so a re-run, or a run interrupted and started again, reuses what is done:

- sources: one Arrow file per source, keyed by the source definition and its input files (paths, sizes, mtimes);
- embeddings, one-shot quality scores, scores of every row: `stages.base.run_stage` shards (resumable);
- scorers: one folder per task, keyed by the scored sample's fingerprint and the training settings.

What the preset (YAML, see `select.mixture`) does not decide lives in `BuildConfig`: sample sizes n1/n2, the kind of
scorer, token limits, the embedding projection. `BuildConfig.demo()` keeps a CPU demo to minutes;
`BuildConfig.paper()` is Appendix A (n1 = 2,000, n2 = 100, |s0| = 100, a classifier scorer trained for 2 epochs).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import OpenMathMixError, SourceError

__all__ = ["BuildConfig", "build"]


@dataclass(frozen=True)
class BuildConfig:
    """Pipeline settings that the preset does not cover. Change one with `dataclasses.replace(config, n1=...)`."""

    n1: int = 2  # prompt samples per source scored by one-shot QS (paper: 2,000)
    n2: int = 4  # test samples in Dt, picked by K-center greedy over the embeddings (paper: 100)
    init_size: int | None = None  # |s0|, QaDS's random initial pool per source; None keeps the preset's (paper: 100)
    scorer: str = "light"  # "light": MLP on the frozen embeddings (CPU, seconds); "classifier": fine-tuned LM (paper)
    scorer_epochs: float = 100  # light: 100 passes over the few scored rows; classifier: 2 (paper)
    scorer_hidden: int = 256  # light scorer's hidden width (0 = softmax regression)
    heldout: float = 0.1  # share of the scored sample kept out of training to measure the scorer's Pearson r
    split_by_task: bool | None = None  # one scorer per task (reasoning / general); None: yes in the large setting
    test_source: str | None = None  # Dt pool; None: every reasoning source in the pool (paper: mathinstruct_math)
    max_tokens: int = 256  # tokens kept per test sample and per in-context example in the QS stage (paper: 1,024)
    token_budget: int = 8192  # padded tokens per embedding forward batch (bench/bench_embed.py)
    project_dim: int | None = None  # store a seeded random projection of the embeddings (e.g. 256 for 7B models)
    dtype: str = "auto"  # model dtype: auto (bf16 where the GPU or CPU has it natively, else fp32), float32, bfloat16, float16
    fixtures: bool = False  # read each source's bundled fixture files when no data files are given (the demo)

    @classmethod
    def demo(cls) -> BuildConfig:
        """A few minutes on a 2-core CPU with the embedded 135M model: 2 x 18 prompt samples x 4 tests; 30 % of the
        scored rows are held out so the tiny scorers still get a Pearson r."""
        return cls(fixtures=True, heldout=0.3)

    @classmethod
    def paper(cls, setting: str | None = "large") -> BuildConfig:
        """Appendix A: n1 = 2,000 per source, n2 = 100 tests, |s0| = 100, classifier scorers trained for 2 epochs.

        In the large setting Dt comes from the MATH CoT part of MathInstruct (source `mathinstruct_math`); in the
        base setting from every reasoning source of the pool (the quality stage's default).
        """
        return cls(n1=2000, n2=100, init_size=100, scorer="classifier", scorer_epochs=2, max_tokens=1024,
                   test_source="mathinstruct_math" if setting != "base" else None)

    @classmethod
    def for_preset(cls, preset_name: str, paper: bool = False) -> BuildConfig:
        """The default settings for a preset: the paper's with `paper=True`, the demo's for `demo`, else plain."""
        from .select.mixture import load_preset

        if paper:
            return cls.paper(load_preset(preset_name).setting)
        return cls.demo() if preset_name == "demo" else cls()


def build(
    preset_name: str,
    out_dir: str | os.PathLike,
    *,
    model: str | None = None,
    device: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    data_files: Mapping[str, Sequence[str | os.PathLike]] | None = None,
    config: BuildConfig | None = None,
    repo_id: str | None = None,
    keep_embedding: bool = False,
    progress: bool = False,
) -> Path:
    """Run the pipeline for a preset and write the release folder; return its path.

    Args:
        preset_name: a packaged preset ("demo", "openmathmix", "sbase_69k", ...) or a YAML path.
        out_dir: the release folder (replaced if it holds an earlier release).
        model: Hub id, local folder or embedded alias used for embeddings, quality scores and a classifier scorer
            (default: the embedded SmolLM2-135M-Instruct).
        device: "cpu", "cuda", "cuda:1" (default: every visible GPU, else the CPU).
        cache_dir: where stage results are kept for re-runs.
        data_files: `{source: [files]}` in the source's native format; other sources come from their fixtures
            (`config.fixtures`, the demo) or from the Hub.
        config: pipeline settings (default: `BuildConfig.for_preset(preset_name)`).
        repo_id: the Hub repository the card's usage examples name.
        progress: show the per-shard progress bars of `datasets` (off: one line per stage).
    """
    import datasets

    from .models import resolve
    from .select.mixture import load_preset, select_mixture
    from .stages.base import DEFAULT_CACHE, progress_bars_off, run_stage
    from .stages.embed import EmbedStage
    from .stages.quality import compute_quality
    from .stages.scorer import score_dataset

    started = time.perf_counter()
    preset = load_preset(preset_name)
    config = config or BuildConfig.for_preset(preset.name)
    if config.init_size is not None:
        preset = dataclasses.replace(preset, init_size=config.init_size)
    split_by_task = config.split_by_task if config.split_by_task is not None else preset.setting != "base"
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE
    spec = resolve(model)
    steps = _Steps(total=7)
    print(f"openmathmix build: preset {preset.name!r} ({len(preset.sources)} sources) -> {out_dir}; "
          f"model {spec.name}; cache {cache}")
    bars = contextlib.nullcontext() if progress else progress_bars_off()
    with bars:
        # 1. Sources -> one dataset in the shared question/answer schema.
        with steps.step("sources") as note:
            parts, inputs = [], {}
            for name in preset.source_names:
                files = _source_files(name, data_files, config.fixtures)
                ds, report = _cached_source(name, files, cache / "sources")
                parts.append(ds)
                inputs[name] = report
            pool = datasets.concatenate_datasets(parts)
            note(f"{len(preset.source_names)} sources, {len(pool):,} rows")

        # 2. Embeddings: mean-pooled last hidden state of every row (optionally projected).
        with steps.step("embed") as note:
            embed = EmbedStage(model, dtype=config.dtype, token_budget=config.token_budget,
                               project_dim=config.project_dim, project_seed=preset.seed)
            pool = run_stage(pool, embed, cache_dir=cache, device=device, progress=progress)
            note(_stage_line(embed.report, "rows"))

        # 3. One-shot quality scores (QS, Eq. 1-3) on a per-source sample Dp against a diverse test set Dt.
        with steps.step("quality") as note:
            test_sources, test_ds = _test_set(config, preset, pool, data_files, cache, device, embed)
            scored, quality = compute_quality(
                pool, n1=config.n1, n2=config.n2, test_sources=test_sources, test_ds=test_ds,
                split_by_task=split_by_task, model=model, device=device, dtype=config.dtype, seed=preset.seed,
                max_test_tokens=config.max_tokens, max_example_tokens=config.max_tokens, cache_dir=str(cache),
                progress=progress, return_report=True,
            )
            note(quality.summary().removeprefix("quality: "))

        # 4. Scorers: QS binned into labels 1-5, one scorer per task (large setting) or one for all.
        with steps.step("scorer") as note:
            scorers, results = {}, {}
            tasks = sorted(set(scored["task"])) if split_by_task else ["*"]
            for task in tasks:
                folder, result = _cached_scorer(scored, task, config, model, device, preset.seed, cache)
                scorers[task], results[task] = folder, result
            note("; ".join(f"{t}: r = {_r(r.get('pearson'))} on {r.get('heldout_rows')} held-out rows"
                           for t, r in results.items()))

        # 5. Score every row of the pool with its task's scorer (`quality_score`, expected label in [1, 5]).
        with steps.step("score") as note:
            pool = score_dataset(pool, scorers, device=device, dtype=config.dtype, cache_dir=cache,
                                 progress=progress)
            note(f"{len(pool):,} rows scored")

        # 6. QaDS selection per source, as the preset says; `qads_rank` orders each source.
        with steps.step("select") as note:
            mixture, composition = select_mixture(pool, preset, device=device)
            note(f"{composition.total_kept:,} of {composition.total_available:,} rows kept")

        # 7. Release: parquet configs (default + nested subsets), card, figures, manifest.
        with steps.step("release") as note:
            settings = _settings(preset, config, split_by_task, spec, quality, results, inputs, device)
            release = _write_release(mixture, out_dir, preset, composition, settings, results, repo_id,
                                     keep_embedding)
            note(str(release))

    print()
    print(composition.to_markdown())
    print(f"built {release} in {time.perf_counter() - started:,.1f} s")
    return release


# ---------------------------------------------------------------------------------------------------------------------
# Stage helpers (in the order build() uses them)
# ---------------------------------------------------------------------------------------------------------------------


class _Steps:
    """Numbered, timed progress lines: `[3/7] quality: ... (12.3 s)`."""

    def __init__(self, total: int):
        self.total, self.done = total, 0

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[Any]:
        self.done += 1
        lines: list[str] = []
        start = time.perf_counter()
        print(f"[{self.done}/{self.total}] {name} ...", flush=True)
        yield lines.append
        detail = f": {'; '.join(lines)}" if lines else ""
        print(f"[{self.done}/{self.total}] {name}{detail} ({time.perf_counter() - start:,.1f} s)", flush=True)


def _source_files(name: str, data_files: Mapping[str, Sequence[Any]] | None, fixtures: bool) -> list[str] | None:
    """The files a source is built from: the user's, else its bundled fixtures (demo), else None (the Hub)."""
    from .sources import fixture_files

    if data_files and data_files.get(name):
        given = data_files[name]
        return [str(given)] if isinstance(given, (str, os.PathLike)) else [str(p) for p in given]
    return fixture_files(name) if fixtures else None


def _cached_source(name: str, files: list[str] | None, folder: Path):
    """`sources.build_source` once per (source definition, input files); later runs reopen the same Arrow file,
    so its fingerprint, and every stage cache keyed on it, stay the same."""
    from datasets import Dataset
    from datasets.fingerprint import Hasher

    from .sources import BuildReport, build_source, get_source

    source = get_source(name)
    stamp = [(str(Path(f).resolve()), os.path.getsize(f), os.path.getmtime(f)) for f in _expand_files(files)]
    definition = {f: getattr(source, f) for f in ("name", "version", "repo", "config", "revision", "data_dir",
                                                  "data_files", "split", "license")}
    key = Hasher.hash({"source": definition, "files": stamp if files is not None else None})
    here = folder / f"{name}-{key}"
    done = here / "report.json"
    if not done.is_file():
        shutil.rmtree(here, ignore_errors=True)
        here.mkdir(parents=True)
        _, report = build_source(name, files, cache_dir=here, progress=False)
        tmp = done.with_suffix(".tmp")
        tmp.write_text(json.dumps(report.to_dict()))
        os.replace(tmp, done)
    report = BuildReport(**json.loads(done.read_text()))
    arrows = sorted(here.glob("*.arrow"))
    if len(arrows) != 1:
        raise SourceError(f"source cache {here} should hold one Arrow file, found {len(arrows)}; delete the folder")
    return Dataset.from_file(str(arrows[0])), report


def _expand_files(files: list[str] | None) -> list[str]:
    """Files behind the given paths (folders and globs expanded), for the cache key."""
    import glob

    out: list[str] = []
    for f in files or []:
        if os.path.isdir(f):
            out += sorted(str(p) for p in Path(f).rglob("*") if p.is_file())
        elif any(ch in f for ch in "*?["):
            out += sorted(glob.glob(f, recursive=True))
        elif os.path.exists(f):
            out.append(f)
        else:
            raise SourceError(f"data file {f} does not exist")
    return out


def _stage_line(report, what: str) -> str:
    reused = f", {report.shards_reused} reused from the cache" if report.shards_reused else ""
    return f"{report.rows:,} {what} in {report.shards} shard(s){reused}"


def _test_set(config, preset, pool, data_files, cache: Path, device, embed):
    """(test_sources, test_ds) for compute_quality: None/None is its default pool (every reasoning source)."""
    from .stages.base import run_stage

    name = config.test_source
    if name is None:
        return None, None
    if name in preset.source_names:
        return [name], None
    files = _source_files(name, data_files, config.fixtures)
    ds, _ = _cached_source(name, files, cache / "sources")
    return None, run_stage(ds, embed, cache_dir=cache, device=device, progress=False)


def _cached_scorer(scored, task: str, config: BuildConfig, model, device, seed: int, cache: Path):
    """Train (or reuse) the scorer of one task; return (folder, ScorerResult as a dict)."""
    from datasets.fingerprint import Hasher

    from .stages.scorer import SCORER_FILE, train_scorer

    options: dict[str, Any] = {"seed": seed, "heldout": config.heldout, "task": None if task == "*" else task}
    if config.scorer == "light":
        options.update(hidden=config.scorer_hidden, epochs=int(config.scorer_epochs))
    elif config.scorer == "classifier":
        options.update(model=model, epochs=config.scorer_epochs, device=device, progress=False)
    else:
        raise OpenMathMixError(f"unknown scorer kind {config.scorer!r}; use 'light' or 'classifier'")
    key = Hasher.hash({"data": scored._fingerprint, "kind": config.scorer, **options})
    folder = cache / "scorers" / f"{config.scorer}-{task.replace('*', 'all')}-{key}"
    info = folder / SCORER_FILE
    if info.is_file() and "result" in json.loads(info.read_text()):
        return str(folder), json.loads(info.read_text())["result"]
    shutil.rmtree(folder, ignore_errors=True)
    result = train_scorer(scored, folder, kind=config.scorer, **options)
    return str(folder), result.to_dict()


def _r(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _settings(preset, config: BuildConfig, split_by_task: bool, spec, quality, results, inputs, device) -> dict:
    """What the manifest and the card record about this build (no timings: the manifest stays reproducible)."""
    scorer_info = {}
    for task, result in results.items():
        path = Path(result["out_dir"]) / "scorer.json"
        info = json.loads(path.read_text())
        info.pop("result", None)
        scorer_info[task] = info
    binning = next((i.get("binning") for i in scorer_info.values() if i.get("binning")),
                   "equal-width: label = 1 + min(4, floor(5 * QS))")
    model = {"name": spec.name, "revision": spec.revision}
    if config.scorer == "classifier":
        scorer_model = {"name": f"classifier on {spec.name}", "revision": spec.revision}
    else:
        scorer_model = {"name": f"light MLP on the embeddings (hidden {config.scorer_hidden})", "revision": None}
    return {
        "preset": preset.name,
        "preset_file": preset.origin,
        "setting": preset.setting,
        "seed": preset.seed,
        "init_size": preset.init_size,
        "subset_ratios": list(preset.subset_ratios),
        "n1": config.n1,
        "n2": quality.n2,
        "test_sources": quality.test_sources,
        "test_selection": quality.test_selection,
        "prompt_rows": quality.prompt_rows,
        "scorer": config.scorer,
        "scorer_epochs": config.scorer_epochs,
        "scorers": sorted(results),
        "split_by_task": split_by_task,
        "binning": binning,
        "budgets": {"max_tokens_qs": config.max_tokens, "embed_token_budget": config.token_budget},
        "projection_dim": config.project_dim,
        "dtype": config.dtype,
        "device": device or "auto",
        "models": {"embedding": model, "quality_score": model, "scorer": scorer_model},
        "scorer_settings": scorer_info,
        "sources_in": {name: {"rows": r.rows_out, "dropped": r.n_dropped,
                              "inputs": [Path(i).name if "://" not in i else i for i in r.inputs]}
                       for name, r in inputs.items()},
    }


def _write_release(mixture, out_dir, preset, composition, settings, results, repo_id, keep_embedding) -> Path:
    """`release.write_release` with the pieces the pipeline has: nested subsets, report, scorer results."""
    from .release import write_release
    from .select.mixture import iter_subsets

    scorer_report = {
        "kind": settings["scorer"],
        "scorers": {task if task != "*" else "all": {
            "task": r.get("task"), "pearson": r.get("pearson"), "p_value": r.get("p_value"),
            "n_eval": r.get("heldout_rows"), "train_rows": r.get("train_rows"), "label_counts": r.get("label_counts"),
        } for task, r in results.items()},
    }
    return write_release(
        mixture, out_dir,
        subsets=dict(iter_subsets(mixture, preset.subset_ratios)),
        composition=composition,
        settings=settings,
        description=preset.description,
        scorer_report=scorer_report,
        sources=list(preset.source_names),
        keep_embedding=keep_embedding,
        repo_id=repo_id,
    )
