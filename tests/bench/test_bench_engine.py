"""audiosym.bench.engine: the targets are compared with the measured values, and the load of
`bench engine --load` runs during the timed blocks and is gone after, also when they fail."""

import pytest
from _processes import children, running

import audiosym.bench.engine as bench
from audiosym.bench.engine import TARGETS, bench_engine, targets_met

LOADED = {"load": True, "block_compute_p99_fraction": 0.25, "input_latency_ms": 20.5, "note_latency_ms": 2.0,
          "pitch_error_cents_median": None, "block_compute_p999_fraction": 0.30, "block_compute_max_fraction": 0.60,
          "voices": 8, "synth_block_compute_p999_fraction": 0.50, "synth_block_compute_max_fraction": 0.80,
          "pitch_passthrough_latency_ms": 30.0}


def test_targets_met_compares_each_measured_value_with_its_bound():
    met = targets_met(LOADED)
    assert set(met) == set(TARGETS)
    assert met == {"block_compute_p99_fraction": True, "input_latency_ms": False, "note_latency_ms": True,
                   "pitch_error_cents_median": None,  # not measured
                   "pitch_passthrough_latency_ms": True,  # <= 30
                   "block_compute_p999_fraction_with_load": True,  # <= 0.30
                   "block_compute_max_fraction_with_load_below": False,  # < 0.60, strictly
                   "synth_block_compute_p999_fraction_with_load": True,  # <= 0.50
                   "synth_block_compute_max_fraction_with_load_below": False}  # < 0.80, strictly
    faster = targets_met({**LOADED, "block_compute_p999_fraction": 0.31, "block_compute_max_fraction": 0.59})
    assert faster["block_compute_p999_fraction_with_load"] is False
    assert faster["block_compute_max_fraction_with_load_below"] is True


def test_voice_targets_are_judged_only_with_eight_voices_or_more():
    met = targets_met({**LOADED, "voices": 4})
    assert met["synth_block_compute_p999_fraction_with_load"] is None
    assert met["synth_block_compute_max_fraction_with_load_below"] is None
    assert met["block_compute_p999_fraction_with_load"] is True


def test_load_targets_are_not_judged_without_the_load():
    met = targets_met({**LOADED, "load": False})
    assert met["block_compute_p999_fraction_with_load"] is None
    assert met["block_compute_max_fraction_with_load_below"] is None
    assert met["block_compute_p99_fraction"] is True


def test_the_load_runs_while_blocks_are_timed_and_is_gone_when_timing_fails(monkeypatch):
    before = children()
    seen: list[set[int]] = []

    def failing_timer(*args, **kwargs):
        seen.append(children() - before)
        raise RuntimeError("engine failed mid-measurement")

    monkeypatch.setattr(bench, "_time_blocks", failing_timer)
    with pytest.raises(RuntimeError, match="mid-measurement"):
        bench_engine("sps-default", seconds=0.1, load=True, load_processes=2)
    assert len(seen) == 1 and len(seen[0]) == 2  # the busy processes ran during the timing
    assert not any(running(pid) for pid in seen[0]) and children() == before
