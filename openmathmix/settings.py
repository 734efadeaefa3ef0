"""Every default of the pipeline, in one place, with two named profiles.

    paper  Appendix A of the paper: n1 = 2,000 prompt samples per source, n2 = 100 tests from the MATH CoT part of
           MathInstruct, |s0| = 100, classifier scorers trained for 2 epochs, 1,024 tokens per sample. The default
           profile of every paper preset.
    demo   `make demo`: generated data with rows of known kinds (openmathmix.demo), settings large enough for the
           one-shot scores to tell the kinds apart, small enough for a 2-core CPU in minutes with the embedded
           135M model; the build also compares the selection strategies (no training).
    fixtures  the bundled fixture files of every source (5-10 rows each) with tiny settings: the plumbing in seconds.

`openmathmix build` and every stage command start from the same profile (`profile(name)`) and overlay the flags the
user gave (`overlay(settings, {"quality.n1": 40, ...})`). The resolved values are recorded in `manifest.json` and on
the card (`as_record(settings)`). Constants that are not settings (file names, schema columns) stay in their modules.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = [
    "CACHE_DIR",
    "MODELS_DIR",
    "PROFILES",
    "DemoSettings",
    "EmbedSettings",
    "EvaluateSettings",
    "HygieneSettings",
    "PreexperienceSettings",
    "QualitySettings",
    "RunSettings",
    "ScorerSettings",
    "SelectSettings",
    "Settings",
    "as_record",
    "overlay",
    "profile",
    "profile_for_preset",
]

CACHE_DIR = Path(os.environ.get("OPENMATHMIX_CACHE") or Path.home() / ".cache" / "openmathmix")  # stage outputs
# Converted models are shared by every stage cache (a converted embedded model is 517 MB): one copy per user.
MODELS_DIR = Path(os.environ.get("OPENMATHMIX_MODELS") or Path.home() / ".cache" / "openmathmix" / "models")

def _f(default: Any, help: str) -> Any:
    """A setting: its default and the one-line help the CLI shows for it."""
    return field(default=default, metadata={"help": help})


CLASSIFIER_EPOCHS = 2  # fine-tuned LM scorer (Appendix A)
LIGHT_EPOCHS = 100  # light head on frozen embeddings: passes over a few thousand scored rows


@dataclass(frozen=True)
class RunSettings:
    """Where and how models run."""

    device: str | None = _f(None, "cpu, cuda, cuda:N; None: every visible GPU, else the CPU")
    dtype: str = _f("auto", "auto (bf16 where the GPU/CPU has it natively, else fp32), float32, bfloat16, float16")
    engine: str = _f("local", "local: datasets.map, one process per GPU of this machine; ray: a Ray cluster")
    ray_address: str | None = _f(None, "Ray cluster to use with --engine ray: auto, HOST:PORT (None: a local one)")


@dataclass(frozen=True)
class EmbedSettings:
    """Mean-pooled embeddings of every row (Section 3.1)."""

    token_budget: int | None = _f(None, "padded tokens per forward; None: 2,048 on a CPU, 32,768 on a GPU")
    project_dim: int | None = _f(None, "store a seeded Gaussian projection to this many dims (e.g. 256 for 7B models)")
    batch_rows: int = _f(1024, "rows handed to the stage at once (length-sorted within)")
    shard_rows: int = _f(8192, "rows per resumable cache shard")


@dataclass(frozen=True)
class QualitySettings:
    """One-shot influence quality score on a per-source sample (Eq. 1-3)."""

    n1: int = _f(2000, "prompt samples per source (Dp)")
    n2: int = _f(100, "test samples (Dt), picked by K-center Greedy over the embeddings")
    test_source: str | None = _f("mathinstruct_math", "Dt pool; None: every reasoning source of the pool (base setting)")
    test_selection: str = _f("kcenter", "kcenter (needs embeddings) or random")
    pool_size: int | None = _f(None, "draw at most this many pool rows before K-center (None: the whole pool)")
    max_test_tokens: int = _f(1024, "tokens kept per test sample (question + answer)")
    max_example_tokens: int = _f(1024, "tokens kept per in-context example")
    chunk_rows: int | None = _f(None, "test rows per forward after a cached prefix; None: 8 on a CPU, 32 on a GPU")
    chunk_tokens: int | None = _f(None, "padded test tokens per forward; None: 2,048 on a CPU, 32,768 on a GPU")
    batch_rows: int = _f(4, "prompt samples handed to the stage at once")
    shard_rows: int = _f(64, "prompt samples per resumable cache shard")


@dataclass(frozen=True)
class ScorerSettings:
    """The scorer trained on the scored sample to predict QS for every row (Section 3.2)."""

    kind: str = _f("classifier", "classifier: fine-tuned LM (the paper's); light: head on the frozen embeddings (CPU)")
    epochs: float | None = _f(None, "None: 2 for the classifier, 100 for the light head")
    heldout: float = _f(0.1, "share of the scored sample kept out of training to measure Pearson r")
    split_by_task: bool | None = _f(None, "one scorer per task; None: yes in the large setting, no in the base setting")
    hidden: int | None = _f(None, "light: one MLP hidden width to try beside the linear candidates (0: linear only; "
                                  "None: the default candidate set, chosen by cross-validation)")
    folds: int = _f(5, "k of the cross-validation that chooses the light scorer and measures r")
    ensemble: int = _f(8, "light: committee size - the mean of this many candidates with the highest CV r")
    margin: float | None = _f(1.5, "light: bootstrap SEs by which the committee's CV r must beat the ridge prior's "
                                   "for the committee to ship (None: always the committee)")
    learning_rate: float | None = _f(None, "None: 2e-5 classifier, 1e-2 light (Adam on the MLP candidates)")
    batch_size: int | None = _f(None, "None: 8 classifier, 128 light")
    grad_accum: int = _f(1, "classifier: gradient accumulation steps")
    max_length: int = _f(512, "classifier: tokens per row")
    score_batch_rows: int = _f(256, "rows per batch when scoring every row")
    score_shard_rows: int = _f(8192, "rows per resumable cache shard when scoring every row")

    @property
    def resolved_epochs(self) -> float | int:
        if self.epochs is not None:
            return self.epochs
        return CLASSIFIER_EPOCHS if self.kind == "classifier" else LIGHT_EPOCHS

    @property
    def resolved_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 2e-5 if self.kind == "classifier" else 1e-2

    @property
    def resolved_batch_size(self) -> int:
        if self.batch_size is not None:
            return self.batch_size
        return 8 if self.kind == "classifier" else 128


@dataclass(frozen=True)
class SelectSettings:
    """Selection settings that a preset does not fix itself."""

    init_size: int | None = _f(None, "|s0| of QaDS per source; None: the preset's value (paper: 100)")
    dtype: str | None = _f(None, "embedding storage dtype for selection; None: the preset's")


POOL_FIELDS = ("question", "answer")  # the row texts hygiene can read


@dataclass(frozen=True)
class HygieneSettings:
    """Defaults of decontamination and deduplication; change one with ``dataclasses.replace(settings, ngram=10)``."""

    enabled: bool = _f(True, "run the hygiene step (off: every row is kept, as in the paper's raw pool)")
    benchmarks: tuple[str, ...] = ("gsm8k", "math")  # registered test sets to decontaminate against (MATH-500 is a
    #                                                 subset of MATH test); files of your own: --benchmark-files
    decontaminate_test_set: bool = True  # also drop pool rows that copy a quality-stage test sample (Dt), Dt's own
    #                                      rows included, so the mixture holds nothing the scores were measured on
    decontaminate: bool = True  # drop rows that share a word n-gram with a benchmark item
    exact_dedup: bool = True  # drop rows whose normalised question + answer equal a kept row's
    near_dedup: bool = True  # drop rows that are MinHash near-duplicates of a kept row

    # Decontamination
    ngram: int = _f(13, "words per n-gram shared with a benchmark item that flags a row")  # words per n-gram. 13 (GPT-3's choice) is long enough that two different problems rarely
    #                  share one by chance (GSM8K train vs test: 8-grams flag 97 rows, mostly stock phrases shared by
    #                  different problems; 13-grams flag 4, each a templated twin of a test problem) and short
    #                  enough to catch a test question quoted inside a longer prompt or a rephrased one that keeps a
    #                  sentence
    min_item_words: int = 8  # benchmark items of min_item_words..ngram-1 words match as a whole word sequence;
    #                          shorter ones ("Compute $\\dbinom{8}{4}$.") only match a pool question equal to them
    benchmark_fields: tuple[str, ...] = ("question",)  # benchmark texts indexed; adding "answer" also catches copied
    #                                                    solutions, at the price of stock solution phrases
    pool_fields: tuple[str, ...] = POOL_FIELDS  # pool texts searched (a question can be restated in the answer)

    # Near duplicates (MinHash LSH, rensa R-MinHash)
    shingle: int = 2  # words per shingle. With 10 % of the words edited, word 2-grams keep Jaccard >= 0.62 on real
    #                   GSM8K/MATH rows (1st percentile), 3-grams drop to 0.51, 5-grams to 0.30
    num_perm: int = 128  # MinHash values per row (16 bits of each are kept: 256 bytes a row)
    bands: int = 32  # LSH bands ...
    rows_per_band: int = 4  # ... of this many values: a pair at Jaccard 0.6 becomes a candidate with p = 0.988
    threshold: float = _f(0.6, "estimated Jaccard of a near-duplicate pair (MinHash LSH)")  # estimated Jaccard a candidate pair needs to count as near-duplicate (real distinct
    #                         GSM8K/MATH rows above it: 0.7 %, mostly MATH's one-line trigonometry twins)
    seed: int = 0  # seed of the MinHash permutations

    # Keep rule and report
    source_priority: tuple[str, ...] = ()  # sources whose copy is kept first, in this order; the others follow,
    #                                        reasoning sources before general ones, each group by name; within a
    #                                        source the smallest id (natural order) is kept
    examples: int = 5  # example rows per drop reason in the report
    batch_rows: int = 20_000  # pool rows per chunk (bounds the memory of one chunk's word arrays)
    rephrase_threshold: float = 0.9  # cosine (centred embeddings) above which a row is a rephrasing candidate

    def __post_init__(self) -> None:
        checks = [
            (self.ngram >= 1, f"ngram must be >= 1, got {self.ngram}"),
            (1 <= self.min_item_words <= self.ngram,
             f"min_item_words must be between 1 and ngram ({self.ngram}), got {self.min_item_words}"),
            (bool(self.benchmark_fields) and set(self.benchmark_fields) <= set(POOL_FIELDS),
             f"benchmark_fields must name 'question' and/or 'answer', got {list(self.benchmark_fields)}"),
            (bool(self.pool_fields) and set(self.pool_fields) <= set(POOL_FIELDS),
             f"pool_fields must name 'question' and/or 'answer', got {list(self.pool_fields)}"),
            (self.shingle >= 1, f"shingle must be >= 1, got {self.shingle}"),
            (self.bands >= 1 and self.rows_per_band >= 1 and self.bands * self.rows_per_band <= self.num_perm,
             f"bands x rows_per_band ({self.bands} x {self.rows_per_band}) must be at most num_perm ({self.num_perm})"),
            (0.0 < self.threshold <= 1.0, f"threshold must be in (0, 1], got {self.threshold}"),
            (-1.0 <= self.rephrase_threshold <= 1.0,
             f"rephrase_threshold is a cosine in [-1, 1], got {self.rephrase_threshold}"),
            (self.examples >= 0 and self.batch_rows >= 1, "examples must be >= 0 and batch_rows >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"hygiene settings: {message}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class PreexperienceSettings:
    """The brief fine-tuning of the embedding model on a seeded subset (`openmathmix preexperience`)."""

    rows: int = _f(1000, "rows in the seeded random subset")
    steps: int = _f(50, "optimiser steps")
    batch_size: int = _f(8, "rows per device per step (times grad_accum)")
    grad_accum: int = _f(1, "gradient accumulation steps")
    learning_rate: float = _f(1e-5, "learning rate")
    warmup_steps: int = _f(0, "linear warm-up steps")
    weight_decay: float = _f(0.0, "AdamW weight decay")
    lr_scheduler: str = _f("linear", "transformers learning-rate schedule name")
    max_length: int = _f(1024, "tokens per row (the template's truncation rule beyond that)")
    answer_only_loss: bool = _f(True, "loss on answer tokens only (the question is context)")
    seed: int = _f(0, "subset, order and optimiser seed")
    bf16: bool | None = _f(None, "mixed precision; None: on a bf16-capable GPU, never on the CPU")
    logging_steps: int = _f(10, "steps between logged losses")


@dataclass(frozen=True)
class EvaluateSettings:
    """The strategy comparison (`openmathmix evaluate`, and the build's evaluate step when `enabled`)."""

    enabled: bool = _f(False, "build: compare the strategies on the scored pool (no training) for the card")
    # What is compared
    budget: float = 0.1  # share of the pool each strategy picks (the paper's smallest nested subset, ratio_10)
    strategies: tuple[str, ...] = ("qads", "kcenter", "score", "random", "length")  # select.strategies.STRATEGIES
    seeds: tuple[int, ...] = (0, 1)  # one run per strategy and seed: the seed draws s0 / the random order and
    #                                  seeds the proxy fine-tune; at least two, so every mean has a spread
    scope: str = "source"  # "source": each source ranked on its own and cut to ceil(budget * rows) (the paper's
    #                        per-dataset scope, equal composition for all strategies); "pool": one ranking of the
    #                        whole pool cut to ceil(budget * rows) (composition differs by strategy)
    init_size: int = 100  # |s0| of qads / kcenter per scope (the paper's 100, select.kcenter.DEFAULT_INIT_SIZE)

    # Selection metrics (no training)
    near_duplicate_cosine: float = 0.95  # two subset rows are near-duplicates when their embeddings' cosine exceeds it
    distance_block: int = 1 << 22  # most float32 entries of one distance / similarity block (16 MiB); exact either way

    # Proxy fine-tune (--train)
    model: str | None = None  # proxy model: Hub id or folder; None = the embedded SmolLM2-135M-Instruct
    epochs: float = 1.0  # passes over the subset (same for all strategies: equal subset sizes give equal steps)
    max_steps: int | None = None  # fixed optimizer steps instead of epochs (None: use epochs)
    batch_size: int = 8  # rows per device batch
    grad_accum: int = 1  # batches per optimizer step
    learning_rate: float = 2e-5  # AdamW, linear decay (TRL's SFT default)
    warmup_ratio: float = 0.0  # share of the steps with a linear learning-rate warm-up
    max_length: int = 512  # tokens per training row (prompt + answer); longer rows lose the end of the answer
    lora: bool = False  # train LoRA adapters (peft) instead of every weight
    lora_r: int = 16  # LoRA rank
    lora_alpha: int = 32  # LoRA scaling numerator (alpha / r scales the update)
    lora_dropout: float = 0.05  # dropout on the LoRA branch
    dtype: str = "auto"  # "auto": bf16 autocast on GPUs and on CPUs with native bf16, else fp32; or float32/bfloat16

    # Benchmarks
    benchmark_limit: int | None = 200  # first N items of each benchmark (None: all)
    max_eval_tokens: int = 1024  # prompt + reference solution tokens scored per item (longer ones are cut)
    accuracy: str = "auto"  # greedy-decoding accuracy with math-verify: "auto" (on a GPU only), "on", "off"
    max_new_tokens: int = 512  # generation budget per item for the accuracy
    generation_batch: int = 16  # items per generate() call


@dataclass(frozen=True)
class DemoSettings:
    """The demo's generated data (openmathmix.demo): rows of known kinds in each source's native format."""

    generate: bool = _f(False, "write the demo data and build from it (sources without --data-files)")
    rows_per_source: int = _f(30, "generated rows per mixture source, split into kinds by the source's shares")
    test_rows: int = _f(40, "worked solutions written for the test-set source (quality.test_source)")
    short_tests: bool = _f(False, "test-set rows use two-step problems only (shorter Dt samples)")
    seed: int = _f(0, "seed of the generated text")


@dataclass(frozen=True)
class Settings:
    """All pipeline settings; sections mirror the steps. Change one value with `overlay(s, {"quality.n1": 40})`."""

    profile: str = "paper"
    run: RunSettings = field(default_factory=RunSettings)
    embed: EmbedSettings = field(default_factory=EmbedSettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
    scorer: ScorerSettings = field(default_factory=ScorerSettings)
    select: SelectSettings = field(default_factory=SelectSettings)
    hygiene: HygieneSettings = field(default_factory=HygieneSettings)
    preexperience: PreexperienceSettings = field(default_factory=PreexperienceSettings)
    evaluate: EvaluateSettings = field(default_factory=EvaluateSettings)
    demo: DemoSettings = field(default_factory=DemoSettings)
    fixtures: bool = False  # read each source's bundled fixture files when no data files are given (the demo)


PAPER = Settings(profile="paper", select=SelectSettings(init_size=100))
PAPER_BASE = dataclasses.replace(PAPER, quality=dataclasses.replace(PAPER.quality, test_source=None))
FIXTURES = Settings(
    profile="fixtures",
    quality=QualitySettings(n1=2, n2=4, test_source=None, max_test_tokens=256, max_example_tokens=256),
    scorer=ScorerSettings(kind="light", heldout=0.3),
    embed=EmbedSettings(token_budget=8192),
    fixtures=True,
)
# Sized on the slowest CPU seen (2-core AVX2 EPYC, fp32: about 2.5 embedded rows/s and 0.5 s per one-shot pair)
# so that `make demo` stays under 10 minutes; BENCHMARKS.md ("Demo") has the measured runs.
DEMO = Settings(
    profile="demo",
    quality=QualitySettings(n1=6, n2=4, test_source="mathinstruct_math", max_test_tokens=96, max_example_tokens=128),
    scorer=ScorerSettings(kind="light", heldout=0.0, hidden=32),
    embed=EmbedSettings(token_budget=8192, batch_rows=64),
    select=SelectSettings(init_size=2),
    evaluate=EvaluateSettings(enabled=True, init_size=2),
    demo=DemoSettings(generate=True, rows_per_source=24, test_rows=30, short_tests=True),
    fixtures=True,  # benchmarks for decontamination: their bundled fixtures
)
PROFILES: dict[str, Settings] = {"paper": PAPER, "demo": DEMO, "fixtures": FIXTURES}


def profile(name: str = "paper", *, setting: str | None = None) -> Settings:
    """The named profile; in the paper's base setting Dt comes from every reasoning source (Appendix A)."""
    if name not in PROFILES:
        raise ConfigError(f"unknown settings profile {name!r}; choose one of {sorted(PROFILES)}")
    if name == "paper" and setting == "base":
        return PAPER_BASE
    return PROFILES[name]


def profile_for_preset(preset: Any) -> str:
    """The profile a preset builds with unless told otherwise: its `profile` key, else `demo` for the demo preset and
    `paper` for every paper preset."""
    return getattr(preset, "profile", None) or ("demo" if getattr(preset, "name", "") == "demo" else "paper")


def overlay(settings: Settings, values: Mapping[str, Any]) -> Settings:
    """A copy of `settings` with `{"section.field": value}` (or top-level `"field"`) replaced; None values are skipped.

    Raises ConfigError for an unknown key or a value of the wrong kind.
    """
    by_section: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        section, _, name = key.rpartition(".")
        if section:
            by_section.setdefault(section, {})[name] = value
        else:
            top[name] = value
    names = {f.name for f in dataclasses.fields(Settings)}
    for section, changes in by_section.items():
        if section not in names or not dataclasses.is_dataclass(getattr(settings, section)):
            raise ConfigError(f"unknown settings section {section!r}; known: {sorted(_sections())}")
        current = getattr(settings, section)
        valid = {f.name for f in dataclasses.fields(current)}
        unknown = sorted(set(changes) - valid)
        if unknown:
            raise ConfigError(f"unknown setting(s) {[f'{section}.{u}' for u in unknown]}; "
                              f"{section} has {sorted(valid)}")
        top[section] = dataclasses.replace(current, **changes)
    unknown = sorted(set(top) - names)
    if unknown:
        raise ConfigError(f"unknown setting(s) {unknown}; known: {sorted(names)}")
    result = dataclasses.replace(settings, **top)
    validate(result)
    return result


def _sections() -> list[str]:
    return [f.name for f in dataclasses.fields(Settings) if f.name not in ("profile", "fixtures")]


def validate(settings: Settings) -> None:
    """Raise ConfigError for values no step can run with (checked once, before any work)."""
    q, s, e = settings.quality, settings.scorer, settings.embed
    positive = {"quality.n1": q.n1, "quality.n2": q.n2, "quality.max_test_tokens": q.max_test_tokens,
                "quality.max_example_tokens": q.max_example_tokens, "quality.batch_rows": q.batch_rows,
                "quality.shard_rows": q.shard_rows, "embed.batch_rows": e.batch_rows, "embed.shard_rows": e.shard_rows,
                "scorer.max_length": s.max_length, "scorer.grad_accum": s.grad_accum,
                "scorer.ensemble": s.ensemble}
    bad = [f"{k} = {v!r}" for k, v in positive.items() if not isinstance(v, int) or isinstance(v, bool) or v < 1]
    if bad:
        raise ConfigError(f"these settings must be positive integers: {', '.join(bad)}")
    if s.kind not in ("classifier", "light"):
        raise ConfigError(f"scorer.kind must be 'classifier' or 'light', got {s.kind!r}")
    if not 0 <= s.heldout < 1:
        raise ConfigError(f"scorer.heldout must be in [0, 1), got {s.heldout!r}")
    if s.margin is not None and not s.margin >= 0:
        raise ConfigError(f"scorer.margin must be >= 0 or None (no ridge prior), got {s.margin!r}")
    if q.test_selection not in ("kcenter", "random"):
        raise ConfigError(f"quality.test_selection must be 'kcenter' or 'random', got {q.test_selection!r}")
    v = settings.evaluate
    if not 0 < v.budget <= 1:
        raise ConfigError(f"evaluate.budget must be in (0, 1], got {v.budget!r}")
    if v.scope not in ("source", "pool"):
        raise ConfigError(f"evaluate.scope must be 'source' or 'pool', got {v.scope!r}")
    d = settings.demo
    if d.rows_per_source < 1 or d.test_rows < 1:
        raise ConfigError(f"demo.rows_per_source and demo.test_rows must be >= 1, got {d.rows_per_source}, "
                          f"{d.test_rows}")
    if settings.run.engine not in ("local", "ray"):
        raise ConfigError(f"run.engine must be local or ray, got {settings.run.engine!r}")
    if settings.run.dtype not in ("auto", "float32", "bfloat16", "float16"):
        raise ConfigError(f"run.dtype must be auto, float32, bfloat16 or float16, got {settings.run.dtype!r}")


def as_record(settings: Settings) -> dict[str, Any]:
    """The resolved settings as plain JSON data, for the manifest and the card."""
    import json

    record = json.loads(json.dumps(dataclasses.asdict(settings)))  # tuples become lists, as in the manifest
    record["scorer"]["epochs"] = settings.scorer.resolved_epochs
    return record


for _profile in PROFILES.values():
    validate(_profile)
