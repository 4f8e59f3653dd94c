import numpy as np
import pytest

from audiosym.dsp.features import FeatureConfig, features, features_step, init_state
from audiosym.dsp.pitch import midi_to_hz
from audiosym.errors import ParameterError

BLOCKS = [1, 64, 65, 128, 8192, 8193]


@pytest.mark.parametrize("block", BLOCKS)
def test_streaming_equals_whole_signal(rng, block):
    cfg = FeatureConfig()
    y = rng.standard_normal(20000) * 0.1
    whole = features(y, cfg)
    state, out = init_state(cfg), []
    for i in range(0, len(y), block):
        frames, state = features_step(y[i : i + block], state, cfg)
        out.append(frames)
    np.testing.assert_allclose(np.concatenate(out), whole, rtol=0, atol=1e-5)
    assert whole.shape == (len(y) // cfg.hop_length, cfg.n_bins)


def test_mixed_block_sizes(rng):
    cfg = FeatureConfig(n_fft=1024, hop_length=128, n_bins=160)
    y = rng.standard_normal(30000)
    state, out, i = init_state(cfg), [], 0
    for b in BLOCKS * 3:
        frames, state = features_step(y[i : i + b], state, cfg)
        out.append(frames)
        i += b
    np.testing.assert_allclose(np.concatenate(out), features(y[:i], cfg), atol=1e-5)


@pytest.mark.parametrize("midi", [45, 60, 69, 84])
def test_sine_peaks_at_its_pitch_bin(midi):
    cfg = FeatureConfig()
    t = np.arange(cfg.sample_rate) / cfg.sample_rate
    y = np.sin(2 * np.pi * midi_to_hz(midi) * t)
    frame = features(y, cfg)[-1]
    assert abs(cfg.bin_midi(frame.argmax()) - midi) <= 0.5


def test_frames_are_causal(rng):
    cfg = FeatureConfig()
    y = rng.standard_normal(8000)
    a = features(y, cfg)
    y2 = y.copy()
    y2[4000:] = 0.0  # changing the future must not change frames that end before it
    b = features(y2, cfg)
    n_past = 4000 // cfg.hop_length
    np.testing.assert_array_equal(a[:n_past], b[:n_past])
    assert not np.allclose(a[n_past + 1], b[n_past + 1])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"hop_length": 0}, "hop_length=0 must be a positive integer"),
        ({"n_fft": 128, "hop_length": 256}, "must not exceed"),
        ({"n_bins": 400}, "Nyquist"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        FeatureConfig(**kwargs)


def test_bad_signal():
    with pytest.raises(ParameterError, match="mono 1-D"):
        features(np.zeros((100, 2)))
    with pytest.raises(ParameterError, match="floating-point"):
        features(np.zeros(100, dtype=np.int16))
