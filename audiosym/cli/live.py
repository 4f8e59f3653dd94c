"""``audiosym live``: play a preset from a MIDI keyboard (and re-timbre live audio) in real time."""

from __future__ import annotations

import argparse
import json
import sys

from audiosym.cli._common import (
    add_dynamics_argument,
    add_timbre_arguments,
    check_timbre_from,
    cli_message,
)
from audiosym.dsp.pitch import midi_name
from audiosym.engine.control import DEFAULT_PITCH_FOLLOW, PITCH_FOLLOW
from audiosym.engine.voices import DEFAULT_VOICES, MAX_VOICES
from audiosym.errors import AudiosymError, ParameterError

HELP = """\
Play a preset live. MIDI chooses the pitch (pitch bend, velocity, CC1 morph to --morph-timbre,
program change to the timbre with that GM program, CC120/123 panic), the preset chooses the
timbre: one of its named timbres (--timbre), or one measured from a recording (--timbre-from
REF.wav, optionally with its melody --timbre-from-midi REF.mid; CC1 can morph it towards a named
--morph-timbre).

  --mode transfer   audio in -> out: the input's loudness drives the output, MIDI the pitch
                    (with no note held the input's own pitch passes through, re-timbred)
  --mode synth      MIDI only: velocity x ADSR drives the loudness; polyphonic, --voices N
                    notes at once (default 8; a new note takes a free voice, else the oldest
                    released, else the oldest held), sustain pedal (CC64), bend per channel;
                    --voices 1: monophonic, last-note priority (legato)

Transfer mode is monophonic (last-note priority): the input is one voice.

Notes outside the preset's playable range (printed at start; `audiosym presets inspect P`) are
played in the nearest octave inside it and counted (printed at exit, "folded_notes" in --json);
MIDI it does not play (sysex, clock, pressure, other controllers, malformed bytes) is ignored and
counted ("ignored_midi_messages").
Xruns (blocks the sound card needed and did not get in time: clicks) and late MIDI are counted
and printed every few seconds and at exit; Ctrl-C stops. A missing device or MIDI port is an
error that lists what exists (--list-devices, --list-midi). Audio goes through PortAudio: JACK,
PipeWire (run under `pw-jack`) or ALSA/PulseAudio. Words: docs/musicians.md.
"""

EXAMPLES = """\
examples:
  audiosym live --list-devices --list-midi                   # what audio and MIDI you have
  audiosym live --preset sps-default --timbre flute --midi-port 0 --mode synth   # keyboard only
  audiosym live --preset sps-default --timbre church_organ --midi-port 0 --mode synth --voices 16
  audiosym live --preset sps-default --timbre cello --midi-port 0 --input 2 --output 2
  audiosym live --preset v3-default --timbre trumpet --morph-timbre clarinet --midi-port Keystation
  audiosym live --preset sps-default --timbre-from my-cello.wav --mode synth --midi-port 0
  pw-jack audiosym live --preset sps-default --timbre violin --midi-api jack --midi-port 0
  audiosym live --preset sps-default --mode synth --seconds 10 --json   # timed; counters as JSON
"""


def _port(value: str) -> str | int:
    return int(value) if value.isdigit() else value


