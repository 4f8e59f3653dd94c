"""`audiosym resynth` on a folder of short files (issue #16 item 14): the per-process start-up is
small, and a file rendered in a batch is bit for bit the file rendered alone."""

import subprocess
import sys
from math import gcd
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[2]
PRESET = str(REPO / "presets" / "sps-default.asym")


@pytest.mark.parametrize("sr_in,sr_out", [(44100, 16000), (48000, 16000), (22050, 16000), (96000, 16000),
                                          (37800, 16000), (16001, 16000), (48000, 44100), (192000, 22050)])
def test_resampler_design_is_scipy_firwin_bit_for_bit(sr_in, sr_out):
    """The engine's anti-aliasing filter is written out with numpy (importing scipy.signal costs
    ~1 s per process); it must be exactly the filter scipy.signal.firwin designs."""
    from scipy.signal import firwin, kaiserord

    from audiosym.dsp import resample as r

    up, down, poly = r._design.__wrapped__(sr_in, sr_out)
    g = gcd(sr_in, sr_out)
    assert (up, down) == (sr_out // g, sr_in // g)
    fs_up = sr_in * up
    numtaps, beta = kaiserord(r.ATTENUATION_DB, r.TRANSITION_HZ / (0.5 * fs_up))
    numtaps = int(np.ceil(numtaps / up) * up)
    cutoff = min(r.CUTOFF_HZ, 0.5 * min(sr_in, sr_out) - r.TRANSITION_HZ / 2)
    h = firwin(numtaps, cutoff, window=("kaiser", beta), fs=fs_up) * up
    assert np.array_equal(poly, h.reshape(-1, up).T)


def _write_take(path, *, sample_rate, seconds, pitches, program=71):
    from audiosym.data.soundfonts import find_soundfont, render_melody

    step = seconds / len(pitches)
    notes = [(i * step, 0.9 * step, p, 100) for i, p in enumerate(pitches)]
    y = render_melody(find_soundfont("TimGM6mb"), program, notes, sample_rate=sample_rate)[: int(seconds * sample_rate)]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.3 * y / max(float(np.max(np.abs(y))), 1e-9), sample_rate)
    return path


@pytest.mark.slow  # one fresh `audiosym resynth` process (~3 s) and four in-process runs
def test_a_file_in_a_batch_is_the_file_rendered_alone(tmp_path):
    """Whatever a batch reuses from file to file (preset, kernels, filter designs), each output
    equals a run on that file alone, bit for bit; the batch mixes sample rates (a 48 kHz file
    after a 22.05 kHz one) and the batch runs in a fresh process that never imports
    scipy.signal (the filter design is numpy, see test above)."""
    from audiosym.cli import main

    src = tmp_path / "in"
    takes = {"a.wav": (44100, [60, 64, 67]), "b.wav": (22050, [62, 65]), "c.wav": (48000, [67, 64, 60, 62]),
             "d.flac": (16000, [64])}
    for name, (rate, pitches) in takes.items():
        _write_take(src / name, sample_rate=rate, seconds=1.5, pitches=pitches, program=[71, 40, 68, 64][len(name) % 4])
    code = ("import sys; from audiosym.cli import main; rc = main(sys.argv[1:]); "
            "assert 'scipy.signal' not in sys.modules, 'the batch imported scipy.signal'; sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, "resynth", str(src), "--out", str(tmp_path / "batch"),
                           "--preset", PRESET, "--timbre", "clarinet", "--no-progress"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    batch = sorted((tmp_path / "batch").iterdir())
    assert len(batch) == len(takes)
    for name in takes:
        alone = tmp_path / f"alone-{name}"
        assert main(["resynth", str(src / name), "--out", str(alone), "--preset", PRESET, "--timbre", "clarinet",
                     "--no-progress"]) == 0
        (one,) = alone.iterdir()
        got, rate = sf.read(tmp_path / "batch" / one.name, dtype="float32")
        want, want_rate = sf.read(one, dtype="float32")
        assert rate == want_rate == takes[name][0] and np.max(np.abs(want)) > 1e-3
        assert np.array_equal(got, want), name
