#!/usr/bin/env bash
# The test suite (fast + slow tests that fit CI's budget), in the virtual environment that
# scripts/setup.sh made (.venv, or $AUDIOSYM_VENV). Starts nothing itself: live tests start
# their own JACK dummy server.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${AUDIOSYM_VENV:-.venv}/bin/python"
if [ ! -x "$PY" ]; then
  echo "no virtual environment at ${AUDIOSYM_VENV:-.venv}: run bash scripts/setup.sh first" >&2
  exit 2
fi
# as if activated: the tests run the venv's own tools (torchrun, audiosym) by name
export PATH="$(cd "$(dirname "$PY")" && pwd):$PATH"
exec "$PY" -m pytest -q -p no:cacheprovider "$@"
