"""SPS benchmark: time-to-R² from nothing, K=4 vs K=0, and the paper-setting ablation (reduced).

Prints ONE JSON object on stdout (progress on stderr). Every variant is trained from scratch
with the shared trainer into ``--out/<variant>``, evaluated on the held-out soundfont before
training (step 0) and every ``--eval-every`` steps; ``elapsed_s`` counts training time only
(evaluation excluded), ``wall_s`` everything.

    OMP_NUM_THREADS=1 python benchmarks/sps.py --out runs/bench-sps            # all variants
    python benchmarks/sps.py --variants tiny_k4,tiny_k0 --steps 1000 --out /tmp/b

Variants:
  tiny_k4 / tiny_k0        the `tiny` recipe (harmonic-initialised equivariant pitch head,
                           equivariant decoder) with K=4 / K=0 counterfactual copies
  random_k4 / random_k0    the same architecture with a randomly initialised pitch kernel:
                           what the equivariant architecture learns from nothing
  plaindec_k4 / _k0        tiny's pitch head with a plain MLP decoder instead of the equivariant one
  randplain_k4 / _k0       random-init pitch head with a plain MLP decoder
  mlp_k4 / mlp_k0          frame MLP pitch head + plain MLP decoder (the FINDINGS prototype)
  paper_k4 / paper_k0      the authors' setting (5-frame note blocks, conv encoder, plain
                           decoder, one-octave scales, timbre repeated) REDUCED to CPU size
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS: dict[str, tuple[str, list[str]]] = {
    "tiny_k4": ("tiny", []),
    "tiny_k0": ("tiny", ["K=0"]),
    "random_k4": ("tiny", ["pitch_init=random"]),
    "random_k0": ("tiny", ["pitch_init=random", "K=0"]),
    "plaindec_k4": ("tiny", ["decoder=mlp"]),
    "plaindec_k0": ("tiny", ["decoder=mlp", "K=0"]),
    "randplain_k4": ("tiny", ["pitch_init=random", "decoder=mlp"]),
    "randplain_k0": ("tiny", ["pitch_init=random", "decoder=mlp", "K=0"]),
    "mlp_k4": ("tiny", ["pitch_head=linear", "decoder=mlp"]),
    "mlp_k0": ("tiny", ["pitch_head=linear", "decoder=mlp", "K=0"]),
    # reduced: 16 conv channels, 128-unit nets, 64-unit prior instead of 64/512/512/256
    "paper_k4": ("paper", ["conv_channels=16", "encoder_hidden=128", "decoder_hidden=128",
                           "prior_hidden=64", "batch_size=16"]),
    "paper_k0": ("paper", ["conv_channels=16", "encoder_hidden=128", "decoder_hidden=128",
                           "prior_hidden=64", "batch_size=16", "K=0"]),
}


def run_variant(name: str, *, steps: int, eval_every: int, out: Path, seed: int, synthesis: bool) -> dict:
    import torch

    from audiosym.eval_sps import evaluate_sps
    from audiosym.features import FeatureConfig
    from train import sps
    from train.config import resolve
    from train.trainer import Trainer, seed_everything

    preset, sets = VARIANTS[name]
    cfg = resolve(sps.Config, sps.CONFIGS, preset,
                  [*sets, f"steps={steps}", f"eval_every={eval_every}", f"ckpt_every={steps}", f"seed={seed}"])
    seed_everything(cfg.seed)
    t0 = time.perf_counter()
    task = sps.build_task(cfg, device=torch.device("cpu"), progress=False)
    run_dir = out / name
    shutil.rmtree(run_dir, ignore_errors=True)
    task.model.eval()
    with torch.no_grad():
        step0 = task.evaluate(task.model)
    print(f"[{name}] step 0: r2_mean={step0['r2_mean']:.4f}", file=sys.stderr)
    record = {"name": preset, **dataclasses.asdict(cfg)}
    trainer = Trainer(task, cfg, run_dir, device=torch.device("cpu"), config=record, method="sps", progress=False)
    summary = trainer.fit()
    curve = [{"step": 0, "elapsed_s": 0.0, "r2_mean": round(step0["r2_mean"], 5),
              "r2_mean_all": round(step0["r2_mean_all"], 5)}]
    for line in (run_dir / "eval.jsonl").read_text().splitlines():
        row = json.loads(line)
        curve.append({k: (round(row[k], 5) if isinstance(row[k], float) else row[k])
                      for k in ("step", "elapsed_s", "r2_mean", "r2_mean_all")})
    hit = next((c for c in curve if c["r2_mean"] >= 0.98), None)
    latent = sps.TorchSPS(trainer.model, cfg, FeatureConfig(), sps._metadata(cfg))
    final = evaluate_sps(latent, synthesis=synthesis, progress=False)
    final.pop("_codes", None)
    final.pop("soundfont_path", None)
    res = {
        "config": preset, "overrides": sets, "steps": steps,
        "ms_per_step": round(1000 * summary["train_seconds"] / max(1, summary["steps"]), 1),
        "steps_per_second": summary["steps_per_second"],
        "train_seconds": summary["train_seconds"],
        "wall_s": round(time.perf_counter() - t0, 1),
        "time_to_r2_0.98_s": hit["elapsed_s"] if hit else None,
        "steps_to_r2_0.98": hit["step"] if hit else None,
        "curve": curve,
        "final": final,
    }
    print(f"[{name}] final r2_mean={final['r2_mean']:.4f} all={final['r2_mean_all']:.4f} "
          f"{res['ms_per_step']} ms/step", file=sys.stderr)
    return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", default=",".join(v for v in VARIANTS if not v.startswith(("plaindec", "randplain"))), help="comma list of " + ", ".join(VARIANTS))
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/bench-sps")
    p.add_argument("--synthesis", action="store_true", help="final evaluation also runs the synthesis check")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    names = [v for v in args.variants.split(",") if v]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variant(s) {unknown}; choose from {sorted(VARIANTS)}")
    out = Path(args.out)
    results = {}
    for name in names:
        results[name] = run_variant(name, steps=args.steps, eval_every=args.eval_every, out=out,
                                    seed=args.seed, synthesis=args.synthesis)
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.machine()} {os.cpu_count()} CPU cores, torch threads={args.threads}",
        "command": " ".join(sys.argv),
        "variants": results,
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
