"""A release trains as it is: TRL's SFTTrainer runs two steps on `ratio_10`, read from the release folder with
`load_dataset`, using the `messages` column unchanged, with a tiny random-weight model on the CPU."""

from __future__ import annotations

import json
import math

import pytest
import torch
from datasets import load_dataset


@pytest.fixture(scope="module")
def release(demo_build):
    return demo_build[0]  # the demo release, built once per session (conftest.py)


def test_sft_trainer_runs_two_steps_on_ratio_10(release, tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    train = load_dataset(str(release), "ratio_10", split="train")
    manifest = json.loads((release / "manifest.json").read_text())
    assert len(train) == manifest["configs"]["ratio_10"]["rows"] >= 8
    assert train.features["messages"].feature["role"].dtype == "string"
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert tokenizer.chat_template  # SmolLM2's ChatML template: the trainer applies it to `messages`
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    args = SFTConfig(output_dir=str(tmp_path / "sft"), max_steps=2, per_device_train_batch_size=2,
                     learning_rate=1e-3, max_length=128, logging_steps=1, save_strategy="no", report_to="none",
                     use_cpu=True, bf16=False, dataloader_num_workers=0, seed=0)
    trainer = SFTTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer)

    first = trainer.train_dataset[0]
    text = tokenizer.decode(first["input_ids"])
    row = train[0]
    assert f"<|im_start|>user\n{row['question']}<|im_end|>" in text
    assert f"<|im_start|>assistant\n{row['answer']}<|im_end|>" in text

    result = trainer.train()
    assert trainer.state.global_step == 2 and result.global_step == 2
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 2 and all(math.isfinite(x) and x > 0 for x in losses)
    changed = [n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert changed  # the optimizer updated the weights
