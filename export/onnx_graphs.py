"""Torch encoder/decoder -> ONNX graphs (dynamic batch and time), optimised and checked against torch.

The graphs follow the LatentModel layout of :mod:`audiosym.families.base`: the encoder takes
``frames [N, T, n_bins]`` and returns the family's ``encoder_outputs`` with ``T' = T - C + 1``;
the decoder takes its ``decoder_inputs`` and returns ``logmag [N, T', n_bins]``.
The models hold no streaming state: the encoder sees its ``C`` context frames as input.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import onnxruntime as ort
import torch

from audiosym import families
from audiosym.errors import PresetError
from audiosym.families.base import LatentModel
from audiosym.preset.session import make_session
from train.core.device import to_model


class ExportableModel(LatentModel, Protocol):
    """A trained run as export takes it: a LatentModel with its torch module, whose
    ``export_modules()`` gives (encoder, decoder) in the family's layout (and, optionally,
    ``onnx_modules()`` the same functions with fewer graph nodes)."""

    @property
    def torch_model(self) -> Any:  # a torch.nn.Module with export_modules(); nn.Module's typing hides it
        ...


OPSET = 17
EXAMPLE_FRAMES = 16  # time length of the export example (after the context); checks use others


def latent_layout(model: ExportableModel) -> dict[str, list[dict[str, Any]]]:
    """Names, shapes (``N``, ``T``, ``T_out`` symbolic) and dtypes of the graphs' inputs and outputs."""
    enc, _ = model.torch_model.export_modules()
    x = to_model(np.zeros((1, model.context_frames, model.features.n_bins), np.float32), enc)
    with torch.no_grad():  # on the module's device: latent_layout also works before export moves it to the CPU
        outs = enc.eval()(x)
    family = families.get(model.kind)
    names = family.encoder_outputs
    if len(outs) != len(names):
        raise PresetError(f"the {model.kind} encoder returns {len(outs)} tensors; the layout needs {list(names)}")
    enc_out = []
    for name, o in zip(names, outs):
        dtype = "int64" if o.dtype == torch.int64 else "float32"
        enc_out.append({"name": name, "shape": ["N", "T_out", *o.shape[2:]], "dtype": dtype})
    by_name = {t["name"]: t for t in enc_out}
    n_bins = model.features.n_bins
    return {
        "encoder_inputs": [{"name": "frames", "shape": ["N", "T", n_bins], "dtype": "float32"}],
        "encoder_outputs": enc_out,
        "decoder_inputs": [dict(by_name[n], shape=["N", "T", *by_name[n]["shape"][2:]]) for n in family.decoder_inputs],
        "decoder_outputs": [{"name": "logmag", "shape": ["N", "T", n_bins], "dtype": "float32"}],
    }


def _export(module: torch.nn.Module, args: tuple, inputs: list[str], outputs: list[str], time_in: str, time_out: str) -> bytes:
    axes = {n: {0: "N", 1: time_in} for n in inputs}
    axes.update({n: {0: "N", 1: time_out} for n in outputs})
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "graph.onnx")
        torch.onnx.export(
            module, args, path, input_names=inputs, output_names=outputs, dynamic_axes=axes,
            opset_version=OPSET, do_constant_folding=True, dynamo=False,
        )
        with open(path, "rb") as f:
            return f.read()


