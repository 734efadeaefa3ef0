"""Lila-OOD (Mishra et al., EMNLP 2022): the out-of-distribution part of the Lila benchmark; answers are programs."""

from __future__ import annotations

from openmathmix.formats import Columns
from openmathmix.sources import Source


def task_instances(data: dict) -> list | None:
    """A Lila task file ``{Definition, Instances: [...]}``: one record per instance."""
    instances = data.get("Instances")
    return instances if isinstance(instances, list) else None


SOURCE = Source(
    name="lila_ood", title="Lila-OOD", task="reasoning",
    license="cc-by-4.0", paper_size=19_000,
    repo="allenai/lila", split=("train", "validation", "test"),
    revision="refs/convert/parquet",  # the repo is a loading script; datasets>=4 reads the Parquet conversion
    data_files={s: f"ood/{s}/0000.parquet" for s in ("train", "validation", "test")},
    homepage="https://github.com/allenai/Lila",
    json_object=task_instances,
    formats=(
        Columns("input", "output_program"),  # Hub
        Columns("Input", "Output Program[0]"),  # raw lila.zip task files: capitalised keys, lists of programs
    ),
    notes="input -> question, output_program (a Python program that prints the answer) -> answer; all three splits.",
)
