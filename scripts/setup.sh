#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine for audiosym: system packages, CPU torch, the project.
# Idempotent: a second run installs nothing new.
#   scripts/setup.sh            everything: runtime, training extra (CPU torch), dev tools
#   scripts/setup.sh --runtime  the torch-free runtime only (demo, presets, resynth, live)
set -euo pipefail
MODE=${1:-full}
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
APT_PKGS="libsndfile1 libportaudio2 portaudio19-dev jackd2 jack-tools fluid-soundfont-gm musescore-general-soundfont-small"
missing=""
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "== apt-get install$missing"
  $SUDO apt-get update -qq
  # jackd2 asks about realtime priority; answer no without a prompt.
  echo "jackd2 jackd/tweak_rt_limits boolean false" | $SUDO debconf-set-selections || true
  $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
PY=${PYTHON:-python3}
if [ "$MODE" = "--runtime" ]; then
  echo "== pip install -e . (runtime only)"
  $PY -m pip install -q -e .
  exit 0
fi
# The CPU torch wheel first: an unpinned torch would pull a multi-GB CUDA build.
if ! $PY -c "import torch" 2>/dev/null; then
  echo "== pip install torch==2.13.0 (CPU)"
  $PY -m pip install -q torch==2.13.0
fi
echo "== pip install -e .[train,dev]"
$PY -m pip install -q -e ".[train,dev]"
