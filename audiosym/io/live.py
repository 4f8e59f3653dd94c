"""Live I/O: a sounddevice stream and a python-rtmidi input driving an :class:`audiosym.engine.engine.Engine`.

``with LiveSession(engine, midi_port="Keystation", block_size=128) as live: live.wait()``.

The audio callback only drains the MIDI queue, calls ``engine.process`` and copies the block
out. MIDI messages are stamped on arrival (rtmidi's thread) and placed in the next block at the
offset that keeps their spacing (a constant one-block delay, no jitter); a message older than
two blocks is *late*: it is still applied (at offset 0) and counted. Stream status flags
(input overflow, output underflow: xruns) are counted, never hidden; ``stats`` holds the counts,
``report()`` formats them. sounddevice is imported when a session opens, not with this module
(it binds to a JACK server at import time, and ``import audiosym`` must stay light).
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from audiosym.errors import DeviceError, ParameterError


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_audio_devices() -> str:
    """The audio devices sounddevice sees, as text (``audiosym live --list-devices``)."""
    import sounddevice as sd

    return str(sd.query_devices())


def _midi_api(name: str | None) -> int:
    import rtmidi

    apis = {"jack": rtmidi.API_UNIX_JACK, "alsa": rtmidi.API_LINUX_ALSA,
            "coremidi": rtmidi.API_MACOSX_CORE, "winmm": rtmidi.API_WINDOWS_MM}
    if name is None:
        return rtmidi.API_UNSPECIFIED
    if name not in apis:
        raise ParameterError(f"midi_api={name!r} is not one of {sorted(apis)}")
    return apis[name]


def list_midi_ports(api: str | None = None) -> list[str]:
    """MIDI input ports (``audiosym live --list-midi``); empty when none or no MIDI system."""
    import rtmidi

    try:
        midi_in = rtmidi.MidiIn(rtapi=_midi_api(api))
    except rtmidi.SystemError:
        return []
    try:
        return list(midi_in.get_ports())
    finally:
        midi_in.delete()


def _pick_port(ports: list[str], want: str | int) -> int:
    if isinstance(want, int) or str(want).isdigit():
        i = int(want)
        if 0 <= i < len(ports):
            return i
    else:
        hits = [i for i, p in enumerate(ports) if str(want).lower() in p.lower()]
        if hits:
            return hits[0]
    shown = "\n".join(f"  {i}: {p}" for i, p in enumerate(ports)) or "  (none)"
    raise DeviceError(f"MIDI input port {want!r} not found; available ports:\n{shown}\n"
                      "pass --midi-port with a number or part of a name from this list")


class LiveSession:
    """Run ``engine`` on an audio device, fed by a MIDI input port; a context manager.

    ``midi_port``: index or part of a port name (None: no MIDI); ``input_device`` /
    ``output_device``: sounddevice device index or name (None: the default); ``block_size``
    in samples at ``engine.sample_rate``; ``midi_api``: 'jack', 'alsa', ... (None: rtmidi's default).
    """

    def __init__(self, engine: Any, *, midi_port: str | int | None = None, input_device: Any = None,
                 output_device: Any = None, block_size: int = 128, midi_api: str | None = None,
                 output_channels: int | None = None) -> None:
        if not isinstance(block_size, int) or not 1 <= block_size <= 8192:
            raise ParameterError(f"block_size={block_size!r} must be an integer in 1..8192 samples")
        self.engine, self.block_size = engine, block_size
        self.midi_port, self.midi_api = midi_port, midi_api
        self.input_device, self.output_device = input_device, output_device
        self.output_channels = output_channels
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
        import rtmidi

        try:
            midi_in = rtmidi.MidiIn(rtapi=_midi_api(self.midi_api), name="audiosym")
        except rtmidi.SystemError as exc:
            raise DeviceError(f"no MIDI system available ({exc}); run without --midi-port or start one") from None
        ports = midi_in.get_ports()
        try:
            index = _pick_port(ports, self.midi_port)
        except DeviceError:
            midi_in.delete()
            raise
        midi_in.ignore_types(sysex=True, timing=True, active_sense=True)
        midi_in.set_callback(self._on_midi)
        midi_in.open_port(index, "midi_in")
        self._midi_in, self.port_name = midi_in, ports[index]

    def _open_audio(self) -> None:
        import sounddevice as sd

        sr, transfer = self.engine.sample_rate, self.engine.mode == "transfer"
        try:
            out_info = sd.query_devices(self.output_device, "output")
            in_info = sd.query_devices(self.input_device, "input") if transfer else None
        except (ValueError, sd.PortAudioError) as exc:
            raise DeviceError(f"audio device not found ({exc}); available devices:\n{sd.query_devices()}\n"
                              "pass --input/--output with a number or part of a name from this list") from None
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
        return (f"[{self.elapsed_s:7.1f} s] blocks {s.blocks}  xruns {s.xruns} (in overflow {s.input_overflows}, "
                f"out underflow {s.output_underflows})  midi {s.midi_messages} (late {s.late_midi})  "
                f"max callback {s.max_callback_ms:.2f} ms  errors {s.callback_errors}")

    def wait(self, *, seconds: float | None = None, report_every_s: float = 5.0, out=sys.stderr) -> None:
        """Block until ``seconds`` pass (None: until Ctrl-C), printing ``report()`` periodically."""
        end = None if seconds is None else time.monotonic() + seconds
        next_report = time.monotonic() + report_every_s
        try:
            while end is None or time.monotonic() < end:
                time.sleep(0.05 if end is None else max(0.0, min(0.05, end - time.monotonic())))
                if time.monotonic() >= next_report:
                    print(self.report(), file=out, flush=True)
                    next_report += report_every_s
        except KeyboardInterrupt:
            print("stopping (Ctrl-C)", file=out, flush=True)
