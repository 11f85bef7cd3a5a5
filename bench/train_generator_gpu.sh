#!/usr/bin/env bash
# Train the CelebA DCGAN generator on a lent GPU machine (tlgan issue 4), in ONE device call,
# measuring the recipe against the DCGAN tutorial's (the trial generator's) at the same time.
#
# Budget: a task lent a machine gets 15 minutes of device time in all (the start, ~1-2 min,
# included) and one command may run 10 minutes. So the variants below train side by side on
# the one GPU, each capped by --time-limit (default 450 s of training): each stops at
# ITERATIONS (30,000) or at the limit, whichever comes first, and exports its best snapshot
# (config.json records iterations, iterations_target and stopped_by_time_limit). Each run
# scores both its EMA and its raw generator at every evaluation, so the runs measure:
#   main      hinge loss + spectral-norm D + EMA + DiffAugment translation + flips (default)
#   tutorial  the DCGAN tutorial (logistic loss, BatchNorm D, no augmentation, no flips);
#             its raw G is the trial recipe, its EMA G the tutorial + EMA
# The variant with the lowest FD is copied back as celeba-dcgan64-trained/. CPU speed for
# comparison: 0.2-0.3 it/s at batch 128 on 2 shared cores, i.e. 28-40 h for 30k iterations.
#
# 1. Here (CPU), in the repo root, once:
#      .venv/bin/tlgan generator pack --data ../shared/data/celeba-subset \
#          --out pack/celeba64.npz                     # 46.8 MiB (JPEG q95 4:4:4), ~8 s
#    pack/ is git-ignored, so it travels only through `carry`. The metric's extractor must
#    travel too: feature_extractor/weights/celeba-cnn64/ (registry DEFAULT) if it is in the
#    working tree (committed or untracked-not-ignored); otherwise copy the extractor weights
#    folder to pack/extractor/, carry it as well and set EXTRACTOR=pack/extractor.
#    Without an extractor (EXTRACTOR=none) there is no FD: only VARIANTS=main makes sense.
# 2. The device call (working tree + carried files under 64 MiB):
#      run(command="bash bench/train_generator_gpu.sh", carry=["pack/celeba64.npz"],
#          timeout_s=600)
# 3. Back here, under files_at: celeba-dcgan64-trained/ (generator.safetensors, config.json,
#    samples.png of the best variant), <variant>.config.json (metrics.fd_per_snapshot:
#    fd = EMA, fd_raw = raw G, fd_floor = real train-vs-test), <variant>.samples.png,
#    train.log. Then:
#      .venv/bin/tlgan generator score --generator <files_at>/celeba-dcgan64-trained \
#          --data ../shared/data/celeba-subset
#      .venv/bin/tlgan generator score --generator celeba-dcgan64 \
#          --data ../shared/data/celeba-subset   # the shipped pretrained one (FD 5.2, floor 2.7)
#    Ship it only if its FD beats the pretrained celeba-dcgan64's: copy it to
#    tlgan/generators/weights/<new name>/, register it (GeneratorWeights location
#    "folder:weights/<new name>", sha256 of generator.safetensors from its config.json), make
#    it DEFAULT and refit the axis bundle for it (tlgan axes sample + fit).
#
# Environment overrides: PACK, ITERATIONS, BATCH, TIME_LIMIT, EXTRACTOR, VARIANTS (e.g.
# "main tutorial ns": ns = main with the logistic loss), RUN (work root), DEVICE, PYTHON.
# A CPU dry run of this script (a minute):
#   DEVICE=cpu ITERATIONS=2 BATCH=8 EXTRACTOR=none VARIANTS=main PYTHON=.venv/bin/python \
#       OUT=/tmp/dry RUN=/tmp/dry-run bash bench/train_generator_gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PACK=${PACK:-pack/celeba64.npz}
ITERATIONS=${ITERATIONS:-30000}
BATCH=${BATCH:-128}
TIME_LIMIT=${TIME_LIMIT:-450}
DEVICE=${DEVICE:-cuda}
VARIANTS=${VARIANTS:-main tutorial}
RUN=${RUN:-runs/gpu}
DEST=${OUT:-/tmp/tlgan-gpu-out}
PY=${PYTHON:-python3}
mkdir -p "$DEST" "$RUN"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda:", torch.cuda.is_available())'
[ -f "$PACK" ] || { echo "missing $PACK: carry it (see the header)"; exit 1; }

# The generator group alone: it needs none of the web dependencies the GPU image may lack.
tlgan_generator() {
  "$PY" -c 'import sys; from tlgan.cli.generator import generator
generator.main(sys.argv[1:], prog_name="tlgan generator")' "$@"
}

recipe() {
  case "$1" in
    main) echo "" ;;
    tutorial) echo "--loss ns --d-norm batch --augment none --no-flip" ;;
    ns) echo "--loss ns" ;;
    sngan) echo "--d-arch sngan" ;;
    *) echo "unknown variant $1" >&2; exit 2 ;;
  esac
}

extra=()
[ -n "${EXTRACTOR:-}" ] && extra+=(--extractor "$EXTRACTOR")
pids=()
for v in $VARIANTS; do
  # shellcheck disable=SC2046
  tlgan_generator train --data "$PACK" --out "$RUN/$v" --name "celeba-dcgan64-$v" \
    --device "$DEVICE" --iterations "$ITERATIONS" --batch "$BATCH" --seed 0 \
    --eval-every 2500 --sample-every 2500 --checkpoint-every 2500 --fd-samples 2000 \
    --time-limit "$TIME_LIMIT" --resume --quiet "${extra[@]}" $(recipe "$v") \
    > "$RUN/$v.log" 2>&1 &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=$?; done
for v in $VARIANTS; do sed "s/^/[$v] /" "$RUN/$v.log"; done | tee "$DEST/train.log"

# Pick the variant with the lowest FD (the first that finished, without a metric).
best=$("$PY" - "$RUN" $VARIANTS <<'EOF'
import json, sys
from pathlib import Path
run, variants = Path(sys.argv[1]), sys.argv[2:]
scores = []
for v in variants:
    cfg = run / v / "config.json"
    if cfg.is_file():
        fd = json.loads(cfg.read_text())["metrics"].get("fd_best")
        scores.append((float("inf") if fd is None else fd, v))
print(min(scores)[1] if scores else "")
EOF
)
echo "best variant: ${best:-none}"
# At most 8 files come back, 16 MiB each (generator.safetensors is ~14 MB).
n=0
if [ -n "$best" ]; then
  mkdir -p "$DEST/celeba-dcgan64-trained"
  cp "$RUN/$best/"{generator.safetensors,config.json,samples.png} "$DEST/celeba-dcgan64-trained/"
  n=3
fi
n=$((n + 1))  # train.log
for v in $VARIANTS; do
  [ -f "$RUN/$v/config.json" ] && [ $n -lt 8 ] && cp "$RUN/$v/config.json" "$DEST/$v.config.json" && n=$((n + 1))
done
for v in $VARIANTS; do
  [ "$v" != "$best" ] && [ -f "$RUN/$v/samples.png" ] && [ $n -lt 8 ] \
    && cp "$RUN/$v/samples.png" "$DEST/$v.samples.png" && n=$((n + 1))
done
ls -la "$DEST" "$DEST/celeba-dcgan64-trained" 2>/dev/null || true
exit "$rc"
