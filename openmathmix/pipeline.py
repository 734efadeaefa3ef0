"""The whole OpenMathMix pipeline, preset -> release folder, as a list of steps.

    build("demo", "release/demo")                                    # generated demo data, embedded model, CPU
    build("openmathmix", "release/omm", data_files={...})           # the paper's settings (profile "paper")

Each entry of `STEPS` is one step with one contract: it reads the typed artifacts of the steps before it (fields of
`Artifacts`), computes its own (cached by `openmathmix.cache` under a key of its inputs and settings), and returns
it. Adding a step is adding one function and one entry. The order:

    sources -> hygiene -> embed -> quality -> scorer -> score -> select -> evaluate -> release

Settings come from one profile (`openmathmix.settings`: `paper` for every paper preset, `demo` for the demo) with the
user's overrides on top; the model is resolved once; `--out` is checked before any work starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import cache
from .compat import fingerprint
from .settings import Settings, profile, profile_for_preset

__all__ = ["STEPS", "Artifacts", "Context", "Step", "build", "resolve_settings"]


# ---------------------------------------------------------------------------------------------------------------------
# What every step sees, and what the steps hand each other
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class Context:
    """The inputs of a build that every step may read (nothing in here changes while the steps run)."""

    preset: Any  # select.mixture.Preset
    settings: Settings
    model: Any  # models.ModelSpec, resolved once for every model step
    cache_dir: Path
    out_dir: Path
    data_files: Mapping[str, list[str]] = field(default_factory=dict)
    benchmark_files: Mapping[str, list[str]] = field(default_factory=dict)  # benchmark -> the user's files
    repo_id: str | None = None
    keep_embedding: bool = False
    progress: bool = True

    @property
    def seed(self) -> int:
        return self.preset.seed

    @property
    def split_by_task(self) -> bool:
        chosen = self.settings.scorer.split_by_task
        return chosen if chosen is not None else self.preset.setting != "base"


@dataclass
class SourceInput:
    """What one source contributed: its build report (rows in, out, dropped by reason)."""

    name: str
    report: Any  # sources.BuildReport


@dataclass
class Artifacts:
    """The typed outputs of the steps, filled in order; a step reads only fields of the steps before it."""

    pool: Any = None  # Dataset: every source row in the shared schema (sources)
    inputs: dict[str, Any] = field(default_factory=dict)  # source -> BuildReport (sources)
    hygiene: Any = None  # HygieneReport: decontamination and deduplication of the pool (hygiene)
    hygiene_test_set: Any = None  # HygieneReport: pool rows that copy a Dt row, dropped after Dt is drawn (quality)
    embedded: Any = None  # Dataset: pool + embedding (embed)
    test_set: Any = None  # Dataset or None: an embedded Dt pool from a source outside the preset (embed)
    scored_sample: Any = None  # Dataset: Dp with qs (quality)
    quality: Any = None  # QualityReport (quality)
    scorers: dict[str, str] = field(default_factory=dict)  # task ("*" = all) -> scorer folder (scorer)
    scorer_results: dict[str, dict] = field(default_factory=dict)  # task -> ScorerResult.to_dict() (scorer)
    scored: Any = None  # Dataset: every row with quality_score (score)
    mixture: Any = None  # Dataset: the selected rows with their rank (select)
    pool_ranked: Any = None  # Dataset: every row that entered selection, its rank and whether it was kept (select)
    composition: Any = None  # MixtureReport (select)
    evaluation: dict | None = None  # the strategy comparison without training, when settings.evaluate.enabled
    sections: list = field(default_factory=list)  # the card sections the steps contributed (release)
    release: Path | None = None  # the release folder (release)


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Context, Artifacts], str]  # fills its Artifacts fields; returns one line for the log


# ---------------------------------------------------------------------------------------------------------------------
# The steps
# ---------------------------------------------------------------------------------------------------------------------


def step_sources(ctx: Context, art: Artifacts) -> str:
    """Every source of the preset -> one dataset in the shared question/answer schema."""
    import datasets

    parts = []
    for name in ctx.preset.source_names:
        ds, report = cached_source(name, _source_files(ctx, name), ctx.cache_dir)
        parts.append(ds)
        art.inputs[name] = report
    art.pool = datasets.concatenate_datasets(parts)
    return f"{len(ctx.preset.source_names)} sources, {len(art.pool):,} rows"


def step_hygiene(ctx: Context, art: Artifacts) -> str:
    """Decontamination against benchmark test sets, exact and near-duplicate removal across sources (cached)."""
    h = ctx.settings.hygiene
    benchmarks = {name: load_benchmark(ctx, name) for name in (*h.benchmarks, *ctx.benchmark_files)} if h.enabled \
        else {}
    art.pool, art.hygiene = cached_hygiene(ctx, art.pool, benchmarks, h)
    if not h.enabled:
        return f"off: all {art.hygiene.rows_in:,} rows kept (the paper's raw pool)"
    counts = ", ".join(f"{k} {v:,}" for k, v in art.hygiene.counts.items() if v) or "nothing dropped"
    return f"{art.hygiene.rows_kept:,} of {art.hygiene.rows_in:,} rows kept ({counts})"


def step_embed(ctx: Context, art: Artifacts) -> str:
    """Mean-pooled last hidden state of every row (optionally projected), and of an outside Dt pool."""
    from .stages.base import run_stage

    stage = _embed_stage(ctx)
    e = ctx.settings.embed
    run = {"cache_dir": ctx.cache_dir, "device": ctx.settings.run.device, "progress": ctx.progress,
           "batch_size": e.batch_rows, "shard_rows": e.shard_rows, **_engine(ctx)}
    art.embedded = run_stage(art.pool, stage, **run)
    line = _stage_line(stage.report, "rows")
    test_source = ctx.settings.quality.test_source
    if test_source is not None and test_source not in ctx.preset.source_names:
        ds, _ = cached_source(test_source, _source_files(ctx, test_source), ctx.cache_dir)
        art.test_set = run_stage(ds, _embed_stage(ctx), **run)
        line += f"; test pool {test_source}: {len(art.test_set):,} rows"
    return line


def step_quality(ctx: Context, art: Artifacts) -> str:
    """One-shot quality scores (QS, Eq. 1-3) of a per-source sample Dp against a diverse test set Dt."""
    from .stages.quality import compute_quality

    q, run = ctx.settings.quality, ctx.settings.run
    test_source = q.test_source
    test_sources = [test_source] if test_source is not None and art.test_set is None else None
    scored_sample, art.quality = compute_quality(
        art.embedded, n1=q.n1, n2=q.n2, test_sources=test_sources, test_ds=art.test_set,
        split_by_task=ctx.split_by_task, test_selection=q.test_selection, pool_size=q.pool_size,
        model=ctx.model, device=run.device, dtype=run.dtype, seed=ctx.seed, max_test_tokens=q.max_test_tokens,
        max_example_tokens=q.max_example_tokens, chunk_rows=q.chunk_rows, chunk_tokens=q.chunk_tokens,
        cache_dir=str(ctx.cache_dir), batch_size=q.batch_rows, shard_rows=q.shard_rows, progress=ctx.progress,
        return_report=True, **_engine(ctx),
    )
    art.scored_sample = scored_sample
    line = art.quality.summary().removeprefix("quality: ")
    if ctx.settings.hygiene.enabled and ctx.settings.hygiene.decontaminate_test_set:
        test_set = _test_rows(art)
        only_decontaminate = dataclasses.replace(ctx.settings.hygiene, exact_dedup=False, near_dedup=False)
        art.embedded, art.hygiene_test_set = cached_hygiene(ctx, art.embedded, {"test_set": test_set},
                                                            only_decontaminate)
        line += f"; {art.hygiene_test_set.rows_dropped:,} pool row(s) copying a test sample dropped"
    return line


def step_scorer(ctx: Context, art: Artifacts) -> str:
    """Scorers: QS binned into labels 1-5, one per task (large setting) or one for all rows."""
    tasks = sorted(set(art.scored_sample["task"])) if ctx.split_by_task else ["*"]
    for task in tasks:
        folder, result = cached_scorer(ctx, art.scored_sample, task)
        art.scorers[task], art.scorer_results[task] = folder, result
    return "; ".join(f"{t}: {r.get('model')}, r = {_r(r.get('r'))} "
                     f"[{_r(r.get('ci_low'))}, {_r(r.get('ci_high'))}] on {r.get('n')} rows ({r.get('method')})"
                     for t, r in art.scorer_results.items())


def step_score(ctx: Context, art: Artifacts) -> str:
    """Every row of the pool scored by its task's scorer (`quality_score`, expected label in [1, 5])."""
    from .stages.scorer import score_dataset

    s, run = ctx.settings.scorer, ctx.settings.run
    art.scored = score_dataset(art.embedded, art.scorers, device=run.device, dtype=run.dtype, cache_dir=ctx.cache_dir,
                               batch_size=s.score_batch_rows, shard_rows=s.score_shard_rows, progress=ctx.progress,
                               **_engine(ctx))
    return f"{len(art.scored):,} rows scored"


