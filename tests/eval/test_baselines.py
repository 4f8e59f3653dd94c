"""audiosym.eval.baselines: the no-training pitch readers."""

import numpy as np
import pytest

from audiosym.dsp.features import FeatureConfig
from audiosym.eval.baselines import BASELINES, comb_kernel, spectral_peaks

from ._notes import harmonic_frame

CFG = FeatureConfig()


@pytest.mark.parametrize("name", sorted(BASELINES))
@pytest.mark.parametrize("midi", [40.0, 55.5, 69.0, 84.0])
def test_each_baseline_reads_a_plain_harmonic_tone(name, midi):
    frames = np.stack([harmonic_frame(midi, CFG)] * 3)[None]  # [1, 3, n_bins]
    est = BASELINES[name](frames, CFG)
    assert est.shape == (1, 3)
    assert np.all(np.abs(est - midi) < 0.5)


def test_combs_read_a_weak_fundamental_the_strongest_peak_does_not():
    amps = np.array([0.3, 1.0, 0.5, 0.3, 0.2, 0.1, 0.1, 0.1])  # the 2nd partial is the strongest
    frames = harmonic_frame(55.0, CFG, amps=amps)[None, None]
    assert abs(BASELINES["harmonic_comb"](frames, CFG)[0, 0] - 55.0) < 0.5
    assert abs(BASELINES["flat_comb"](frames, CFG)[0, 0] - 55.0) < 0.5
    assert abs(BASELINES["strongest_peak"](frames, CFG)[0, 0] - 67.0) < 0.5


def test_comb_kernel_has_five_harmonics_and_zero_mean():
    w = comb_kernel(CFG, decay=0.8)
    taps = np.flatnonzero(w > 0)
    assert list(taps) == [round(2 * 12 * np.log2(h)) for h in range(1, 6)]
    assert w.sum() == pytest.approx(0.0, abs=1e-12)
    assert np.allclose(w[taps] - w[taps][-1], 0.8 ** np.arange(5) - 0.8**4)


def test_spectral_peaks_drop_broadband_energy():
    x = np.full((2, 40), 0.5)
    x[1, 20] = 1.0
    p = spectral_peaks(x)
    assert np.all(p[0] == 0.0)
    assert p[1].argmax() == 20 and p[1, 20] > 0.4
