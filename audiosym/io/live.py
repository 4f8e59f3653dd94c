"""Live I/O: a sounddevice stream and a python-rtmidi input driving an :class:`audiosym.engine.engine.Engine`.

``with LiveSession(engine, midi_port="Keystation", block_size=128) as live: live.wait()``.

The audio callback only drains the MIDI queue, calls ``engine.process`` and copies the block
out. MIDI messages are stamped on arrival (rtmidi's thread) and placed in the next block at the
offset that keeps their spacing (a constant one-block delay, no jitter); a message older than
two blocks is *late*: it is still applied (at offset 0) and counted. Stream status flags
(input overflow, output underflow: xruns) are counted, never hidden; ``stats`` holds the counts,
``report()`` formats them. The first callback puts the audio thread under real-time scheduling
(:func:`audiosym.io.realtime.make_realtime`; ``realtime=False`` leaves it alone): where the
system refuses, the session plays on at the ordinary priority and ``realtime_refused`` says why
(``wait()`` prints it once). sounddevice is imported when a session opens, not with this module
(it binds to a JACK server at import time, and ``import audiosym`` must stay light).
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from audiosym.errors import DeviceError, ParameterError
from audiosym.io.realtime import make_realtime


@dataclass
class LiveStats:
    """Counters since the session opened."""

    blocks: int = 0
    xruns: int = 0  # callbacks flagged with an input overflow or an output underflow
    input_overflows: int = 0
    output_underflows: int = 0
    other_status: int = 0
    midi_messages: int = 0
    late_midi: int = 0
    callback_errors: int = 0
    max_callback_ms: float = 0.0
    realtime: bool = False  # the audio thread runs under real-time scheduling (audiosym.io.realtime)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: How to get an audio device, for the errors that find none (a container, a server, a desktop
#: whose sound server PortAudio does not reach).
AUDIO_DEVICE_HELP = (
    "To get one: start a JACK server on a sound card (jackd -d alsa -d hw:0) or on none at all "
    "(jackd -d dummy -r 48000: silent, to try things out); on a PipeWire desktop, run through its JACK "
    "layer (pw-jack audiosym live ...); with PulseAudio or pipewire-pulse, install the ALSA 'pulse' plugin "
    "(apt install libasound2-plugins) so that a 'pulse' device appears. "
    "Check with: audiosym live --list-devices"
)
#: How to get a MIDI input port, for the errors that find none.
MIDI_PORT_HELP = (
    "To get one: connect a MIDI keyboard (a USB keyboard appears as an ALSA port; aconnect -l lists them); "
    "under JACK, bridge the ALSA ports into JACK with a2jmidid -e, or use midi_api='jack' for JACK MIDI "
    "ports (a virtual keyboard such as vmpk or jack-keyboard makes one); with no keyboard, sudo modprobe "
    "snd-virmidi makes virtual ALSA ports a sequencer can play into. "
    "Check with: audiosym live --list-midi (without a MIDI port, transfer mode plays from the audio input alone)"
)


@contextlib.contextmanager
def captured_c_stderr() -> Iterator[list[str]]:
    """Redirect file descriptor 2 to a temporary file while C libraries probe devices; the
    yielded list receives the lines they wrote (after the block).

    libasound ("ALSA lib seq_hw.c:466:(snd_seq_hw_open) open /dev/snd/seq failed ...") and libjack
    ("Cannot connect to server socket ...") print straight to fd 2 when there is nothing to
    open; the callers turn the failure into one message that says what to do. Only around
    probes made before any audio runs: the redirection is process-wide.
    """
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines.extend(tmp.read().decode(errors="replace").splitlines())


def import_sounddevice() -> Any:
    """The sounddevice module; imported (PortAudio starts and probes ALSA and JACK) with the C
    libraries' messages captured."""
    if "sounddevice" in sys.modules:
        return sys.modules["sounddevice"]
    with captured_c_stderr():
        try:
            # lazy: sounddevice/python-rtmidi bind to the audio and MIDI system at import; only when a live session opens
            import sounddevice as sd
        except OSError as exc:  # the wheel on Linux uses the system's libportaudio
            raise DeviceError(f"the PortAudio library could not be loaded ({exc}); install it: "
                              "apt install libportaudio2") from None
    return sd