def step_select(ctx: Context, art: Artifacts) -> str:
    """The preset's selection per source; the rank column orders each source for the nested subsets; the pool
    config is every scored row with its rank (null where unranked) and whether it was kept."""
    from .select.mixture import ranked_pool, select_mixture

    art.mixture, art.composition = select_mixture(art.scored, ctx.preset, device=ctx.settings.run.device,
                                                  dtype=ctx.settings.select.dtype)
    art.pool_ranked = ranked_pool(art.scored, art.mixture)
    return (f"{art.composition.total_kept:,} of {art.composition.total_available:,} rows kept "
            f"(strategy {art.composition.strategy})")


def step_evaluate(ctx: Context, art: Artifacts) -> str:
    """The strategies compared at equal size on the scored pool, without training (`openmathmix evaluate` for the
    proxy fine-tune): covering radius, quality, duplicates, lengths. Off unless settings.evaluate.enabled."""
    if not ctx.settings.evaluate.enabled:
        return "off (openmathmix evaluate compares the strategies on a release built with --keep-embedding)"
    from .evaluate import evaluate, pool_from_dataset

    pool = pool_from_dataset(art.scored, "the scored pool")
    art.evaluation = evaluate(pool, settings=ctx.settings.evaluate, train=False, device=ctx.settings.run.device,
                              cache_dir="", progress=ctx.progress)
    return f"{len(art.evaluation['runs'])} runs ({', '.join(ctx.settings.evaluate.strategies)})"


