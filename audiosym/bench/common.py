"""What the benchmarks share: progress on stderr, the machine header, the half-level rise time,
a CPU load on every core (:func:`cpu_load`)."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
from scipy.ndimage import uniform_filter1d

from audiosym.errors import ParameterError

# One busy process: says it has started (one byte on stdout), then spins in pure Python. It
# ignores Ctrl-C (the parent, which gets it too, stops it) and stops by itself when its parent
# is gone (killed without cleaning up), checking every ~0.1 s, so that no spinner outlives a run;
# its stderr goes nowhere, so that it never holds the caller's stderr pipe open.
_SPIN = ("import os, signal, sys\n"
         "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
         "parent = os.getppid()\n"
         "sys.stdout.write('1'); sys.stdout.flush()\n"
         "while os.getppid() == parent:\n"
         "    for _ in range(1_000_000):\n"
         "        pass\n")


def log(msg: str) -> None:
    """One progress line on stderr (stdout carries only the result)."""
    print(msg, file=sys.stderr, flush=True)


def header() -> dict:
    """When and where: UTC date, machine and core count, load averages (1, 5, 15 min)."""
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores".strip(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }


def speed_header() -> dict:
    """:func:`header` plus what decides a throughput figure: the Python version and
    ``$OMP_NUM_THREADS`` (the speed benchmarks, ``bench resynth`` and ``bench train``)."""
    return {**header(), "python": platform.python_version(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}


def half_rise(y: np.ndarray, start: int, window: int, sample_rate: int) -> int:
    """First sample at/after ``start`` where the 1 ms moving RMS of ``y [n]`` reaches half of its
    steady level (the median moving RMS 20 ms .. ``window`` samples after ``start``)."""
    width = max(int(0.001 * sample_rate), 1)
    seg = np.asarray(y[start:start + window], dtype=np.float64)
    rms = np.sqrt(uniform_filter1d(seg**2, width, mode="constant"))
    steady = float(np.median(rms[int(0.02 * sample_rate):]))
    return start + int(np.argmax(rms >= 0.5 * steady))


@dataclass
class CpuLoad:
    """What :func:`cpu_load` ran: the busy processes and, once they are stopped, the CPU seconds
    they used (user + system) over the ``wall_seconds`` they ran (``cpu_seconds / wall_seconds``
    cores were kept busy) and the load averages (1, 5, 15 min) seen just before stopping."""

    processes: list[subprocess.Popen] = field(default_factory=list)
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    load_average: list[float] = field(default_factory=list)


@contextmanager
def cpu_load(processes: int | None = None) -> Iterator[CpuLoad]:
    """Keeps ``processes`` CPU-bound processes busy (default ``os.cpu_count()``, one per core;
    0: none) for the body of the ``with``: all have started when the body begins, and all are
    stopped and reaped when it ends, also on an exception or Ctrl-C.

    Yields a :class:`CpuLoad`, whose ``cpu_seconds`` and ``load_average`` are filled on exit.
    """
    n = (os.cpu_count() or 1) if processes is None else processes
    if n < 0:
        raise ParameterError(f"processes={n} must be >= 0 (0: no load, None: one per core)")
    load = CpuLoad()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        for _ in range(n):
            load.processes.append(subprocess.Popen([sys.executable, "-c", _SPIN], stdin=subprocess.DEVNULL,
                                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL))
        for proc in load.processes:
            assert proc.stdout is not None
            proc.stdout.read(1)  # started: the load is on from the first timed block
        yield load
    finally:
        load.load_average = [round(v, 2) for v in os.getloadavg()]
        for proc in load.processes:
            proc.kill()
        for proc in load.processes:
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        load.wall_seconds = round(time.perf_counter() - start, 3)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        load.cpu_seconds = round((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), 3)
