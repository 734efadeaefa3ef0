#!/usr/bin/env bash
# One prepared GPU check for an H100/H200 (about 6 minutes, each part under its own timeout): random weights of the
# paper's 7B shapes (deepseek-math-7b: 30 layers, hidden 4096, MHA) and a 1B shape, bf16, no data files, no network.
#
#   1. embeddings   bench/bench_embed.py   tokens/s and fraction of bf16 peak (synthetic rows of ~100-1,000 tokens)
#   2. quality      bench/bench_quality.py pairs/s and fraction of bf16 peak (one-shot scores, prefix KV reuse)
#   3. k-center     bench/bench_kcenter.py ms/step against the HBM floor n*d*2 B / bandwidth (n=5M, d=256, bf16)
#   4. distributed  select/distributed.py  torchrun + NCCL on this GPU: same order as one process, ms/pick
#
# Before (on the CPU machine, once): `bash bench/gpu_check.sh --prepare` saves the tokenizer the benchmarks use to
# bench/gpu_tokenizer/ (git-ignored: a copy of the model's tokenizer is not ours to commit; the embedded model package
# is not on the GPU machine). Then, with the device tool:
#   run(command="bash bench/gpu_check.sh", carry=["bench/gpu_tokenizer"], timeout_s=560)
# The GPU machine needs python3 with CUDA torch, transformers, datasets, numpy, tqdm, pyyaml (checked first).
# Copy the RESULT lines and the "of peak" / "floor" lines into BENCHMARKS.md.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ -x .venv/bin/python ] && .venv/bin/python -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
    PY=.venv/bin/python
fi
TOK=bench/gpu_tokenizer
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=true

if [ "${1:-}" = "--prepare" ]; then
    PY=${PYTHON:-.venv/bin/python}
    "$PY" -c "from openmathmix.models import load_tokenizer, resolve; load_tokenizer(resolve()).save_pretrained('$TOK')"
    ls -la "$TOK"
    exit 0
fi

echo "== environment"
"$PY" - <<'EOF' || { echo "gpu_check: this python lacks what the benchmarks need (see above)"; exit 2; }
import datasets, numpy, torch, tqdm, transformers, yaml  # noqa: F401
assert torch.cuda.is_available(), "torch sees no CUDA GPU"
p = torch.cuda.get_device_properties(0)
print(f"{p.name}, {p.total_memory / 2**30:.0f} GiB, {torch.cuda.device_count()} GPU(s); torch {torch.__version__} "
      f"CUDA {torch.version.cuda}; transformers {transformers.__version__}; datasets {datasets.__version__}")
EOF
[ -f "$TOK/tokenizer_config.json" ] || { echo "gpu_check: $TOK is missing: run 'bash bench/gpu_check.sh --prepare' on the CPU machine first"; exit 2; }
NAME=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0))")
case "$NAME" in
    *H200*) PEAK=989e12; BW=4.8e12 ;;   # bf16 dense datasheet; HBM3e
    *H100*) PEAK=989e12; BW=3.35e12 ;;  # SXM: bf16 dense datasheet; HBM3
    *)      PEAK=${PEAK:-989e12}; BW=${BW:-3.35e12}; echo "unknown GPU $NAME: using PEAK=$PEAK BW=$BW (override with env)" ;;
esac
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total,power.limit --format=csv 2>/dev/null || true
status=0
part() {  # part TITLE SECONDS command...: run with a time limit, keep going when one part fails
    local title=$1 limit=$2; shift 2
    echo; echo "== $title (limit ${limit} s)"
    local start=$SECONDS
    timeout "$limit" "$@"; local rc=$?
    echo "-- $title: exit $rc after $((SECONDS - start)) s"
    [ $rc -eq 0 ] || status=1
}

part "embeddings, deepseek-math-7b shapes" 170 \
    "$PY" bench/bench_embed.py --device cuda --dtype bfloat16 --random-config deepseek-math-7b --model "$TOK" \
    --pool synthetic --rows 1536 --token-budget 32768 --repeats 1 --peak "$PEAK"
part "embeddings, llama-1b shapes" 80 \
    "$PY" bench/bench_embed.py --device cuda --dtype bfloat16 --random-config llama-1b --model "$TOK" \
    --pool synthetic --rows 2048 --token-budget 32768 --repeats 1 --peak "$PEAK"

if [ -d ../shared/realdata ]; then
    part "one-shot quality, deepseek-math-7b shapes" 100 \
        "$PY" bench/bench_quality.py --device cuda --dtype bfloat16 --random-config deepseek-math-7b --model "$TOK" \
        --n1 16 --n2 100 --skip-plain-after 4 --peak "$PEAK"
else
    echo; echo "== one-shot quality: skipped, bench_quality.py reads real rows from ../shared/realdata, absent here"
fi

part "k-center, n=5M d=256 bf16" 90 \
    "$PY" bench/bench_kcenter.py --device cuda --dtype bf16 --n 5000000 --d 256 --k 10000 --big-n 0 \
    --reference off --bandwidth "$BW"

echo; echo "== distributed k-center: torchrun + NCCL (1 rank on this GPU) against one process, n=2M d=256 bf16"
DIST=$(mktemp -d)
"$PY" - "$DIST" <<'EOF'
import sys, numpy as np
rng = np.random.default_rng(0)
np.save(f"{sys.argv[1]}/emb.npy", rng.standard_normal((2_000_000, 256), dtype=np.float32))
np.save(f"{sys.argv[1]}/q.npy", rng.uniform(1, 5, 2_000_000))
EOF
part "torchrun qads_distributed" 60 \
    "$PY" -m torch.distributed.run --standalone --nproc-per-node 1 -m openmathmix.select.distributed \
    "$DIST/emb.npy" --quality "$DIST/q.npy" --k 5000 --init 100 --dtype bfloat16 --out "$DIST/order.npy"
part "one-process qads and comparison" 60 "$PY" - "$DIST" <<'EOF'
import sys, time
import numpy as np
import torch
from openmathmix.select.kcenter import qads
d = sys.argv[1]
x, q = np.load(f"{d}/emb.npy"), np.load(f"{d}/q.npy")
qads(x[:10000], q[:10000], 10, dtype="bfloat16", device="cuda")  # warm-up
torch.cuda.synchronize(); start = time.perf_counter()
one = qads(x, q, 5000, init=100, dtype="bfloat16", device="cuda")
seconds = time.perf_counter() - start
dist = np.load(f"{d}/order.npy")
same = int((one == dist).sum())
print(f"one process: {seconds:.2f} s ({1e3 * seconds / 5000:.3f} ms/pick, set-up included); "
      f"torchrun order identical: {np.array_equal(one, dist)} ({same} of 5000 positions equal)")
print(f"RESULT bench=kcenter_distributed n=2000000 d=256 k=5000 world=1 identical={np.array_equal(one, dist)}")
EOF
rm -rf "$DIST"
echo; echo "gpu_check: done in $SECONDS s (exit $status)"
exit $status