def step_release(ctx: Context, art: Artifacts) -> str:
    """Parquet configs (default, nested subsets, the scored pool), card with its sections and figures, manifest."""
    import tempfile

    from .release import write_release
    from .select.mixture import iter_subsets

    scorer_report = {
        "kind": ctx.settings.scorer.kind,
        "scorers": {task if task != "*" else "all": {
            "task": r.get("task"), "pearson": r.get("r"), "n_eval": r.get("n"),
            "ci_low": r.get("ci_low"), "ci_high": r.get("ci_high"), "method": r.get("method"),
            "model": r.get("model"), "p_value": r.get("p_value"), "train_rows": r.get("train_rows"),
            "label_counts": r.get("label_counts"),
        } for task, r in art.scorer_results.items()},
    }
    art.sections = card_sections(ctx, art)
    with tempfile.TemporaryDirectory(prefix="openmathmix-figures-") as scratch:
        art.release = write_release(
            art.mixture, ctx.out_dir,
            pool=art.pool_ranked,
            subsets=dict(iter_subsets(art.mixture, ctx.preset.subset_ratios)),
            composition=art.composition,
            settings=release_settings(ctx, art),
            description=ctx.preset.description,
            scorer_report=scorer_report,
            sources=list(ctx.preset.source_names),
            sections=art.sections,
            extra_figures=card_figures(art, Path(scratch)),
            keep_embedding=ctx.keep_embedding,
            repo_id=ctx.repo_id,
        )
    return str(art.release)


