# Sourced by every recipe (needs ROOT): PYTHON is the interpreter the recipe runs. Unless PYTHON is set or a
# virtual environment is active, recipes/setup.sh's .venv is used when it exists, so no activation is needed.
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -z "${VIRTUAL_ENV:-}" && -x "$ROOT/.venv/bin/python" ]]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python; fi
fi
export PYTHON
