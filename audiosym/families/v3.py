"""The V3 family: discrete pitch codes and timbre styles, ``z = (content in a K-atom codebook, style [D])``.

Latents (``T' = T - context_frames + 1``): encode -> ``content [N, T', Dc]`` (before quantisation),
``code [N, T']`` int64, ``content_q [N, T', Dc]`` (= ``codebook[code]``), ``style [N, T', Ds]``;
decode(content_q, style) -> ``logmag [N, T', n_bins]``. Its pitch control is ``codebook``: export
maps atoms to MIDI pitches by Hungarian matching (:class:`CodebookPitch`), so only those notes
have a latent: no bends, whole-semitone transposition. Training: ``train/v3/``; evaluation:
:mod:`audiosym.eval.v3`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

from audiosym.data.plans import V3_HELDOUT_PROGRAMS, V3_TRAIN_PROGRAMS, timbre_name
from audiosym.dsp.pitch import midi_name
from audiosym.errors import ParameterError, PresetError
from audiosym.families.base import CalibrationSetup, LatentModel, RunSetting
from audiosym.families.calibration import (
    encode_notes,
    named_timbres,
    note_table,
    recorded_notes,
    setup_from,
)


@dataclass(frozen=True, eq=False)
class CodebookPitch:
    """Atom ``k`` of ``codebook [K, Dc]`` plays MIDI pitch ``atom_midi[k]`` (-1: none)."""

    atom_midi: np.ndarray  # [K] int64
    codebook: np.ndarray  # [K, Dc] float32

    @classmethod
    def from_metadata(cls, pitch_control: Mapping[str, Any]) -> CodebookPitch:
        return cls(np.asarray(pitch_control["atom_midi"], dtype=np.int64),
                   np.asarray(pitch_control["codebook"], dtype=np.float32))

    @property
    def continuous(self) -> bool:
        return False

    def midi_to_latent(self, midi: ArrayLike) -> np.ndarray:
        """MIDI pitch (float or ``[...]``) -> ``content_q [..., Dc]`` of the atom mapped to the
        nearest pitch."""
        m = np.asarray(midi, dtype=np.float64)
        mapped = np.flatnonzero(self.atom_midi >= 0)
        nearest = mapped[np.argmin(np.abs(self.atom_midi[mapped][None, :] - m.reshape(-1, 1)), axis=1)]
        return self.codebook[nearest].reshape(*m.shape, self.codebook.shape[1])

    def latent_to_midi(self, z: ArrayLike) -> np.ndarray:
        """``code [...]`` (int) or ``content/content_q [..., Dc]`` (nearest atom) -> MIDI ``[...]``
        float64, NaN for unmapped atoms."""
        z = np.asarray(z)
        if np.issubdtype(z.dtype, np.integer):
            code = z
        else:
            if z.shape[-1:] != self.codebook.shape[1:]:
                raise ParameterError(f"content has shape {z.shape}; expected [..., {self.codebook.shape[1]}]")
            d = ((z[..., None, :].astype(np.float32) - self.codebook) ** 2).sum(-1)
            code = d.argmin(-1)
        midi = self.atom_midi[code].astype(np.float64)
        return np.where(midi >= 0, midi, np.nan)

    def check_transpose(self, semitones: float) -> None:
        if semitones != round(semitones):
            raise ParameterError(
                f"transpose_semitones={semitones:g}: a codebook (V3) preset has discrete pitches; use whole semitones"
            )

    def transpose(self, encoded: dict[str, np.ndarray], semitones: float) -> dict[str, np.ndarray]:
        """Each frame's atom replaced by the atom mapped to the pitch nearest ``atom_midi[code] +
        semitones``; unmapped atoms stay; beyond the atoms' range the shift saturates."""
        out = dict(encoded)
        code = np.asarray(out["code"])
        mapped = np.flatnonzero(self.atom_midi >= 0)
        target = self.atom_midi[code] + int(round(semitones))
        nearest = mapped[np.argmin(np.abs(self.atom_midi[mapped][None, :] - target.reshape(-1, 1)), axis=1)]
        new_code = np.where(self.atom_midi[code] >= 0, nearest.reshape(code.shape), code)
        out["code"], out["content_q"] = new_code, self.codebook[new_code]
        return out


