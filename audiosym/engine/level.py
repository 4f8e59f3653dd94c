"""The input's envelope follower: the transfer-mode level of the input (peak hold + one pole).

The engine's output follows :func:`input_level` with ``dynamics="input"`` and plays the timbre's
note envelope at its peak with ``dynamics="timbre"`` (:mod:`audiosym.engine.dynamics`). The loop
is the numba kernel :func:`envelope_kernel`, here rather than in :mod:`audiosym.engine.dynamics`:
the CLI's parser imports the defaults there, and ``audiosym --help`` does not import numba.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def envelope_kernel(buf, hold, a, z):  # pragma: no cover - compiled
    """``(level [n], z)``: causal sliding max of ``buf`` over ``hold`` samples (a monotonic
    queue, O(len(buf))) for the last ``n = len(buf) - hold + 1`` positions, then the one-pole
    ``y = (1 - a) peak + z, z = a y`` (lfilter's arithmetic), compiled with numba."""
    n = buf.shape[0] - hold + 1
    out = np.empty(n)
    queue = np.empty(buf.shape[0], np.int64)
    head, tail = 0, 0
    for j in range(buf.shape[0]):
        while tail > head and buf[queue[tail - 1]] <= buf[j]:
            tail -= 1
        queue[tail] = j
        tail += 1
        if queue[head] <= j - hold:
            head += 1
        i = j - hold + 1
        if i >= 0:
            y = (1.0 - a) * buf[queue[head]] + z
            z = a * y
            out[i] = y
    return out, z


def input_level(x: np.ndarray, history: np.ndarray, zi: np.ndarray, hold: int,
                alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transfer-mode level of the input block ``x [n]`` at the device rate (peak / sqrt 2, i.e.
    the RMS of a sine): the max of |x| over the last ``hold`` samples (``history [hold - 1]``:
    the |x| before the block), smoothed by the one pole ``alpha`` (state ``zi [1]``)
    -> ``(level [n], history, zi)``, the state as new arrays."""
    buf = np.concatenate([history, np.abs(x)])
    level, z = envelope_kernel(buf, hold, alpha, float(zi[0]))
    tail = buf[len(buf) - (hold - 1):].copy() if hold > 1 else buf[:0]
    return level / np.sqrt(2.0), tail, np.array([z])
