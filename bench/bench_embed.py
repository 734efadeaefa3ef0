"""Embedding throughput: EmbedStage (length-sorted token-budget batches, headless backbone, fp32 pooling) against a
naive reference (fixed batches of 8 in the original order padded to the longest row, the full causal LM with
`output_hidden_states=True`, mean of the last hidden state), same weights, same dtype, same rows, same run.

    .venv/bin/python bench/bench_embed.py                       # 256 GSM8K-ScRel rows, embedded SmolLM2, CPU
    .venv/bin/python bench/bench_embed.py --pool mixed --rows 1536 --repeats 1   # real rows of 6 sources
    .venv/bin/python bench/bench_embed.py --device cuda --random-config llama-1b --rows 2048 --token-budget 32768

Ours runs the way the engines run a shard (`engines.shards.run_shard`): the shard's rows ordered longest first by
the stage's `sort_key`, then map batches of `--map-batch` rows. "Before" is the previous behaviour, each map batch
sorted on its own in input order; on one source the two pad alike, on a mixed pool (`--pool mixed`: GSM8K,
TAL-SCQ5K, DMath, FLAN CoT, OpenAssistant, Self-Instruct from ../shared/realdata, concatenated by source as a build
does) sorting the whole shard pads far less. The padding shares printed are the padded share of the tokens computed.

The last line is `RESULT bench=embed pool=P tokens_per_s=X ratio=Y padding_before=A padding_after=B` (ours; naive
time / ours time; padding shares). On a GPU it also prints the fraction of bf16 peak reached, taking FLOPs = 2 x
backbone parameters (embedding table excluded) x real tokens.
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

REALDATA = REPO.parent / "shared" / "realdata"
DATA = REALDATA / "gsm8k_screl" / "train_use.jsonl"
MIXED = {  # source -> files under ../shared/realdata, in the order a build concatenates them
    "gsm8k_screl": ["gsm8k_screl/train_use.jsonl"],
    "tal_scq5k_en": ["tal_scq5k_en/en_single_choice_train_3K.jsonl"],
    "dmath": ["dmath/test.json"],
    "cot": ["cot"],
    "oasst1": ["oasst_format/en_100_tree.jsonl"],
    "self_instruct": ["self_instruct/seed_tasks.jsonl"],
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DATA), help="JSONL with query/response (default: GSM8K-ScRel train_use)")
    p.add_argument("--pool", choices=("gsm8k", "mixed", "synthetic"), default="gsm8k",
                   help="gsm8k: --data rows; mixed: real rows of six sources, an equal share of --rows each; "
                        "synthetic: seeded word rows of about 100-1,000 tokens (no data files: GPU machines)")
    p.add_argument("--rows", type=int, default=256)
    p.add_argument("--map-batch", type=int, default=256, help="rows per process_batch call (the runners' default)")
    p.add_argument("--shard-rows", type=int, default=8192, help="rows per shard (the runners' default)")
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


def load_mixed_rows(n: int) -> tuple[list[str], list[str], dict[str, int]]:
    """An equal share of `n` rows from each MIXED source (fewer where a source has fewer), built with the source
    builders into a temporary cache, concatenated by source."""
    import tempfile

    from openmathmix.sources import build_source

    questions, answers, counts = [], [], {}
    share = -(-n // len(MIXED))
    with tempfile.TemporaryDirectory() as cache:
        for name, files in MIXED.items():
            ds, _ = build_source(name, [str(REALDATA / f) for f in files], cache_dir=cache, progress=False)
            part = ds.select(range(min(share, len(ds))))
            questions += part["question"]
            answers += part["answer"]
            counts[name] = len(part)
    return questions, answers, counts


def synthetic_rows(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Seeded rows of plain words, questions of 15-150 words and answers of 50-600: about 100-1,000 tokens per row,
    mean ~500, the length spread performance.md assumes. Content does not matter for timing a random-weight model."""
    rng = np.random.default_rng(seed)
    words = np.array([
        "the", "a", "of", "to", "and", "is", "in", "that", "for", "it", "with", "as", "on", "be", "by", "this",
        "are", "from", "at", "or", "an", "which", "number", "total", "each", "so", "we", "find", "then",
        "solve", "equal", "sum", "times", "minus", "plus", "divide", "answer", "step", "value", "x", "y", "2",
        "3", "5", "7", "10", "12", "15", "20", "24", "36", "48", "60", "100", "1000"
    ])
    questions = [" ".join(rng.choice(words, size=rng.integers(15, 151))) + "?" for _ in range(n)]
    answers = [" ".join(rng.choice(words, size=rng.integers(50, 601))) + "." for _ in range(n)]
    return questions, answers


def padding_share(lengths: list[int], order, batch_rows: int, token_budget: int) -> float:
    """Share of the tokens computed that are padding when rows go in `order`, `batch_rows` per process_batch call,
    each call cut into token-budget forward batches by EmbedStage."""
    from openmathmix.stages.embed import token_budget_batches

    real = padded = 0
    for start in range(0, len(order), batch_rows):
        lens = [lengths[i] for i in order[start:start + batch_rows]]
        for group in token_budget_batches(lens, token_budget):
            real += sum(lens[i] for i in group)
            padded += len(group) * lens[group[0]]
    return 1 - real / padded


def shard_sorted_order(lengths: list[int], shard_rows: int) -> list[int]:
    """The order `engines.shards.run_shard` feeds rows in: shard by shard, longest first, ties in input order."""
    from openmathmix.engines.shards import shard_bounds

    order = []
    for a, b in shard_bounds(len(lengths), shard_rows):
        order += sorted(range(a, b), key=lambda i: -lengths[i])
    return order


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


