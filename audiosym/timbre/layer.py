"""Timbres added to a preset: references measured from recordings, or corrections of its named timbres.

A :class:`TimbreLayer` is one :meth:`audiosym.preset.model.Preset.with_references` (or
``with_stored_match``) step: it adds each reference as a timbre (named ``ref.name``, GM program
-1) or, with ``replace_named``, corrects the preset's timbre of that name; and it corrects decoded
frames near each reference's vector by the reference's match correction (:class:`MatchTable`).
A row with timbre vector ``v`` gets a reference's correction in proportion to
``w = max(0, 1 - |v - v_ref| / d)``, ``d`` the distance from ``v_ref`` to the nearest other timbre:
1 on the reference itself, 0 once a CC1 morph reaches another timbre. Layers stack: each one
sees the timbres of the layers under it, and corrects what they decoded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from audiosym.dsp.features import FeatureConfig
from audiosym.errors import ParameterError
from audiosym.timbre.band import BandProfile
from audiosym.timbre.envelope import NoteEnvelope
from audiosym.timbre.match import MatchTable
from audiosym.timbre.reference import SUBHARMONIC_RATIO, TimbreReference

#: ``metadata["timbres"]``-style table: name -> {"program", "vector", ...}
TimbreTable = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True, eq=False)
class TimbreLayer:
    """One set of references on a preset (see the module docstring).

    ``timbres``: the preset's timbre table with this layer (its own entries last, in order);
    ``table``: the corrections applied to decoded frames (None without references); ``stored``:
    the references are the preset's own stored match data (:class:`audiosym.timbre.match.NamedMatch`).
    """

    references: tuple[TimbreReference, ...]
    replace_named: bool
    stored: bool
    timbres: dict[str, dict[str, Any]]
    table: MatchTable | None

    @classmethod
    def build(cls, under: TimbreTable, references: Sequence[TimbreReference], *, features: FeatureConfig,
              preset_name: str, replace_named: bool = False, stored: bool = False) -> TimbreLayer:
        """The layer of ``references`` on a preset whose timbres are ``under``; ParameterError when
        a reference is named like a timbre there (unless ``replace_named``: then it corrects it)."""
        timbres = {name: dict(info) for name, info in under.items()}
        for ref in references:
            if ref.name in timbres and replace_named:  # a correction of the named timbre itself
                timbres[ref.name] = {**timbres[ref.name], "vector": [float(x) for x in ref.vector]}
                continue
            if ref.name in timbres:
                raise ParameterError(
                    f"reference timbre name {ref.name!r} is already a timbre of preset {preset_name!r}; "
                    "give the reference another name"
                )
            timbres[ref.name] = {"program": -1, "vector": [float(x) for x in ref.vector], "trained": False,
                                 "source": ref.source, "frames": ref.frames}
        vectors = {n: np.asarray(t["vector"], dtype=np.float32) for n, t in timbres.items()}
        scales = []
        for ref in references:
            others = [np.linalg.norm(v - ref.vector) for n, v in vectors.items() if n != ref.name]
            scales.append(max(min(others) if others else 1.0, 1e-6))
        table = MatchTable(list(references), scales, features) if references else None
        return cls(tuple(references), replace_named, stored, timbres, table)

    def vector(self, name: str) -> np.ndarray | None:
        """``[D]`` float32 timbre vector of the reference called ``name``; None: not one of them."""
        for ref in self.references:
            if name == ref.name:
                return ref.vector.astype(np.float32)
        return None

    def subharmonic(self, name: str | None) -> bool | None:
        """Whether the reference called ``name`` sounds an f0 / 2 series, by its own measurement;
        None: not one of them, or (``replace_named``) one whose measurement was not made."""
        for ref in self.references:
            if name == ref.name and not (self.replace_named and np.isnan(ref.subharmonic)):
                return bool(ref.subharmonic >= SUBHARMONIC_RATIO)
        return None

    def envelope(self, name: str | None) -> NoteEnvelope | None:
        """The note envelope measured on the recording of the reference called ``name``, or None."""
        return next((ref.envelope for ref in self.references if ref.name == name), None)

    def band(self, name: str | None) -> BandProfile | None:
        """The band profile measured on the recording of the reference called ``name``, or None."""
        return next((ref.band for ref in self.references if ref.name == name), None)

    @property
    def has_band(self) -> bool:
        return any(ref.band is not None for ref in self.references)

    def correct(self, logmag: np.ndarray, timbre: np.ndarray, midi: np.ndarray) -> np.ndarray:
        """Decoded ``logmag [N, T, n_bins]`` with the corrections of rows whose timbre vector
        ``timbre [N, T, D]`` is near a reference, at pitches ``midi [N, T]``."""
        return logmag if self.table is None else self.table.apply(logmag, timbre, midi)