def _optimise(onnx_bytes: bytes) -> bytes:
    """onnxruntime's provider-independent (BASIC) graph rewrites, saved: constant folding and
    redundant-node removal. The fused kernels of the higher levels are CPU/GPU specific, so
    they are applied again at load time rather than frozen into the file."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "opt.onnx")
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = out
        so.log_severity_level = 3
        ort.InferenceSession(onnx_bytes, so, providers=["CPUExecutionProvider"])
        with open(out, "rb") as f:
            return f.read()


def export_graphs(model: ExportableModel, *, rewrite: bool = True) -> tuple[bytes, bytes]:
    """``(encoder_onnx, decoder_onnx)`` bytes of a trained LatentModel with ``.torch_model``.

    ``rewrite=False`` exports the training forward literally (``export_modules()``) even when the
    model offers the graph-friendly ``onnx_modules()``; benchmarks use it as the baseline."""
    # a model may offer onnx_modules(): the same function rewritten with fewer graph nodes (at
    # batch 1 onnxruntime's time is per-node dispatch); parity is still checked against
    # export_modules(), the training forward
    torch_model = model.torch_model
    use = rewrite and hasattr(torch_model, "onnx_modules")
    enc, dec = torch_model.onnx_modules() if use else torch_model.export_modules()
    enc, dec = enc.eval().cpu(), dec.eval().cpu()
    c = model.context_frames
    g = torch.Generator().manual_seed(0)
    frames = torch.randn(2, c + EXAMPLE_FRAMES - 1, model.features.n_bins, generator=g) - 6.0
    family = families.get(model.kind)
    enc_names, dec_names = list(family.encoder_outputs), list(family.decoder_inputs)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated, but it is the one that keeps dynamic axes simple
        outs = dict(zip(enc_names, enc(frames)))
        enc_bytes = _export(enc, (frames,), ["frames"], enc_names, "T", "T_out")
        dec_bytes = _export(dec, tuple(outs[n] for n in dec_names), dec_names, ["logmag"], "T", "T")
    return _optimise(enc_bytes), _optimise(dec_bytes)


@dataclass
class ParityReport:
    """Max abs error per (batch, frames) case, timings in ms per call, and the verdict."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    atol: float = 1e-4

    @property
    def max_abs_err(self) -> float:
        return max(r["max_abs_err"] for r in self.rows)

    @property
    def ok(self) -> bool:
        return all(r["max_abs_err"] <= self.atol and r["code_agreement"] >= 0.999 for r in self.rows)

    def table(self) -> str:
        lines = [f"{'batch':>5} {'frames':>6} {'max|err|':>9} {'codes':>6} {'torch ms':>9} {'onnx ms':>8} {'speed-up':>8}"]
        for r in self.rows:
            lines.append(
                f"{r['batch']:>5} {r['frames']:>6} {r['max_abs_err']:>9.1e} {r['code_agreement']:>6.1%} "
                f"{r['torch_ms']:>9.3f} {r['onnx_ms']:>8.3f} {r['torch_ms'] / max(r['onnx_ms'], 1e-9):>7.1f}x"
            )
        verdict = "PASS" if self.ok else "FAIL"
        lines.append(f"parity {verdict}: max abs error {self.max_abs_err:.2e} (limit {self.atol:.0e}, float32)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "atol": self.atol, "max_abs_err": self.max_abs_err, "cases": self.rows}


def _sessions(enc_bytes: bytes, dec_bytes: bytes, threads: int = 1):
    return [make_session(b, device="cpu", intra_op_threads=threads) for b in (enc_bytes, dec_bytes)]


def _best_ms(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def _inputs(rng: np.random.Generator, batch: int, t: int, n_bins: int, notes: np.ndarray | None) -> np.ndarray:
    if notes is None:
        return rng.normal(-6.0, 2.0, size=(batch, t, n_bins)).astype(np.float32)
    reps = -(-t // notes.shape[1])
    rows = [np.concatenate(notes[rng.integers(len(notes), size=reps)])[:t] for _ in range(batch)]
    return np.stack(rows).astype(np.float32)


def check_parity(
    model: ExportableModel, enc_bytes: bytes, dec_bytes: bytes, *, atol: float = 1e-4,
    cases: tuple[tuple[int, int], ...] = ((1, 1), (1, 37), (3, 5), (4, 101)), repeats: int = 5, seed: int = 0,
    notes: np.ndarray | None = None,
) -> ParityReport:
    """Run torch and onnxruntime on the same frames at each ``(batch, output frames)`` case (none
    equal to the export example), compare every output, time one encode+decode each.

    ``notes [M, T0, F]``: feature frames of real notes; each batch row is a random sequence of
    them cut to length. Real spectra have the peaks the models were trained on; random frames
    (used when ``notes`` is None) make soft-argmax pitch heads needlessly ill-conditioned.
    """
    enc, dec = model.torch_model.export_modules()
    enc, dec = enc.eval().cpu(), dec.eval().cpu()
    s_enc, s_dec = _sessions(enc_bytes, dec_bytes)
    family = families.get(model.kind)
    enc_names, dec_names = list(family.encoder_outputs), list(family.decoder_inputs)
    rng = np.random.default_rng(seed)
    report = ParityReport(atol=atol)
    for batch, n_out in cases:
        t = model.context_frames + n_out - 1
        x = _inputs(rng, batch, t, model.features.n_bins, notes)
        with torch.no_grad():
            t_outs = [o.numpy() for o in enc(torch.from_numpy(x))]
        o_outs = s_enc.run(enc_names, {"frames": x})
        err, agree = 0.0, 1.0
        for name, a, b in zip(enc_names, t_outs, o_outs):
            if a.shape != b.shape:
                raise PresetError(f"ONNX encoder output {name} has shape {b.shape}, torch {a.shape}")
            if np.issubdtype(a.dtype, np.integer):  # codes: agreement, not distance
                agree = float(np.mean(a == b))
            else:
                err = max(err, float(np.max(np.abs(a - b))))
        lat = {n: v for n, v in zip(enc_names, t_outs) if n in dec_names}
        with torch.no_grad():
            t_dec = dec(*(torch.from_numpy(lat[n]) for n in dec_names)).numpy()
        o_dec = s_dec.run(["logmag"], {n: lat[n] for n in dec_names})[0]
        err = max(err, float(np.max(np.abs(t_dec - o_dec))))

        def run_torch(x=x):
            with torch.no_grad():
                o = dict(zip(enc_names, enc(torch.from_numpy(x))))
                dec(*(o[n] for n in dec_names))

        def run_onnx(x=x):
            o = dict(zip(enc_names, s_enc.run(enc_names, {"frames": x})))
            s_dec.run(["logmag"], {n: o[n] for n in dec_names})

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # both sides on one thread, as in real-time use
        try:
            torch_ms, onnx_ms = _best_ms(run_torch, repeats), _best_ms(run_onnx, repeats)
        finally:
            torch.set_num_threads(threads)
        report.rows.append({
            "batch": batch, "frames": n_out, "max_abs_err": err, "code_agreement": agree,
            "torch_ms": torch_ms, "onnx_ms": onnx_ms,
        })
    return report


def print_report(report: ParityReport) -> None:
    print(report.table(), file=sys.stderr)
