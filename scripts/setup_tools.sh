#!/usr/bin/env bash
# Linters whose pinned dependencies clash with the project's, in their own virtual
# environment (./.venv-tools), where the tests find them: checkov (tests/ops/test_deploy.py
# runs it on deploy/kubernetes) pins packaging and python-dateutil below the versions that
# .venv has. Idempotent; CI runs it after scripts/setup.sh.
#
#   bash scripts/setup_tools.sh
#   TLGAN_TOOLS_VENV=/opt/tools bash scripts/setup_tools.sh   # elsewhere (then set
#                                                             # TLGAN_CHECKOV=/opt/tools/bin/checkov)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${TLGAN_TOOLS_VENV:-.venv-tools}"
PY="${PYTHON:-python3}"
CHECKOV_SPEC="checkov==3.3.30"

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup-tools] creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
echo "[setup-tools] installing $CHECKOV_SPEC"
"$VENV/bin/python" -m pip --disable-pip-version-check -q install "$CHECKOV_SPEC"
echo "[setup-tools] done: $("$VENV/bin/checkov" --version)"