def card_sections(ctx: Context, art: Artifacts) -> list:
    """The card sections the steps contribute: data hygiene, the scorer's agreement per source."""
    from .release import CardSection

    sections = []
    if ctx.settings.demo.generate:
        sections.append(CardSection("Mean score per row kind", demo_kinds_markdown(art)))
    if art.evaluation is not None:
        from .evaluate import evaluation_markdown

        sections.append(CardSection("Selection report", evaluation_markdown(art.evaluation)))
    if art.hygiene is not None:
        text = art.hygiene.to_markdown()
        if art.hygiene_test_set is not None:
            text += (f"\nAfter the test set Dt of the quality score was drawn, {art.hygiene_test_set.rows_dropped:,} "
                     "pool row(s) sharing an n-gram with a Dt sample (Dt's own rows included) were dropped as "
                     "well, so the mixture holds none of the rows the quality scores were measured on.\n")
        sections.append(CardSection("Data hygiene", text))
    rows = []
    for task, r in art.scorer_results.items():
        real, predicted = r.get("mean_qs_per_source") or {}, r.get("mean_score_per_source") or {}
        for source in sorted(real, key=lambda k: (-real[k], k)):
            score = predicted.get(source)
            rows.append(f"| {task if task != '*' else 'all'} | {source} | {real[source]:.3f} | "
                        f"{'' if score is None else f'{score:.2f}'} |")
    if rows:
        sections.append(CardSection("Quality score per source", (
            "Mean one-shot quality score (QS, in [0, 1]) of each source's scored sample, beside the scorer's mean "
            "score (1-5) on the same rows, scored by a model that never saw them:\n\n"
            "| scorer | source | mean QS | mean scorer score |\n|---|---|---:|---:|\n" + "\n".join(rows) + "\n")))
    return sections


def card_figures(art: Artifacts, scratch: Path) -> list:
    """Figures the steps contribute: the scorer-vs-QS scatter (Figure 4 of the paper), the strategy comparison."""
    from .release import CardFigure
    from .stages.scorer import save_scorer_scatter

    figures = []
    if art.scorer_results:
        path = save_scorer_scatter(scratch / "scorer_scatter.png", art.scorer_results)
        figures.append(CardFigure(path, "Scorer against real quality score",
                                  "Each point is a scored row the scorer never saw: its scorer score against its "
                                  "one-shot QS, one panel per scorer, with Pearson r, its 95 % interval and the row "
                                  "count."))
    if art.evaluation is not None:
        from .evaluate import write_figure

        path = write_figure(art.evaluation, scratch / "selection_report.png")
        figures.append(CardFigure(path, "Selection report", "The strategies' subsets at equal size: covering radius "
                                  "over the pool in embedding space and mean quality score, mean over seeds."))
    return figures


def demo_kinds_markdown(art: Artifacts) -> str:
    """Mean real QS (scored sample) and mean scorer score (every row) per generated row kind and task."""
    from .demo import mean_by_kind

    lines = [("Mean one-shot quality score (QS, in [0, 1]) of the scored sample and mean scorer score (1-5) of every "
             "row, by the kind of row the demo generated (kind from the row id):"), "",
             "| task | kind | mean QS | rows scored | mean score | rows |", "|---|---|---:|---:|---:|---:|"]
    for task in sorted(set(art.scored["task"])):
        real = mean_by_kind(art.scored_sample, "qs", task=task)
        predicted = mean_by_kind(art.scored, "quality_score", task=task)
        for kind, (score, rows) in predicted.items():
            qs, n = real.get(kind, (None, 0))
            lines.append(f"| {task} | {kind} | {'' if qs is None else f'{qs:.3f}'} | {n} | {score:.2f} | {rows} |")
    return "\n".join(lines) + "\n"


