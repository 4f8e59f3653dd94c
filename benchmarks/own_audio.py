"""Presets from a musician's own recordings (issue #14), end to end. One JSON object on stdout.

1. **Stand-in recordings** (``WORK/recordings``): one folder per timbre, each holding
   ``--minutes`` of monophonic *melodies* (phrases in a key: steps and leaps, varied rhythms,
   legato/detached/staccato, rests; never scales) in ``--files`` files, rendered by tinysoundfont
   from FluidR3_GM and written as 44.1 kHz FLAC: violin, flute, trumpet, clarinet. One violin
   file is written at 48 kHz stereo instead. A fifth timbre, ``voice``, is sung by espeak-ng
   (``en+f3``; one syllable per note, its pitch from ``-p``; 22.05 kHz, espeak's own rate).
   The training code only ever reads these files through ``--audio``.
2. **Train** ``audiosym train sps|v3 --audio WORK/recordings --holdout 0.2`` (config ``tiny``,
   one thread), **export** each run to a preset (match data measured on the recordings).
3. **Evaluate** on *other* melodies by *another* renderer (``WORK/heldout``): the same timbres
   from MuseScore_General, and the voice as ``en+f4`` with other syllables (``--eval-minutes``
   each), with ``audiosym eval sps|v3 PRESET --audio WORK/heldout --json`` (pyin reference).
4. **Transfer** into each learned instrument timbre: another instrument plays a seeded 8-note
   melody (benchmarks/transfer.py's), rendered from MuseScore_General at 44.1 kHz; re-timbred
   with ``--midi`` (the preset's default path: stored match, timbre dynamics) and compared with
   the target instrument's MuseScore render of the same melody: MR-STFT ratio to the input's
   distance, energy above 8 kHz, and a logistic-regression timbre classifier trained on
   MuseScore renders of 24 other melodies per timbre (benchmarks/transfer.py). The voice has no
   ground truth to compare with (espeak cannot sing a given melody), so it has no transfer row.

Targets (issue #14): SPS ``r2_mean`` >= 0.97 with <= 10 minutes of training; V3
``one_to_one_accuracy`` >= 0.85 and ``zero_shot_one_to_one_accuracy`` >= 0.80; transfer MR-STFT
ratio <= 0.70 and classifier >= 0.80. Steps already done are reused (delete WORK to redo them).

    python benchmarks/own_audio.py --work runs/own-audio --plot own-audio.png > own-audio.json
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transfer import (  # noqa: E402
    LogisticClassifier,
    high_band_db,
    log,
    melody,
    mrstft,
    render,
    spectrogram_plot,
    timbre_features,
)

from audiosym.data.soundfonts import find_soundfont, render_melody  # noqa: E402
from audiosym.offline.render import resynthesize  # noqa: E402
from audiosym.preset.session import load_preset  # noqa: E402

INSTRUMENTS = {"violin": (40, 55, 84), "flute": (73, 60, 86), "trumpet": (56, 55, 80), "clarinet": (71, 52, 82)}
SOURCES = {"violin": "flute", "flute": "violin", "trumpet": "oboe", "clarinet": "violin"}  # transfer: who plays it
SOURCE_PROGRAMS = {"flute": 73, "violin": 40, "oboe": 68}
VOICE_TRAIN, VOICE_HELDOUT = ("en+f3", ("la", "da", "na", "lu")), ("en+f4", ("ma", "no", "li", "ta"))
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10), "dorian": (0, 2, 3, 5, 7, 9, 10)}
RATE, STEREO_RATE = 44100, 48000
TRANSFER_RANGE = (55, 79)  # test melodies: inside every instrument's range and the voice-free part of the model's


def phrase_melody(rng: np.random.Generator, lo: int, hi: int, seconds: float) -> list[tuple[float, float, int, int]]:
    """``(onset_s, duration_s, midi, velocity)``: phrases of 5-14 notes in a random key and mode,
    moving by scale steps (mostly), thirds and the odd leap, turning at the range's ends; beats of
    0.5-2 (tempo 80-150 per phrase), legato, detached or staccato; a rest after each phrase."""
    notes: list[tuple[float, float, int, int]] = []
    t = 0.2
    while t < seconds - 2.0:
        tonic, scale = int(rng.integers(0, 12)), SCALES[str(rng.choice(list(SCALES)))]
        pitches = [p for p in range(lo, hi + 1) if (p - tonic) % 12 in scale]
        i = int(rng.integers(len(pitches) // 4, 3 * len(pitches) // 4 + 1))
        beat = 60.0 / float(rng.uniform(80, 150))
        art = float(rng.choice([1.0, 0.85, 0.55], p=[0.4, 0.4, 0.2]))
        base_vel = int(rng.integers(70, 115))
        for _ in range(int(rng.integers(5, 15))):
            ioi = beat * float(rng.choice([0.5, 1.0, 1.0, 1.5, 2.0]))
            vel = int(np.clip(base_vel + rng.integers(-12, 13), 40, 127))
            notes.append((t, ioi * art, pitches[i], vel))
            t += ioi
            step = int(rng.choice([-1, 1, -2, 2, -1, 1, 3, -3, 4, -4, 0], p=[.2, .2, .1, .1, .1, .1, .04, .04, .03, .03, .06]))
            i = i - step if not 0 <= i + step < len(pitches) else i + step
        t += float(rng.uniform(0.4, 1.2))
    return notes


def write_instrument(folder: Path, sf_path: str, program: int, lo: int, hi: int, *, minutes: float, files: int,
                     seed: int, stereo_48k_first: bool = False) -> list[dict]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for k in range(files):
        rate = STEREO_RATE if (stereo_48k_first and k == 0) else RATE
        notes = phrase_melody(rng, lo, hi, 60.0 * minutes / files)
        y = render_melody(sf_path, program, notes, sample_rate=rate, tail_seconds=0.5)
        y = (y / max(float(np.abs(y).max()), 1e-9) * float(rng.uniform(0.3, 0.8))).astype(np.float32)
        data = np.stack([y, 0.7 * y + 0.01 * rng.standard_normal(len(y)).astype(np.float32)], axis=1) \
            if rate == STEREO_RATE else y
        path = folder / f"take{k:02d}.flac"
        sf.write(str(path), data, rate)
        out.append({"file": path.name, "sample_rate": rate, "channels": 1 if data.ndim == 1 else 2,
                    "seconds": round(len(y) / rate, 1), "notes": len(notes)})
    return out


def sing(syllable: str, voice: str, pitch: int, speed: int) -> tuple[np.ndarray, int]:
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", f.name, syllable],
                       check=True, capture_output=True)
        y, sr = sf.read(f.name, dtype="float32")
    return y, sr


def write_voice(folder: Path, voice: str, syllables: tuple[str, ...], *, minutes: float, files: int,
                seed: int) -> list[dict]:
    """espeak-ng sings: per note one syllable at ``-p`` 0..99 (about 16 semitones for en+f3),
    moving by small steps like a melody, at speeds 110-220 words per minute; phrases and rests."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for k in range(files):
        parts, sr, total, n = [], 22050, 0.0, 0
        while total < 60.0 * minutes / files:
            p, speed = int(rng.integers(10, 90)), int(rng.integers(110, 220))
            for _ in range(int(rng.integers(4, 12))):
                y, sr = sing(str(rng.choice(syllables)), voice, p, speed)
                parts.append(y)
                total += len(y) / sr
                n += 1
                p = int(np.clip(p + rng.choice([-12, -6, 6, 12, -18, 18, 0]), 0, 99))
            gap = np.zeros(int(float(rng.uniform(0.3, 1.0)) * sr), np.float32)
            parts.append(gap)
            total += len(gap) / sr
        y = np.concatenate(parts)
        path = folder / f"take{k:02d}.flac"
        sf.write(str(path), y / max(float(np.abs(y).max()), 1e-9) * 0.6, sr)
        out.append({"file": path.name, "sample_rate": sr, "channels": 1, "seconds": round(len(y) / sr, 1),
                    "notes": n})
    return out


