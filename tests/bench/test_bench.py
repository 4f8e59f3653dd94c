"""The benchmarks (audiosym.bench) and `audiosym bench`: library functions return the same JSON
keys the command prints; the library never imports the command line or torch."""

import json
import os
import subprocess
import sys

import pytest
from _processes import children

from audiosym.bench.engine import targets_met
from audiosym.bench.vocoder import bench_vocoder
from audiosym.cli import main

ENGINE_KEYS = [
    "date", "machine", "load_average", "preset", "kind", "timbre", "midi_range", "match_corrections", "dynamics",
    "pitch_follow", "sample_rate", "block_size", "block_ms", "ort_threads", "block_compute_p50_ms", "block_compute_p99_ms",
    "block_compute_p999_ms", "block_compute_max_ms", "block_compute_p99_fraction", "block_compute_p999_fraction",
    "block_compute_max_fraction", "block_compute_cpu_p99_ms", "synth_block_compute_p50_ms",
    "synth_block_compute_p99_ms", "synth_block_compute_p999_ms", "synth_block_compute_max_ms",
    "synth_block_compute_cpu_p99_ms", "synth_block_compute_mean_ms", "synth_block_compute_p999_fraction",
    "synth_block_compute_max_fraction", "voices", "synth_scenario", "synth_max_voices_sounding", "realtime", "load", "load_processes", "load_average_during", "load_cpu_s",
    "load_wall_s", "timed_blocks", "decodes", "encoder_frames",
    "input_latency_ms", "input_latency_soundfont_note_ms", "note_latency_ms", "note_first_sample_ms",
    "engine_latency_samples", "pitch_passthrough_latency_ms", "pitch_error_cents_median", "pitch_error_cents_max",
    "pitch_error_cents_median_transfer", "pitch_notes", "targets", "for_scale", "note", "met",
]
VOCODER_KEYS = [
    "date", "soundfont", "preset", "machine", "metric", "mean", "rtpghi_wins", "pitch_dev_cents_median",
    "rtpghi_consistency_db", "frame_ms", "cost_per_frame_ms", "step_latency_ms", "rtpghi_latency_samples", "items",
]


def test_the_library_imports_neither_the_command_line_nor_torch():
    code = ("import sys\nimport audiosym.bench.engine, audiosym.bench.vocoder, audiosym.bench.speed\n"
            "bad = [m for m in sys.modules if m.startswith('audiosym.cli') or m.split('.')[0] in ('torch', 'train')]\n"
            "assert not bad, bad\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.slow  # ~15 s: one note through every vocoder, pyin, Griffin-Lim
def test_bench_vocoder_on_one_note_has_every_key():
    result = bench_vocoder(programs=(73,), notes=(60,))
    assert list(result) == VOCODER_KEYS and len(result["items"]) == 1
    assert result["mean"]["rtpghi_linear"] < result["mean"]["sine_floor"]
    assert set(result["step_latency_ms"]) == {"rtpghi_lookahead_0", "rtpghi_lookahead_1", "harmonic_noise"}


@pytest.mark.slow  # ~15 s each: one second of melody per mode, three notes pitch-checked
@pytest.mark.parametrize("load", [False, True])
def test_bench_engine_prints_every_key(capsys, load):
    before = children()
    assert main(["bench", "engine", "--preset", "sps-default", "--seconds", "1", "--pitch-step", "30", "--json"]
                + ["--load"] * load) == 0
    assert children() == before  # no busy process left behind
    result = json.loads(capsys.readouterr().out)
    assert list(result) == ENGINE_KEYS
    assert result["preset"] == "sps-default" and list(result["pitch_notes"]) == ["36", "66", "96"]
    for mode in ("", "synth_"):
        p50, p99, p999, top = (result[f"{mode}block_compute_{q}_ms"] for q in ("p50", "p99", "p999", "max"))
        assert 0 < p50 <= p99 <= p999 <= top
    assert result["block_compute_max_fraction"] == pytest.approx(result["block_compute_max_ms"] / result["block_ms"], abs=1e-4)
    assert result["voices"] == 1 and "monophonic" in result["note"]
    assert result["pitch_follow"] == "fast" and result["pitch_passthrough_latency_ms"] <= 30
    assert result["met"]["pitch_passthrough_latency_ms"] is True
    assert result["met"] == targets_met(result) and set(result["met"]) == set(result["targets"])
    assert result["met"]["synth_block_compute_p999_fraction_with_load"] is None  # one voice: not judged
    assert result["load"] is load
    if load:
        assert result["load_processes"] == os.cpu_count() and len(result["load_average_during"]) == 3
        assert result["load_cpu_s"] > 0  # the processes were busy
    else:
        assert result["load_processes"] == 0 and result["load_cpu_s"] is None
        assert result["met"]["block_compute_p999_fraction_with_load"] is None


@pytest.mark.slow  # ~10 s: renders, two rates, two modes, engine and resynth paths
def test_bench_resynth_reports_cpu_and_wall_realtime_factors(capsys):
    assert main(["bench", "resynth", "--preset", "sps-default", "--seconds", "2", "--repeats", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["preset"] == "sps-default" and set(result["rates"]) == {"44100", "16000"}
    for rate in result["rates"].values():
        for mode in ("midi", "passthrough"):
            row = rate[mode]
            for key in ("engine_realtime_factor_cpu", "engine_realtime_factor_wall",
                        "resynth_realtime_factor_cpu", "resynth_realtime_factor_wall"):
                assert row[key] > 1.0  # faster than real time even on a loaded machine
    assert result["realtime_factor_cpu"] == result["rates"]["44100"]["midi"]["resynth_realtime_factor_cpu"]


def test_bench_train_and_resynth_refuse_missing_arguments(capsys):
    assert main(["bench", "train"]) == 2
    assert "needs a method" in capsys.readouterr().err
    assert main(["bench", "resynth"]) == 2
    assert "--preset is required" in capsys.readouterr().err


@pytest.mark.slow  # ~15 s: as above, synth mode timed on 8 voices and on one
def test_bench_engine_with_voices_plays_a_chord_and_a_melody_and_compares_with_one_voice(capsys):
    assert main(["bench", "engine", "--preset", "sps-default", "--seconds", "1", "--pitch-step", "30",
                 "--voices", "8", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    poly = ["synth_mono_block_compute_mean_ms", "synth_mono_block_compute_p99_ms", "synth_voices_cost_ratio_mean",
            "synth_voices_cost_ratio_p99"]
    at = ENGINE_KEYS.index("realtime")
    assert list(result) == ENGINE_KEYS[:at] + poly + ENGINE_KEYS[at:]
    assert result["voices"] == 8 and 5 <= result["synth_max_voices_sounding"] <= 8  # chord, melody, releases
    assert result["synth_voices_cost_ratio_mean"] > 0
    assert result["met"]["synth_block_compute_p999_fraction_with_load"] is None  # no load
