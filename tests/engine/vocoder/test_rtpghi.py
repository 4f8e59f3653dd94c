"""RTPGHI: streaming phase reconstruction from STFT magnitude, and the log -> linear magnitude map."""

import heapq

import librosa
import numpy as np
import pytest
from _fake_preset import FakePreset
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import uniform_filter1d

from audiosym.dsp.features import FeatureConfig, features, log_frequency_matrix
from audiosym.dsp.pitch import midi_to_hz
from audiosym.engine.control import MidiEvent, note_off, note_on, pitch_bend
from audiosym.engine.engine import Engine
from audiosym.engine.vocoder.rtpghi import RTPGHI, LogToLinear, _heap_kernel, stft_magnitude
from audiosym.errors import ParameterError

CFG = FeatureConfig()
SR, HOP = CFG.sample_rate, CFG.hop_length
BLOCKS = [1, 64, 65, 128, 8192, 8193]


def glide_signal(seconds=1.0, seed=0):
    """A gliding two-partial tone with vibrato, a click and a little noise."""
    t = np.arange(int(seconds * SR)) / SR
    f = 220.0 * 2 ** (t / 2) * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f) / SR
    y = 0.3 * np.sin(phase) + 0.1 * np.sin(3 * phase)
    y[len(y) // 2 : len(y) // 2 + 40] += 0.4
    return y + 0.003 * np.random.default_rng(seed).standard_normal(len(y))


def spectral_convergence_db(voc, mags, shift=0):
    """Re-analyse the output with the reported latency (+ ``shift`` samples) removed and compare
    with the magnitudes used."""
    out = voc.synthesize(mags)[voc.latency_samples + shift :]
    again = stft_magnitude(out)
    ref = mags[: len(again)]
    return 20 * np.log10(np.linalg.norm(again - ref) / np.linalg.norm(ref))


@pytest.mark.parametrize("lookahead", [0, 1])
def test_any_block_size_gives_the_same_output(lookahead):
    y = glide_signal(0.7)
    mags = stft_magnitude(y)
    voc = RTPGHI.for_features(CFG, lookahead_frames=lookahead)
    n = len(mags) * HOP
    whole, _ = voc.process(mags, n, voc.init_state())
    assert np.abs(whole).max() > 0.1
    for block in BLOCKS:
        state, out = voc.init_state(), []
        for i in range(0, n, block):
            end = min(i + block, n)
            y_block, state = voc.process(mags[i // HOP : end // HOP], end - i, state)
            out.append(y_block)
        np.testing.assert_array_equal(np.concatenate(out), whole, err_msg=f"block {block}")


@pytest.mark.parametrize("lookahead", [0, 1])
def test_reconstruction_beats_random_phase_and_is_delayed_by_latency(lookahead):
    y = glide_signal()
    mags = stft_magnitude(y)
    voc = RTPGHI.for_features(CFG, lookahead_frames=lookahead)
    sc = spectral_convergence_db(voc, mags)
    # tol just below 1: (nearly) every coefficient gets a random phase, same synthesis otherwise.
    sc_random = spectral_convergence_db(RTPGHI.for_features(CFG, tol=0.999999, lookahead_frames=lookahead), mags)
    assert sc < -20.0 and sc < sc_random - 12.0, (sc, sc_random)
    # The phase is only recovered up to a constant, so the delay is checked on magnitudes:
    # the reported latency lines the output up better than one hop earlier or later.
    for shift in (-HOP, HOP):
        assert spectral_convergence_db(voc, mags, shift) > sc + 3.0


def integrate_reference(mag_prev, phase_prev, tgrad_prev, mag, tgrad, fgrad, tol, phase):
    """The same heap integration with Python's heapq (slow; the compiled one must agree)."""
    n = len(mag)
    thresh = tol * max(mag_prev.max(), mag.max())
    todo = mag > thresh
    remaining = int(todo.sum())
    heap = [(-mag_prev[m], 2 * m) for m in range(n) if todo[m] and mag_prev[m] > thresh]
    heapq.heapify(heap)
    while remaining:
        if not heap:
            cand = np.flatnonzero(todo)
            best = int(cand[np.argmax(mag[cand])])
            heap.append((-mag_prev[best], 2 * best))
        _, v = heapq.heappop(heap)
        m = v >> 1
        if v & 1 == 0:
            if todo[m]:
                phase[m] = phase_prev[m] + 0.5 * (tgrad_prev[m] + tgrad[m])
                todo[m], remaining = False, remaining - 1
                heapq.heappush(heap, (-mag[m], 2 * m + 1))
            continue
        for k in (m + 1, m - 1):
            if 0 <= k < n and todo[k]:
                phase[k] = phase[m] + 0.5 * (fgrad[m] + fgrad[k]) * (k - m)
                todo[k], remaining = False, remaining - 1
                heapq.heappush(heap, (-mag[k], 2 * k + 1))


@pytest.mark.parametrize("prev_silent", [False, True])
def test_compiled_heap_matches_heapq_reference(rng, prev_silent):
    n = 257
    mag_prev = np.zeros(n) if prev_silent else rng.random(n) ** 4
    mag = rng.random(n) ** 4
    mag[rng.random(n) < 0.2] = 0.0  # some coefficients below tolerance keep their random phase
    args = [mag_prev, rng.uniform(-3, 3, n), rng.uniform(-3, 3, n), mag, rng.uniform(-3, 3, n),
            rng.uniform(-3, 3, n), 1e-3]
    start = rng.uniform(-np.pi, np.pi, n)
    fast, slow = start.copy(), start.copy()
    _heap_kernel()(*args, fast)
    integrate_reference(*args, slow)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)
    assert np.array_equal(fast[mag == 0], start[mag == 0]) and not np.array_equal(fast, start)


def test_pinv_map_is_consistent_with_the_features():
    y = glide_signal(0.5)
    logmag = features(y, CFG)
    lin = LogToLinear(CFG, method="pinv")(logmag)
    assert lin.shape == (len(logmag), CFG.n_fft // 2 + 1) and lin.min() >= 0
    forward = lin @ log_frequency_matrix(CFG).T
    target = np.exp(logmag.astype(np.float64)) - CFG.eps
    loud = target > 1e-3 * target.max()
    assert np.median(np.abs(forward[loud] / target[loud] - 1)) < 0.05


@pytest.mark.parametrize("method", ["pinv", "interp", "hybrid"])
@pytest.mark.parametrize("midi", [45, 69])
def test_log_features_to_audio_keeps_the_pitch(method, midi):
    t = np.arange(SR) / SR
    y = 0.3 * np.sin(2 * np.pi * midi_to_hz(midi) * t)
    lin = LogToLinear(CFG, method=method)(features(y, CFG))
    bin_hz = SR / CFG.n_fft
    assert abs(np.argmax(lin[-1]) * bin_hz - midi_to_hz(midi)) <= bin_hz
    voc = RTPGHI.for_features(CFG)
    out = voc.synthesize(lin)[voc.latency_samples :]
    spec = np.abs(np.fft.rfft(out[-8000:] * np.hanning(8000)))
    assert np.argmax(spec) * SR / 8000 == pytest.approx(midi_to_hz(midi), abs=3.0)


def test_bad_input_is_refused_with_the_rule():
    voc = RTPGHI.for_features(CFG)
    with pytest.raises(ParameterError, match="pass every"):
        voc.process(np.zeros((0, voc.n_bins)), HOP * 2, voc.init_state())
    with pytest.raises(ParameterError, match="non-negative"):
        voc.process(-np.ones((1, voc.n_bins)), 1, voc.init_state())
    with pytest.raises(ParameterError, match="expected \\[frames"):
        voc.process(np.ones((1, voc.n_bins - 1)), 1, voc.init_state())
    with pytest.raises(ParameterError, match="n_samples"):
        voc.process(np.ones((1, voc.n_bins)), -1, voc.init_state())
    with pytest.raises(ParameterError, match="lookahead_frames"):
        RTPGHI(lookahead_frames=2)
    with pytest.raises(ParameterError, match="hop_length must divide"):
        RTPGHI(n_fft=2048, hop_length=1000)
    with pytest.raises(ParameterError, match="method"):
        LogToLinear(CFG, method="nnls")
    with pytest.raises(ParameterError, match="n_bins"):
        LogToLinear(CFG)(np.zeros((1, 10)))


def test_no_clicks_at_frame_boundaries_or_a_sudden_spectrum_change():
    """Magnitude frames switch abruptly from one two-partial tone to another a fifth up. Nothing in
    them reaches 2 kHz, so any discontinuity (a click) shows as energy above 2 kHz: one dropped
    sample gives ~7e-5 of a 16 ms frame's energy there, a 0.05 step ~4e-4; a smooth output ~3e-9."""
    t = np.arange(SR) / SR
    tones = [0.3 * np.sin(2 * np.pi * midi_to_hz(m) * t) + 0.1 * np.sin(4 * np.pi * midi_to_hz(m) * t)
             for m in (60, 67)]
    voc = RTPGHI.for_features(CFG)
    out = voc.synthesize(np.concatenate([stft_magnitude(x)[20:50] for x in tones]))[CFG.n_fft :]
    assert np.abs(out).max() > 0.2
    frames = sliding_window_view(out, 256)[::64] * np.hanning(256)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    high = np.fft.rfftfreq(256, 1 / SR) > 2000
    assert (power[:, high].sum(axis=1) / power.sum(axis=1)).max() < 1e-6


# ----------------------------------------------------------------- the engine's "rtpghi" vocoder
@pytest.fixture(scope="module")
def fake():
    return FakePreset()


def _engine(preset, **kwargs):
    return Engine(preset, timbre="flute", vocoder="rtpghi", **kwargs)


@pytest.mark.parametrize("midi", [45, 69, 88])
def test_engine_with_rtpghi_plays_the_asked_pitch(fake, midi):
    sr = 48000
    y = _engine(fake, sample_rate=sr, mode="synth").render(sr // 2, [note_on(0, midi, 100)])[sr // 8:]
    assert np.sqrt(np.mean(y**2)) > 0.01
    f0, voiced, _ = librosa.pyin(y, fmin=float(midi_to_hz(midi - 7)), fmax=float(midi_to_hz(midi + 7)), sr=sr,
                                 frame_length=4096, resolution=0.02)
    assert voiced.mean() > 0.9
    assert np.median(librosa.hz_to_midi(f0[voiced])) == pytest.approx(midi, abs=0.1)  # within 10 cents


@pytest.mark.parametrize("mode", ["transfer", "synth"])
@pytest.mark.parametrize("block", [64, 65, 8193])
def test_engine_with_rtpghi_output_does_not_depend_on_block_size(fake, mode, block):
    sr = 44100
    engine = _engine(fake, sample_rate=sr, mode=mode, morph_timbre="trumpet")
    n = int(0.4 * sr)
    t = np.arange(n) / sr
    x = (0.3 * np.sin(2 * np.pi * 220 * t) * (t > 0.01)).astype(np.float32)
    events = [note_on(1003, 60, 100), pitch_bend(5001, 0.5), note_on(9007, 64, 70), note_off(13001, 64),
              note_off(15003, 60)]
    whole = engine.render(x, events)
    assert np.sqrt(np.mean(whole**2)) > 1e-3
    out = []
    for i in range(0, n, block):
        evs = [MidiEvent(e.offset - i, e.data) for e in events if i <= e.offset < i + block]
        out.append(engine.process(x[i:i + block], evs))
    np.testing.assert_allclose(np.concatenate(out), whole, atol=1e-6)


def test_engine_with_rtpghi_reports_its_measured_latency(fake):
    """Note-on to the output's 1 ms RMS at half its steady level, averaged over onsets spread
    across one hop (the wait for the next frame is part of it): within half a hop of the
    reported latency, which is the harmonic engine's plus ~70 ms."""
    sr = 48000
    e = _engine(fake, sample_rate=sr, mode="synth")
    hop = CFG.hop_length * sr // CFG.sample_rate
    measured = []
    for at in range(sr // 5, sr // 5 + hop, hop // 8):
        y = e.render(int(0.7 * sr), [note_on(at, 72, 127)])
        rms = np.sqrt(uniform_filter1d(y.astype(np.float64) ** 2, sr // 1000, mode="constant"))
        steady = np.median(rms[at + int(0.3 * sr):])
        measured.append(int(np.argmax(rms[at:] >= 0.5 * steady)))
    assert abs(np.mean(measured) - e.latency_samples) <= hop / 2
    added = e.latency_samples - Engine(fake, timbre="flute", sample_rate=sr, mode="synth").latency_samples
    assert added == e.vocoder.latency_samples and 0.055 < added / sr < 0.09
