"""Public APIs only: no private attribute of `datasets`, `huggingface_hub` or `argparse` outside openmathmix/compat.py."""

from __future__ import annotations

import argparse
import importlib
import io
import pkgutil
import re
import tokenize
from pathlib import Path

import datasets
import huggingface_hub

PACKAGE = Path(__file__).resolve().parents[1] / "openmathmix"
ALLOWED = {PACKAGE / "compat.py"}


def _private_names() -> set[str]:
    """Single-underscore names defined by the classes and modules of the three libraries that we might touch."""
    names: set[str] = set()
    owners = [datasets.Dataset, datasets.DatasetDict, datasets.IterableDataset, datasets.Features,
              datasets.DatasetInfo, huggingface_hub.HfApi, huggingface_hub.DatasetCard, huggingface_hub.CommitOperationAdd,
              argparse.ArgumentParser, argparse.Namespace, argparse.Action]
    tiny = datasets.Dataset.from_dict({"x": [1, 2]})
    instances = [tiny, tiny.select([1]), datasets.DatasetDict({"train": tiny}), argparse.ArgumentParser(),
                 argparse.ArgumentParser().add_subparsers(), huggingface_hub.HfApi(token=False)]
    for owner in [*owners, *instances]:
        names.update(n for n in dir(owner) if n.startswith("_") and not n.startswith("__"))
    for package in (datasets, huggingface_hub):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.rsplit(".", 1)[-1].startswith("_"):
                continue
            try:
                module = importlib.import_module(info.name)
            except Exception:  # noqa: BLE001, S112 - optional extras of those libraries; their names are not needed here
                continue
            names.update(n for n in vars(module) if n.startswith("_") and not n.startswith("__"))
    names.update(n for n in vars(argparse) if n.startswith("_") and not n.startswith("__"))
    return names


def _attribute_uses(path: Path):
    """(object, attribute) token pairs of `object.attribute` in code; strings and comments never count."""
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
              if t.type in (tokenize.NAME, tokenize.OP)]
    return [(a, c) for a, b, c in zip(tokens, tokens[1:], tokens[2:]) if b.string == "." and c.type == tokenize.NAME]


def test_no_private_library_names_outside_the_adapter():
    private = _private_names()
    assert {"_fingerprint", "_indices", "_actions", "_SubParsersAction"} <= private  # the probe sees the usual ones
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in ALLOWED:
            continue
        for owner, attribute in _attribute_uses(path):
            if attribute.string in private and owner.string not in ("self", "cls"):  # our own objects' state is ours
                found.append(f"{path.relative_to(PACKAGE.parent)}:{attribute.start[0]}: "
                             f"{owner.string}.{attribute.string}")
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"^\s*from\s+(datasets|huggingface_hub|argparse)[\w.]*\s+import\s+(.+)$", text, re.MULTILINE):
            bad = [n.strip() for n in m.group(2).replace("(", "").split(",") if n.strip().startswith("_")]
            if bad or re.search(r"\._", m.group(0).split("import")[0]):
                found.append(f"{path.relative_to(PACKAGE.parent)}: {m.group(0).strip()}")
    assert not found, "private library names used outside openmathmix/compat.py:\n" + "\n".join(found)
