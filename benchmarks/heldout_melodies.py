"""Held-out check of timbre transfer on public melodies (issue #13): the first 24 notes of Bach
chorale soprano lines and Essen folk songs from music21's corpus, which nothing in audiosym was
tuned on. One JSON object on stdout.

Each melody (one beat = ``--beat-s`` seconds, 0.5 by default) is rendered from the held-out
soundfont as instrument A and as instrument B at ``--sample-rate`` (44.1 kHz); A is re-timbred
to the preset's B with the melody as MIDI (the ``audiosym resynth --midi`` default path) and
scored as in benchmarks/transfer.py: MR-STFT distance to B's render over the input's, and the
energy above 8 kHz during the notes. A target the preset lacks is played by its stand-in
(benchmarks/transfer.py ``STAND_INS``).

music21 is not a dependency of audiosym; install it anywhere (``pip install --target DIR
music21``) and point ``--music21 DIR`` at it, or pass ``--melodies FILE.json`` written by an
earlier run's ``--save-melodies``.

    python benchmarks/heldout_melodies.py --preset sps-default --music21 /tmp/m21lib > heldout.json
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transfer import GM_PROGRAMS, high_band_db, log, mrstft, render, resolve_pairs  # noqa: E402

from audiosym.data.soundfonts import find_soundfont  # noqa: E402
from audiosym.io.midifile import MelodyNote  # noqa: E402
from audiosym.offline.render import resynthesize  # noqa: E402
from audiosym.preset.session import load_preset  # noqa: E402

PAIRS = "violin:flute,flute:clarinet,oboe:trumpet,harpsichord:violin,harpsichord:oboe"
CHORALES = ("bach/bwv66.6", "bach/bwv269", "bach/bwv347", "bach/bwv153.1")
N_NOTES = 24


def music21_melodies(where: str | None) -> list[dict]:
    """``[{name, notes: [(onset_beats, beats, midi)]}]``: chorale soprano lines and the songs of
    the first Essen folk song file in music21's corpus, their first N_NOTES notes."""
    if where:
        sys.path.insert(0, where)
    from music21 import corpus

    out = []
    for name in CHORALES:
        notes = [n for n in corpus.parse(name).parts[0].flatten().notes if n.isNote][:N_NOTES]
        out.append({"name": name, "notes": [(float(n.offset), float(n.quarterLength), int(n.pitch.midi)) for n in notes]})
    folk = sorted(p for p in corpus.getPaths() if "essenFolksong" in str(p))[0]
    for k, score in enumerate(corpus.parse(folk).scores[:4]):
        notes = [n for n in score.flatten().notes if n.isNote][:N_NOTES]
        out.append({"name": f"essen/{Path(folk).name}#{k}",
                    "notes": [(float(n.offset), float(n.quarterLength), int(n.pitch.midi)) for n in notes]})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="sps-default")
    ap.add_argument("--soundfont", default="MuseScore_General", help="held-out soundfont (name or path)")
    ap.add_argument("--pairs", default=PAIRS, help=f"SOURCE:TARGET GM timbre names (default: {PAIRS})")
    ap.add_argument("--sample-rate", type=int, default=44100)
    ap.add_argument("--beat-s", type=float, default=0.5, help="seconds per beat (quarter note)")
    ap.add_argument("--music21", default=None, metavar="DIR", help="where music21 is installed, if not importable")
    ap.add_argument("--melodies", default=None, metavar="JSON", help="melodies saved by --save-melodies")
    ap.add_argument("--save-melodies", default=None, metavar="JSON")
    args = ap.parse_args(argv)

    melodies = json.loads(Path(args.melodies).read_text()) if args.melodies else music21_melodies(args.music21)
    if args.save_melodies:
        Path(args.save_melodies).write_text(json.dumps(melodies))
    preset = load_preset(args.preset, device="cpu", intra_op_threads=1).with_stored_match()
    pairs, stand_ins, skipped = resolve_pairs(args.pairs, preset)
    sf_path = find_soundfont(args.soundfont)
    sr = args.sample_rate
    lo, hi = preset.midi_range
    per_pair = {}
    for a, b in pairs:
        program_b = int(preset.metadata["timbres"][b]["program"])
        ratios, gaps = [], []
        for mel in melodies:
            beat = args.beat_s
            notes = [MelodyNote(o * beat, o * beat + d * beat * 0.95, int(np.clip(p, lo, hi)), 96)
                     for o, d, p in mel["notes"]]
            ya, yb = render(sf_path, GM_PROGRAMS[a], notes, sr), render(sf_path, program_b, notes, sr)
            out, _ = resynthesize(preset, ya, sample_rate=sr, timbre=b, notes=notes)
            ratios.append(mrstft(out, yb) / mrstft(ya, yb))
            gaps.append(high_band_db(out, sr, notes) - high_band_db(yb, sr, notes))
        per_pair[f"{a}->{b}"] = {"mrstft_ratio": float(np.mean(ratios)), "mrstft_ratio_worst_melody": float(max(ratios)),
                                 "high_band_db_gap_sustain": float(np.mean(gaps))}
        log(f"{a:>12s} -> {b:<12s} ratio {per_pair[f'{a}->{b}']['mrstft_ratio']:.3f}")
    ratios = [v["mrstft_ratio"] for v in per_pair.values()]
    json.dump({
        "preset": preset.name, "soundfont": os.path.basename(sf_path), "sample_rate": sr,
        "melodies": [m["name"] for m in melodies], "stand_ins": stand_ins, "pairs_skipped": skipped,
        "mrstft_ratio_vs_input": float(np.mean(ratios)), "mrstft_ratio_worst_pair": float(max(ratios)),
        "per_pair": per_pair,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "command": "python benchmarks/heldout_melodies.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
