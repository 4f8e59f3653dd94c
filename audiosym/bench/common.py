"""What the benchmarks share: progress on stderr, the machine header, the half-level rise time."""

from __future__ import annotations

import os
import platform
import sys
from datetime import datetime, timezone

import numpy as np
from scipy.ndimage import uniform_filter1d


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


def half_rise(y: np.ndarray, start: int, window: int, sample_rate: int) -> int:
    """First sample at/after ``start`` where the 1 ms moving RMS of ``y [n]`` reaches half of its
    steady level (the median moving RMS 20 ms .. ``window`` samples after ``start``)."""
    width = max(int(0.001 * sample_rate), 1)
    seg = np.asarray(y[start:start + window], dtype=np.float64)
    rms = np.sqrt(uniform_filter1d(seg**2, width, mode="constant"))
    steady = float(np.median(rms[int(0.02 * sample_rate):]))
    return start + int(np.argmax(rms >= 0.5 * steady))