def build_folder(root: Path, soundfont: str, *, minutes: float, files: int, seed: int, voice: tuple,
                 stereo: bool) -> dict:
    if root.exists():
        log(f"{root}: exists, reused")
        return json.loads((root / "made.json").read_text())
    tmp = root.with_name(root.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    sf_path = find_soundfont(soundfont)
    made: dict = {"soundfont": Path(sf_path).name, "timbres": {}}
    for i, (name, (program, lo, hi)) in enumerate(INSTRUMENTS.items()):
        log(f"{root.name}: {name} ({minutes:g} min, {Path(sf_path).name} program {program})")
        made["timbres"][name] = write_instrument(tmp / name, sf_path, program, lo, hi, minutes=minutes, files=files,
                                                 seed=seed + i, stereo_48k_first=stereo and name == "violin")
    if voice and shutil.which("espeak-ng"):
        log(f"{root.name}: voice ({minutes:g} min, espeak-ng {voice[0]})")
        made["timbres"]["voice"] = write_voice(tmp / "voice", voice[0], voice[1], minutes=minutes, files=files,
                                               seed=seed + 99)
        made["voice"] = f"espeak-ng {voice[0]}"
    elif voice:
        made["voice"] = "left out: espeak-ng is not installed (apt-get install --no-install-recommends espeak-ng)"
    (tmp / "made.json").write_text(json.dumps(made))
    tmp.rename(root)
    return made


def audiosym(*args: str) -> tuple[float, str]:
    """Run ``python -m audiosym ARGS`` (one thread); ``(wall seconds, stdout)``; stderr passes through."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "audiosym", *args], check=True, stdout=subprocess.PIPE, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"})
    return time.perf_counter() - start, done.stdout


def transfer(preset_path: Path, sf_path: str, *, melodies: int, train_melodies: int, seed: int,
             plot: str | None) -> dict:
    """Transfer rows (see the module docstring) for every instrument timbre the preset names."""
    bare = load_preset(str(preset_path), device="cpu", intra_op_threads=1)
    preset = bare.with_stored_match()
    targets = [n for n in INSTRUMENTS if n in preset.timbre_names]
    lo, hi = TRANSFER_RANGE
    rng = np.random.default_rng(seed + 1000)
    feats, labels = [], []
    for n in targets:
        for _ in range(train_melodies):
            feats.append(timbre_features(render(sf_path, INSTRUMENTS[n][0], melody(rng, lo, hi), RATE), RATE))
            labels.append(n)
    clf = LogisticClassifier().fit(np.stack(feats), labels)
    rng = np.random.default_rng(seed)
    rows, panels = [], []
    for b in targets:
        a = SOURCES[b]
        for k in range(melodies):
            notes = melody(rng, lo, hi)
            ya, yb = render(sf_path, SOURCE_PROGRAMS[a], notes, RATE), render(sf_path, INSTRUMENTS[b][0], notes, RATE)
            out, _ = resynthesize(preset, ya, sample_rate=RATE, timbre=b, notes=notes, dynamics="timbre")
            n = min(len(out), len(yb))
            rows.append({"pair": f"{a}->{b}", "mrstft_ratio": mrstft(out[:n], yb[:n]) / mrstft(ya[:n], yb[:n]),
                         "classified_as": clf.predict(timbre_features(out, RATE)),
                         "input_classified_as": clf.predict(timbre_features(ya, RATE)),
                         "high_band_db": high_band_db(out, RATE, notes),
                         "high_band_db_target": high_band_db(yb, RATE, notes)})
            if k == 0:
                panels.append((f"{a}->{b}", ya, out, yb))
    if plot:
        spectrogram_plot(plot, panels, RATE)
    per_pair = {}
    for r in rows:
        d = per_pair.setdefault(r["pair"], {"mrstft_ratio": [], "correct": [], "high_band_gap_db": []})
        d["mrstft_ratio"].append(r["mrstft_ratio"])
        d["correct"].append(r["classified_as"] == r["pair"].split("->")[1])
        d["high_band_gap_db"].append(r["high_band_db"] - r["high_band_db_target"])
    per_pair = {k: {"mrstft_ratio": round(float(np.mean(v["mrstft_ratio"])), 4),
                    "timbre_accuracy": round(float(np.mean(v["correct"])), 3),
                    "high_band_gap_db": round(float(np.mean(v["high_band_gap_db"])), 2)} for k, v in per_pair.items()}
    return {"pairs": per_pair,
            "mrstft_ratio_mean": round(float(np.mean([r["mrstft_ratio"] for r in rows])), 4),
            "mrstft_ratio_worst_pair": max(v["mrstft_ratio"] for v in per_pair.values()),
            "timbre_accuracy": round(float(np.mean([r["classified_as"] == r["pair"].split("->")[1] for r in rows])), 3),
            "timbre_accuracy_input": round(float(np.mean([r["input_classified_as"] == r["pair"].split("->")[1]
                                                          for r in rows])), 3),
            "melodies_per_pair": melodies, "classifier_melodies_per_timbre": train_melodies,
            "band_extension_timbres": (bare.metadata.get("match") or {}).get("band_extension", {}).get("timbres", [])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True, help="folder for the recordings, runs and presets (steps done are reused)")
    ap.add_argument("--minutes", type=float, default=5.0, help="minutes of training recordings per timbre")
    ap.add_argument("--files", type=int, default=5, help="files per timbre (the split holds out 1 in 5)")
    ap.add_argument("--eval-minutes", type=float, default=1.5, help="minutes of held-out recordings per timbre")
    ap.add_argument("--methods", default="sps,v3")
    ap.add_argument("--set", action="append", default=[], metavar="METHOD:KEY=VALUE",
                    help="a training override for one method, e.g. v3:steps=2000")
    ap.add_argument("--no-voice", dest="voice", action="store_false", help="leave the espeak-ng voice out")
    ap.add_argument("--melodies", type=int, default=3, help="transfer: test melodies per pair")
    ap.add_argument("--train-melodies", type=int, default=24, help="transfer: classifier melodies per timbre")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", default=None, metavar="PNG",
                    help="spectrograms (input, output, target) of each transfer pair; METHOD is added to the name")
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    recs, held = work / "recordings", work / "heldout"
    made = build_folder(recs, "FluidR3_GM", minutes=args.minutes, files=args.files, seed=args.seed,
                        voice=VOICE_TRAIN if args.voice else (), stereo=True)
    made_held = build_folder(held, "MuseScore_General", minutes=args.eval_minutes, files=1, seed=args.seed + 500,
                             voice=VOICE_HELDOUT if args.voice else (), stereo=False)
    result: dict = {"benchmark": "own_audio", "started": started, "machine": f"{platform.machine()}, "
                    f"{os.cpu_count()} CPU cores", "recordings": made, "heldout": made_held}
    for method in [m for m in args.methods.split(",") if m]:
        run, preset = work / f"{method}-run", work / f"{method}.asym"
        sets = [x.split(":", 1)[1] for x in args.set if x.startswith(method + ":")]
        if not (run / "summary.json").exists():
            shutil.rmtree(run, ignore_errors=True)
            log(f"train {method} on {recs}")
            audiosym("train", method, "--audio", str(recs), "--holdout", "0.2", "--out", str(run), "--threads", "1",
                     "--no-progress", *[a for s in sets for a in ("--set", s)])
        summary = json.loads((run / "summary.json").read_text())
        if not preset.exists():
            audiosym("export", str(run), "--out", str(preset))
        log(f"eval {method} on {held}")
        eval_s, out = audiosym("eval", method, str(preset), "--audio", str(held), "--json", "--no-progress")
        log(f"transfer {method}")
        plot = None if not args.plot else str(Path(args.plot).with_name(f"{Path(args.plot).stem}-{method}.png"))
        result[method] = {"train_seconds": summary.get("train_seconds"), "steps": summary.get("steps"),
                          "overrides": sets, "eval_heldout": json.loads(out), "eval_seconds": round(eval_s, 1),
                          "transfer": transfer(preset, find_soundfont("MuseScore_General"), melodies=args.melodies,
                                               train_melodies=args.train_melodies, seed=args.seed, plot=plot)}
    met = {}
    if "sps" in result:
        met["sps_r2_mean_ge_0.97"] = result["sps"]["eval_heldout"].get("r2_mean", 0) >= 0.97
        met["sps_train_le_10_min"] = (result["sps"]["train_seconds"] or 1e9) <= 600
    if "v3" in result:
        ev = result["v3"]["eval_heldout"]
        met["v3_one_to_one_ge_0.85"] = ev.get("one_to_one_accuracy", 0) >= 0.85
        met["v3_zero_shot_ge_0.80"] = ev.get("zero_shot_one_to_one_accuracy", 0) >= 0.80
    for m in ("sps", "v3"):
        if m in result:
            met[f"{m}_transfer_ratio_le_0.70"] = result[m]["transfer"]["mrstft_ratio_mean"] <= 0.70
            met[f"{m}_classifier_ge_0.80"] = result[m]["transfer"]["timbre_accuracy"] >= 0.80
    result["met"] = met
    result["finished"] = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
