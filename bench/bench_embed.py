"""Embedding throughput: EmbedStage (length-sorted token-budget batches, headless backbone, fp32 pooling) against a
naive reference (fixed batches of 8 in the original order padded to the longest row, the full causal LM with
`output_hidden_states=True`, mean of the last hidden state), same weights, same dtype, same rows, same run.

    .venv/bin/python bench/bench_embed.py                       # 256 GSM8K-ScRel rows, embedded SmolLM2, CPU
    .venv/bin/python bench/bench_embed.py --device cuda --random-config llama-1b --rows 2048 --token-budget 32768

The last line is `RESULT bench=embed tokens_per_s=X ratio=Y` (ours, and naive time / ours time). On a GPU it also
prints the fraction of bf16 peak reached, taking FLOPs = 2 x backbone parameters (embedding table excluded) x
real tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from random_models import RANDOM_CONFIGS, random_causal_lm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DATA = REPO.parent / "shared" / "realdata" / "gsm8k_screl" / "train_use.jsonl"



def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DATA), help="JSONL with query/response (default: GSM8K-ScRel train_use)")
    p.add_argument("--rows", type=int, default=256)
    p.add_argument("--model", default=None, help="Hub id / folder / embedded alias (default: embedded SmolLM2)")
    p.add_argument("--random-config", choices=sorted(RANDOM_CONFIGS), default=None,
                   help="random weights with these shapes instead of --model (the tokenizer still comes from --model)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"))
    p.add_argument("--token-budget", type=int, default=None, help="EmbedStage token budget (default: its default)")
    p.add_argument("--naive-batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=2, help="timed runs of each; the best is kept")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--peak", type=float, default=989e12, help="bf16 dense peak FLOP/s of the device (H100: 989e12)")
    return p.parse_args(argv)


def load_rows(path: str, n: int) -> tuple[list[str], list[str]]:
    questions, answers = [], []
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            questions.append(row["query"])
            answers.append(row["response"])
            if len(questions) == n:
                break
    return questions, answers


def build_models(args):
    """(causal LM, tokenizer): the naive path runs the causal LM, ours its headless `.model` (same weights)."""
    from transformers import AutoModelForCausalLM

    from openmathmix.models import load_tokenizer, pick_dtype, resolve

    spec = resolve(args.model)
    tok = load_tokenizer(spec)
    dtype = pick_dtype(args.device, args.dtype)
    if args.random_config:
        model = random_causal_lm(args.random_config, tok, dtype, args.device)
        name = f"random {args.random_config}"
    else:
        model = AutoModelForCausalLM.from_pretrained(spec.path, revision=spec.revision, gguf_file=spec.gguf_file,
                                                     dtype=dtype).to(args.device)
        name = spec.name
    return model.eval(), tok, dtype, name


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def run_ours(stage, questions, answers, device):
    sync(device)
    start = time.perf_counter()
    out = stage.process_batch({"question": questions, "answer": answers}, device)
    vectors = np.stack(out["embedding"])
    sync(device)
    return vectors, time.perf_counter() - start


def run_naive(model, tok, questions, answers, device, batch):
    """What a first `.map` implementation does: fixed batches in order, pad to the longest, full LM forward."""
    import torch

    from openmathmix.text import format_qa

    sync(device)
    start = time.perf_counter()
    texts = [format_qa(q, a) for q, a in zip(questions, answers)]
    out = []
    for i in range(0, len(texts), batch):
        enc = tok(texts[i:i + batch], padding=True, return_tensors="pt").to(device)
        with torch.no_grad():
            hidden = model(**enc, output_hidden_states=True).hidden_states[-1]
        mask = enc["attention_mask"].unsqueeze(-1).float()
        out.append(((hidden.float() * mask).sum(1) / mask.sum(1)).cpu().numpy())
    sync(device)
    return np.concatenate(out), time.perf_counter() - start


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from openmathmix.stages.embed import EmbedStage, token_budget_batches
    from openmathmix.text import encode_qa_batch

    if args.threads:
        torch.set_num_threads(args.threads)
    questions, answers = load_rows(args.data, args.rows)
    model, tok, dtype, name = build_models(args)
    stage = EmbedStage(args.model, dtype=args.dtype, token_budget=args.token_budget)
    stage.attach(model.model, tok, args.device)  # headless backbone of the same weights

    lengths = [len(x) for x in encode_qa_batch(tok, questions, answers).input_ids()]
    tokens = sum(lengths)
    groups = token_budget_batches(lengths, stage._runtime["token_budget"])
    ours_padded = sum(len(g) * lengths[g[0]] for g in groups)
    naive_padded = sum(max(lengths[i:i + args.naive_batch]) * len(lengths[i:i + args.naive_batch])
                       for i in range(0, len(lengths), args.naive_batch))
    print(f"model {name} on {args.device} in {str(dtype).removeprefix('torch.')}, torch threads "
          f"{torch.get_num_threads()}; {len(lengths)} rows, {tokens} tokens (mean {tokens / len(lengths):.0f}, "
          f"max {max(lengths)}); token budget {stage._runtime['token_budget']}, naive batch {args.naive_batch}")

    warm = min(16, len(questions))  # first calls pick kernels / allocate: keep them out of the timings
    run_ours(stage, questions[:warm], answers[:warm], args.device)
    run_naive(model, tok, questions[:warm], answers[:warm], args.device, args.naive_batch)
    best_ours = best_naive = float("inf")
    for r in range(args.repeats):
        ours, t_ours = run_ours(stage, questions, answers, args.device)
        naive, t_naive = run_naive(model, tok, questions, answers, args.device, args.naive_batch)
        best_ours, best_naive = min(best_ours, t_ours), min(best_naive, t_naive)
        print(f"repeat {r + 1}: ours {t_ours:.2f} s, naive {t_naive:.2f} s")

    diff = np.abs(ours - naive).max()
    cos = ((ours * naive).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(naive, axis=1))
    print(f"ours : {best_ours:.2f} s, {tokens / best_ours:.0f} tokens/s, padding "
          f"{100 * (1 - tokens / ours_padded):.1f}% in {len(groups)} forward batches")
    print(f"naive: {best_naive:.2f} s, {tokens / best_naive:.0f} tokens/s, padding "
          f"{100 * (1 - tokens / naive_padded):.1f}% in {-(-len(lengths) // args.naive_batch)} forward batches")
    print(f"agreement: max abs diff {diff:.3g} (max |x| {np.abs(naive).max():.3g}), cosine min {cos.min():.6f} "
          f"mean {cos.mean():.6f}")
    if args.device.startswith("cuda"):
        body = sum(p.numel() for n, p in model.model.named_parameters() if "embed_tokens" not in n)
        flops = 2 * body * tokens
        print(f"ours : {flops / best_ours / 1e12:.1f} TFLOP/s = {flops / best_ours / args.peak:.1%} of peak "
              f"{args.peak / 1e12:.0f}; naive {flops / best_naive / args.peak:.1%} ({body / 1e9:.2f} B body params)")
        print(f"peak memory {torch.cuda.max_memory_allocated(args.device) / 2**30:.1f} GiB")
    ok = cos.min() > 0.999
    if not ok:
        print("WARNING: ours and naive vectors disagree (cosine < 0.999)")
    print(f"RESULT bench=embed tokens_per_s={tokens / best_ours:.0f} ratio={best_naive / best_ours:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