def run_ours(stage, questions, answers, device, map_batch, shard_rows):
    """What an engine does with each shard: `run_shard` (whole-shard longest-first order, map batches)."""
    from openmathmix.engines.shards import run_shard, shard_bounds

    sync(device)
    start = time.perf_counter()
    vectors = []
    for a, b in shard_bounds(len(questions), shard_rows):
        out = run_shard(stage, {"question": questions[a:b], "answer": answers[a:b]}, batch_size=map_batch,
                        device=device)
        vectors += out["embedding"]
    sync(device)
    return np.stack(vectors), time.perf_counter() - start


def run_before(stage, questions, answers, device, map_batch):
    """The previous behaviour: map batches in input order, each sorted on its own inside process_batch."""
    sync(device)
    start = time.perf_counter()
    vectors = []
    for a in range(0, len(questions), map_batch):
        vectors += stage.process_batch({"question": questions[a:a + map_batch], "answer": answers[a:a + map_batch]},
                                       device)["embedding"]
    sync(device)
    return np.stack(vectors), time.perf_counter() - start


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
    if args.pool == "mixed":
        questions, answers, counts = load_mixed_rows(args.rows)
        pool = "mixed (" + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")"
    elif args.pool == "synthetic":
        questions, answers = synthetic_rows(args.rows)
        pool = "synthetic words"
    else:
        questions, answers = load_rows(args.data, args.rows)
        pool = Path(args.data).name
    model, tok, dtype, name = build_models(args)
    stage = EmbedStage(args.model, dtype=args.dtype, token_budget=args.token_budget)
    stage.attach(model.model, tok, args.device)  # headless backbone of the same weights
    budget = stage._runtime["token_budget"]

    lengths = [len(x) for x in encode_qa_batch(tok, questions, answers).input_ids()]
    tokens = sum(lengths)
    pad_before = padding_share(lengths, list(range(len(lengths))), args.map_batch, budget)
    pad_after = padding_share(lengths, shard_sorted_order(lengths, args.shard_rows), args.map_batch, budget)
    n_groups = len(token_budget_batches(lengths, budget))
    naive_padded = sum(max(lengths[i:i + args.naive_batch]) * len(lengths[i:i + args.naive_batch])
                       for i in range(0, len(lengths), args.naive_batch))
    print(f"model {name} on {args.device} in {str(dtype).removeprefix('torch.')}, torch threads "
          f"{torch.get_num_threads()}; pool {pool}: {len(lengths)} rows, {tokens} tokens (mean "
          f"{tokens / len(lengths):.0f}, max {max(lengths)}); token budget {budget}, map batch {args.map_batch}, "
          f"shard {args.shard_rows} rows, naive batch {args.naive_batch}")
    print(f"padding share of the tokens computed: before (each map batch sorted alone) {pad_before:.1%}, "
          f"after (whole shard sorted) {pad_after:.1%}, naive {1 - tokens / naive_padded:.1%}")

    warm = min(16, len(questions))  # first calls pick kernels / allocate: keep them out of the timings
    run_before(stage, questions[:warm], answers[:warm], args.device, args.map_batch)
    run_naive(model, tok, questions[:warm], answers[:warm], args.device, args.naive_batch)
    best_ours = best_before = best_naive = float("inf")
    for r in range(args.repeats):
        ours, t_ours = run_ours(stage, questions, answers, args.device, args.map_batch, args.shard_rows)
        before, t_before = run_before(stage, questions, answers, args.device, args.map_batch)
        naive, t_naive = run_naive(model, tok, questions, answers, args.device, args.naive_batch)
        best_ours, best_before, best_naive = min(best_ours, t_ours), min(best_before, t_before), min(best_naive,
                                                                                                    t_naive)
        print(f"repeat {r + 1}: ours {t_ours:.2f} s, before {t_before:.2f} s, naive {t_naive:.2f} s")

    diff = np.abs(ours - naive).max()
    cos = ((ours * naive).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(naive, axis=1))
    cos_before = ((ours * before).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(before, axis=1))
    print(f"ours  : {best_ours:.2f} s, {tokens / best_ours:.0f} tokens/s, padding {pad_after:.1%}")
    print(f"before: {best_before:.2f} s, {tokens / best_before:.0f} tokens/s, padding {pad_before:.1%} "
          f"(ours is {best_before / best_ours:.2f}x faster)")
    print(f"naive : {best_naive:.2f} s, {tokens / best_naive:.0f} tokens/s, padding "
          f"{1 - tokens / naive_padded:.1%} in {-(-len(lengths) // args.naive_batch)} forward batches "
          f"(ours needs {n_groups} at least)")
    print(f"agreement: max abs diff {diff:.3g} (max |x| {np.abs(naive).max():.3g}), cosine min {cos.min():.6f} "
          f"mean {cos.mean():.6f}; ours vs before cosine min {cos_before.min():.6f}")
    if args.device.startswith("cuda"):
        body = sum(p.numel() for n, p in model.model.named_parameters() if "embed_tokens" not in n)
        flops = 2 * body * tokens
        print(f"ours : {flops / best_ours / 1e12:.1f} TFLOP/s = {flops / best_ours / args.peak:.1%} of peak "
              f"{args.peak / 1e12:.0f}; naive {flops / best_naive / args.peak:.1%} ({body / 1e9:.2f} B body params)")
        print(f"peak memory {torch.cuda.max_memory_allocated(args.device) / 2**30:.1f} GiB")
    ok = cos.min() > 0.999 and cos_before.min() > 0.999
    if not ok:
        print("WARNING: ours, before and naive vectors disagree (cosine < 0.999)")
    print(f"RESULT bench=embed pool={args.pool} rows={len(lengths)} tokens_per_s={tokens / best_ours:.0f} "
          f"ratio={best_naive / best_ours:.2f} padding_before={pad_before:.3f} padding_after={pad_after:.3f}")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
