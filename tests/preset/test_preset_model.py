"""audiosym.preset.model: the typed Preset and what composes onto it (references, stored match, transposition)."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
from _fake_preset import FakePreset

from audiosym.errors import ParameterError
from audiosym.timbre.envelope import NoteEnvelope
from audiosym.timbre.match import NamedMatch
from audiosym.timbre.reference import TimbreReference


def _reference(name: str, vector, *, subharmonic: float = float("nan"), envelope=None, gain: float = 0.5):
    n_bins = 190
    return TimbreReference(name=name, vector=np.asarray(vector, np.float32), pitch_grid=np.array([40.0, 90.0]),
                           relative=np.full((2, 2 * n_bins - 1), gain, np.float32),
                           absolute=np.zeros(n_bins, np.float32), frames=50, midi_range=(40.0, 90.0),
                           subharmonic=subharmonic, envelope=envelope)


def _latents(preset, midi: float, timbre: str):
    return {preset.pitch_latent: preset.midi_to_latent(np.array([midi]))[:, None, :],
            preset.timbre_latent: preset.timbre_vector(timbre)[None, None, :]}


def test_typed_properties_say_what_the_engine_needs():
    sps, v3 = FakePreset("sps"), FakePreset("v3")
    assert (sps.kind, sps.pitch_latent, sps.timbre_latent, sps.continuous_pitch) == ("sps", "z_pitch", "z_timbre", True)
    assert (v3.kind, v3.pitch_latent, v3.timbre_latent, v3.continuous_pitch) == ("v3", "content_q", "style", False)
    assert sps.program_timbres == {73: "flute", 40: "violin", 56: "trumpet"}
    assert sps.timbre_program("violin") == 40 and sps.timbre_names == ["flute", "trumpet", "violin"]
    with pytest.raises(ParameterError, match="choose one of"):
        sps.timbre_vector("kazoo")
    with pytest.raises(dataclasses.FrozenInstanceError):
        sps.metadata = {}  # type: ignore[misc]


def test_references_compose_into_new_presets_and_leave_the_original_alone():
    base = FakePreset("sps")
    organ = _reference("ref:organ", [3.0, 3.0, 0.0, 0.0], subharmonic=1.2,
                       envelope=NoteEnvelope(np.array([40.0]), np.zeros((1, 200), np.float32)))
    one = base.with_references([organ])
    assert base.layers == () and "ref:organ" not in base.timbre_names
    assert "ref:organ" in one.timbre_names and one.timbre_program("ref:organ") == -1
    np.testing.assert_array_equal(one.timbre_vector("ref:organ"), organ.vector)
    assert one.subharmonic("ref:organ") and not one.subharmonic("flute")
    assert one.envelope("ref:organ") is organ.envelope and one.envelope("flute") is None
    lat = _latents(one, 60.0, "ref:organ")
    np.testing.assert_allclose(one.decode(**lat) - base.decode(**lat), 0.5, atol=1e-5)  # its correction, at full weight
    named = _latents(one, 60.0, "violin")
    np.testing.assert_array_equal(one.decode(**named), base.decode(**named))  # far from the reference: untouched
    with pytest.raises(ParameterError, match="already a timbre"):
        one.with_references([organ])
    corrected = one.with_references([_reference("violin", base.timbre_vector("violin"))], replace_named=True)
    assert corrected.timbre_names == one.timbre_names and len(corrected.layers) == 2
    assert not np.array_equal(corrected.decode(**named), base.decode(**named))


def test_stored_match_is_applied_once_and_layers_travel_to_worker_processes():
    flute = FakePreset("sps").timbre_vector("flute")
    stored = NamedMatch(references=[_reference("flute", flute)])
    preset = FakePreset("sps", match=stored)
    matched = preset.with_stored_match()
    assert matched.applies_stored_match and matched.with_stored_match() is matched
    assert FakePreset("sps").with_stored_match().layers == ()  # nothing stored: itself
    layers = pickle.loads(pickle.dumps([(lay.references, lay.replace_named, lay.stored) for lay in matched.layers]))
    assert [(len(refs), replace, kept) for refs, replace, kept in layers] == [(1, True, True)]


def test_transpositions_add_up_and_a_codebook_moves_by_whole_semitones(rng):
    sps = FakePreset("sps")
    frames = rng.normal(-6, 2, size=(1, sps.context_frames + 2, 190)).astype(np.float32)
    twice = sps.transposed(1.5).transposed(1.0)
    assert twice.transpose_semitones == 2.5 and sps.transpose_semitones == 0.0
    np.testing.assert_allclose(twice.input_midi(twice.encode(frames)) - sps.input_midi(sps.encode(frames)), 2.5,
                               atol=1e-3)
    with pytest.raises(ParameterError, match="whole semitones"):
        FakePreset("v3").transposed(0.5)