def _device(value: str | None):
    return int(value) if value is not None and value.isdigit() else value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("live", help="play a preset live from MIDI (and audio in)", description=HELP, epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", help="preset file, or the name of a shipped or installed preset (audiosym presets list)")
    add_timbre_arguments(p, timbre_help="named timbre of the preset (default: the preset's default)",
                         use="play (measured once, before the audio starts)")
    p.add_argument("--morph-timbre", default=None, help="timbre that CC1 (mod wheel) morphs towards")
    p.add_argument("--midi-port", type=_port, default=None, help="MIDI input port: index or part of its name")
    p.add_argument("--midi-api", default=None, choices=["jack", "alsa", "coremidi", "winmm"],
                   help="MIDI system (default: rtmidi's choice)")
    p.add_argument("--input", default=None, help="audio input device (index or part of its name)")
    p.add_argument("--output", default=None, help="audio output device (index or part of its name)")
    p.add_argument("--sample-rate", type=int, default=None, help="device rate in Hz (default: the output device's)")
    p.add_argument("--block", type=int, default=128, help="block size in samples (default 128 = 2.7 ms at 48 kHz)")
    p.add_argument("--mode", choices=["transfer", "synth"], default="transfer",
                   help="'transfer' (default): audio in is re-timbred, its loudness drives the output and MIDI "
                        "the pitch; 'synth': MIDI only, the note's velocity and an ADSR envelope set the loudness")
    p.add_argument("--voices", type=int, default=None, metavar="N",
                   help=f"synth mode: notes that sound at once (default {DEFAULT_VOICES}; 1: monophonic, legato); "
                        "transfer mode is monophonic")
    add_dynamics_argument(p, prefix="transfer mode, while a MIDI note is held: ",
                          timbre="plays the timbre's stored note envelope at the input's level (a piano decays, "
                                 "an organ holds)", input="follows the input")
    p.add_argument("--pitch-follow", choices=list(PITCH_FOLLOW), default=DEFAULT_PITCH_FOLLOW,
                   help="transfer mode with no MIDI note held, the input's own pitch: 'fast' (default) a short-window "
                        "estimate, a new note heard within ~25 ms, the encoder guarding its octave; 'encoder' the "
                        "encoder's pitch only, ~85 ms late, as before")
    p.add_argument("--no-match", dest="match", action="store_false",
                   help="play named timbres without the match correction stored in the preset")
    p.add_argument("--bend-range", type=float, default=2.0, help="pitch-bend range in semitones (default 2)")
    p.add_argument("--no-realtime", dest="realtime", action="store_false",
                   help="leave the audio thread at the ordinary priority (default: real-time scheduling where the "
                        "system allows it, so other programs cannot delay a block; the status line says 'rt')")
    p.add_argument("--seconds", type=float, default=None, help="stop after this many seconds (default: run until Ctrl-C)")
    p.add_argument("--report-every", type=float, default=5.0, help="seconds between status lines (default 5)")
    p.add_argument("--json", action="store_true", help="print the final counters (xruns, late MIDI ...) as one JSON object on stdout")
    p.add_argument("--list-devices", action="store_true",
                   help="list audio devices and exit (exit 1 when there are none, with how to get one on stderr)")
    p.add_argument("--list-midi", action="store_true",
                   help="list MIDI input ports and exit (exit 1 when there are none, with how to get one on stderr)")
    p.set_defaults(func=run)


def _list(args: argparse.Namespace) -> int:
    """``--list-devices`` / ``--list-midi``: the list on stdout, exit 0; when there is nothing to
    list, what to do on stderr and exit 1 (as grep: 1 = found nothing, 2 = an error)."""
    # lazy: keeps `audiosym --help` from importing the engine and its numba/onnxruntime start-up
    from audiosym.io import live

    found = True
    if args.list_devices:
        devices = live.list_audio_devices()
        if devices:
            print(devices)
        else:
            print(cli_message(live.NO_AUDIO_DEVICES, args.command_parser), file=sys.stderr)
            found = False
    if args.list_midi:
        ports, why = live.list_midi_ports(args.midi_api)
        if ports:
            print("\n".join(f"{i}: {p}" for i, p in enumerate(ports)))
        else:
            print(cli_message(live.no_midi_ports_message(why), args.command_parser), file=sys.stderr)
            found = False
    return 0 if found else 1


def voice_count(args: argparse.Namespace) -> int:
    """``--voices`` checked: synth mode's bank size (default ``DEFAULT_VOICES``); transfer mode: 1."""
    if args.voices is not None and not 1 <= args.voices <= MAX_VOICES:
        raise ParameterError(f"--voices {args.voices} must be from 1 to {MAX_VOICES}")
    if args.mode != "synth":
        if args.voices not in (None, 1):
            print(f"note: --voices {args.voices} applies to --mode synth; transfer mode is monophonic (its "
                  "input is one voice)", file=sys.stderr)
        return 1
    return DEFAULT_VOICES if args.voices is None else args.voices


def run(args: argparse.Namespace) -> int:
    # lazy: keeps `audiosym --help` from importing the engine and its numba/onnxruntime start-up
    from audiosym.io.live import (
        LiveSession,
        import_sounddevice,
        require_audio_devices,
        require_midi_port,
    )

    if args.list_devices or args.list_midi:
        return _list(args)
    if not args.preset:
        raise ParameterError("--preset is required (a .asym file, or a shipped or installed preset name; see `audiosym presets list`)")
    # lazy: keeps `audiosym --help` from importing the engine and its numba/onnxruntime start-up
    from audiosym.engine.engine import Engine
    from audiosym.preset.session import load_preset

    check_timbre_from(args)
    voices = voice_count(args)
    preset = load_preset(args.preset, device="cpu", intra_op_threads=1)
    if args.match:
        preset = preset.with_stored_match()
    if args.timbre_from:  # measured before any device opens
        # lazy: keeps `audiosym --help` from importing the engine and its numba/onnxruntime start-up
        from audiosym.io.midifile import load_track_notes
        from audiosym.timbre.reference import measure_reference, reference_name

        name = args.timbre or reference_name(args.timbre_from)
        print(f"measuring the timbre of {args.timbre_from} ...", file=sys.stderr, flush=True)
        try:
            notes = load_track_notes(args.timbre_from_midi) if args.timbre_from_midi else None
        except AudiosymError as exc:
            raise ParameterError(f"--timbre-from {args.timbre_from}: {exc}") from None
        preset = preset.with_references([measure_reference(preset, args.timbre_from, name=name, notes=notes)])
        timbre = name
    else:
        timbre = args.timbre or preset.default_timbre
    sd = import_sounddevice()  # PortAudio's start-up messages (ALSA, JACK) captured
    require_audio_devices()  # the arguments checked, before the engine compiles (seconds on a first run)
    if args.midi_port is not None:
        require_midi_port(args.midi_port, args.midi_api)
    rate = args.sample_rate
    if rate is None:
        try:
            rate = int(sd.query_devices(_device(args.output), "output")["default_samplerate"])
        except (ValueError, sd.PortAudioError):
            rate = 48000  # the session reports the missing device with the list of devices
    # lazy: keeps `audiosym --help` from importing the engine's numba kernels
    from audiosym.engine.first_run import announce_first_run

    announce_first_run(sys.stderr)  # the engine compiles numba kernels on a first run: say so, not silence
    engine = Engine(preset, timbre=timbre, sample_rate=rate, block_size=args.block, mode=args.mode,
                    bend_range_semitones=args.bend_range, morph_timbre=args.morph_timbre, dynamics=args.dynamics, voices=voices,
                    pitch_follow=args.pitch_follow)
    session = LiveSession(engine, midi_port=args.midi_port, midi_api=args.midi_api,
                          input_device=_device(args.input), output_device=_device(args.output),
                          block_size=args.block, realtime=args.realtime)
    lo, hi = preset.midi_range
    playable = f"{midi_name(lo)} .. {midi_name(hi)} (MIDI {lo} .. {hi})"
    with session:
        mode = f"synth mode, {voices} voice{'s' if voices > 1 else ''}" if args.mode == "synth" else "transfer mode"
        print(f"audiosym live: {preset.name} / {timbre}, {mode}, {rate} Hz, block {args.block} "
              f"({1000 * args.block / rate:.2f} ms), MIDI: {session.port_name or 'none'}, playable range {playable}; "
              "Ctrl-C stops", file=sys.stderr, flush=True)
        session.wait(seconds=args.seconds, report_every_s=args.report_every)
    print(session.report(), file=sys.stderr, flush=True)
    folded = engine.folded_notes
    if folded:
        noun, were = ("note", "was") if folded == 1 else ("notes", "were")
        print(f"warning: {folded} {noun} outside the playable range of {preset.name}, {playable}, {were} played "
              "in the nearest octave inside it; play within the range (or shift your keyboard's octave), or use "
              "a preset whose range covers them", file=sys.stderr, flush=True)
    if engine.ignored_messages:
        print(f"note: {engine.ignored_messages} MIDI messages were not notes, bends, programs or the controllers "
              "audiosym plays (sysex, clock, pressure, other controllers, malformed bytes) and were ignored",
              file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps({**session.stats.as_dict(), "folded_notes": folded, "ignored_midi_messages":
                          engine.ignored_messages, "sample_rate": rate,
                          "block_size": args.block, "midi_port": session.port_name}))
    return 0
