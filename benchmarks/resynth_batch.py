"""A folder of short files through ``audiosym resynth`` (issue #16: >= 50x real time per core).

Renders ``--files`` seeded soundfont melodies of 4-6 s at 44.1 kHz (TimGM6mb, always installed;
clarinet, oboe, violin and soprano sax in turn, -20 dBFS RMS) into a temporary folder, then runs
the real command on it, ``--workers 1``, as a fresh process each time (what a user runs: Python
start-up, imports, preset load and kernel loading included), ``--repeats`` times into fresh
output folders. Reported per run and as the median: the command's wall time and CPU time
(user + system, from the kernel's accounting of the child process) and the realtime factors
``audio seconds / wall`` and ``audio seconds / CPU`` (the per-core figure, which other jobs on a
shared machine inflate less), plus the command's own per-file figure (the summary's "x realtime
per worker": audio over the files' read + render + write time, start-up excluded). One JSON
object on stdout, progress on stderr.

    OMP_NUM_THREADS=1 python benchmarks/resynth_batch.py --preset sps-default
    OMP_NUM_THREADS=1 python benchmarks/resynth_batch.py --preset v3-default --files 40 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from audiosym.bench.common import header, log
from audiosym.data.soundfonts import find_soundfont, render_melody

PROGRAMS = (71, 68, 40, 64)  # GM clarinet, oboe, violin, soprano sax
TARGET_REALTIME_FACTOR_CPU = 50.0


def make_corpus(folder: Path, *, files: int, sample_rate: int, seed: int) -> float:
    """``files`` melodies of 4-6 s as 16-bit WAVs in ``folder``; returns their total seconds."""
    rng = np.random.default_rng(seed)
    sf2 = find_soundfont("TimGM6mb")
    total = 0.0
    for i in range(files):
        seconds = float(rng.uniform(4.0, 6.0))
        notes, t, pitch = [], 0.0, 67
        while t < seconds - 0.6:
            step = float(rng.uniform(0.3, 0.8))
            pitch = int(np.clip(pitch + rng.integers(-4, 5), 55, 79))
            notes.append((t, 0.9 * step, pitch, 100))
            t += step
        y = render_melody(sf2, PROGRAMS[i % len(PROGRAMS)], notes, sample_rate=sample_rate)[: int(seconds * sample_rate)]
        y *= np.float32(0.1 / max(float(np.sqrt(np.mean(y.astype(np.float64) ** 2))), 1e-12))
        sf.write(folder / f"take{i:03d}.wav", y, sample_rate, subtype="PCM_16")
        total += len(y) / sample_rate
    return total


def run_once(corpus: Path, out: Path, *, preset: str, timbre: str | None) -> dict:
    """One ``audiosym resynth`` process: wall and CPU seconds, and its JSON summary."""
    import audiosym

    cmd = [sys.executable, "-m", "audiosym", "resynth", str(corpus), "--out", str(out), "--preset", preset,
           "--workers", "1", "--no-progress", "--json", *(["--timbre", timbre] if timbre else [])]
    # the command runs the audiosym this script imported (``-m`` would put the working folder first)
    root = str(Path(audiosym.__file__).resolve().parents[1])
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=corpus.parent)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"audiosym resynth failed ({done.returncode}):\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "summary": json.loads(done.stdout)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="sps-default")
    ap.add_argument("--timbre", default="clarinet", help="a timbre of the preset (default clarinet)")
    ap.add_argument("--files", type=int, default=40)
    ap.add_argument("--sample-rate", type=int, default=44100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="audiosym-batch-") as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        audio = make_corpus(corpus, files=args.files, sample_rate=args.sample_rate, seed=args.seed)
        log(f"{args.files} files, {audio:.1f} s of audio at {args.sample_rate} Hz")
        runs = []
        for k in range(args.repeats):
            r = run_once(corpus, Path(tmp) / f"out{k}", preset=args.preset, timbre=args.timbre)
            files = r["summary"]["files"]
            assert all(f["status"] == "ok" for f in files), "every file must be rendered"
            compute = sum(f["compute_seconds"] for f in files)
            row = {"wall_s": round(r["wall_s"], 3), "cpu_s": round(r["cpu_s"], 3),
                   "realtime_factor_wall": round(audio / r["wall_s"], 1),
                   "realtime_factor_cpu": round(audio / r["cpu_s"], 1),
                   "files_realtime_factor": round(audio / compute, 1)}
            log(f"run {k + 1}/{args.repeats}: {row}")
            runs.append(row)
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    print(json.dumps({
        **header(), "preset": args.preset, "timbre": args.timbre, "files": args.files,
        "sample_rate": args.sample_rate, "audio_seconds": round(audio, 2), "workers": 1, "ort_threads": 1,
        "command": "audiosym resynth FOLDER --out OUT --workers 1 (a fresh process per run)",
        "runs": runs, "median": median, "statistic": "median of repeats",
        "targets": {"realtime_factor_cpu": TARGET_REALTIME_FACTOR_CPU},
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