STEPS: tuple[Step, ...] = (
    Step("sources", step_sources),
    Step("hygiene", step_hygiene),
    Step("embed", step_embed),
    Step("quality", step_quality),
    Step("scorer", step_scorer),
    Step("score", step_score),
    Step("select", step_select),
    Step("evaluate", step_evaluate),
    Step("release", step_release),
)


# ---------------------------------------------------------------------------------------------------------------------
# Running them
# ---------------------------------------------------------------------------------------------------------------------


def resolve_settings(preset: Any, profile_name: str | None = None, overrides: Mapping[str, Any] | None = None
                     ) -> Settings:
    """The settings a build of `preset` runs with: its profile (paper unless the preset says otherwise) plus the
    user's overrides (`{"quality.n1": 40}`); the preset's |s0| unless overridden."""
    from .settings import overlay

    base = profile(profile_name or profile_for_preset(preset), setting=preset.setting)
    return overlay(base, dict(overrides or {}))


def build(
    preset_name: str,
    out_dir: str | os.PathLike,
    *,
    model: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    data_files: Mapping[str, Sequence[str | os.PathLike]] | None = None,
    benchmark_files: Mapping[str, Sequence[str | os.PathLike]] | None = None,
    settings: Settings | None = None,
    repo_id: str | None = None,
    keep_embedding: bool = False,
    progress: bool = True,
) -> Path:
    """Run every step for a preset and write the release folder; return its path.

    Args:
        preset_name: a packaged preset ("demo", "openmathmix", "sbase_69k", ...) or a YAML path.
        out_dir: the release folder (an earlier release there is replaced; any other non-empty folder is refused,
            before any work starts).
        model: Hub id, local folder or embedded alias for embeddings, quality scores and a classifier scorer
            (default: the embedded SmolLM2-135M-Instruct).
        cache_dir: where step results are kept for re-runs (default: `settings.CACHE_DIR`).
        data_files: `{source: [files]}` in the source's native format; other sources come from their fixtures
            (`settings.fixtures`, the demo) or from the Hub.
        benchmark_files: `{benchmark: [files]}`: test items the hygiene step decontaminates against, for a
            registered benchmark (gsm8k, math, math500) or a test set of your own under a new name.
        settings: resolved settings (default: `resolve_settings(preset)`, the preset's profile).
        repo_id: the Hub repository the card's usage examples name.
        progress: one progress bar per step (rate and ETA).
    """
    import dataclasses

    from .models import resolve
    from .outputs import check_output
    from .select.mixture import load_preset
    from .settings import CACHE_DIR

    started = time.perf_counter()
    preset = load_preset(preset_name)
    settings = settings or resolve_settings(preset)
    if settings.select.init_size is not None:
        preset = dataclasses.replace(preset, init_size=settings.select.init_size)
    out = check_output(out_dir, inputs=_all_inputs(data_files) + _all_inputs(benchmark_files), overwrite=True)
    cache_root = Path(cache_dir) if cache_dir is not None else CACHE_DIR
    files = {k: _as_list(v) for k, v in (data_files or {}).items()}
    if settings.demo.generate:  # the user's files win over generated ones
        files = {**demo_data_files(preset, settings, cache_root), **files}
    ctx = Context(preset=preset, settings=settings, model=resolve(model), out_dir=out, cache_dir=cache_root,
                  data_files=files, benchmark_files={k: _as_list(v) for k, v in (benchmark_files or {}).items()},
                  repo_id=repo_id, keep_embedding=keep_embedding, progress=progress)
    print(f"openmathmix build: preset {preset.name!r} ({len(preset.sources)} sources), profile "
          f"{settings.profile!r} -> {out_dir}; model {ctx.model.public_name()}; cache {ctx.cache_dir}")
    art = Artifacts()
    for number, step in enumerate(STEPS, 1):
        with _logged(number, len(STEPS), step.name) as note:
            note(step.run(ctx, art))
    print()
    print(art.composition.to_markdown())
    for section in art.sections:
        if section.title in ("Mean score per row kind", "Selection report"):
            print(f"\n## {section.title}\n\n{section.markdown}", end="")
    for task, r in art.scorer_results.items():
        ci = "" if r.get("ci_low") is None else f" (95 % interval {r['ci_low']:.2f}-{r['ci_high']:.2f})"
        print(f"scorer {task if task != '*' else 'all'}: Pearson r = {_r(r.get('r'))}{ci} on {r.get('n')} rows "
              f"never trained on ({r.get('method')}); model {r.get('model')}")
    print(f"built {art.release} in {time.perf_counter() - started:,.1f} s")
    return art.release


