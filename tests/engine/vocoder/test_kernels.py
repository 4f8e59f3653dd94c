"""The engine's numba kernels hold in numba's disk cache: a second process compiles nothing."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

SCRIPT = """
import numpy as np
from audiosym.engine.vocoder.harmonic import _reader_kernel, _synth_kernel
from audiosym.engine.vocoder.rtpghi import _heap_kernel
from audiosym.engine.engine import Engine
from _fake_preset import FakePreset
engine = Engine(FakePreset(), timbre="flute", sample_rate=16000, mode="synth")  # warms the engine's kernels
engine.process(256, [])
z = np.ones(8)
_heap_kernel()(z, z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), 1e-3, z.copy())
"""


@pytest.mark.slow
def test_a_second_process_loads_every_kernel_from_the_cache(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "NUMBA_DEBUG_CACHE": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO), os.environ.get("PYTHONPATH", "")])}

    def run() -> str:
        out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout + out.stderr

    first = run()
    assert "data saved" in first  # compiled and stored
    second = run()
    saved = [line for line in second.splitlines() if "data saved" in line]
    assert not saved, saved  # nothing compiled again
    for kernel in ("read_rows", "synth", "integrate"):
        assert any("data loaded" in line and kernel in line for line in second.splitlines()), kernel
