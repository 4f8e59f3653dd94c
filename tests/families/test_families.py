"""Model families: the registry, and what each family says about its latents and calibration."""

from __future__ import annotations

import numpy as np
import pytest

from audiosym import families
from audiosym.errors import ParameterError, PresetError
from audiosym.families.sps import SPS, LinearPitch
from audiosym.families.v3 import V3, CodebookPitch


def test_the_registry_knows_sps_and_v3_and_refuses_unknown_or_clashing_names():
    assert {"sps", "v3"} <= set(families.names())
    assert families.get("sps") is SPS and families.get("v3") is V3
    with pytest.raises(ParameterError, match="'rave' is unknown; registered families: .*sps.*v3"):
        families.get("rave")
    assert families.register(SPS) is SPS  # the same family again: nothing changes

    class Impostor:
        name = "sps"

    with pytest.raises(ParameterError, match="already registered"):
        families.register(Impostor())  # type: ignore[arg-type]


@pytest.mark.parametrize("family", [SPS, V3], ids=["sps", "v3"])
def test_a_family_names_its_pitch_and_timbre_latents_among_its_graph_names(family):
    for name in (family.pitch_latent, family.timbre_latent):
        assert name in family.encoder_outputs and name in family.decoder_inputs
    assert family.pitch_readout in family.encoder_outputs


def test_linear_pitch_round_trips_and_transposes_exactly():
    pitch = LinearPitch(a=-3.0, b=0.05)
    midi = np.array([[60.0, 61.5], [72.25, 40.0]])
    z = pitch.midi_to_latent(midi)
    assert z.shape == (2, 2, 1) and z.dtype == np.float32 and pitch.continuous
    np.testing.assert_allclose(pitch.latent_to_midi(z), midi, atol=1e-4)
    with pytest.raises(ParameterError, match=r"expected \[..., 1\]"):
        pitch.latent_to_midi(np.zeros((3, 2)))
    moved = pitch.transpose({"z_pitch": z, "z_timbre": np.ones((2, 2, 4), np.float32)}, 2.5)
    np.testing.assert_allclose(pitch.latent_to_midi(moved["z_pitch"]), midi + 2.5, atol=1e-4)
    np.testing.assert_array_equal(moved["z_timbre"], 1.0)
    pitch.check_transpose(0.3)  # any shift is exact on a line


def test_codebook_pitch_plays_mapped_atoms_and_transposes_by_whole_semitones(rng):
    atom_midi = np.array([60, -1, 62, 64, 65])
    pitch = CodebookPitch(atom_midi, rng.normal(size=(5, 3)).astype(np.float32))
    assert not pitch.continuous
    np.testing.assert_array_equal(pitch.latent_to_midi(pitch.midi_to_latent([60.0, 61.9, 66.0])), [60, 62, 65])
    np.testing.assert_array_equal(pitch.latent_to_midi(np.array([1, 3])), [np.nan, 64])  # codes; unmapped: NaN
    code = np.array([[0, 1, 2, 4]])
    moved = pitch.transpose({"code": code, "content_q": pitch.codebook[code]}, 2)
    np.testing.assert_array_equal(moved["code"], [[2, 1, 3, 4]])  # unmapped stays, the top saturates
    np.testing.assert_array_equal(moved["content_q"], pitch.codebook[moved["code"]])
    with pytest.raises(ParameterError, match="whole semitones"):
        pitch.check_transpose(0.5)


def test_pitch_maps_come_from_preset_metadata():
    linear = SPS.pitch_map({"type": "linear", "a": 1.0, "b": 0.5, "residual_semitones": 0.1})
    assert linear.latent_to_midi(linear.midi_to_latent(64.0)) == pytest.approx(64.0)
    codebook = V3.pitch_map({"type": "codebook", "atom_midi": [-1, 70], "codebook": [[0.0], [1.0]]})
    assert codebook.latent_to_midi(codebook.midi_to_latent(69.0)) == 70.0


def _v3_meta(**pitch_control):
    pc = {"type": "codebook", "atom_midi": [60, 61], "codebook": [[0.0, 1.0], [1.0, 0.0]], **pitch_control}
    return {"pitch_control": pc, "latent": {"encoder_outputs": [{"name": "content_q", "shape": ["N", "T_out", 2]}]}}


@pytest.mark.parametrize("pitch_control, message", [
    ({"atom_midi": [60]}, "1 atom_midi entries but 2 codebook vectors"),
    ({"codebook": [[0.0], [1.0]]}, "must have 2 dims like content_q"),
    ({"atom_midi": [-1, -1]}, "maps no atom"),
])
def test_v3_metadata_checks_name_the_rule(pitch_control, message):
    V3.check_metadata(_v3_meta(), where="m")
    with pytest.raises(PresetError, match=message):
        V3.check_metadata(_v3_meta(**pitch_control), where="m")


def test_families_describe_their_pitch_control_for_presets_inspect():
    sps = SPS.describe_pitch_control({"pitch_control": {"type": "linear", "a": 1.0, "b": 0.5,
                                                        "residual_semitones": 0.25}})
    assert sps[0] == "linear: z_pitch = 1.0000 +0.500000 * midi" and "0.25 semitones" in sps[1]
    v3 = V3.describe_pitch_control(_v3_meta(accuracy=0.5))
    assert v3[0].startswith("codebook: 2 atoms, 2 mapped to MIDI pitches (C4, C#4") and "50.0%" in v3[1]


def test_calibration_setups_follow_the_run_settings():
    recorded = {"programs": (73, 71), "velocities": (90,), "soundfont": "TimGM6mb", "train_programs": (73,),
                "heldout_programs": (73, 40), "pitch_limits": (60, 71)}

    def setting(name, default):
        return recorded.get(name, default)

    sps = SPS.calibration_setup(setting)
    assert sps.programs == (73, 71) and sps.pitch_limits == (36, 96) and sps.velocities == (90,)
    assert sps.soundfont.endswith("TimGM6mb.sf2") and sps.skip_frames == 8 and sps.note_seconds == 0.5
    v3 = V3.calibration_setup(setting)
    assert v3.programs == (73,) and v3.extra_programs == (40,) and v3.pitch_limits == (60, 71)