@contextlib.contextmanager
def _logged(number: int, total: int, name: str) -> Iterator[Callable[[str], None]]:
    """`[3/7] quality ...` before a step and `[3/7] quality: <what it did> (12.3 s)` after it."""
    lines: list[str] = []
    start = time.perf_counter()
    print(f"[{number}/{total}] {name} ...", flush=True)
    yield lines.append
    detail = f": {'; '.join(lines)}" if lines else ""
    print(f"[{number}/{total}] {name}{detail} ({time.perf_counter() - start:,.1f} s)", flush=True)


# ---------------------------------------------------------------------------------------------------------------------
# Step helpers
# ---------------------------------------------------------------------------------------------------------------------


def _as_list(value: Any) -> list[str]:
    return [str(value)] if isinstance(value, (str, os.PathLike)) else [str(p) for p in value]


def _all_inputs(data_files: Mapping[str, Any] | None) -> list[str]:
    return [p for v in (data_files or {}).values() for p in _as_list(v)]


def _source_files(ctx: Context, name: str) -> list[str] | None:
    """The files a source is built from: the user's, else its bundled fixtures (demo), else None (the Hub)."""
    from .sources import fixture_files

    if ctx.data_files.get(name):
        return ctx.data_files[name]
    return fixture_files(name) if ctx.settings.fixtures else None


def cached_source(name: str, files: list[str] | None, cache_dir: Path):
    """`sources.build_source` once per (source definition, input files); later runs reopen the same sealed Arrow
    file, so its fingerprint, and every stage cache keyed on it, stay the same. Returns (Dataset, BuildReport)."""
    from datasets import Dataset

    from .sources import BuildReport, build_source, get_source, input_files

    source = get_source(name)
    definition = {f: getattr(source, f) for f in ("name", "version", "repo", "config", "revision", "data_dir",
                                                  "data_files", "split", "license")}
    stamp = None
    if files is not None:  # exactly the files the build reads: a file it skips never changes the key
        stamp = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in input_files(source, files)]
    folder = cache.entry(cache_dir, "sources", name, cache.key({"source": definition, "files": stamp}))
    arrow = folder / "source.arrow"
    with cache.lock(arrow):
        record = cache.check_sealed(arrow)
        if record is None:
            work = cache.work_dir(arrow)
            ds, report = build_source(name, files, cache_dir=work, progress=False)
            built = Path(report.cache_file)
            del ds
            os.replace(built, arrow)
            record = cache.seal(arrow, rows=report.rows_out, report=report.to_dict())
            cache.remove_work(work)
    report = BuildReport(**{**record["report"], "cache_file": str(arrow)})
    return Dataset.from_file(str(arrow)), report


def demo_data_files(preset: Any, settings: Settings, cache_dir: Path) -> dict[str, list[str]]:
    """The generated demo data (`openmathmix.demo`) for the preset's sources and the test-set source, written once
    per settings into a sealed cache folder (rewriting it would change the files' times and so every cache key)."""
    from .demo import write_demo_data

    d, test_source = settings.demo, settings.quality.test_source or ""
    spec = {"rows": d.rows_per_source, "test_rows": d.test_rows, "short": d.short_tests, "seed": d.seed,
            "sources": list(preset.source_names), "test_source": test_source}
    folder = cache.entry(cache_dir, "demo-data", preset.name, cache.key(spec))
    with cache.lock(folder / "data"):
        record = cache.check_folder(folder)
        if record is None:
            files = write_demo_data(folder, rows_per_source=d.rows_per_source, seed=d.seed,
                                    sources=list(preset.source_names), test_source=test_source,
                                    test_rows=d.test_rows)
            record = cache.seal_folder(folder, sources={k: [str(Path(p).relative_to(folder)) for p in v]
                                                        for k, v in files.items()})
    return {k: [str(folder / p) for p in v] for k, v in record["sources"].items()}


