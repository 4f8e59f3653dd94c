"""`audiosym live` on a machine with no sound card, no JACK server and no MIDI system: every
command says there is nothing and how to get it (JACK, PipeWire, PulseAudio; a keyboard,
a2jmidid, a virtual port), and no C library message leaks to the terminal.

The real thing, not a mock: the commands run in subprocesses against the real PortAudio and
rtmidi, with JACK_DEFAULT_SERVER naming a server that does not run. Skipped on a machine whose
PortAudio does see a device (a desktop with a sound card or a sound server).
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PRESET = REPO / "presets" / "sps-default.asym"


@pytest.fixture(scope="module")
def bare_env():
    env = {**os.environ, "PYTHONPATH": str(REPO), "JACK_DEFAULT_SERVER": f"audiosym-absent-{os.getpid()}",
           "JACK_NO_START_SERVER": "1"}
    probe = subprocess.run([sys.executable, "-c", "import sounddevice as sd; print(len(sd.query_devices()))"],
                           env=env, capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"sounddevice does not load here: {probe.stderr[-500:]}")
    if int(probe.stdout.split()[-1]) > 0:
        pytest.skip("PortAudio sees audio devices on this machine: the no-device case cannot be made")
    return env


def _live(env, *args, timeout=60):
    return subprocess.run([sys.executable, "-m", "audiosym", "live", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


def _no_library_noise(stderr: str) -> None:
    assert "ALSA lib" not in stderr and "Cannot connect to server" not in stderr, stderr
    assert "jack server is not running" not in stderr.lower(), stderr


def test_list_devices_says_there_are_none_and_how_to_get_one(bare_env):
    res = _live(bare_env, "--list-devices")
    assert res.returncode == 1, res  # 1: nothing found (0 lists, 2 is an error)
    assert res.stdout.strip() == ""  # a script reading the list reads no device
    assert "no audio devices" in res.stderr
    for fix in ("jackd -d dummy", "pw-jack", "PulseAudio", "libasound2-plugins"):
        assert fix in res.stderr, (fix, res.stderr)
    _no_library_noise(res.stderr)


def test_list_midi_is_quiet_and_says_how_to_get_a_port(bare_env):
    res = _live(bare_env, "--list-midi")
    assert res.returncode == 1, res
    assert res.stdout.strip() == ""
    assert "no MIDI input ports" in res.stderr
    # why, in the libraries' words without their source locations, then what to do
    assert "/dev/snd/seq" in res.stderr and "JACK server not running" in res.stderr, res.stderr
    for fix in ("MIDI keyboard", "a2jmidid", "--midi-api jack", "snd-virmidi"):
        assert fix in res.stderr, (fix, res.stderr)
    _no_library_noise(res.stderr)
    both = _live(bare_env, "--list-midi", "--list-devices")
    assert both.returncode == 1 and "no audio devices" in both.stderr and "no MIDI input ports" in both.stderr
    _no_library_noise(both.stderr)


def test_playing_without_a_device_names_the_fix_at_once(bare_env):
    if not PRESET.exists():
        pytest.skip("presets/sps-default.asym is not shipped")
    t0 = time.perf_counter()
    res = _live(bare_env, "--preset", str(PRESET), "--mode", "synth", "--midi-port", "0", "--seconds", "1")
    seconds = time.perf_counter() - t0
    assert res.returncode == 2, res
    assert "error: no audio devices" in res.stderr and "jackd -d dummy" in res.stderr and "pw-jack" in res.stderr
    assert "available devices" not in res.stderr  # no empty list
    _no_library_noise(res.stderr)
    # refused before the engine compiles its kernels (seconds on a first run)
    assert seconds < 20, seconds


def test_a_session_with_a_midi_port_and_no_midi_system_names_what_to_start(bare_env):
    code = ("from audiosym.io.live import LiveSession\nfrom audiosym.errors import DeviceError\n"
            "class E: sample_rate = 48000; mode = 'synth'\n"
            "try:\n    LiveSession(E(), midi_port=0).open()\nexcept DeviceError as e:\n    print(e)\n")
    res = subprocess.run([sys.executable, "-c", code], env=bare_env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res
    assert "midi_port=0: no MIDI input ports" in res.stdout and "--midi-port" not in res.stdout, res.stdout
    assert "a2jmidid" in res.stdout and "MIDI keyboard" in res.stdout and "start one" not in res.stdout
    _no_library_noise(res.stderr)


def test_captured_c_stderr_restores_the_terminal():
    """The probe's redirection of fd 2 ends with the probe: what C code writes inside is captured,
    what is written after reaches stderr again."""
    code = ("import os\nfrom audiosym.io.live import captured_c_stderr\n"
            "with captured_c_stderr() as lines:\n    os.write(2, b'inside\\n')\n"
            "os.write(2, b'after\\n')\nprint(lines)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res
    assert res.stdout.strip() == "['inside']" and res.stderr == "after\n", res
