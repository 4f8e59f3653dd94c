"""V3 benchmark: train ``tiny`` from nothing on this machine and report its metrics as one JSON object.

    python benchmarks/v3.py                      # tiny, with its targets checked
    python benchmarks/v3.py --ablation           # + the paper's losses only, and each fix alone
    python benchmarks/v3.py --set steps=1000     # any config override

Targets (issue #3): tiny in <= 20 min on a 2-core CPU; one-to-one accuracy >= 0.90 in
distribution and >= 0.80 zero-shot (held-out instruments); style->instrument 5-NN
>= 0.95; content->instrument 5-NN within 0.15 of chance. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

KEYS = (
    "one_to_one_accuracy", "purity", "zero_shot_one_to_one_accuracy", "zero_shot_heldout_purity",
    "zero_shot_soundfont_one_to_one_accuracy", "zero_shot_soundfont_heldout_one_to_one_accuracy",
    "content_pitch_knn", "content_pitch_prauc", "style_instrument_knn", "style_instrument_prauc",
    "content_instrument_knn", "content_instrument_prauc", "content_continuous_instrument_knn",
    "style_pitch_knn", "style_pitch_prauc", "chance_instrument", "atoms_used",
)

# name -> overrides on top of tiny; "tiny" is the shipped recipe: vocabulary term, EQ augmentation,
# style shuffle, content on a sphere.
ABLATION = {
    "paper_losses_only": ["loss=vocab=0", "eq_db=0", "recon_style=own", "content_norm=false"],
    "plus_vocab": ["eq_db=0", "recon_style=own", "content_norm=false"],
    "plus_eq": ["loss=vocab=0", "recon_style=own", "content_norm=false"],
    "plus_style_shuffle": ["loss=vocab=0", "eq_db=0", "content_norm=false"],
    "plus_vocab_eq": ["recon_style=own", "content_norm=false"],
    "plus_eq_style_shuffle": ["loss=vocab=0", "content_norm=false"],
    "tiny_without_content_norm": ["content_norm=false"],
    "tiny": [],
}


def targets(m: dict) -> dict:
    return {
        "one_to_one_ge_0.90": m["one_to_one_accuracy"] >= 0.90,
        "zero_shot_ge_0.80": m["zero_shot_one_to_one_accuracy"] >= 0.80,
        "style_instrument_ge_0.95": m["style_instrument_knn"] >= 0.95,
        "content_instrument_within_0.15_of_chance": m["content_instrument_knn"] - m["chance_instrument"] <= 0.15,
    }


def run_one(name: str, overrides: list[str], *, out: Path, soundfont: str | None) -> dict:
    import torch

    from train.core.runs import train_method

    t0 = time.perf_counter()
    print(f"[{name}] training tiny with {overrides or 'no overrides'}", file=sys.stderr)
    summary = train_method("v3", config="tiny", overrides=overrides, out=out, device="cpu",
                           soundfont=soundfont, progress=False)
    wall = time.perf_counter() - t0
    ev = summary["last_eval"]
    res = {k: round(float(ev[k]), 4) for k in KEYS if k in ev}
    res.update({
        "steps": summary["steps"], "train_seconds": summary["train_seconds"],
        "steps_per_second": summary["steps_per_second"], "wall_seconds_incl_data_and_eval": round(wall, 1),
        "overrides": overrides, "torch_threads": torch.get_num_threads(),
    })
    res["targets_met"] = targets(res) | {"wall_le_20_min": wall <= 1200}
    print(f"[{name}] " + json.dumps(res), file=sys.stderr)
    return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ablation", action="store_true", help="also train the ablation variants")
    p.add_argument("--variants", default=None, help="comma-separated subset of the ablation variants")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--soundfont", default=None, help="training soundfont (default: FluidR3_GM if installed)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: a shared machine)")
    p.add_argument("--out", default=None, help="keep the run directories here (default: a temp dir)")
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    from audiosym.data.soundfonts import (
        default_test_soundfont,
        default_train_soundfont,
        find_soundfont,
        soundfont_label,
    )

    base = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_v3_"))
    variants = ABLATION if args.ablation else {"tiny": []}
    if args.variants:
        names = [v.strip() for v in args.variants.split(",") if v.strip()]
        unknown = sorted(set(names) - set(ABLATION))
        if unknown:
            raise SystemExit(f"unknown variant(s) {unknown}; choose from {sorted(ABLATION)}")
        variants = {n: ABLATION[n] for n in names}
    results = {}
    for name, extra in variants.items():
        out = base / name
        if out.exists():
            raise SystemExit(f"{out} exists; pass another --out")
        results[name] = run_one(name, extra + args.overrides, out=out, soundfont=args.soundfont)
    train_sf = find_soundfont(args.soundfont) if args.soundfont else default_train_soundfont()
    report = {
        "benchmark": "v3",
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "train_soundfont": soundfont_label(train_sf),
        "test_soundfont": soundfont_label(default_test_soundfont(train_sf)),
        "results": results,
        "run_dirs": str(base),
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
