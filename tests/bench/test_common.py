"""audiosym.bench.common: the CPU load behind `bench engine --load` starts busy processes and
always stops them (body done, exception, Ctrl-C, parent killed)."""

import os
import subprocess
import sys
import time

import pytest
from _processes import children, running

from audiosym.bench.common import cpu_load
from audiosym.errors import ParameterError


def test_cpu_load_runs_busy_processes_during_the_body_and_none_after():
    before = children()
    with cpu_load(2) as load:
        pids = {p.pid for p in load.processes}
        assert len(pids) == 2 and pids <= children() - before
        time.sleep(0.5)
        assert all(running(pid) for pid in pids)
    assert not any(running(pid) for pid in pids) and children() == before
    assert load.cpu_seconds > 0.05  # they spun: CPU time of the reaped children
    assert load.wall_seconds >= 0.5
    assert len(load.load_average) == 3


def test_cpu_load_defaults_to_one_process_per_core_and_zero_is_none():
    with cpu_load() as load:
        assert len(load.processes) == os.cpu_count()
    with cpu_load(0) as idle:
        assert idle.processes == []
    with pytest.raises(ParameterError, match="processes=-1 must be >= 0"):
        with cpu_load(-1):
            pass


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_cpu_load_stops_its_processes_on_an_exception_or_ctrl_c(error):
    before = children()
    with pytest.raises(error):
        with cpu_load(2) as load:
            raise error("measurement failed")
    assert not any(running(p.pid) for p in load.processes) and children() == before


def test_a_busy_process_stops_by_itself_when_its_parent_is_killed():
    code = ("import os\nfrom audiosym.bench.common import cpu_load\n"
            "with cpu_load(1) as load:\n    print(load.processes[0].pid, flush=True)\n    os.kill(os.getpid(), 9)\n")
    out = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, timeout=60)
    pid = int(out.stdout)
    deadline = time.monotonic() + 10
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(pid)
