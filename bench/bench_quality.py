"""One-shot quality score throughput: our fast path against the plain per-pair forward, same pairs, same run.

ours : each prompt sample's prefix runs once (KV cache), the test suffixes run on top of it in length-sorted,
       right-padded chunks, and the LM head + float32 log-softmax see only answer-predicting positions
       (`openmathmix.stages.logprobs.AnswerLogProbs.score`);
plain: for every (prompt, test) pair, concatenate prefix + test, one full forward, full logits, full float32
       log-softmax (`AnswerLogProbs.plain`).

Rows are real and taken as they come: the first n1 rows of the prompt file are the prompt samples, the first n2 rows
of the test file (after those n1 when both are the same file) are the test samples. Timing alternates ours and plain
prompt sample by prompt sample (the machine is shared, so both see the same load), after one untimed warm-up of each;
the ratio is total plain time / total ours time.

    .venv/bin/python bench/bench_quality.py                          # SmolLM2, auto dtype, CPU, 8 x 16 GSM8K pairs
    .venv/bin/python bench/bench_quality.py --dtype float32          # exactness check in fp32
    .venv/bin/python bench/bench_quality.py --device cuda --random-config deepseek-math-7b --n1 16 --n2 100

The last line is `RESULT bench=quality pairs_per_s=X ratio=Y max_abs_diff=Z` (ours; plain time / ours time; largest
|ours - plain| over all one-shot scores). On a GPU it also prints the fraction of bf16 peak, counting
FLOPs = 2 x body parameters x real (prefix + suffix) tokens + 2 x LM-head parameters x answer tokens + attention.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from random_models import RANDOM_CONFIGS, random_causal_lm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

REALDATA = REPO.parent / "shared" / "realdata"
FILES = {  # name -> (path, question key, answer key)
    "gsm8k": (REALDATA / "gsm8k_screl" / "train_use.jsonl", "query", "response"),
    "math": (REALDATA / "math_hendrycks_test" / "test.jsonl", "problem", "solution"),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="Hub id / folder / embedded alias (default: embedded SmolLM2)")
    p.add_argument("--random-config", choices=sorted(RANDOM_CONFIGS), default=None,
                   help="random weights with these shapes instead of --model (tokenizer still from --model)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="auto", choices=("auto", "bfloat16", "float32", "float16"),
                   help="auto: bf16 on GPUs and on CPUs with native bf16 (AMX, AVX512-BF16), else fp32")
    p.add_argument("--n1", type=int, default=8, help="prompt samples (default 8)")
    p.add_argument("--n2", type=int, default=16, help="test samples (default 16)")
    p.add_argument("--prompts", choices=sorted(FILES), default="gsm8k", help="file of the prompt samples")
    p.add_argument("--tests", choices=sorted(FILES), default="gsm8k", help="file of the test samples")
    p.add_argument("--chunk-rows", type=int, default=None, help="test rows per forward (default: per device)")
    p.add_argument("--chunk-tokens", type=int, default=None, help="padded suffix tokens per forward")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--skip-plain-after", type=int, default=None, metavar="K",
                   help="time plain on the first K prompt samples only and extrapolate (slow devices/models)")
    p.add_argument("--peak", type=float, default=989e12, help="bf16 dense peak FLOP/s (H100/H200 SXM: 989e12)")
    return p.parse_args(argv)


def read_rows(name: str, skip: int, n: int) -> list[tuple[str, str]]:
    path, qk, ak = FILES[name]
    if not path.exists():
        raise SystemExit(f"{path} is absent: the benchmark needs ../shared/realdata")
    rows = []
    with path.open() as f:
        for i, line in enumerate(f):
            if i < skip:
                continue
            row = json.loads(line)
            rows.append((row[qk], row[ak]))
            if len(rows) == n:
                break
    return rows


def build_model(args):
    from openmathmix.models import load_model, load_tokenizer, pick_dtype, resolve

    dtype = pick_dtype(args.device, args.dtype)
    args.dtype = str(dtype).removeprefix("torch.")
    spec = resolve(args.model)
    if not args.random_config:
        model, tok = load_model(spec, head="causal_lm", device=args.device, dtype=args.dtype)
        return model, tok, spec.name
    tok = load_tokenizer(spec)
    return random_causal_lm(args.random_config, tok, dtype, args.device), tok, f"random {args.random_config}"


def flop_count(model, p_len, t_len, a_len) -> tuple[float, int]:
    """Useful FLOPs of the one-shot pass (no padding, no question/prefix logits) and the body parameter count."""
    cfg = model.config
    head = cfg.vocab_size * cfg.hidden_size
    body = sum(p.numel() for p in model.parameters()) - head - (0 if cfg.tie_word_embeddings else head)
    d, n_layers = cfg.hidden_size, cfg.num_hidden_layers
    flops = 0.0
    for plen in p_len:  # the prefix once (causal attention: ~P^2/2 scores), then every suffix on top of it
        flops += 2 * body * plen + 2 * n_layers * d * plen * plen
        for tlen, alen in zip(t_len, a_len):
            flops += 2 * body * tlen + 2 * head * alen + 4 * n_layers * d * tlen * (plen + tlen / 2)
    return flops, body


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from openmathmix.stages.logprobs import encode_example, encode_tests, lead_ids, make_scorer

    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    prompts = read_rows(args.prompts, 0, args.n1)
    tests_raw = read_rows(args.tests, args.n1 if args.tests == args.prompts else 0, args.n2)
    model, tok, name = build_model(args)
    scorer = make_scorer(model, tok, args.device, args.chunk_rows, args.chunk_tokens)
    lead = lead_ids(tok)
    tests = encode_tests(tok, [q for q, _ in tests_raw], [a for _, a in tests_raw])
    prefixes = [lead + encode_example(tok, q, a) for q, a in prompts]
    p_len = np.array([len(p) for p in prefixes])
    t_len = np.array([len(p) + len(a) for p, a in tests])
    a_len = np.array([len(a) for _, a in tests])
    print(f"model {name} on {args.device} ({args.dtype}, {torch.get_num_threads()} threads); "
          f"{len(prefixes)} prompt samples x {len(tests)} tests = {len(prefixes) * len(tests)} pairs")
    print(f"tokens: prompt sample mean {p_len.mean():.0f} (max {p_len.max()}), test mean {t_len.mean():.0f} "
          f"(answer {a_len.mean():.0f}); FLOP-count ceiling of prefix reuse (P+T)/T = "
          f"{(p_len.mean() + t_len.mean()) / t_len.mean():.2f}")

    def sync():
        if cuda:
            torch.cuda.synchronize()

    prepared = scorer.prepare(tests)
    print(f"chunks: {len(prepared)} (rows {[int(c.input_ids.shape[0]) for c in prepared]}), "
          f"slice hidden before LM head: {scorer.slice_hidden}")
    # warm-up (allocator, kernels, one-time lazy init), untimed
    scorer.score(prefixes[0], prepared)
    scorer.plain(prefixes[0], *tests[0])
    sync()

    ours = np.zeros((len(prefixes), len(tests)))
    plain = np.full((len(prefixes), len(tests)), np.nan)
    t_ours, t_plain = 0.0, 0.0
    plain_rows = len(prefixes) if args.skip_plain_after is None else min(args.skip_plain_after, len(prefixes))
    for k, prefix in enumerate(prefixes):
        start = time.perf_counter()
        ours[k] = scorer.score(prefix, prepared)
        sync()
        t_ours += time.perf_counter() - start
        if k < plain_rows:
            start = time.perf_counter()
            plain[k] = [scorer.plain(prefix, p, a) for p, a in tests]
            sync()
            t_plain += time.perf_counter() - start
    t_plain_all = t_plain * len(prefixes) / plain_rows
    pairs = len(prefixes) * len(tests)
    diff = float(np.nanmax(np.abs(ours - plain)))
    print(f"ours : {t_ours:8.2f} s  {pairs / t_ours:8.2f} pairs/s")
    print(f"plain: {t_plain_all:8.2f} s  {pairs / t_plain_all:8.2f} pairs/s"
          + ("" if plain_rows == len(prefixes) else f"  (timed on {plain_rows} prompt samples, extrapolated)"))
    print(f"max |ours - plain| over {int(np.isfinite(plain).sum())} one-shot scores: {diff:.3g}")

    flops, body = flop_count(model, p_len, t_len, a_len)
    line = f"ours: {flops / t_ours / 1e12:.2f} TFLOP/s useful ({body / 1e9:.2f} B body params)"
    if cuda:
        line += (f" = {flops / t_ours / args.peak:.1%} of bf16 peak {args.peak / 1e12:.0f} TFLOP/s; "
                 f"peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    print(line)
    print(f"RESULT bench=quality pairs_per_s={pairs / t_ours:.2f} ratio={t_plain_all / t_ours:.2f} "
          f"max_abs_diff={diff:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