def load_benchmark(ctx: Context, name: str):
    """A benchmark's test items: the user's files, else its bundled fixtures (demo), else the Hub."""
    from .hygiene import build_benchmark, build_benchmark_files
    from .hygiene.benchmarks import benchmark_fixture_files

    if ctx.benchmark_files.get(name):
        try:
            return build_benchmark(name, ctx.benchmark_files[name])
        except KeyError:  # not a registered benchmark: a test set of the user's own
            return build_benchmark_files(name, ctx.benchmark_files[name])
    return build_benchmark(name, benchmark_fixture_files(name) if ctx.settings.fixtures else None)


def cached_hygiene(ctx: Context, pool, benchmarks: Mapping[str, Any], settings) -> tuple[Any, Any]:
    """`hygiene.run_hygiene` once per (pool, benchmarks, settings): the kept rows' indices and the report are sealed
    in the cache, and the kept rows are always `pool.select(indices)` (the same fingerprint on every run)."""
    import json

    import numpy as np

    from .hygiene import HygieneReport, run_hygiene

    digest = cache.key({"pool": fingerprint(pool), "settings": settings.to_dict(),
                        "benchmarks": {n: fingerprint(b) for n, b in benchmarks.items()}})
    folder = cache.entry(ctx.cache_dir, "hygiene", "hygiene", digest)
    kept_file = folder / "kept.npy"
    with cache.lock(kept_file):
        record = cache.check_sealed(kept_file)
        if record is None:
            _, report = run_hygiene(pool, benchmarks=benchmarks, settings=settings, progress=ctx.progress)
            dropped = set(report.dropped.column("id").to_pylist()) if report.dropped is not None else set()
            kept = np.array([i for i, row_id in enumerate(pool["id"]) if row_id not in dropped], dtype=np.int64)
            np.save(kept_file, kept)
            cache.seal(kept_file, rows=len(kept), report=json.loads(json.dumps(report.to_dict())))
            record = cache.check_sealed(kept_file)  # as a later run reads it (key order included)
    kept = np.load(kept_file)
    report = HygieneReport(**record["report"])
    report.check()
    return (pool if len(kept) == len(pool) else pool.select(kept)), report


def _test_rows(art: Artifacts):
    """Dt as a Dataset of question/answer (ids from the quality report), from the pool or the outside test pool."""
    wanted = [t["id"] for t in art.quality.test_set]
    source = art.test_set if art.test_set is not None else art.embedded
    position = {row_id: i for i, row_id in enumerate(source["id"])}
    return source.select([position[i] for i in wanted]).select_columns(["id", "question", "answer"])


def _engine(ctx: Context) -> dict[str, Any]:
    return {"engine": ctx.settings.run.engine, "ray_address": ctx.settings.run.ray_address}


def _embed_stage(ctx: Context):
    from .stages.embed import EmbedStage

    e = ctx.settings.embed
    return EmbedStage(ctx.model, dtype=ctx.settings.run.dtype, token_budget=e.token_budget,
                      project_dim=e.project_dim, project_seed=ctx.seed)


def _stage_line(report, what: str) -> str:
    reused = f", {report.shards_reused} reused from the cache" if report.shards_reused else ""
    return f"{report.rows:,} {what} in {report.shards} shard(s){reused}"