@runtime_checkable
class CodebookModel(LatentModel, Protocol):
    """A V3 model that can be calibrated: it shows its codebook."""

    def codebook(self) -> np.ndarray:
        """``[K, Dc]`` float32: atom ``k`` is what ``content_q`` is where ``code == k``."""
        ...


def hungarian_atoms(code: np.ndarray, pitch: np.ndarray, n_atoms: int, pitch_limits: tuple[int, int]) -> np.ndarray:
    """``atom_midi [n_atoms]``: each atom's MIDI pitch by maximum-weight one-to-one matching of
    the atom x pitch frame counts of ``code [M]`` at ``pitch [M]``; -1 for atoms left unmatched."""
    from scipy.optimize import linear_sum_assignment  # lazy: ~0.5 s; --help imports families

    pitches = np.arange(pitch_limits[0], pitch_limits[1] + 1)
    counts = np.zeros((n_atoms, len(pitches)))
    np.add.at(counts, (code, pitch - pitches[0]), 1)
    rows, cols = linear_sum_assignment(-counts)
    atom_midi = np.full(n_atoms, -1, dtype=np.int64)
    for r, c in zip(rows, cols):
        if counts[r, c] > 0:
            atom_midi[r] = pitches[c]
    return atom_midi


class V3Family:
    """The V3 :class:`audiosym.families.base.Family` (see the module docstring)."""

    name: str = "v3"
    pitch_control_type: str = "codebook"
    encoder_outputs: tuple[str, ...] = ("content", "code", "content_q", "style")
    decoder_inputs: tuple[str, ...] = ("content_q", "style")
    pitch_latent: str = "content_q"
    timbre_latent: str = "style"
    pitch_readout: str = "code"
    evaluation: str = "audiosym.eval.v3"

    def pitch_map(self, pitch_control: Mapping[str, Any]) -> CodebookPitch:
        return CodebookPitch.from_metadata(pitch_control)

    def check_metadata(self, meta: Mapping[str, Any], *, where: str) -> None:
        """One atom_midi entry per codebook vector, each vector as long as ``content_q``, and at
        least one atom mapped to a pitch."""
        pc = meta["pitch_control"]
        if len(pc["atom_midi"]) != len(pc["codebook"]):
            raise PresetError(
                f"{where}: pitch_control has {len(pc['atom_midi'])} atom_midi entries but "
                f"{len(pc['codebook'])} codebook vectors; they must match"
            )
        outputs = {t["name"]: t["shape"] for t in meta["latent"]["encoder_outputs"]}
        dim = outputs[self.pitch_latent][-1]
        if {len(row) for row in pc["codebook"]} != {dim}:
            raise PresetError(f"{where}: codebook vectors must have {dim} dims like {self.pitch_latent}")
        if max(pc["atom_midi"]) < 0:
            raise PresetError(f"{where}: pitch_control.atom_midi maps no atom to a MIDI pitch; the preset cannot be played")

    def describe_pitch_control(self, meta: Mapping[str, Any]) -> list[str]:
        pc = meta["pitch_control"]
        mapped = [m for m in pc["atom_midi"] if m >= 0]
        out = [f"codebook: {len(pc['atom_midi'])} atoms, {len(mapped)} mapped to MIDI pitches "
               f"({', '.join(midi_name(m) for m in sorted(mapped)[:6])}{' ...' if len(mapped) > 6 else ''})"]
        if "accuracy" in pc:
            out.append(f"one-to-one accuracy {pc['accuracy']:.1%} (training soundfont)")
        return out

    def calibration_setup(self, setting: RunSetting) -> CalibrationSetup:
        """The run's training programs and pitch limits (default MIDI 60..83); its held-out
        programs become named timbres too (not trained on)."""
        programs = tuple(setting("train_programs", V3_TRAIN_PROGRAMS))
        extra = tuple(p for p in setting("heldout_programs", V3_HELDOUT_PROGRAMS) if p not in programs)
        return setup_from(setting, programs=programs, extra_programs=extra,
                          pitch_limits=tuple(setting("pitch_limits", (60, 83))),  # type: ignore[arg-type]
                          skip_frames=int(setting("sustain_start_frame", 8)))

    def calibrate(self, model: LatentModel, setup: CalibrationSetup, *, progress: bool = False) -> dict[str, Any]:
        """:func:`hungarian_atoms` on sustained frames, the model's codebook; the default timbre
        is the best-matched trained instrument."""
        if not isinstance(model, CodebookModel):
            raise ParameterError("a V3 model is calibrated with its codebook, but this model has no codebook()")
        if setup.audio:
            return self._calibrate_recorded(model, setup, progress=progress)
        table = note_table(setup, setup.programs, model.features, progress=progress)
        z = encode_notes(model, table, setup.skip_frames)
        codebook = np.asarray(model.codebook(), dtype=np.float32)
        seen = z["code"].reshape(-1)
        if not np.allclose(codebook[seen], z["content_q"].reshape(len(seen), -1), atol=1e-4):
            raise ValueError("content_q is not codebook[code]: the exported codebook would not match the encoder")
        atom_midi = hungarian_atoms(seen, np.repeat(table.pitch, z["code"].shape[1]), len(codebook),
                                    setup.pitch_limits)
        hit = atom_midi[z["code"]] == table.pitch[:, None]  # [N, S]
        per_timbre = {timbre_name(int(p)): round(float(hit[table.program == p].mean()), 4)
                      for p in sorted(set(int(p) for p in table.program))}
        mapped = atom_midi[atom_midi >= 0]
        program, styles = table.program, z["style"]
        if setup.extra_programs:
            extra = note_table(setup, setup.extra_programs, model.features, progress=progress)
            program = np.concatenate([program, extra.program])
            styles = np.concatenate([styles, encode_notes(model, extra, setup.skip_frames)["style"]])
        return {
            "pitch_control": {"type": "codebook", "atom_midi": [int(m) for m in atom_midi],
                              "codebook": [[float(x) for x in row] for row in codebook],
                              "accuracy": float(hit.mean())},
            "midi_range": [int(mapped.min()), int(mapped.max())] if len(mapped) else list(setup.pitch_limits),
            "timbres": named_timbres(program, styles, set(setup.programs)),
            "default_timbre": max(per_timbre, key=lambda name: per_timbre[name]),  # best-matched instrument
            "calibration": {
                "method": "Hungarian matching of atoms to MIDI pitches on sustained frames",
                "notes": int(len(table)), "programs": list(setup.programs),
                "atoms_used": int(len(np.unique(seen))), "atoms_mapped": int(len(mapped)),
                "one_to_one_accuracy_per_timbre": per_timbre,
            },
        }


    def _calibrate_recorded(self, model: CodebookModel, setup: CalibrationSetup, *, progress: bool) -> dict[str, Any]:
        """:func:`hungarian_atoms` on the sustained frames of the training recordings, against pyin
        pitches rounded to semitones; the timbres are the recording folders."""
        notes = recorded_notes(setup, model.features, progress=progress)
        z = encode_notes(model, notes, setup.skip_frames)  # type: ignore[arg-type]
        codebook = np.asarray(model.codebook(), dtype=np.float32)
        valid = notes.valid(z["code"].shape[1], max(setup.skip_frames, model.context_frames - 1))
        semitone = np.round(notes.pitch).astype(np.int64)
        limits = (int(semitone.min()), int(semitone.max()))
        label = np.broadcast_to(semitone[:, None], z["code"].shape)
        atom_midi = hungarian_atoms(z["code"][valid], label[valid], len(codebook), limits)
        hit = (atom_midi[z["code"]] == label)
        per_timbre = {name: round(float(hit[notes.program == t][valid[notes.program == t]].mean()), 4)
                      for t, name in enumerate(notes.names) if (notes.program == t).any()}
        mapped = atom_midi[atom_midi >= 0]
        return {
            "pitch_control": {"type": "codebook", "atom_midi": [int(m) for m in atom_midi],
                              "codebook": [[float(x) for x in row] for row in codebook],
                              "accuracy": float(hit[valid].mean())},
            "midi_range": [int(mapped.min()), int(mapped.max())] if len(mapped) else list(limits),
            "timbres": named_timbres(notes.program, z["style"], set(range(len(notes.names))), names=notes.names),
            "default_timbre": max(per_timbre, key=lambda name: per_timbre[name]),
            "calibration": {
                "method": "Hungarian matching of atoms to MIDI pitches (pyin on the training recordings, rounded) "
                          "on sustained frames",
                "notes": int(len(notes)), "programs": [], "atoms_used": int(len(np.unique(z["code"][valid]))),
                "atoms_mapped": int(len(mapped)), "one_to_one_accuracy_per_timbre": per_timbre,
                "recordings": notes.source,
            },
        }


V3 = V3Family()
