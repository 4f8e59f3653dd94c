#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine for audiosym, in a virtual environment (.venv beside this
# folder, or $AUDIOSYM_VENV): system packages, then the project. Stock Debian 12 and Ubuntu 24.04
# refuse `pip install` outside a virtual environment (PEP 668), so everything goes into one.
# Idempotent: a second run installs nothing new.
#
#   scripts/setup.sh            everything: runtime, training extra (PyTorch), dev tools
#   scripts/setup.sh --runtime  the torch-free runtime only (demo, presets, resynth, live)
#
# PyTorch: with an NVIDIA GPU (nvidia-smi or /proc/driver/nvidia present) the CUDA build from
# PyPI; without one the CPU build from PyTorch's CPU index (~200 MB instead of several GB).
# AUDIOSYM_TORCH_INDEX=URL picks another index; AUDIOSYM_TORCH_INDEX=default uses pip's own
# configuration (CI does: its machine keeps a CPU wheel of torch 2.13.0 on disk).
# Afterwards: .venv/bin/audiosym ... (or `source .venv/bin/activate`, then `audiosym ...`).
set -euo pipefail
MODE=${1:-full}
case "$MODE" in full|--runtime) ;; *) echo "usage: scripts/setup.sh [--runtime]" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
SYS_PY=${PYTHON:-python3}
VENV=${AUDIOSYM_VENV:-.venv}
TORCH_VERSION=2.13.0

# gcc + python3-dev + portaudio19-dev: tinysoundfont needs pyaudio, which PyPI has as source only on Linux.
APT_PKGS="gcc libc6-dev python3-dev libsndfile1 libportaudio2 portaudio19-dev jackd2 jack-tools fluid-soundfont-gm musescore-general-soundfont-small"
command -v "$SYS_PY" >/dev/null 2>&1 || APT_PKGS="python3 $APT_PKGS"
# Debian/Ubuntu ship venv's pip bootstrap in a separate package.
"$SYS_PY" -c "import ensurepip, venv" >/dev/null 2>&1 || APT_PKGS="python3-venv $APT_PKGS"
missing=""
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "== apt-get install$missing"
  $SUDO apt-get update -qq
  # jackd2 asks about realtime priority; answer no without a prompt.
  echo "jackd2 jackd/tweak_rt_limits boolean false" | $SUDO debconf-set-selections || true
  $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "== python3 -m venv $VENV"
  "$SYS_PY" -m venv "$VENV"
fi
PY="$VENV/bin/python"

if [ "$MODE" = "--runtime" ]; then
  echo "== pip install -e . (runtime only, into $VENV)"
  "$PY" -m pip install -q -e .
  echo "== ready: $VENV/bin/audiosym --help"
  exit 0
fi

# PyTorch before the project: an unpinned torch from PyPI is a multi-GB CUDA build.
if ! "$PY" -c "import torch" 2>/dev/null; then
  INDEX=${AUDIOSYM_TORCH_INDEX:-auto}
  if [ "$INDEX" = auto ]; then
    if command -v nvidia-smi >/dev/null 2>&1 || [ -e /proc/driver/nvidia/version ]; then
      INDEX=default  # an NVIDIA GPU: PyPI's Linux wheel is the CUDA build
    else
      INDEX=https://download.pytorch.org/whl/cpu
    fi
  fi
  if [ "$INDEX" = default ]; then
    echo "== pip install torch==$TORCH_VERSION (pip's configured index)"
    "$PY" -m pip install -q "torch==$TORCH_VERSION"
  elif ! { echo "== pip install torch==$TORCH_VERSION from $INDEX"
            "$PY" -m pip install -q --retries 1 --timeout 30 "torch==$TORCH_VERSION" --index-url "$INDEX"; }; then
    # An index that cannot be reached (a proxy, an offline mirror) should not end the set-up.
    echo "== $INDEX could not be used; pip install torch==$TORCH_VERSION from pip's configured index instead" \
         "(on PyPI that is the larger CUDA build)" >&2
    "$PY" -m pip install -q "torch==$TORCH_VERSION"
  fi
fi
echo "== pip install -e .[train,dev] (into $VENV)"
"$PY" -m pip install -q -e ".[train,dev]"
"$PY" -c "import torch; print('== torch', torch.__version__, '| CUDA available:', torch.cuda.is_available())"
