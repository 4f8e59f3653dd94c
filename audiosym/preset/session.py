"""Presets played: a preset file's two graphs as onnxruntime sessions, torch-free.

A preset is a trained model a musician can share: the two ONNX graphs, the real-time contract
(features, context frames, latency), the calibration that turns MIDI pitch into a latent (its
model family's, :mod:`audiosym.families`) and named timbres. The file itself (one zip holding
``metadata.json``, ``encoder.onnx``, ``decoder.onnx`` and optionally ``match.npz``; where presets
live; the metadata schema and the hashes checked on load) is :mod:`audiosym.preset.format`;
the typed, composable :class:`audiosym.preset.model.Preset` is :mod:`audiosym.preset.model`.

:func:`load_preset` opens a file as a Preset with onnxruntime sessions; this module never
imports torch. Presets are written by :func:`export.save.save_preset` (export side: it needs
the ``onnx`` package).
"""

from __future__ import annotations

import json
import os

import numpy as np

from audiosym import families
from audiosym.errors import ParameterError, PresetError
from audiosym.families.base import LatentModel
from audiosym.preset.format import (
    GRAPHS,
    METADATA,
    ONNX_METADATA_KEY,
    embedded_metadata,
    read_preset_files,
    resolve_preset,
)
from audiosym.preset.model import Preset
from audiosym.timbre.match import from_bytes


def _cuda_present() -> bool:
    # onnxruntime-gpu lists CUDAExecutionProvider even without a GPU and then logs loud errors
    # while falling back; only ask for it when a driver is there.
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")


def _providers(device: str) -> list[str]:
    import onnxruntime as ort  # lazy: ~0.15 s; --help and `presets list` import this module

    if device not in ("auto", "cpu", "cuda"):
        raise ParameterError(f"device={device!r} must be auto, cpu or cuda")
    have = ort.get_available_providers()
    if device == "cuda" and "CUDAExecutionProvider" not in have:
        raise ParameterError("device='cuda' was asked for but onnxruntime has no CUDAExecutionProvider; use device='cpu'")
    if device == "cuda" or (device == "auto" and "CUDAExecutionProvider" in have and _cuda_present()):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def make_session(onnx_bytes: bytes, *, device: str = "auto", intra_op_threads: int = 1):
    """An onnxruntime InferenceSession (a :class:`GraphSession`) as presets use it: all graph optimisations, ``intra_op_threads``
    threads (1 keeps a real-time audio thread predictable), one inter-op thread, quiet logs."""
    import onnxruntime as ort  # lazy: as in _providers

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(intra_op_threads)
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(onnx_bytes, so, providers=_providers(device))


def load_preset(path_or_name: str | os.PathLike, *, device: str = "auto", intra_op_threads: int = 1) -> Preset:
    """Open a preset by path or name (shipped ``presets/`` folder, then the user folder).

    ``device``: 'auto' (CUDA when a GPU and onnxruntime-gpu are present, else CPU), 'cpu', 'cuda'.
    ``intra_op_threads``: threads per graph run; 1 keeps real-time audio threads predictable.
    """
    if int(intra_op_threads) < 1:
        raise ParameterError(f"intra_op_threads={intra_op_threads} must be >= 1")
    path = resolve_preset(path_or_name)
    meta, graphs = read_preset_files(path)
    sessions = []
    for member in GRAPHS:
        try:
            sess = make_session(graphs[member], device=device, intra_op_threads=intra_op_threads)
        except ParameterError:
            raise
        except Exception as exc:  # onnxruntime raises its own exception types
            raise PresetError(f"{path}: onnxruntime cannot load {member}: {exc}") from None
        stored = sess.get_modelmeta().custom_metadata_map.get(ONNX_METADATA_KEY)
        if stored is None or json.loads(stored) != json.loads(embedded_metadata(meta)):
            raise PresetError(
                f"{path}: the metadata stored inside {member} differs from {METADATA}; the preset was "
                "assembled from mismatched parts. Re-export it"
            )
        sessions.append(sess)
    match = None
    if "match" in meta:
        match = from_bytes(graphs[meta["match"]["member"]], where=f"{path}: {meta['match']['member']}")
    return Preset(path=path, metadata=meta, encoder=sessions[0], decoder=sessions[1], match=match)


# -- checking ------------------------------------------------------------------------
def compare_models(a: LatentModel, b: LatentModel, *, atol: float = 1e-4, seed: int = 0, frames: np.ndarray | None = None) -> float:
    """Max abs difference between two LatentModels (encode and decode) on ``frames [N, T, F]``
    (default: random frames); raises PresetError above ``atol``. Codes (integer outputs) must agree on at
    least 99.9% of frames."""
    if (a.kind, a.context_frames, a.features) != (b.kind, b.context_frames, b.features):
        raise PresetError(
            f"models differ in kind/context/features: {a.kind}/{a.context_frames} vs {b.kind}/{b.context_frames}"
        )
    if frames is None:
        shape = (2, a.context_frames + 8, a.features.n_bins)
        frames = np.random.default_rng(seed).normal(-6.0, 2.0, size=shape)
    x = np.asarray(frames, dtype=np.float32)
    za, zb = a.encode(x), b.encode(x)
    family = families.get(a.kind)
    worst = 0.0
    for k in family.encoder_outputs:
        if np.issubdtype(np.asarray(za[k]).dtype, np.integer):  # codes: agreement, not distance
            agree = float(np.mean(np.asarray(za[k]) == np.asarray(zb[k])))
            if agree < 0.999:
                raise PresetError(f"re-loaded preset disagrees on {agree:.1%} of codes only")
            continue
        if np.shape(za[k]) != np.shape(zb[k]):
            raise PresetError(f"re-loaded preset gives {k} of shape {np.shape(za[k])}, the model {np.shape(zb[k])}")
        worst = max(worst, float(np.max(np.abs(np.asarray(za[k]) - np.asarray(zb[k])))))
    lat = {k: np.asarray(zb[k]) for k in family.decoder_inputs}
    worst = max(worst, float(np.max(np.abs(a.decode(**lat) - np.asarray(b.decode(**lat))))))
    if not worst <= atol:
        raise PresetError(f"re-loaded preset differs from the in-memory model by {worst:.2e} > {atol:.0e}")
    return worst
