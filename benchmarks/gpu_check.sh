#!/usr/bin/env bash
# GPU check: predict at 1,022 residues (ours vs naive: time, peak memory); one training step at
# 256 x 16 and 1,024 x 2 tokens in bf16 and fp16 (tokens/s, peak memory; ours vs the stock
# transformers trunk); the largest 1,024-token batch that fits (ours, bf16); and the multi-GPU
# path: sharded scoring under torchrun on every GPU (benchmarks/gpu_throughput.py), substitutions
# per second with all 63 properties and residue-only at 35M and 650M (random weights, published
# shapes), peak memory and the extrapolated time for ProteinGym's 2.5 M substitutions.
# Each case runs in its own process (benchmarks/gpu_check.py), so its peak memory is its own and
# an out-of-memory case does not stop the others.
#
#     bash benchmarks/gpu_check.sh [--out FILE.jsonl]     # on the GPU machine: ESM2-35M
#     bash benchmarks/gpu_check.sh --cpu-smoke            # the same script, tiny sizes, on a CPU
#
# Results: one JSON line per case in FILE (default gpu_check.jsonl, or $OUT/gpu_check.jsonl when
# $OUT is set), and a Markdown table on stdout for docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."

SMOKE=0
OUTFILE=${OUT:+$OUT/}gpu_check.jsonl
while [ $# -gt 0 ]; do
    case $1 in
        --cpu-smoke) SMOKE=1 ;;
        --out) OUTFILE=$2; shift ;;
        *) echo "error: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

if [ "$SMOKE" = 1 ]; then
    export SEQDANCE_GPU_CHECK_ARCH=tiny CUDA_VISIBLE_DEVICES=""
    LENGTH=30; SHORT=(16 2); LONG=(32 1); MAX_BATCH=4; TIMEOUT=300
    OUTFILE=$(mktemp -d)/gpu_check.jsonl
    NPROC=2; SCALE_ARCHS=(tiny); SCALE_SECONDS=3; SCALE_LENGTH=60
else
    LENGTH=1022; SHORT=(256 16); LONG=(1024 2); MAX_BATCH=1024; TIMEOUT=240
    NPROC=$(nvidia-smi -L | wc -l); SCALE_ARCHS=(35M 650M); SCALE_SECONDS=20; SCALE_LENGTH=300
    python -c "import torch; assert torch.cuda.is_available(), 'no GPU visible'" \
        || { echo "error: no GPU (use --cpu-smoke on a CPU)" >&2; exit 1; }
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
: > "$OUTFILE"

run() {  # run CASE ARGS...: one measurement; a failure (e.g. out of memory) is recorded
    local line
    if line=$(timeout "$TIMEOUT" python benchmarks/gpu_check.py "$@" 2>/tmp/gpu_check.err | tail -n 1) \
            && [ -n "$line" ]; then
        echo "$line" >> "$OUTFILE"
    else
        local why
        why=$(grep -m1 -oE "OutOfMemoryError|out of memory|Error[^\"]{0,80}" /tmp/gpu_check.err || echo "failed")
        printf '{"case": "%s", "args": "%s", "failed": "%s"}\n' "$1" "$*" "${why//\"/}" >> "$OUTFILE"
    fi
    tail -n 1 "$OUTFILE"
}

python -c "import torch, transformers; print('torch', torch.__version__, '| transformers', transformers.__version__)"
for variant in ours naive; do run predict "$variant" "$LENGTH"; done
for dtype in bf16 fp16; do
    for shape in "${SHORT[*]}" "${LONG[*]}"; do
        # shellcheck disable=SC2086
        for variant in ours naive; do run train "$variant" $shape "$dtype"; done
    done
done
run largest "${LONG[0]}" bf16 "$MAX_BATCH"

# the multi-GPU path: one rank per GPU, each scoring its own blocks (4 runs of ~1 minute)
for arch in "${SCALE_ARCHS[@]}"; do
    for props in all residue; do
        line=$(timeout "$TIMEOUT" python -m torch.distributed.run --nproc_per_node "$NPROC" \
                   benchmarks/gpu_throughput.py "$arch" "$props" "$SCALE_SECONDS" "$SCALE_LENGTH" \
                   2>/tmp/gpu_check.err | grep '"throughput"' | tail -n 1) || true
        if [ -n "$line" ]; then
            echo "$line" >> "$OUTFILE"
        else
            why=$(grep -m1 -oE "OutOfMemoryError|out of memory|Error[^\"]{0,80}" /tmp/gpu_check.err || echo "failed")
            printf '{"case": "throughput", "args": "%s %s x%s", "failed": "%s"}\n' \
                "$arch" "$props" "$NPROC" "${why//\"/}" >> "$OUTFILE"
        fi
        tail -n 1 "$OUTFILE"
    done
done

python - "$OUTFILE" <<'PY'
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
failed = [r for r in rows if "failed" in r]
print(f"\ndevice: {next((r['device'] for r in rows if 'device' in r), '?')}; "
      f"arch: {next((r['arch'] for r in rows if 'arch' in r), '?')}\n")
print("| case | variant | s | tokens/s | peak memory (GiB) |")
print("|---|---|---|---|---|")
for r in rows:
    if r.get("case") == "predict":
        print(f"| predict {r['length']} residues | {r['variant']} | {r['seconds']:.3f} | - | "
              f"{r['peak_gib']:.2f} |")
    elif r.get("case") == "train":
        print(f"| train {r['tokens']} x {r['batch']} {r['dtype']} | {r['variant']} | "
              f"{r['seconds_per_step']:.3f} | {r['tokens_per_s']:.0f} | {r['peak_gib']:.2f} |")
    elif r.get("case") == "largest":
        cap = f" (search capped at {r['capped_at']})" if r.get("capped_at") else ""
        print(f"| largest batch at {r['tokens']} tokens, {r['dtype']} | ours | "
              f"{r['largest_batch']}{cap} | - | - |")
for r in failed:
    print(f"| {r['args']} | failed: {r['failed']} | | | |")
scale = [r for r in rows if r.get("case") == "throughput" and "failed" not in r]
if scale:
    print("\n| sharded scoring | ranks | substitutions/s | peak memory (GiB) | 2.5 M substitutions |")
    print("|---|---|---|---|---|")
    for r in scale:
        print(f"| {r['arch']} {r['properties']} ({r['length']} residues) | {r['ranks']} | "
              f"{r['subs_per_s']:.0f} | {r['peak_gib']:.2f} | {r['hours_for_2.5M']:.1f} h |")
print(f"\n{len(rows) - len(failed)} of {len(rows)} cases ran; results in {sys.argv[1]}")
PY
python benchmarks/gpu_loss_precision.py $([ "$SMOKE" = 1 ] && echo --cpu-smoke --steps 3) --out "${OUTFILE%.jsonl}_loss_precision.json" || echo "loss precision check failed" >&2
