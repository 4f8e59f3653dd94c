"""The typed preset: a calibrated model with named timbres, and what is composed onto it.

A :class:`Preset` is immutable. What changes what it plays composes explicitly, each step a new
Preset over the same graphs:

- :meth:`Preset.with_stored_match`: the named timbres' match corrections stored in the file
  (:mod:`audiosym.timbre.match`);
- :meth:`Preset.with_references`: timbres measured from recordings, or corrections of named
  timbres (:class:`audiosym.timbre.layer.TimbreLayer`, stacked in order);
- :meth:`Preset.transposed`: the encoder reports the input's pitch some semitones higher.

The engine, resynthesis and timbre measurement read its typed properties (pitch and timbre
latent names, continuous or discrete pitch, the program -> timbre map, note envelopes); the
raw ``metadata`` is the file's, unchanged by composition. Torch-free; the graphs run in
:class:`GraphSession` objects (onnxruntime sessions, made by :func:`audiosym.preset.session.load_preset`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike

from audiosym import families
from audiosym.dsp.features import FeatureConfig
from audiosym.errors import ParameterError
from audiosym.families.base import Family, PitchMap
from audiosym.timbre.band import BandProfile
from audiosym.timbre.envelope import NoteEnvelope
from audiosym.timbre.layer import TimbreLayer, TimbreTable
from audiosym.timbre.match import NamedMatch
from audiosym.timbre.reference import SUBHARMONIC_RATIO, TimbreReference


class GraphSession(Protocol):
    """The part of ``onnxruntime.InferenceSession`` a preset uses."""

    def run(self, output_names: list[str], input_feed: dict[str, np.ndarray]) -> list[np.ndarray]: ...

    def get_providers(self) -> list[str]: ...


@dataclass(frozen=True, eq=False)
class Preset:
    """A loaded preset; a :class:`audiosym.families.base.LatentModel` (see the module docstring).

    ``encode(frames [N, T, n_bins]) -> {name: [N, T', ...]}`` with ``T' = T - context_frames + 1``
    (the family's ``encoder_outputs``); ``decode(**latents) -> logmag [N, T', n_bins]`` (its
    ``decoder_inputs``). ``match``: the stored match data (None: the file has none).
    """

    path: Path
    metadata: dict[str, Any] = field(repr=False)
    encoder: GraphSession = field(repr=False)
    decoder: GraphSession = field(repr=False)
    match: NamedMatch | None = field(default=None, repr=False)
    layers: tuple[TimbreLayer, ...] = field(default=(), repr=False)
    transpose_semitones: float = 0.0
    family: Family = field(init=False, repr=False)
    pitch_map: PitchMap = field(init=False, repr=False)
    features: FeatureConfig = field(init=False, repr=False)

    def __post_init__(self) -> None:
        family = families.get(str(self.metadata["kind"]))
        object.__setattr__(self, "family", family)
        object.__setattr__(self, "pitch_map", family.pitch_map(self.metadata["pitch_control"]))
        object.__setattr__(self, "features", FeatureConfig.from_dict(self.metadata["features"]))

    # ------------------------------------------------------------------ the contract
    @property
    def name(self) -> str:
        return str(self.metadata["name"])

    @property
    def kind(self) -> str:
        """The model family's name (``metadata["kind"]``)."""
        return self.family.name

    @property
    def context_frames(self) -> int:
        return int(self.metadata["context_frames"])

    @property
    def latency_samples(self) -> int:
        """Analysis look-behind of the model path, samples at ``features.sample_rate``, as the
        file declares it (:func:`audiosym.preset.format.latency_samples`)."""
        return int(self.metadata["latency_samples"])

    @property
    def midi_range(self) -> tuple[int, int]:
        lo, hi = self.metadata["midi_range"]
        return int(lo), int(hi)

    @property
    def pitch_control(self) -> dict[str, Any]:
        return dict(self.metadata["pitch_control"])

    @property
    def providers(self) -> list[str]:
        return list(self.encoder.get_providers())

    # ------------------------------------------------------------------ pitch
    @property
    def pitch_latent(self) -> str:
        """The decoder input that carries pitch (SPS ``z_pitch``, V3 ``content_q``)."""
        return self.family.pitch_latent

    @property
    def timbre_latent(self) -> str:
        """The decoder input that carries timbre (SPS ``z_timbre``, V3 ``style``)."""
        return self.family.timbre_latent

    @property
    def continuous_pitch(self) -> bool:
        """True when any pitch has a latent (bends, microtones), False when only the calibrated
        notes do (a codebook)."""
        return self.pitch_map.continuous

    def midi_to_latent(self, midi: ArrayLike) -> np.ndarray:
        """MIDI pitch (float or ``[...]``) -> pitch latent ``[..., D]`` float32 through the
        calibration, e.g. ``z_pitch = a + b * midi`` (SPS) or the atom of the nearest pitch (V3)."""
        return self.pitch_map.midi_to_latent(midi)

    def latent_to_midi(self, z: ArrayLike) -> np.ndarray:
        """Pitch latent (or the family's ``pitch_readout`` output, e.g. V3 ``code``) -> MIDI
        ``[...]`` float64, NaN where it stands for no pitch."""
        return self.pitch_map.latent_to_midi(z)

    def input_midi(self, encoded: dict[str, np.ndarray]) -> np.ndarray:
        """The input's pitch (MIDI ``[N, T']`` float64, NaN: none) read from :meth:`encode`'s outputs."""
        return self.latent_to_midi(encoded[self.family.pitch_readout])

    # ------------------------------------------------------------------ timbres
    @property
    def _timbres(self) -> TimbreTable:
        return self.layers[-1].timbres if self.layers else self.metadata["timbres"]

    @property
    def timbre_names(self) -> list[str]:
        return sorted(self._timbres)

    @property
    def default_timbre(self) -> str:
        return str(self.metadata["default_timbre"])

    @property
    def program_timbres(self) -> dict[int, str]:
        """GM program -> the first timbre of that program (what a MIDI program change selects);
        timbres measured from recordings are under program -1."""
        out: dict[int, str] = {}
        for name, info in self._timbres.items():
            out.setdefault(int(info["program"]), name)
        return out

    def timbre_program(self, name: str) -> int:
        """The GM program a timbre was measured on (-1: a recording)."""
        self._check_timbre(name)
        return int(self._timbres[name]["program"])

    def timbre_vector(self, name: str | None = None) -> np.ndarray:
        """The timbre latent (SPS ``z_timbre`` / V3 ``style``) of a named timbre, ``[D]`` float32
        (the default timbre if None): a reference's own vector, else the preset's mean vector."""
        name = self.default_timbre if name is None else name
        for layer in reversed(self.layers):
            vector = layer.vector(name)
            if vector is not None:
                return vector
        self._check_timbre(name)
        return np.asarray(self.metadata["timbres"][name]["vector"], dtype=np.float32)

    def _check_timbre(self, name: str) -> None:
        if name not in self._timbres:
            raise ParameterError(f"timbre {name!r} is not in preset {self.name!r}; choose one of {self.timbre_names}")

    def envelope(self, name: str | None) -> NoteEnvelope | None:
        """The note envelope of a timbre (:class:`audiosym.timbre.envelope.NoteEnvelope`), or None:
        the one stored in the file where it has one (named timbres), else the one measured on a
        reference's recording."""
        env = None if self.match is None or name is None else self.match.envelopes.get(name)
        for layer in self.layers:
            if env is not None:
                break
            env = layer.envelope(name)
        return env

    def band(self, name: str | None) -> BandProfile | None:
        """The band profile of a timbre (:mod:`audiosym.timbre.band`: how its spectrum goes on
        above the model's band): a named timbre's stored in the file, else one measured on a
        reference's recording (at 32 kHz or more); None: neither (a preset exported before band
        profiles: ``audiosym export OLD.asym --out NEW.asym`` adds them)."""
        if name is None:
            return None
        for layer in reversed(self.layers):
            found = layer.band(name)
            if found is not None:
                return found
        return None if self.match is None else self.match.bands.get(name)

    @property
    def has_band(self) -> bool:
        """Whether any timbre has a band profile."""
        return (self.match is not None and bool(self.match.bands)) or any(layer.has_band for layer in self.layers)

    def subharmonic(self, name: str | None) -> bool:
        """Whether a timbre's partials are the harmonics of f0 / 2 (an organ's 16' stop): a
        reference's own measurement, else the one stored at export
        (:func:`audiosym.timbre.match.measure_notes`)."""
        for layer in reversed(self.layers):
            said = layer.subharmonic(name)
            if said is not None:
                return said
        return self.match is not None and name is not None and \
            self.match.subharmonic.get(name, 0.0) >= SUBHARMONIC_RATIO

    # ------------------------------------------------------------------ the graphs
    def encode(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        frames = np.asarray(frames, dtype=np.float32)
        f = self.features.n_bins
        if frames.ndim != 3 or frames.shape[2] != f or frames.shape[1] < self.context_frames:
            raise ParameterError(
                f"frames has shape {frames.shape}; expected [N, T, {f}] with T >= context_frames={self.context_frames}"
            )
        names = self.family.encoder_outputs
        out = dict(zip(names, self.encoder.run(list(names), {"frames": frames})))
        if self.transpose_semitones:
            out = self.pitch_map.transpose(out, self.transpose_semitones)
        return out

    def decode(self, **latents: np.ndarray) -> np.ndarray:
        names = self.family.decoder_inputs
        if set(latents) != set(names):
            raise ParameterError(f"decode() of a {self.kind!r} preset takes exactly {list(names)}, got {sorted(latents)}")
        out = self.decoder.run(["logmag"], {n: np.asarray(latents[n], dtype=np.float32) for n in names})[0]
        if any(layer.table is not None for layer in self.layers):
            timbre = np.asarray(latents[self.timbre_latent], dtype=np.float32)  # [N, T, D]
            midi = np.asarray(self.latent_to_midi(np.asarray(latents[self.pitch_latent], dtype=np.float32)),
                              dtype=np.float64)  # [N, T]
            for layer in self.layers:
                out = layer.correct(out, timbre, midi)
        return out

    # ------------------------------------------------------------------ composition
    @property
    def applies_stored_match(self) -> bool:
        """Whether :meth:`with_stored_match` has been applied."""
        return any(layer.stored for layer in self.layers)

    def with_references(self, references: Sequence[TimbreReference], *, replace_named: bool = False) -> Preset:
        """This preset plus timbres measured from recordings (each named ``ref.name``, which
        must be new), or with ``replace_named`` corrections of the named timbres of the same
        names (:func:`audiosym.timbre.match.named_corrections`). See :mod:`audiosym.timbre.layer`."""
        layer = TimbreLayer.build(self._timbres, references, features=self.features, preset_name=self.name,
                                  replace_named=replace_named)
        return replace(self, layers=(*self.layers, layer))

    def with_stored_match(self) -> Preset:
        """This preset whose named timbres carry the match corrections stored in the file; itself
        when the file stores none or they are applied already."""
        if self.match is None or not self.match.references or self.applies_stored_match:
            return self
        layer = TimbreLayer.build(self._timbres, self.match.references, features=self.features,
                                  preset_name=self.name, replace_named=True, stored=True)
        return replace(self, layers=(*self.layers, layer))

    def transposed(self, semitones: float) -> Preset:
        """This preset whose encoder reports the input's pitch ``semitones`` higher (lower if
        negative; transpositions add up). Only the input's own pitch moves (the engine passes
        it through when no MIDI note is held, and offline pitch tracking reads it); MIDI pitch
        goes through :meth:`midi_to_latent`, unchanged. How the pitch latent moves is the
        family's (:meth:`audiosym.families.base.PitchMap.transpose`): SPS shifts ``z_pitch``
        exactly and continuously; V3 moves each frame to the atom of the nearest pitch (whole
        semitones only, ParameterError otherwise; saturating beyond the atoms' range)."""
        self.pitch_map.check_transpose(float(semitones))
        return replace(self, transpose_semitones=self.transpose_semitones + float(semitones))
