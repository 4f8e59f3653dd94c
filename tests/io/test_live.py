"""The real thing: a JACK dummy server, a live session in a subprocess, MIDI from a virtual JACK
port, the output recorded with jack_rec and its pitch checked with librosa.pyin."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.live, pytest.mark.slow]

HERE = Path(__file__).resolve().parents[1]  # tests/, where the helpers live
SR = 48000


def _jack_ports(env) -> list[str]:
    out = subprocess.run(["jack_lsp"], env=env, capture_output=True, text=True, timeout=5)
    return out.stdout.split() if out.returncode == 0 else []


def _wait_for(predicate, timeout_s, what):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}")


@pytest.fixture(scope="module")
def jack_env():
    for tool in ("jackd", "jack_lsp", "jack_rec", "jack_connect"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt install jackd2 jack-tools)")
    name = f"audiosym-test-{os.getpid()}"
    env = {**os.environ, "JACK_DEFAULT_SERVER": name, "JACK_NO_AUDIO_RESERVATION": "1"}
    server = subprocess.Popen(["jackd", "-r", "-n", name, "-d", "dummy", "-r", str(SR), "-p", "256"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: "system:playback_1" in _jack_ports(env), 10, "jackd to start")
        yield env
    finally:
        server.terminate()
        server.wait(timeout=10)


def _started(env, cmd, timeout_s, what):
    """``cmd`` started with its output captured, once its JACK output port exists (or it exited:
    then the test fails with its stderr)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: "PortAudio:out_0" in _jack_ports(env) or proc.poll() is not None, timeout_s, what)
    if proc.poll() is not None:
        pytest.fail(f"{what} exited early: {proc.communicate()[1][-2000:]}")
    return proc


def _start_session(env, *args):
    return _started(env, [sys.executable, str(HERE / "_live_runner.py"), *args], 15, "the live session")


def _start_live(env, *args, timeout_s=40):
    """`audiosym live ARGS` as a musician runs it, started and playing."""
    return _started(env, [sys.executable, "-m", "audiosym", "live", *args], timeout_s, "audiosym live")


def _finish(proc):
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    stats = json.loads(out.strip().splitlines()[-1])
    # Xruns are reported, not hidden: print them with the test output.
    print(f"live session counters: {stats}")
    assert stats["blocks"] > 0 and stats["callback_errors"] == 0
    return stats


def _stable_pitches(path, min_frames=12):
    """The sequence of distinct steady pitches (rounded MIDI) pyin finds in a recording."""
    import librosa
    import soundfile as sf
    import soxr

    y, sr = sf.read(path, dtype="float32")
    y = soxr.resample(y if y.ndim == 1 else y[:, 0], sr, 24000)  # pyin is slow at 48 kHz
    f0, voiced, _ = librosa.pyin(y, fmin=100, fmax=1200, sr=24000, frame_length=1024, hop_length=256)
    midi = librosa.hz_to_midi(np.where(voiced, f0, np.nan))
    runs, cur, count, values = [], None, 0, []
    for m in midi:
        r = None if not np.isfinite(m) else int(np.round(m))
        if r is not None and r == cur:
            count += 1
            values.append(m)
            continue
        if cur is not None and count >= min_frames:
            runs.append((cur, float(np.median(values))))
        cur, count, values = r, 1, [m]
    if cur is not None and count >= min_frames:
        runs.append((cur, float(np.median(values))))
    return runs


def _record(env, port, path, seconds):
    return subprocess.Popen(["jack_rec", "-f", str(path), "-d", str(seconds), port], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _midi_out(env, monkeypatch, name):
    import rtmidi

    monkeypatch.setenv("JACK_DEFAULT_SERVER", env["JACK_DEFAULT_SERVER"])
    out = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name=name)
    out.open_virtual_port("keys")
    return out


def _play(midi, notes, *, held_s=0.8, gap_s=0.1):
    """After 0.3 s, each note held for ``held_s`` then ``gap_s`` of silence, velocity 110."""
    time.sleep(0.3)
    for note in notes:
        midi.send_message([0x90, note, 110])
        time.sleep(held_s)
        midi.send_message([0x80, note, 0])
        time.sleep(gap_s)


