"""Fingerprint the engine's and resynthesis's output, to prove a refactor changes no sample.

Plays both shipped presets through the public API (``audiosym.load_preset``, ``audiosym.Engine``)
in transfer and synth mode, with both dynamics, at three block sizes, and runs the ``audiosym
resynth`` command on several of its paths (stored match, MIDI melody, the input's own notes,
streamed pitch, transposition, a reference timbre). Every output's float32 bytes are hashed.

    python benchmarks/bit_identity.py --save benchmarks/results/bit_identity.json   # before
    python benchmarks/bit_identity.py --check benchmarks/results/bit_identity.json  # after

``--check`` prints one JSON object (``identical``: true/false, the cases that differ) and exits
1 on any difference. Inputs are synthesised here from a fixed seed, so the run needs nothing
but the shipped presets.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf

SAMPLE_RATE = 48000
BLOCK_SIZES = (64, 129, 8193)
PRESETS = ("sps-default", "v3-default")
#: (start s, end s, MIDI note) of the test melody; the input audio plays the same notes a
#: major third lower, so MIDI-driven and input-driven pitch differ.
MELODY = [(0.10, 0.55, 62), (0.60, 1.05, 65), (1.05, 1.60, 69), (1.80, 2.40, 67), (2.45, 3.20, 60)]


def input_signal(seed: int = 0) -> np.ndarray:
    """A bowed-string-like test input: sawtooth notes with vibrato, attacks, a little noise."""
    rng = np.random.default_rng(seed)
    n = int(3.5 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    y = np.zeros(n)
    for start, end, note in MELODY:
        i0, i1 = int(start * SAMPLE_RATE), int(end * SAMPLE_RATE)
        tt = t[i0:i1] - start
        f0 = 440.0 * 2 ** ((note - 4 - 69) / 12) * (1 + 0.004 * np.sin(2 * np.pi * 5.5 * tt))
        phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
        tone = sum(np.sin(k * phase) / k for k in range(1, 12))
        env = np.minimum(tt / 0.02, 1.0) * np.minimum((end - start - tt) / 0.05, 1.0)
        y[i0:i1] += 0.15 * tone * env
    y += 0.002 * rng.standard_normal(n)
    return y.astype(np.float32)


def midi_events() -> list[tuple[int, int, int, int]]:
    """The melody as engine events (offsets from the signal start) with bend, CC1 and a program change."""
    ev: list[tuple[int, int, int, int]] = []
    for start, end, note in MELODY:
        ev.append((int(start * SAMPLE_RATE), 0x90, note, 100))
        ev.append((int(end * SAMPLE_RATE), 0x80, note, 0))
    ev.append((int(0.3 * SAMPLE_RATE), 0xE0, 0, 80))  # bend up
    ev.append((int(0.5 * SAMPLE_RATE), 0xE0, 0, 64))
    ev.append((int(1.2 * SAMPLE_RATE), 0xB0, 1, 90))  # morph
    ev.append((int(2.0 * SAMPLE_RATE), 0xB0, 1, 0))
    return sorted(ev)


def digest(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x, dtype=np.float32).tobytes()).hexdigest()[:16]


def engine_cases() -> dict[str, str]:
    from audiosym import Engine, load_preset

    y = input_signal()
    events = midi_events()
    out: dict[str, str] = {}
    for name in PRESETS:
        preset = load_preset(name, device="cpu")
        names = preset.timbre_names
        timbre, morph = names[0], names[-1]
        for mode in ("transfer", "synth"):
            for dynamics in ("input", "timbre"):
                engine = Engine(preset, timbre=timbre, morph_timbre=morph, sample_rate=SAMPLE_RATE,
                                mode=mode, dynamics=dynamics)
                for block in BLOCK_SIZES:
                    engine.reset()
                    chunks = []
                    for start in range(0, len(y), block):
                        stop = min(start + block, len(y))
                        ev = [(o - start, *d) for o, *d in events if start <= o < stop]
                        chunks.append(engine.process(y[start:stop] if mode == "transfer" else stop - start, ev))
                    out[f"engine/{name}/{mode}/{dynamics}/block{block}"] = digest(np.concatenate(chunks))
        print(f"engine {name}: done", file=sys.stderr)
    return out


def resynth_cases(tmp: Path) -> dict[str, str]:
    y = input_signal()
    wav = tmp / "take.wav"
    sf.write(wav, y, SAMPLE_RATE, subtype="FLOAT")
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=40)
    inst.notes = [pretty_midi.Note(velocity=100, pitch=p, start=s, end=e) for s, e, p in MELODY]
    pm.instruments.append(inst)
    mid = tmp / "melody.mid"
    pm.write(str(mid))
    variants = {
        "default": [],
        "midi": ["--midi", str(mid)],
        "midi-input-dynamics-nomatch": ["--midi", str(mid), "--dynamics", "input", "--no-match"],
        "stream": ["--input-pitch", "stream"],
        "transpose": ["--transpose", "-3"],
        "timbre-from": ["--timbre-from", str(wav), "--timbre-from-midi", str(mid)],
    }
    out: dict[str, str] = {}
    for name in PRESETS:
        for label, extra in variants.items():
            dest = tmp / f"{name}-{label}"
            timbre = [] if label == "timbre-from" else ["--timbre", _first_timbre(name)]
            cmd = [sys.executable, "-m", "audiosym", "resynth", str(wav), "--out", str(dest), "--preset", name,
                   *timbre, *extra, "--no-progress"]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            (output,) = dest.glob("take*.wav")  # take.<preset>.<timbre>.wav (issue #16), take.wav before
            data, _ = sf.read(output, dtype="float32")
            out[f"resynth/{name}/{label}"] = digest(data)
        print(f"resynth {name}: done", file=sys.stderr)
    return out


def _first_timbre(name: str) -> str:
    from audiosym import load_preset

    return load_preset(name, device="cpu").timbre_names[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", metavar="FILE.json", help="write the fingerprints here")
    group.add_argument("--check", metavar="FILE.json", help="compare with fingerprints saved earlier")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cases = {**engine_cases(), **resynth_cases(Path(tmp))}
    if args.save:
        Path(args.save).parent.mkdir(parents=True, exist_ok=True)
        Path(args.save).write_text(json.dumps(cases, indent=1, sort_keys=True) + "\n")
        print(json.dumps({"saved": args.save, "cases": len(cases)}))
        return 0
    want = json.loads(Path(args.check).read_text())
    differ = sorted(k for k in want if cases.get(k) != want[k])
    missing = sorted(set(want) - set(cases))
    print(json.dumps({"identical": not differ, "cases": len(want), "differ": differ, "missing": missing}))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
