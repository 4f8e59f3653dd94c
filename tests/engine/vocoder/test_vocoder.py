"""Harmonic-plus-noise vocoder: reading decoded spectra and synthesising them; the Vocoder protocol
and the registry that chooses a vocoder by name."""

import numpy as np
import pytest
from _fake_preset import FakePreset

from audiosym.dsp.features import FeatureConfig, features
from audiosym.dsp.pitch import midi_to_hz
from audiosym.engine.control import note_on
from audiosym.engine.engine import Engine
from audiosym.engine.vocoder import VOCODERS, get_vocoder
from audiosym.engine.vocoder.harmonic import (
    HarmonicNoiseSynth,
    HarmonicNoiseVocoder,
    SpectrumReader,
    Update,
)
from audiosym.engine.vocoder.rtpghi import RTPGHIVocoder
from audiosym.errors import ParameterError

CFG = FeatureConfig()


def tone(midi, amps, seconds=0.5, sr=16000, noise=0.0, seed=0):
    t = np.arange(int(seconds * sr)) / sr
    f0 = midi_to_hz(midi)
    y = sum(a * np.sin(2 * np.pi * f0 * (n + 1) * t + n) for n, a in enumerate(amps))
    return y + noise * np.random.default_rng(seed).standard_normal(len(t))


@pytest.mark.parametrize("midi", [45, 57, 69])
def test_reader_recovers_harmonic_amplitudes(midi):
    truth = 1.0 / np.arange(1, 13)
    frame = features(tone(midi, truth), CFG)[-1]
    reader = SpectrumReader(CFG)
    amps, noise = reader.read(frame[None], np.array([midi + 0.3]))  # a slightly wrong target
    ratio_db = 20 * np.log10(amps[0, :12] / amps[0, 0] / truth)
    assert np.abs(ratio_db[:8]).max() < 2.0
    assert np.sum(noise**2) < 0.05 * 0.5 * np.sum(amps**2)  # a clean tone is mostly harmonic
    assert 0.5 * np.sum(amps**2) + np.sum(noise**2) == pytest.approx(1.0)  # unit RMS


def test_reader_puts_noise_in_the_noise_bands():
    reader = SpectrumReader(CFG)
    white = features(np.random.default_rng(1).standard_normal(8000), CFG)[-1]
    clean = features(tone(60, 1.0 / np.arange(1, 13)), CFG)[-1]
    _, noise_white = reader.read(white[None], np.array([60.0]))
    _, noise_clean = reader.read(clean[None], np.array([60.0]))
    # Noise that falls on harmonic bins is read as harmonics (a limit of the model), but the
    # noise share of white noise is still an order of magnitude above that of a clean tone.
    assert np.sum(noise_white**2) > 0.1 and np.sum(noise_white**2) > 10 * np.sum(noise_clean**2)


@pytest.mark.parametrize("sr", [16000, 48000])
def test_synth_pitch_level_and_band_limit(sr):
    reader = SpectrumReader(CFG)
    synth = HarmonicNoiseSynth(CFG, sample_rate=sr, ramp_samples=32)
    frame = features(tone(40, 1.0 / np.arange(1, 61), noise=0.001), CFG)[-1]
    amps, noise = reader.read(frame[None], np.array([40.0]))
    n = sr // 2
    y, _ = synth.run(np.full(n, 40.0), np.ones(n), [Update(0, amps[0], noise[0], jump=True)], synth.init_state())
    assert np.sqrt(np.mean(y**2)) == pytest.approx(1.0, rel=0.15)
    spec = np.abs(np.fft.rfft(y * np.hanning(n)))
    freqs = np.fft.rfftfreq(n, 1 / sr)
    assert freqs[np.argmax(spec)] == pytest.approx(midi_to_hz(40), abs=2.0)
    assert synth.noise_top_hz == pytest.approx(min(CFG.sample_rate, sr) / 2)
    if sr > CFG.sample_rate:
        assert spec[freqs > synth.noise_top_hz + 100].max() < 1e-3 * spec.max()  # nothing above the noise top
    # the oscillators alone (no noise) stop at the harmonic limit
    h, _ = synth.run(np.full(n, 40.0), np.ones(n), [Update(0, amps[0], noise[0] * 0, jump=True)], synth.init_state())
    hspec = np.abs(np.fft.rfft(h * np.hanning(n)))
    assert hspec[freqs > synth.limit_hz + 100].max() < 1e-3 * hspec.max()


def test_top_noise_band_continues_to_the_model_nyquist_at_the_measured_density():
    sr = 48000
    reader = SpectrumReader(CFG)
    synth = HarmonicNoiseSynth(CFG, sample_rate=sr, ramp_samples=32)
    white = np.random.default_rng(1).standard_normal(CFG.sample_rate)
    frame = features(white, CFG)[-1]
    amps, noise = reader.read(frame[None], np.array([60.0]))
    n = sr
    y, _ = synth.run(np.full(n, 60.0), np.ones(n), [Update(0, amps[0] * 0, noise[0], jump=True)], synth.init_state())
    power = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(n, 1 / sr)
    top_feature_hz = midi_to_hz(CFG.bin_midi(CFG.n_bins - 1))
    below = power[(freqs > top_feature_hz - 1000) & (freqs < top_feature_hz)].mean()
    above = power[(freqs > top_feature_hz) & (freqs < CFG.sample_rate / 2)].mean()
    assert 10 * np.log10(above / below) == pytest.approx(0.0, abs=1.5)  # same density either side
    assert power[freqs > CFG.sample_rate / 2 + 100].max() < 1e-6 * power.max()  # nothing beyond


