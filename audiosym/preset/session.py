"""Presets played: a preset file's two graphs as onnxruntime sessions (:class:`Preset`), torch-free.

A preset is a trained model a musician can share: the two ONNX graphs, the
real-time contract (features, context frames, latency), the calibration that
turns MIDI pitch into a latent (``linear`` for SPS, ``codebook`` for V3) and
named timbres. The file itself (one zip holding ``metadata.json``, ``encoder.onnx``,
``decoder.onnx`` and optionally ``match.npz``; where presets live; the metadata schema and the
hashes checked on load) is :mod:`audiosym.preset.format`.

:class:`Preset` implements :class:`audiosym.families.base.LatentModel` with onnxruntime
sessions; this module never imports torch. Presets are written by
:func:`export.save.save_preset` (export side: it needs the ``onnx`` package).
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audiosym import families
from audiosym.dsp.features import FeatureConfig
from audiosym.errors import ParameterError, PresetError
from audiosym.families.base import Family, PitchMap
from audiosym.preset.format import (
    GRAPHS,
    METADATA,
    ONNX_METADATA_KEY,
    embedded_metadata,
    read_preset_files,
    resolve_preset,
)


def _cuda_present() -> bool:
    # onnxruntime-gpu lists CUDAExecutionProvider even without a GPU and then logs loud errors
    # while falling back; only ask for it when a driver is there.
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")


def _providers(device: str) -> list[str]:
    import onnxruntime as ort

    if device not in ("auto", "cpu", "cuda"):
        raise ParameterError(f"device={device!r} must be auto, cpu or cuda")
    have = ort.get_available_providers()
    if device == "cuda" and "CUDAExecutionProvider" not in have:
        raise ParameterError("device='cuda' was asked for but onnxruntime has no CUDAExecutionProvider; use device='cpu'")
    if device == "cuda" or (device == "auto" and "CUDAExecutionProvider" in have and _cuda_present()):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


@dataclass
class Preset:
    """A loaded preset: a :class:`audiosym.families.base.LatentModel` run by onnxruntime.

    ``encode(frames [N, T, n_bins]) -> dict`` with time length ``T' = T - context_frames + 1``;
    ``decode(**latents) -> logmag [N, T', n_bins]``. See audiosym.families.base for the layout.
    """

    path: Path
    metadata: dict[str, Any]
    encoder: Any  # onnxruntime.InferenceSession
    decoder: Any
    match: Any = None  # audiosym.timbre.match.NamedMatch: stored corrections and envelopes (None: not stored)

    @property
    def name(self) -> str:
        return str(self.metadata["name"])

    @property
    def kind(self) -> str:
        return str(self.metadata["kind"])

    @property
    def features(self) -> FeatureConfig:
        return FeatureConfig.from_dict(self.metadata["features"])

    @property
    def context_frames(self) -> int:
        return int(self.metadata["context_frames"])

    @property
    def latency_samples(self) -> int:
        """Analysis look-behind of the model path at ``features.sample_rate``:
        ``n_fft - hop_length + (context_frames - 1) * hop_length`` samples between the oldest
        input sample an output frame depends on and the end of the hop that completes it."""
        return int(self.metadata["latency_samples"])

    @property
    def midi_range(self) -> tuple[int, int]:
        lo, hi = self.metadata["midi_range"]
        return int(lo), int(hi)

    @property
    def pitch_control(self) -> dict[str, Any]:
        return dict(self.metadata["pitch_control"])

    @property
    def timbre_names(self) -> list[str]:
        return sorted(self.metadata["timbres"])

    @property
    def default_timbre(self) -> str:
        return str(self.metadata["default_timbre"])

    @property
    def providers(self) -> list[str]:
        return list(self.encoder.get_providers())

    def timbre_vector(self, name: str | None = None) -> np.ndarray:
        """Mean z_timbre (SPS) / style (V3) of a named timbre, ``[D]`` float32 (default timbre if None)."""
        name = self.default_timbre if name is None else name
        timbres = self.metadata["timbres"]
        if name not in timbres:
            raise ParameterError(f"timbre {name!r} is not in preset {self.name!r}; choose one of {sorted(timbres)}")
        return np.asarray(timbres[name]["vector"], dtype=np.float32)

    def envelope(self, name: str | None):
        """The stored note envelope (:class:`audiosym.timbre.match.NoteEnvelope`) of a named timbre, or None."""
        return None if self.match is None or name is None else self.match.envelopes.get(name)

    def subharmonic(self, name: str | None) -> bool:
        """Whether the named timbre's partials are the harmonics of f0 / 2 (an organ's 16' stop),
        by the measurement stored at export (``audiosym.timbre.match.measure_notes``)."""
        from audiosym.timbre.match import SUBHARMONIC_RATIO

        return self.match is not None and name is not None and \
            self.match.subharmonic.get(name, 0.0) >= SUBHARMONIC_RATIO

    @property
    def family(self) -> Family:
        """The model family (:mod:`audiosym.families`) of this preset's ``kind``."""
        return families.get(self.kind)

    @functools.cached_property
    def pitch_map(self) -> PitchMap:
        """The calibration of ``metadata["pitch_control"]`` (:meth:`Family.pitch_map`)."""
        return self.family.pitch_map(self.metadata["pitch_control"])

    @property
    def continuous_pitch(self) -> bool:
        """True when any pitch has a latent (``linear``: bends, microtones), False when only the
        calibrated notes do (``codebook``)."""
        return self.pitch_map.continuous

    def midi_to_latent(self, midi) -> np.ndarray:
        """MIDI pitch (float or array ``[...]``) -> pitch latent ``[..., D]`` (the family's
        ``pitch_latent``), e.g. ``z_pitch = a + b * midi`` (SPS) or the atom mapped to the
        nearest pitch (V3)."""
        return self.pitch_map.midi_to_latent(midi)

    def latent_to_midi(self, z) -> np.ndarray:
        """Pitch latent (or the family's ``pitch_readout`` output, e.g. V3 ``code``) -> MIDI pitch
        ``[...]`` float, NaN where it stands for no pitch."""
        return self.pitch_map.latent_to_midi(z)

    def input_midi(self, encoded: dict[str, np.ndarray]) -> np.ndarray:
        """The input's pitch (MIDI, ``[N, T']`` float, NaN: none) read from encoder outputs."""
        return self.latent_to_midi(encoded[self.family.pitch_readout])

    def encode(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        frames = np.asarray(frames, dtype=np.float32)
        f = self.features.n_bins
        if frames.ndim != 3 or frames.shape[2] != f or frames.shape[1] < self.context_frames:
            raise ParameterError(
                f"frames has shape {frames.shape}; expected [N, T, {f}] with T >= context_frames={self.context_frames}"
            )
        names = self.family.encoder_outputs
        return dict(zip(names, self.encoder.run(list(names), {"frames": frames})))

    def decode(self, **latents: np.ndarray) -> np.ndarray:
        names = self.family.decoder_inputs
        if set(latents) != set(names):
            raise ParameterError(f"decode() of a {self.kind!r} preset takes exactly {list(names)}, got {sorted(latents)}")
        return self.decoder.run(["logmag"], {n: np.asarray(latents[n], dtype=np.float32) for n in names})[0]


def make_session(onnx_bytes: bytes, *, device: str = "auto", intra_op_threads: int = 1):
    """An onnxruntime InferenceSession as presets use it: all graph optimisations, ``intra_op_threads``
    threads (1 keeps a real-time audio thread predictable), one inter-op thread, quiet logs."""
    import onnxruntime as ort

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
        from audiosym.timbre.match import from_bytes

        match = from_bytes(graphs[meta["match"]["member"]], where=f"{path}: {meta['match']['member']}")
    return Preset(path=path, metadata=meta, encoder=sessions[0], decoder=sessions[1], match=match)


# -- checking ------------------------------------------------------------------------
def compare_models(a, b, *, atol: float = 1e-4, seed: int = 0, frames: np.ndarray | None = None) -> float:
    """Max abs difference between two LatentModels (encode and decode) on ``frames [N, T, F]``
    (default: random frames); raises PresetError above ``atol``. Codes (int) must agree on at
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
