#!/usr/bin/env bash
# One-step, idempotent setup: a virtual environment with torch, tlgan (editable, with the
# test/lint extra) and gan-face-generate (the weights of dcgan-digiface64, a second generator).
#
#   bash scripts/setup.sh            # creates/updates ./.venv
#   TLGAN_VENV=/opt/venv bash scripts/setup.sh
#   TLGAN_TORCH="torch" bash scripts/setup.sh   # another torch wheel (e.g. a CUDA build)
#   TLGAN_EXTRAS="" bash scripts/setup.sh       # without the dev extra (the Docker image)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${TLGAN_VENV:-.venv}"
TORCH_SPEC="${TLGAN_TORCH:-torch==2.13.0}"
PY="${PYTHON:-python3}"
EXTRAS="${TLGAN_EXTRAS-dev}"  # unset: dev; set but empty: no extra
TARGET="."
if [ -n "$EXTRAS" ]; then TARGET=".[$EXTRAS]"; fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
echo "[setup] installing $TORCH_SPEC"
"${PIP[@]}" install "$TORCH_SPEC"
echo "[setup] installing tlgan (${EXTRAS:-no} extra)"
"${PIP[@]}" install -e "$TARGET"
# The default generator (celeba-dcgan64) ships inside tlgan itself. This package carries the
# weights of the other registered generator, dcgan-digiface64 (a DCGAN trained on synthetic
# DigiFace faces; `tlgan generate --generator dcgan-digiface64`). Its declared dependencies pull
# wandb and torchvision, which we neither need nor want: install the file only.
echo "[setup] installing gan-face-generate==1.1.1 (weights only, --no-deps)"
"${PIP[@]}" install --no-deps gan-face-generate==1.1.1
echo "[setup] done: $VENV/bin/tlgan info"
