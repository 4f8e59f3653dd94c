"""Choose RTPGHI's log -> linear magnitude map and tolerance on notes the vocoder bench never uses.

Oboe, cello, alto sax, vibraphone and church organ at MIDI 52/64/76 (FluidR3_GM, 16 kHz): their
log-frequency features (oracle) and the shipped SPS preset's reconstruction of them (decoded) ->
LogToLinear(method) -> RTPGHI(tol, one frame look-ahead) -> MRSTFT distance to the rendering
(lower is closer). One JSON object on stdout: the mean for every (source, method, tol).

    OMP_NUM_THREADS=1 python benchmarks/rtpghi_tuning.py
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

import numpy as np

from audiosym.bench.vocoder import decoded_features
from audiosym.data.soundfonts import default_train_soundfont, render_note
from audiosym.dsp.features import FeatureConfig, features
from audiosym.dsp.metrics import mrstft_distance
from audiosym.engine.vocoder.rtpghi import RTPGHI, LogToLinear
from audiosym.preset.session import load_preset

PROGRAMS, NOTES = (68, 42, 65, 11, 19), (52, 64, 76)  # disjoint from bench vocoder's (73, 40, 56, 71, 0) x (48, 60, 72)
METHODS, TOLS = ("pinv", "interp", "hybrid"), (1e-5, 1e-3, 1e-2)


def main() -> None:
    cfg = FeatureConfig()
    sf, model = default_train_soundfont(), load_preset("sps-default", device="cpu", intra_op_threads=1)
    maps = {m: LogToLinear(cfg, method=m) for m in METHODS}
    vocs = {tol: RTPGHI.for_features(cfg, tol=tol) for tol in TOLS}
    scores: dict[str, list[float]] = {}
    for program in PROGRAMS:
        for note in NOTES:
            y = render_note(sf, program, note, note_seconds=0.8, release_seconds=0.2, sample_rate=cfg.sample_rate)
            y = y.astype(np.float64) * 0.1 / max(float(np.sqrt(np.mean(y.astype(np.float64) ** 2))), 1e-12)
            lat = vocs[TOLS[0]].latency_samples
            padded = np.concatenate([y, np.zeros(lat + cfg.hop_length)])
            sources = {"oracle": features(padded, cfg), "decoded": decoded_features(model, padded)}
            for src, logmag in sources.items():
                for method, to_linear in maps.items():
                    mag = to_linear(logmag)
                    for tol, voc in vocs.items():
                        out = voc.synthesize(mag)[lat:lat + len(y)]
                        out *= 0.1 / max(float(np.sqrt(np.mean(out**2))), 1e-12)
                        scores.setdefault(f"{src}/{method}/tol={tol:g}", []).append(mrstft_distance(out, y))
            print(f"program {program} note {note} done", file=sys.stderr, flush=True)
    means = {k: round(float(np.mean(v)), 4) for k, v in scores.items()}
    best = {src: min((k for k in means if k.startswith(src)), key=means.__getitem__) for src in ("oracle", "decoded")}
    print(json.dumps({"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "soundfont": sf,
                      "programs": PROGRAMS, "notes": NOTES, "mean_mrstft": means, "best": best}, indent=1))


if __name__ == "__main__":
    main()
