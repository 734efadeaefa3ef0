"""Self-Instruct (Wang et al., ACL 2023): 82K GPT-3 generated instructions with input/output instances."""

from openmathmix.formats import Columns, Instances, RecordMap, prompt_completion
from openmathmix.sources import Source

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
