"""The benchmarks (audiosym.bench) and `audiosym bench`: library functions return the same JSON
keys the command prints; the library never imports the command line or torch."""

import json
import subprocess
import sys

import pytest

from audiosym.bench.vocoder import bench_vocoder
from audiosym.cli import main

ENGINE_KEYS = [
    "date", "machine", "load_average", "preset", "kind", "timbre", "midi_range", "match_corrections", "dynamics",
    "sample_rate", "block_size", "block_ms", "ort_threads", "block_compute_p50_ms", "block_compute_p99_ms",
    "block_compute_max_ms", "block_compute_p99_fraction", "block_compute_cpu_p99_ms", "synth_block_compute_p50_ms",
    "synth_block_compute_p99_ms", "synth_block_compute_cpu_p99_ms", "timed_blocks", "decodes", "encoder_frames",
    "input_latency_ms", "input_latency_soundfont_note_ms", "note_latency_ms", "note_first_sample_ms",
    "engine_latency_samples", "pitch_passthrough_latency_ms", "pitch_error_cents_median", "pitch_error_cents_max",
    "pitch_error_cents_median_transfer", "pitch_notes", "targets", "for_scale",
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


@pytest.mark.slow  # ~20 s: one second of melody per mode, three notes pitch-checked
def test_bench_engine_prints_every_key(capsys):
    assert main(["bench", "engine", "--preset", "sps-default", "--seconds", "1", "--pitch-step", "30", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result) == ENGINE_KEYS
    assert result["preset"] == "sps-default" and list(result["pitch_notes"]) == ["36", "66", "96"]


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