def test_synth_is_phase_continuous_across_pitch_jumps_and_updates():
    sr = 48000
    reader = SpectrumReader(CFG)
    synth = HarmonicNoiseSynth(CFG, sample_rate=sr, ramp_samples=96)
    a1, n1 = reader.read(features(tone(60, [1, 0.5, 0.3]), CFG)[-1:], np.array([60.0]))
    a2, n2 = reader.read(features(tone(67, [0.2, 1, 0.1]), CFG)[-1:], np.array([67.0]))
    n = 9600
    f0 = np.where(np.arange(n) < 4800, 60.0, 67.0)
    y, _ = synth.run(f0, np.ones(n), [Update(0, a1[0], n1[0], jump=True), Update(4800, a2[0], n2[0])],
                     synth.init_state())
    jumps = np.abs(np.diff(y))
    steady = max(jumps[1000:4700].max(), jumps[6000:].max())
    assert jumps[4700:5000].max() <= 1.2 * steady


# ----------------------------------------------------------------------- protocol and registry
def test_registry_chooses_by_name_and_refuses_unknown_names():
    assert get_vocoder("harmonic") is HarmonicNoiseVocoder and get_vocoder("rtpghi") is RTPGHIVocoder
    with pytest.raises(ParameterError, match="'harmonic', 'rtpghi'"):
        get_vocoder("wavenet")
    with pytest.raises(ParameterError, match="vocoder='wavenet'"):
        Engine(FakePreset(), timbre="flute", sample_rate=48000, vocoder="wavenet")
    engine = Engine(FakePreset(), timbre="flute", sample_rate=48000)  # the default: harmonic, no added delay
    assert isinstance(engine.vocoder, HarmonicNoiseVocoder) and engine.vocoder.latency_samples == 0
    assert set(VOCODERS) == {"harmonic", "rtpghi"}


class SineVocoder:
    """A vocoder written against the protocol alone: a sine at ``f0`` times gain and scale."""

    latency_samples = 0

    def __init__(self, cfg, *, sample_rate, ramp_samples, n_harmonics, n_bands):
        self.sample_rate = sample_rate

    def init_state(self):
        return (0.0, 0.0)  # (phase in cycles, scale)

    def read(self, logmag, f0_midi, *, offsets, scales, jumps):
        return list(zip(offsets, scales))

    def run(self, f0_midi, gain, updates, state):
        phase, scale = state
        scales = np.full(len(gain), scale)
        for offset, s in updates:
            scales[offset:] = s
        cycles = phase + np.cumsum(midi_to_hz(f0_midi) / self.sample_rate)
        return gain * scales * np.sin(2 * np.pi * cycles), (float(cycles[-1] % 1.0), float(scales[-1]))


def test_a_new_vocoder_is_one_class_and_one_registry_line(monkeypatch):
    monkeypatch.setitem(VOCODERS, "sine", SineVocoder)  # the one registry line
    sr = 48000
    y = Engine(FakePreset(), timbre="flute", sample_rate=sr, mode="synth", vocoder="sine").render(
        sr // 4, [note_on(100, 69, 127)])
    assert np.all(y[:100] == 0)
    spec = np.abs(np.fft.rfft(y[sr // 16:] * np.hanning(len(y) - sr // 16)))
    assert np.fft.rfftfreq(len(y) - sr // 16, 1 / sr)[np.argmax(spec)] == pytest.approx(440.0, abs=5.0)


def test_band_extension_noise_tables_keep_the_model_top_band_gain():
    """With band-extension bands appended, the model's top noise band keeps its gain (it was
    applied to the last extension band instead before 2026-12-05); the last extension band is
    20-24 kHz noise."""
    from audiosym.dsp.features import FeatureConfig
    from audiosym.engine.vocoder.harmonic import HarmonicNoiseSynth
    from audiosym.timbre.band import limit_hz

    cfg = FeatureConfig()
    plain = HarmonicNoiseSynth(cfg, sample_rate=48000, ramp_samples=64)
    ext = HarmonicNoiseSynth(cfg, sample_rate=48000, ramp_samples=64, extend_hz=limit_hz(48000))
    k = plain.tables.shape[0]
    np.testing.assert_allclose(ext.tables[:k], plain.tables)  # the model's bands, top gain included
    spec = np.abs(np.fft.rfft(ext.tables[-1])) ** 2
    freqs = np.fft.rfftfreq(ext.tables.shape[1], 1 / 48000)
    assert spec[freqs >= 20000].sum() > 0.999 * spec.sum() and spec[freqs > 22050].sum() > 0.4 * spec.sum()
