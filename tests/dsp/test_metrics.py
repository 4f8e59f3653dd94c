import numpy as np

from audiosym.dsp.metrics import mrstft_distance


def test_mrstft_distance_zero_for_identical_and_grows_with_difference(rng):
    a = rng.standard_normal(16000)
    assert mrstft_distance(a, a) == 0.0
    near = mrstft_distance(a + 0.05 * rng.standard_normal(16000), a)
    far = mrstft_distance(a + 0.5 * rng.standard_normal(16000), a)
    assert 0.0 < near < far


def test_mrstft_distance_orders_pitch_distance():
    t = np.arange(16000) / 16000
    tone = np.sin(2 * np.pi * 440 * t)
    detuned = np.sin(2 * np.pi * 442 * t)
    fifth = np.sin(2 * np.pi * 660 * t)
    assert 0.0 < mrstft_distance(detuned, tone) < mrstft_distance(fifth, tone)
