"""Per-frame encoder+decoder time at batch 1 on the CPU: onnxruntime (preset graphs) vs torch eager.

One frame step as the engine runs it: ``frames [1, C, n_bins]`` -> encoder -> the latents the
decoder takes -> ``logmag [1, 1, n_bins]``. Both run in this process with one thread; the
median of many interleaved calls is reported. Models: the real train/ architectures at their named
configs (weights do not change the speed, so they are untrained unless --run is given).

torch eager runs the model's training forward (``export_modules()``). Where the model offers a
graph-friendly rewrite (``onnx_modules()``: SPS) the graphs are exported from it, and the JSON
also times that rewrite in torch eager (``warm.torch_rewritten_us_per_frame``), so the gain of
the rewrite and the gain of onnxruntime can be told apart.

Two timings: the headline ``speedup`` alternates single calls (torch, onnxruntime, torch, ...), so
each call finds caches cold, as in an engine doing other work between frames; ``warm`` times each
side in runs of 300 calls (caches warm), the runs alternating.

    python3 benchmarks/onnx_speed.py                    # sps/v3 at tiny and paper configs
    python3 benchmarks/onnx_speed.py --run runs/sps-default --calls 3000

Prints one JSON object on stdout (progress on stderr). Target: onnxruntime >= 3x faster.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from audiosym.families import get as get_family  # noqa: E402
from audiosym.preset.session import make_session  # noqa: E402
from export.onnx_graphs import export_graphs  # noqa: E402

TARGET_SPEEDUP = 3.0


def config_model(method: str, config: str):
    """Untrained real model of ``train/<method>.py`` at a named config, as its LatentModel."""
    from train.core.config import resolve
    from train.core.runs import method_module

    mod = method_module(method)
    cfg = resolve(mod.Config, mod.CONFIGS, config, [])
    if method == "sps":
        state = mod.SPSModel(cfg, 190).state_dict()
    else:
        state = {f"net.{k}": v for k, v in mod.build_net(cfg).state_dict().items()}
    return mod.load_latent_model({"method": method, "config": {"name": config, **dataclasses.asdict(cfg)}, "model": state})


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def median_us(fns, calls: int) -> list[float]:
    """Median microseconds per call of each function, timed in interleaved rounds so that load
    from other processes on a shared machine hits every function alike. Each call follows the
    other side's, so caches are as cold as in an engine doing other work between frames."""
    for fn in fns:
        for _ in range(min(200, calls)):
            fn()
    times = np.empty((calls, len(fns)))
    for i in range(calls):
        for j, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[i, j] = time.perf_counter() - t0
    return [float(v) for v in np.median(times, axis=0) * 1e6]


def median_us_warm(fns, calls: int, chunk: int = 300) -> list[float]:
    """Median microseconds per call with each function timed in chunks of ``chunk`` calls in a
    row (caches warm), the chunks of all functions alternating (load drift hits all alike)."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(max(1, calls // chunk)):
        for j, fn in enumerate(fns):
            for _ in range(50):
                fn()
            for _ in range(chunk):
                t0 = time.perf_counter()
                fn()
                times[j].append(time.perf_counter() - t0)
    return [float(np.median(t) * 1e6) for t in times]


def bench(model, calls: int) -> dict:
    enc_t, dec_t = (m.eval() for m in model.torch_model.export_modules())
    enc_b, dec_b = export_graphs(model)
    s_enc, s_dec = make_session(enc_b, device="cpu"), make_session(dec_b, device="cpu")
    family = get_family(model.kind)
    enc_names, dec_names = list(family.encoder_outputs), list(family.decoder_inputs)
    x = np.random.default_rng(0).normal(-6, 2, (1, model.context_frames, model.features.n_bins)).astype(np.float32)
    xt = torch.from_numpy(x)

    def run_torch():
        with torch.inference_mode():
            z = dict(zip(enc_names, enc_t(xt)))
            return dec_t(*(z[n] for n in dec_names))

    # the graph-friendly rewrite (onnx_modules, what the graphs are exported from) run in torch
    # eager too: shows how much of the gain is the rewrite and how much onnxruntime
    has_rewrite = hasattr(model.torch_model, "onnx_modules")
    enc_r, dec_r = (m.eval() for m in (model.torch_model.onnx_modules() if has_rewrite else (enc_t, dec_t)))

    def run_torch_rewritten():
        with torch.inference_mode():
            z = dict(zip(enc_names, enc_r(xt)))
            return dec_r(*(z[n] for n in dec_names))

    def run_onnx():
        z = dict(zip(enc_names, s_enc.run(enc_names, {"frames": x})))
        return s_dec.run(["logmag"], {n: z[n] for n in dec_names})[0]

    err = float(np.max(np.abs(run_torch().numpy() - run_onnx())))
    torch_us, onnx_us = median_us([run_torch, run_onnx], calls)
    warm_torch_us, warm_onnx_us, rewritten_us = median_us_warm([run_torch, run_onnx, run_torch_rewritten], calls)
    params = sum(p.numel() for p in model.torch_model.parameters())
    return {"kind": model.kind, "context_frames": model.context_frames, "params": int(params),
            "onnx_bytes": len(enc_b) + len(dec_b), "torch_us_per_frame": round(torch_us, 1),
            "onnx_us_per_frame": round(onnx_us, 1), "speedup": round(torch_us / onnx_us, 2),
            "warm": {"torch_us_per_frame": round(warm_torch_us, 1), "onnx_us_per_frame": round(warm_onnx_us, 1),
                     "speedup": round(warm_torch_us / warm_onnx_us, 2),
                     "torch_rewritten_us_per_frame": round(rewritten_us, 1),
                     "speedup_vs_torch_rewritten": round(rewritten_us / warm_onnx_us, 2)},
            "graph_rewrite": has_rewrite,
            "max_abs_err": err}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="sps:tiny,sps:paper,v3:tiny,v3:paper", help="method:config list")
    ap.add_argument("--run", action="append", default=[], help="also a trained run directory (repeatable)")
    ap.add_argument("--calls", type=int, default=2000, help="timed calls per model (median reported)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    results = {}
    todo = [(spec, lambda spec=spec: config_model(*spec.split(":"))) for spec in args.models.split(",") if spec]
    from train.core.runs import load_run

    todo += [(f"run:{r}", lambda r=r: load_run(r)) for r in args.run]
    for name, make in todo:
        print(f"benchmarking {name} ...", file=sys.stderr)
        results[name] = bench(make(), args.calls)
        print(f"  {results[name]}", file=sys.stderr)
    speedups = [r["speedup"] for r in results.values()]
    import onnxruntime

    out = {
        "benchmark": "onnx_speed", "unit": "microseconds per frame (encoder + decoder, batch 1, 1 thread, median)",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
                    # other work on a shared machine slows both sides; the ratio is the result
                    "load_average_1min": round(os.getloadavg()[0], 2)},
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
        "command": " ".join(["python3", *sys.argv]), "calls": args.calls,
        "models": results, "min_speedup": min(speedups), "target_speedup": TARGET_SPEEDUP,
        "meets_target": min(speedups) >= TARGET_SPEEDUP,
    }
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
