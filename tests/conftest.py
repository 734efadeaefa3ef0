"""Shared test fixtures: a tiny random causal LM (fast, offline), the real-data folder, a small QA dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


@pytest.fixture(scope="session")
def realdata() -> Path:
    """`../shared/realdata` beside the repository; tests that need it skip when it is absent (a user's clone)."""
    if not REALDATA.is_dir():
        pytest.skip(f"real data folder {REALDATA} is absent")
    return REALDATA


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A randomly initialised 2-layer Llama (hidden 64) with the embedded model's tokenizer, saved as a folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from openmathmix.models import load_tokenizer, resolve

    out = tmp_path_factory.mktemp("tiny-llama")
    tok = load_tokenizer(resolve())
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


@pytest.fixture
def qa_rows() -> dict[str, list]:
    """Twelve schema rows from three sources, with varied lengths."""
    questions = [
        "What is 2 + 3?", "Solve for x: 3x - 7 = 11.", "A train travels 60 km in 1.5 hours. What is its speed?",
        "Is 91 prime?", "Compute the area of a circle of radius 2.", "What is 15% of 240?",
        "Name the capital of France.", "Write a haiku about autumn.", "Explain photosynthesis in one sentence.",
        "Translate 'good morning' into Spanish.", "List three primary colours.", "Why is the sky blue?",
    ]
    answers = [
        "2 + 3 = 5. The answer is 5.", "3x = 18, so x = 6.", "Speed = 60 / 1.5 = 40 km/h.",
        "No: 91 = 7 x 13.", "Area = pi r^2 = 4 pi, about 12.57.", "0.15 x 240 = 36.",
        "Paris.", "Leaves drift and settle / cold wind hums through bare branches / the year exhales slow",
        "Plants turn light, water and carbon dioxide into sugar and oxygen.", "Buenos dias.",
        "Red, yellow and blue.", "Air scatters short blue wavelengths of sunlight more than long red ones.",
    ]
    sources = ["gsm8k_screl"] * 4 + ["metamathqa"] * 2 + ["alpaca"] * 6
    return {
        "id": [f"{s}/train/{i}" for i, s in enumerate(sources)],
        "source": sources,
        "task": ["reasoning"] * 6 + ["general"] * 6,
        "question": questions,
        "answer": answers,
        "license": ["mit"] * 6 + ["cc-by-nc-4.0"] * 6,
    }


DEMO_TEST_OVERRIDES = {  # the demo profile, small: 12 generated rows per source, 2 x 2 one-shot pairs per source,
    "quality.n1": 2, "quality.n2": 2, "run.device": "cpu", "demo.rows_per_source": 12, "demo.test_rows": 6,
    "scorer.hidden": 0,  # linear scorer candidates only: the fits of the MLP grid take a minute
}


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory, tiny_model_dir):
    """`pipeline.build("demo")` once per session with the tiny model: (release folder, stage cache, settings,
    printed output)."""
    import contextlib
    import io

    from openmathmix.pipeline import build, resolve_settings
    from openmathmix.select.mixture import load_preset

    root = tmp_path_factory.mktemp("demo-build")
    settings = resolve_settings(load_preset("demo"), overrides=DEMO_TEST_OVERRIDES)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        release = build("demo", root / "a", model=tiny_model_dir, cache_dir=root / "cache", settings=settings,
                        progress=False)
    return release, root / "cache", settings, printed.getvalue()