def test_synth_session_plays_the_notes_sent(jack_env, monkeypatch, tmp_path):
    midi = _midi_out(jack_env, monkeypatch, "audiosym-keys-a")
    try:
        proc = _start_session(jack_env, "--mode", "synth", "--midi-port", "audiosym-keys-a", "--seconds", "4.5")
        rec = _record(jack_env, "PortAudio:out_0", tmp_path / "out.wav", 3.0)
        notes = [60, 67, 72]
        _play(midi, notes)
        rec.wait(timeout=15)
        stats = _finish(proc)
    finally:
        midi.close_port()
        midi.delete()
    assert stats["midi_messages"] == 2 * len(notes)
    if os.geteuid() == 0:  # root may schedule real-time: the audio thread asked for it and got it
        assert stats["realtime"] is True
    runs = _stable_pitches(tmp_path / "out.wav")
    assert [r for r, _ in runs] == notes, runs
    assert all(abs(m - r) < 0.15 for r, m in runs), runs


def test_transfer_session_is_duplex(jack_env, monkeypatch, tmp_path):
    """Audio in through JACK (a 220 Hz tone played by jack-play), MIDI note 64 held for a while:
    the output follows the input's pitch (MIDI 57) until the note takes over."""
    import soundfile as sf

    if shutil.which("jack-play") is None:
        pytest.skip("jack-play is not installed (apt install jack-tools)")
    t = np.arange(int(4.0 * SR)) / SR
    sf.write(tmp_path / "in.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), SR)
    midi = _midi_out(jack_env, monkeypatch, "audiosym-keys-b")
    player = None
    try:
        proc = _start_session(jack_env, "--mode", "transfer", "--midi-port", "audiosym-keys-b", "--seconds", "4.5")
        player = subprocess.Popen(["jack-play", str(tmp_path / "in.wav")], env=jack_env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for(lambda: any(p.startswith("jack-play") for p in _jack_ports(jack_env)), 10, "jack-play")
        src = next(p for p in _jack_ports(jack_env) if p.startswith("jack-play") and "out" in p)
        subprocess.run(["jack_connect", src, "PortAudio:in_0"], env=jack_env, check=True, timeout=5)
        time.sleep(0.5)  # the encoder needs a few frames of the tone
        rec = _record(jack_env, "PortAudio:out_0", tmp_path / "out.wav", 2.4)
        time.sleep(1.0)
        midi.send_message([0x90, 64, 127])
        time.sleep(1.0)
        midi.send_message([0x80, 64, 0])
        rec.wait(timeout=15)
        stats = _finish(proc)
    finally:
        if player is not None and player.poll() is None:
            player.terminate()
            player.wait(timeout=5)
        midi.close_port()
        midi.delete()
    assert stats["midi_messages"] == 2
    runs = [r for r, _ in _stable_pitches(tmp_path / "out.wav")]
    assert runs[:2] == [57, 64], runs


def test_missing_midi_port_lists_the_ports(jack_env, monkeypatch):
    midi = _midi_out(jack_env, monkeypatch, "audiosym-keys-c")
    try:
        code = ("from audiosym.io.live import LiveSession\nfrom audiosym.errors import DeviceError\n"
                "class E: sample_rate = 48000; mode = 'synth'\n"
                "try:\n    LiveSession(E(), midi_port='no-such-keyboard', midi_api='jack').open()\n"
                "except DeviceError as e:\n    print(e)\n")
        out = subprocess.run([sys.executable, "-c", code], env=jack_env, capture_output=True, text=True, timeout=30)
        assert "'no-such-keyboard' not found" in out.stdout and "audiosym-keys-c:keys" in out.stdout, out
        listed = subprocess.run([sys.executable, "-m", "audiosym", "live", "--list-midi", "--midi-api", "jack"],
                                env=jack_env, capture_output=True, text=True, timeout=30)
        assert "audiosym-keys-c:keys" in listed.stdout, listed
        presets = sorted((HERE.parent / "presets").glob("*.asym"))
        if presets:  # the command with a real preset: a missing audio device lists the devices
            bad = subprocess.run([sys.executable, "-m", "audiosym", "live", "--preset", str(presets[0]),
                                  "--mode", "synth", "--output", "no-such-device", "--seconds", "1"],
                                 env=jack_env, capture_output=True, text=True, timeout=60)
            assert bad.returncode == 2 and "audio device not found" in bad.stderr, bad
            assert "JACK" in bad.stderr or "system" in bad.stderr, bad.stderr
    finally:
        midi.close_port()
        midi.delete()


def test_ctrl_c_stops_the_command_cleanly(jack_env):
    import signal

    presets = sorted((HERE.parent / "presets").glob("*.asym"))
    if not presets:
        pytest.skip("no preset file in presets/ for the command-line session")
    proc = _start_live(jack_env, "--preset", str(presets[0]), "--mode", "synth", "--report-every", "0.5", "--json",
                       timeout_s=20)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err[-2000:]
    assert "stopping (Ctrl-C)" in err and "xruns" in err
    stats = json.loads(out.strip().splitlines()[-1])
    print(f"audiosym live counters: {stats}")
    assert stats["blocks"] > 100 and stats["callback_errors"] == 0
    assert "PortAudio:out_0" not in _jack_ports(jack_env)  # the stream was closed


def test_live_command_plays_a_reference_timbre(jack_env, monkeypatch, tmp_path):
    """`audiosym live --timbre-from REF.wav` (the real command, a shipped preset): the recording is
    measured before the audio starts, and MIDI notes then sound in that timbre at their pitch."""
    import soundfile as sf

    from audiosym.data.soundfonts import find_soundfont, render_melody

    preset = HERE.parent / "presets" / "sps-default.asym"
    if not preset.exists():
        pytest.skip("presets/sps-default.asym is not shipped")
    ref = tmp_path / "my oboe.wav"
    y = render_melody(find_soundfont("TimGM6mb"), 68, [(0.4 * i, 0.36, p, 100) for i, p in enumerate([62, 65, 69, 72, 69, 65])],
                      sample_rate=22050)
    sf.write(ref, y, 22050)
    midi = _midi_out(jack_env, monkeypatch, "audiosym-keys-ref")
    try:
        proc = _start_live(jack_env, "--preset", str(preset), "--mode", "synth", "--timbre-from", str(ref),
                           "--midi-port", "audiosym-keys-ref", "--midi-api", "jack", "--seconds", "5", "--json")
        rec = _record(jack_env, "PortAudio:out_0", tmp_path / "out.wav", 2.5)
        notes = [64, 71]
        _play(midi, notes)
        rec.wait(timeout=15)
        out, err = proc.communicate(timeout=30)
    finally:
        midi.close_port()
        midi.delete()
    assert proc.returncode == 0, err[-2000:]
    assert "measuring the timbre of" in err and "sps-default / ref:my_oboe" in err
    stats = json.loads(out.strip().splitlines()[-1])
    print(f"audiosym live --timbre-from counters: {stats}")
    assert stats["callback_errors"] == 0 and stats["midi_messages"] == 2 * len(notes)
    runs = _stable_pitches(tmp_path / "out.wav")
    assert [r for r, _ in runs] == notes, runs


def test_list_commands_with_a_jack_server_and_no_midi_ports(jack_env):
    """With the JACK dummy server: --list-devices lists its device (exit 0); with no MIDI port
    anywhere, --list-midi exits 1 and says how to get one, no ALSA library line leaks, and
    `live --midi-port 0` names what to start before loading anything."""
    devices = subprocess.run([sys.executable, "-m", "audiosym", "live", "--list-devices"], env=jack_env,
                             capture_output=True, text=True, timeout=30)
    assert devices.returncode == 0 and "JACK" in devices.stdout, devices
    for api in ([], ["--midi-api", "jack"]):
        listed = subprocess.run([sys.executable, "-m", "audiosym", "live", "--list-midi", *api], env=jack_env,
                                capture_output=True, text=True, timeout=30)
        assert listed.returncode == 1 and listed.stdout == "", listed
        assert "no MIDI input ports" in listed.stderr and "a2jmidid" in listed.stderr, listed.stderr
        assert "ALSA lib" not in listed.stderr, listed.stderr
    preset = HERE.parent / "presets" / "sps-default.asym"
    if not preset.exists():
        pytest.skip("presets/sps-default.asym is not shipped")
    bad = subprocess.run([sys.executable, "-m", "audiosym", "live", "--preset", str(preset), "--mode", "synth",
                          "--midi-port", "0", "--seconds", "1"], env=jack_env, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2, bad
    assert "--midi-port 0: no MIDI input ports" in bad.stderr, bad.stderr
    for fix in ("MIDI keyboard", "a2jmidid", "--midi-api jack", "snd-virmidi"):
        assert fix in bad.stderr, (fix, bad.stderr)
    assert "ALSA lib" not in bad.stderr and "start one" not in bad.stderr, bad.stderr
