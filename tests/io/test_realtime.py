"""Real-time scheduling of the audio thread (audiosym.io.realtime), and the engine benchmark's
paced, real-time way of timing blocks."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from _fake_preset import FakePreset

from audiosym.bench.engine import _time_blocks
from audiosym.engine.engine import Engine
from audiosym.io.realtime import is_realtime, make_ordinary, make_realtime

needs_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                                reason="real-time scheduling is granted to root here (or an rtprio limit)")


@needs_root
def test_only_the_calling_thread_becomes_real_time():
    seen = {}

    def audio_thread():
        seen["why"] = make_realtime()
        seen["rt"] = is_realtime()
        seen["policy"] = os.sched_getscheduler(0)
        make_ordinary()
        seen["after"] = is_realtime()

    t = threading.Thread(target=audio_thread)
    t.start()
    t.join()
    assert seen["why"] is None and seen["rt"] and seen["policy"] == os.SCHED_FIFO
    assert not seen["after"]
    assert not is_realtime()  # this thread was never touched


@needs_root
def test_a_user_without_permission_is_told_how_to_get_it():
    code = ("import os\nfrom audiosym.io.realtime import make_realtime, is_realtime\n"
            "os.setgid(65534)\nos.setuid(65534)\n"  # imports first: nobody cannot read root's Python
            "print(make_realtime())\nprint(is_realtime())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == 0, out.stderr
    why, still = out.stdout.strip().splitlines()
    assert "no permission" in why and "audio group" in why and "rtprio" in why
    assert still == "False"


@needs_root
def test_real_time_timing_is_paced_like_an_audio_callback():
    """``realtime=True`` runs one block per block period (a loop that never sleeps would be
    throttled by the kernel), at SCHED_FIFO, and leaves the thread ordinary afterwards."""
    eng = Engine(FakePreset(), timbre="flute", sample_rate=48000, block_size=480, mode="synth")
    n_blocks = 40
    t0 = time.perf_counter()
    wall, cpu, *_ = _time_blocks(eng, np.zeros(480 * n_blocks, "float32"), [], 480, realtime=True)
    elapsed = time.perf_counter() - t0
    assert len(wall) == n_blocks
    assert elapsed >= (n_blocks - 1) * 0.010  # 10 ms per block
    assert not is_realtime()
    t0 = time.perf_counter()
    _time_blocks(eng, np.zeros(480 * n_blocks, "float32"), [], 480)
    assert time.perf_counter() - t0 < elapsed  # back to back without it