def audio_devices() -> list[dict[str, Any]]:
    """The audio devices PortAudio sees (``sounddevice.query_devices()``, as dicts); empty when none."""
    return list(import_sounddevice().query_devices())


def list_audio_devices() -> str:
    """The audio devices sounddevice sees, as text (``audiosym live --list-devices``); empty when none."""
    sd = import_sounddevice()
    return str(sd.query_devices()) if audio_devices() else ""


#: The text for "PortAudio sees no audio device", with how to get one.
NO_AUDIO_DEVICES = f"no audio devices: PortAudio sees no sound card and no JACK server. {AUDIO_DEVICE_HELP}"


def require_audio_devices() -> None:
    """Raise a :class:`DeviceError` that says how to get a device when PortAudio sees none."""
    if not audio_devices():
        raise DeviceError(NO_AUDIO_DEVICES)


def _midi_api(name: str | None) -> int:
    # lazy: sounddevice/python-rtmidi bind to the audio and MIDI system at import; only when a live session opens
    import rtmidi

    apis = {"jack": rtmidi.API_UNIX_JACK, "alsa": rtmidi.API_LINUX_ALSA,
            "coremidi": rtmidi.API_MACOSX_CORE, "winmm": rtmidi.API_WINDOWS_MM}
    if name is None:
        return rtmidi.API_UNSPECIFIED
    if name not in apis:
        raise ParameterError(f"midi_api={name!r} is not one of {sorted(apis)}")
    return apis[name]


def _why(exc: Exception, noise: list[str]) -> str:
    """One line from rtmidi's error and what libasound printed, without their source locations
    ("MidiInAlsa::initialize: ...", "ALSA lib seq_hw.c:466:(snd_seq_hw_open) ...")."""
    said = [re.sub(r"^\w+::\w+: ", "", str(exc).strip()).rstrip(".")]
    for line in noise:
        m = re.match(r"ALSA lib \S+:\d+:\(\w+\) (.*)", line)
        if m and m.group(1) not in said:
            said.append(m.group(1))
    return "; ".join(said)


def open_midi_in(api: str | None = None, *, name: str = "audiosym") -> tuple[Any, str]:
    """``(rtmidi.MidiIn or None, why)``: a MIDI input client on ``api`` ('jack', 'alsa', ...), or
    for ``None`` on the first MIDI system that starts and has ports, in rtmidi's order (ALSA,
    then JACK on Linux), else the first that starts: with no ALSA sequencer, a JACK server's
    ports still work. ``why``: what failed, in words ('' when every system started)."""
    # lazy: sounddevice/python-rtmidi bind to the audio and MIDI system at import; only when a live session opens
    import rtmidi

    wanted = [_midi_api(api)] if api is not None else list(rtmidi.get_compiled_api())
    reasons: list[str] = []
    started: list[Any] = []
    for rtapi in wanted:
        with captured_c_stderr() as noise:
            try:
                midi_in = rtmidi.MidiIn(rtapi=rtapi, name=name)
            except rtmidi.SystemError as exc:
                midi_in, error = None, exc
        if midi_in is None:
            label = {rtmidi.API_UNIX_JACK: "JACK"}.get(rtapi) or rtmidi.get_api_display_name(rtapi)
            reasons.append(f"{label}: {_why(error, noise)}")
            continue
        started.append(midi_in)
        if midi_in.get_port_count():
            break
    chosen = next((m for m in started if m.get_port_count()), started[0] if started else None)
    for m in started:
        if m is not chosen:
            m.delete()
    return chosen, "; ".join(reasons)


def list_midi_ports(api: str | None = None) -> tuple[list[str], str]:
    """``(ports, why)``: the MIDI input ports (``audiosym live --list-midi``) and, when there are
    none, why in words (which MIDI system failed to start); see :func:`open_midi_in`."""
    midi_in, why = open_midi_in(api, name="audiosym-probe")
    if midi_in is None:
        return [], why
    try:
        return list(midi_in.get_ports()), why
    finally:
        midi_in.delete()


