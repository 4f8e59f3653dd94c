"""audiosym.io.audio: reading any audio to mono float at its own rate, atomic WAV writes."""

import os

import numpy as np
import pytest
import soundfile as sf

from audiosym.errors import AudiosymError, ParameterError
from audiosym.io.audio import AudioInputError, read_audio, resample, write_wav


def _tone(sample_rate, seconds=0.25, hz=440.0):
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.mark.parametrize("sample_rate", [8000, 11025, 22050, 44100, 48000, 96000])
@pytest.mark.parametrize("fmt,subtype,tol", [("WAV", "FLOAT", 0.0), ("FLAC", "PCM_24", 1e-6), ("WAV", "PCM_16", 1e-4)])
def test_round_trip_odd_rates(tmp_path, sample_rate, fmt, subtype, tol):
    y = _tone(sample_rate)
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(path, y, sample_rate, format=fmt, subtype=subtype)
    back, info = read_audio(path)
    assert info.sample_rate == sample_rate and info.channels == 1
    assert back.dtype == np.float32 and back.shape == y.shape
    assert np.max(np.abs(back - y)) <= tol
    assert info.seconds == pytest.approx(len(y) / sample_rate)


def test_ogg_is_read(tmp_path):
    y = _tone(22050, seconds=0.5)
    sf.write(tmp_path / "x.ogg", y, 22050, format="OGG", subtype="VORBIS")
    back, info = read_audio(tmp_path / "x.ogg")
    assert info.sample_rate == 22050
    assert abs(len(back) - len(y)) < 2048
    # lossy, but the tone survives: correlation with the original is high
    n = min(len(back), len(y))
    assert np.corrcoef(back[:n], y[:n])[0, 1] > 0.9


def test_stereo_downmix_is_channel_mean(tmp_path):
    rng = np.random.default_rng(0)
    stereo = (rng.uniform(-0.5, 0.5, size=(1000, 2))).astype(np.float32)
    sf.write(tmp_path / "s.wav", stereo, 44100, subtype="FLOAT")
    y, info = read_audio(tmp_path / "s.wav")
    assert info.channels == 2
    np.testing.assert_allclose(y, stereo.mean(axis=1), atol=1e-7)


def test_out_of_phase_stereo_cancels_and_is_reported_silent(tmp_path):
    y = _tone(16000)
    sf.write(tmp_path / "p.wav", np.stack([y, -y], axis=1), 16000, subtype="FLOAT")
    with pytest.raises(AudioInputError, match="silent"):
        read_audio(tmp_path / "p.wav")


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage garbage"), "unreadable or corrupt"),
        (lambda p: sf.write(p, np.zeros(4000, np.float32), 16000), "silent"),
        (lambda p: sf.write(p, np.zeros(0, np.float32), 16000), "no audio samples"),
        (lambda p: sf.write(p, np.array([0.1, np.nan, 0.2], np.float32), 16000, subtype="FLOAT"), "NaN"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, make, match):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioInputError, match=match) as info:
        read_audio(path)
    assert isinstance(info.value, AudiosymError)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(AudioInputError, match="no such file"):
        read_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioInputError, match="folder"):
        read_audio(tmp_path)


def test_max_seconds_refuses_long_files(tmp_path):
    sf.write(tmp_path / "long.wav", _tone(8000, seconds=3.0), 8000)
    with pytest.raises(AudioInputError, match="longer than max_seconds=2"):
        read_audio(tmp_path / "long.wav", max_seconds=2)
    y, _ = read_audio(tmp_path / "long.wav", max_seconds=3.5)
    assert len(y) == 24000


def test_write_wav_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch):
    y = _tone(44100)
    out = write_wav(tmp_path / "sub" / "o.wav", y, sample_rate=44100)
    back, sr = sf.read(out, dtype="float32")
    assert sr == 44100 and np.array_equal(back, y)
    # a failure while writing keeps the previous file intact and removes the temp file
    import audiosym.io.audio as aio

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(aio.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_wav(out, np.zeros(10, np.float32), sample_rate=44100)
    assert np.array_equal(sf.read(out, dtype="float32")[0], y)
    assert sorted(os.listdir(out.parent)) == ["o.wav"]


def test_resample_changes_length_and_keeps_pitch():
    y = _tone(44100, seconds=1.0, hz=1000.0)
    z = resample(y, orig_sample_rate=44100, target_sample_rate=16000)
    assert abs(len(z) - 16000) <= 1
    spectrum = np.abs(np.fft.rfft(z))
    assert abs(np.argmax(spectrum) * 16000 / len(z) - 1000.0) < 2.0


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o027])
def test_atomic_writes_follow_the_umask_like_open(tmp_path, mask):
    """Every atomic write (WAVs, notes MIDI files, the note cache) gets the mode open() gives a
    new file (0666 less the umask), not a temporary file's 0600."""
    from audiosym.io.audio import atomic_path

    saved = os.umask(mask)
    try:
        with open(tmp_path / "plain", "w"):
            pass
        with atomic_path(tmp_path / "a.npz", suffix=".tmp.npz") as tmp:
            np.savez(tmp, x=np.zeros(3))
        wav = write_wav(tmp_path / "sub" / "o.wav", _tone(8000), sample_rate=8000)
    finally:
        os.umask(saved)
    want = 0o666 & ~mask
    assert [os.stat(p).st_mode & 0o777 for p in (tmp_path / "plain", tmp_path / "a.npz", wav)] == [want] * 3


def test_write_wav_pcm_clips_and_keeps_its_comment(tmp_path):
    from audiosym.io.audio import WAV_FORMATS, clipped_samples, read_wav_comment

    y = np.array([0.0, 0.5, -0.5, 1.5, -2.0, 0.25], np.float32)
    for name, subtype in WAV_FORMATS.items():
        out = write_wav(tmp_path / f"{name}.wav", y, sample_rate=8000, subtype=subtype, comment='{"k": "é"}')
        back = sf.read(out, dtype="float64")[0]
        assert sf.info(str(out)).subtype == subtype and read_wav_comment(out) == '{"k": "é"}'
        if subtype == "FLOAT":
            assert np.array_equal(back, y) and clipped_samples(y, subtype) == 0
        else:  # clipped to full scale, never wrapped around
            assert clipped_samples(y, subtype) == 2 and back[3] > 0.99 and back[4] == -1.0
            np.testing.assert_allclose(back[[0, 1, 2, 5]], y[[0, 1, 2, 5]], atol=2.0**-15)
    assert read_wav_comment(write_wav(tmp_path / "none.wav", y, sample_rate=8000)) is None
    (tmp_path / "junk.wav").write_bytes(b"junk")
    assert read_wav_comment(tmp_path / "junk.wav") is None
    with pytest.raises(ParameterError, match="subtype='MP3'"):
        write_wav(tmp_path / "x.wav", y, sample_rate=8000, subtype="MP3")
