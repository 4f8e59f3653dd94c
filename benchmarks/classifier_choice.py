"""How well candidate timbre classifiers name GROUND TRUTH (issue #6's accuracy measurement).

The transfer benchmark's ``timbre_accuracy`` is only as good as its classifier. This script
chooses that classifier without looking at any model output: for each seed it renders, from the
held-out soundfont, the benchmark's classifier-training melodies and its test melodies exactly
as ``benchmarks/transfer.py`` does (same seeds, same timbre sets, same broken-render check), and
reports how often each candidate names the ground-truth rendering of B. One JSON object on
stdout: ``{candidate: {preset: mean accuracy over seeds, "worst_seed": ...}}``.

    python benchmarks/classifier_choice.py --seeds 5 > choice.json   # about 30 s
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
from transfer import (  # noqa: E402
    CLASSIFIERS,
    log,
    melody,
    render,
    timbre_features,
)

from audiosym.data.plans import instrument_range  # noqa: E402
from audiosym.data.soundfonts import broken_renders, find_soundfont  # noqa: E402
from audiosym.offline.demo import contrasting_timbres  # noqa: E402
from audiosym.preset.session import load_preset  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="sps-default,v3-default")
    ap.add_argument("--soundfont", default="MuseScore_General")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--melodies", default="4,12,24", help="classifier-training melodies per timbre to try")
    ap.add_argument("--sample-rate", type=int, default=16000)
    args = ap.parse_args(argv)
    sf, sr = find_soundfont(args.soundfont), args.sample_rate
    counts = [int(k) for k in args.melodies.split(",")]
    broken = broken_renders(sf)
    scores: dict[str, dict[str, list[float]]] = {}
    for name in args.presets.split(","):
        preset = load_preset(name)
        timbres = preset.metadata["timbres"]
        names = contrasting_timbres(preset, 5, exclude={n for n, t in timbres.items() if int(t["program"]) in broken})
        program = {n: int(timbres[n]["program"]) for n in names}
        plo, phi = preset.midi_range
        span = {}
        for n in names:
            lo, hi = instrument_range(program[n])
            span[n] = (max(lo, plo, 48), min(hi, phi, 84))
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed + 1000)  # as transfer.py: the classifier's melodies
            train = {n: [timbre_features(render(sf, program[n], melody(rng, *span[n]), sr), sr)
                         for _ in range(max(counts))] for n in names}
            rng = np.random.default_rng(seed)  # as transfer.py: the test melodies of each pair A -> B
            x, y = [], []
            for a in names:
                for b in names:
                    lo, hi = max(span[a][0], span[b][0]), min(span[a][1], span[b][1])
                    if a == b or hi - lo < 5:
                        continue
                    for _ in range(2):
                        notes = melody(rng, lo, hi)
                        x.append(timbre_features(render(sf, program[b], notes, sr), sr))
                        y.append(b)
            for k in counts:
                xtr = np.stack([f for n in names for f in train[n][:k]])
                ytr = [n for n in names for _ in range(k)]
                for kind, cls in CLASSIFIERS.items():
                    clf = cls().fit(xtr, ytr)
                    acc = float(np.mean([clf.predict(f) == t for f, t in zip(x, y)]))
                    scores.setdefault(f"{kind} on {k} melodies", {}).setdefault(name, []).append(acc)
            log(f"{name} seed {seed} done")
    result = {key: {**{p: round(float(np.mean(v)), 3) for p, v in by.items()},
                    "worst_seed": round(min(min(v) for v in by.values()), 3)} for key, by in scores.items()}
    json.dump({"seeds": args.seeds, "soundfont": os.path.basename(sf), "ground_truth_accuracy": result,
               "command": "python benchmarks/classifier_choice.py " + " ".join(argv if argv is not None else sys.argv[1:])},
              sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