def no_midi_ports_message(why: str) -> str:
    """The text for "there are no MIDI input ports", with ``why`` and how to get one."""
    return f"no MIDI input ports{f' ({why})' if why else ''}. {MIDI_PORT_HELP}"


def require_midi_port(want: str | int, api: str | None = None) -> None:
    """Raise the :class:`DeviceError` that opening MIDI input port ``want`` would raise (no
    ports: how to get one; not found: the list), without keeping a client open."""
    ports, why = list_midi_ports(api)
    _pick_port(ports, want, why)


def _pick_port(ports: list[str], want: str | int, why: str = "") -> int:
    if not ports:
        raise DeviceError(f"midi_port={want!r}: {no_midi_ports_message(why)}")
    if isinstance(want, int) or str(want).isdigit():
        i = int(want)
        if 0 <= i < len(ports):
            return i
    else:
        hits = [i for i, p in enumerate(ports) if str(want).lower() in p.lower()]
        if hits:
            return hits[0]
    shown = "\n".join(f"  {i}: {p}" for i, p in enumerate(ports))
    raise DeviceError(f"MIDI input port {want!r} not found; available ports:\n{shown}\n"
                      "pass midi_port=N (a number or part of a name from this list)")


class LiveSession:
    """Run ``engine`` on an audio device, fed by a MIDI input port; a context manager.

    ``midi_port``: index or part of a port name (None: no MIDI); ``input_device`` /
    ``output_device``: sounddevice device index or name (None: the default); ``block_size``
    in samples at ``engine.sample_rate``; ``midi_api``: 'jack', 'alsa', ... (None: rtmidi's default);
    ``realtime``: run the audio callback under real-time scheduling where the system allows.
    """

    def __init__(self, engine: Any, *, midi_port: str | int | None = None, input_device: Any = None,
                 output_device: Any = None, block_size: int = 128, midi_api: str | None = None,
                 output_channels: int | None = None, realtime: bool = True) -> None:
        if not isinstance(block_size, int) or not 1 <= block_size <= 8192:
            raise ParameterError(f"block_size={block_size!r} must be an integer in 1..8192 samples")
        self.engine, self.block_size = engine, block_size
        self.midi_port, self.midi_api = midi_port, midi_api
        self.input_device, self.output_device = input_device, output_device
        self.output_channels = output_channels
        self.realtime = realtime
        self.realtime_refused: str | None = None
        self._realtime_asked = False
        self.stats = LiveStats()
        self.port_name: str | None = None
        self._queue: collections.deque = collections.deque()
        self._stream: Any = None
        self._midi_in: Any = None
        self._lock = threading.Lock()
        self._started = 0.0

    # ------------------------------------------------------------------ opening and closing
    def __enter__(self) -> LiveSession:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        try:
            self._open_midi()
            self._open_audio()
        except BaseException:
            self.close()
            raise
        self._started = time.monotonic()

    def _open_midi(self) -> None:
        if self.midi_port is None:
            return
        midi_in, why = open_midi_in(self.midi_api)
        ports = midi_in.get_ports() if midi_in is not None else []
        try:
            index = _pick_port(ports, self.midi_port, why)
        except DeviceError:
            if midi_in is not None:
                midi_in.delete()
            raise
        midi_in.ignore_types(sysex=True, timing=True, active_sense=True)
        midi_in.set_callback(self._on_midi)
        midi_in.open_port(index, "midi_in")
        self._midi_in, self.port_name = midi_in, ports[index]

    def _open_audio(self) -> None:
        sd = import_sounddevice()
        sr, transfer = self.engine.sample_rate, self.engine.mode == "transfer"
        try:
            out_info = sd.query_devices(self.output_device, "output")
            in_info = sd.query_devices(self.input_device, "input") if transfer else None
        except (ValueError, sd.PortAudioError) as exc:
            require_audio_devices()  # none at all: say how to get one, not an empty list
            raise DeviceError(f"audio device not found ({exc}); available devices:\n{sd.query_devices()}\n"
                              "pass input_device=N or output_device=N (a number or part of a name from this list)") from None
        channels = self.output_channels or min(2, int(out_info["max_output_channels"]))
        common = dict(samplerate=sr, blocksize=self.block_size, dtype="float32", callback=self._callback,
                      latency="low")
        try:
            if transfer:
                assert in_info is not None
                stream = sd.Stream(device=(in_info["index"], out_info["index"]), channels=(1, channels), **common)
            else:
                stream = sd.OutputStream(device=out_info["index"], channels=channels, **common)
            self._stream = stream
            stream.start()
        except sd.PortAudioError as exc:
            raise DeviceError(f"cannot open the audio stream at {sr} Hz, block {self.block_size}: {exc}") from None

    def close(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None
        if self._midi_in is not None:
            self._midi_in.cancel_callback()
            self._midi_in.close_port()
            self._midi_in.delete()
            self._midi_in = None

    # ------------------------------------------------------------------ real-time side
    def _on_midi(self, message_and_delta: tuple, _data: Any = None) -> None:
        self._queue.append((time.perf_counter(), tuple(message_and_delta[0])))

    def _callback(self, *args: Any) -> None:
        t0 = time.perf_counter()
        if len(args) == 5:  # duplex: indata, outdata, frames, time, status
            indata, outdata, frames, _, status = args
            x = indata[:, 0]
        else:
            outdata, frames, _, status = args
            x = frames
        st = self.stats
        if self.realtime and not self._realtime_asked:  # the callback's own thread, once
            self._realtime_asked = True
            self.realtime_refused = make_realtime()
            st.realtime = self.realtime_refused is None
        if status:
            st.xruns += bool(status.input_overflow or status.output_underflow)
            st.input_overflows += bool(status.input_overflow)
            st.output_underflows += bool(status.output_underflow)
            st.other_status += bool(status.input_underflow or status.output_overflow or status.priming_output)
        events = []
        late_after = 2.0 * frames / self.engine.sample_rate
        while self._queue:
            stamp, data = self._queue.popleft()
            age = t0 - stamp
            st.midi_messages += 1
            if age > late_after:
                st.late_midi += 1
            offset = int(np.clip(frames - round(age * self.engine.sample_rate), 0, frames - 1))
            events.append((offset, data))
        try:
            y = self.engine.process(x, events)
            outdata[:] = y[:, None]
        except Exception:  # noqa: BLE001 - never let an exception kill the audio thread silently
            st.callback_errors += 1
            outdata.fill(0)
        st.blocks += 1
        st.max_callback_ms = max(st.max_callback_ms, 1000 * (time.perf_counter() - t0))

    # ------------------------------------------------------------------ reporting
    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self._started if self._started else 0.0

    def report(self) -> str:
        s = self.stats
        voices = (f"  voices {self.engine.active_voices}/{self.engine.voices}"
                  if self.engine.mode == "synth" else "")  # sounding now / the bank's size
        return (f"[{self.elapsed_s:7.1f} s]{voices} blocks {s.blocks}  xruns {s.xruns} (in overflow {s.input_overflows}, "
                f"out underflow {s.output_underflows})  midi {s.midi_messages} (late {s.late_midi})  "
                f"max callback {s.max_callback_ms:.2f} ms  errors {s.callback_errors}"
                f"{'  rt' if s.realtime else ''}")

    def wait(self, *, seconds: float | None = None, report_every_s: float = 5.0, out=sys.stderr) -> None:
        """Block until ``seconds`` pass (None: until Ctrl-C), printing ``report()`` periodically."""
        end = None if seconds is None else time.monotonic() + seconds
        next_report = time.monotonic() + report_every_s
        warned = False
        try:
            while end is None or time.monotonic() < end:
                time.sleep(0.05 if end is None else max(0.0, min(0.05, end - time.monotonic())))
                if self.realtime_refused and not warned:
                    print(f"warning: the audio thread runs at the ordinary priority: {self.realtime_refused}; "
                          "on a busy machine expect dropouts", file=out, flush=True)
                    warned = True
                if time.monotonic() >= next_report:
                    print(self.report(), file=out, flush=True)
                    next_report += report_every_s
        except KeyboardInterrupt:
            print("stopping (Ctrl-C)", file=out, flush=True)