def cached_scorer(ctx: Context, scored, task: str) -> tuple[str, dict]:
    """Train (or reuse) the scorer of one task; return (folder, ScorerResult as a dict)."""
    from .stages.scorer import train_scorer

    s = ctx.settings.scorer
    options: dict[str, Any] = {"seed": ctx.seed, "heldout": s.heldout, "task": None if task == "*" else task,
                               "folds": s.folds, "learning_rate": s.resolved_learning_rate,
                               "batch_size": s.resolved_batch_size}
    if s.kind == "light":
        options.update(hidden=s.hidden, epochs=int(s.resolved_epochs), ensemble=s.ensemble, margin=s.margin)
        digest = cache.key({"data": fingerprint(scored), "kind": s.kind, **options})
    else:
        options.update(epochs=s.resolved_epochs, grad_accum=s.grad_accum, max_length=s.max_length,
                       device=ctx.settings.run.device, progress=False)
        digest = cache.key({"data": fingerprint(scored), "kind": s.kind, "model": ctx.model.key(), **options})
        options["model"] = ctx.model
    folder = cache.entry(ctx.cache_dir, "scorers", f"{s.kind}-{task.replace('*', 'all')}", digest)
    with cache.lock(folder):
        record = cache.check_folder(folder)
        if record is None:
            result = train_scorer(scored, folder, kind=s.kind, **options).to_dict()
            cache.seal_folder(folder, result=result)
            record = cache.check_folder(folder)  # as a later run reads it (key order included)
    return str(folder), record["result"]


def _r(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def release_settings(ctx: Context, art: Artifacts) -> dict:
    """What the manifest and the card record about this build (no timings, no local paths: reproducible)."""
    import json

    s, quality = ctx.settings, art.quality
    scorer_info = {}
    for task, folder in art.scorers.items():
        info = json.loads((Path(folder) / "scorer.json").read_text())
        info.pop("result", None)
        scorer_info[task] = info
    binning = next((i.get("binning") for i in scorer_info.values() if i.get("binning")),
                   "equal-width: label = 1 + min(4, floor(5 * QS))")
    model = {"name": ctx.model.public_name(), "revision": ctx.model.revision}
    if s.scorer.kind == "classifier":
        scorer_model = {"name": f"classifier on {ctx.model.public_name()}", "revision": ctx.model.revision}
    else:
        scorer_model = {"name": "light heads on the embeddings (chosen by cross-validation)", "revision": None}
    from .settings import as_record

    return {
        "preset": ctx.preset.name,
        "preset_file": ctx.preset.origin,
        "profile": s.profile,
        "setting": ctx.preset.setting,
        "seed": ctx.seed,
        "init_size": ctx.preset.init_size,
        "subset_ratios": list(ctx.preset.subset_ratios),
        "n1": s.quality.n1,
        "n2": quality.n2,
        "test_sources": quality.test_sources,
        "test_selection": quality.test_selection,
        "prompt_rows": quality.prompt_rows,
        "scorer": s.scorer.kind,
        "scorer_epochs": s.scorer.resolved_epochs,
        "scorers": sorted(art.scorer_results),
        "split_by_task": ctx.split_by_task,
        "binning": binning,
        "budgets": {"max_tokens_qs": s.quality.max_test_tokens, "embed_token_budget": s.embed.token_budget},
        "projection_dim": s.embed.project_dim,
        "dtype": s.run.dtype,
        "device": s.run.device or "auto",
        "models": {"embedding": model, "quality_score": model, "scorer": scorer_model},
        "scorer_settings": scorer_info,
        "sources_in": {name: {"rows": r.rows_out, "dropped": r.n_dropped,
                              "inputs": [Path(i).name if "://" not in i else i for i in r.inputs]}
                       for name, r in art.inputs.items()},
        "hygiene": None if art.hygiene is None else art.hygiene.to_dict(),
        "hygiene_test_set": None if art.hygiene_test_set is None else {
            "rows_in": art.hygiene_test_set.rows_in, "rows_dropped": art.hygiene_test_set.rows_dropped,
            "examples": art.hygiene_test_set.examples},
        "resolved_settings": as_record(s),
    }
