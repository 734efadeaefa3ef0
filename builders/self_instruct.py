"""Self-Instruct (Wang et al., ACL 2023): 82K GPT-3 generated instructions with input/output instances.

Layouts: the Hub's GPT-3 fine-tuning rows (``prompt``/``completion``), the release's ``all_instances_82K.jsonl``
(``instruction``/``input``/``output``), and task files such as ``seed_tasks.jsonl`` (a task with a list of
instances, one row per instance; parsed here).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from openmathmix.formats import Chunk, Columns, FieldError, Mapped, RecordMap, RowMapping, expect, join_text
from openmathmix.sources import Source

DROP_NO_INSTANCES = "task without instances"


def prompt_completion(rec: dict) -> tuple[str | None, str | None]:
    """GPT-3 fine-tuning rows: the completion loses its leading space and trailing ``<|endoftext|>``."""
    prompt = expect(rec, "prompt", str, "a string")
    completion = expect(rec, "completion", str, "a string", "")
    completion = completion.removeprefix(" ").rstrip()
    return prompt, completion.removesuffix("<|endoftext|>")


@dataclass(frozen=True)
class Instances(RowMapping):
    """Task records ``{instruction, instances: [{input, output}]}``: one row per instance.

    rows_in counts instances (a task without instances counts as one unit, dropped). The id of instance ``k`` of raw
    record ``r`` ends in ``r.k``. question = instruction, plus a blank line and the input when it is not blank.
    """

    unit = "instance"
    prefer_records = True

    def needs(self) -> tuple[str, ...]:
        return ("instruction", "instances")

    def extract(self, chunk: Chunk) -> Mapped:
        rows, qs, ans, dropped, units = [], [], [], Counter(), 0
        for i, rec in enumerate(chunk.records()):
            try:
                instruction = expect(rec, "instruction", str, "a string")
                instances = expect(rec, "instances", list, "a list of {input, output} objects", [])
                if not instances:
                    units += 1
                    dropped[DROP_NO_INSTANCES] += 1
                for k, inst in enumerate(instances):
                    if not isinstance(inst, dict):
                        raise FieldError(0, "instances", inst, "a list of {input, output} objects")
                    units += 1
                    rows.append(f"{chunk.rows[i]}.{k}")
                    qs.append(join_text(instruction, expect(inst, "input", str, "a string")))
                    ans.append(expect(inst, "output", str, "a string"))
            except FieldError as err:
                err.index = i
                raise
        return Mapped.from_lists(units, rows, qs, ans, dropped)


SOURCE = Source(
    name="self_instruct", title="Self-Instruct", task="general",
    license="apache-2.0", paper_size=82_000,
    repo="yizhongw/self_instruct", data_files={"train": "self_instruct/train/*.parquet"},
    revision="refs/convert/parquet",  # the repo is a loading script; datasets>=4 reads the Parquet conversion
    homepage="https://github.com/yizhongw/self-instruct",
    formats=(
        RecordMap(prompt_completion, ("prompt", "completion")),  # Hub: GPT-3 fine-tuning rows
        Instances(),  # seed_tasks.jsonl: a task with a list of instances
        Columns("instruction", "output", context="input"),  # all_instances_82K.jsonl
    ),
    notes="Hub prompt -> question, completion (cleaned) -> answer; task files give one row per instance.",
)
