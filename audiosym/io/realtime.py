"""Real-time scheduling for the thread that computes audio.

An audio callback that shares its core with ordinary processes waits whenever the kernel's fair
scheduler hands the core to them: on a busy 2-core machine (``audiosym bench engine --load``)
a 0.2 ms block then takes 5 ms of wall time now and then, twice a 128-sample block at 48 kHz,
while its CPU time stays under 1 ms. Audio programs avoid this by running their audio thread
under a real-time policy (``SCHED_FIFO``), which the kernel runs before every ordinary thread:
JACK does so for its clients when started with ``-R``; PortAudio's ALSA host does not by itself.

:func:`make_realtime` asks for it for the *calling* thread (Linux applies ``sched_setscheduler``
with pid 0 to the calling thread only), so call it from inside the audio callback. It needs
permission: root, ``CAP_SYS_NICE``, or an ``rtprio`` limit (``ulimit -r``; on Debian/Ubuntu,
membership of the ``audio`` group that the ``jackd2`` package offers to set up, see
:data:`REALTIME_HELP`). Without it the thread stays as it was and the reason is returned.

The kernel keeps 5 % of every second for ordinary threads (``sched_rt_runtime_us``), so a
real-time thread that never sleeps is throttled: an audio callback sleeps between blocks, and
``bench engine --realtime`` paces its blocks like one.
"""

from __future__ import annotations

import os

#: The priority asked for: any real-time priority pre-empts every ordinary process; 40 stays below
#: the kernel's threaded interrupt handlers (SCHED_FIFO 50), which the audio card itself needs.
PRIORITY = 40

#: How to get permission, for the message that says it was refused.
REALTIME_HELP = ("allow real-time scheduling: run `sudo dpkg-reconfigure jackd2` (answer yes), add yourself to "
                 "the audio group (sudo usermod -aG audio $USER) and log in again, or set an rtprio limit in "
                 "/etc/security/limits.d/ (@audio - rtprio 95)")


def is_realtime() -> bool:
    """Whether the calling thread runs under a real-time policy (SCHED_FIFO or SCHED_RR)."""
    if not hasattr(os, "sched_getscheduler"):
        return False
    return os.sched_getscheduler(0) in (os.SCHED_FIFO, os.SCHED_RR)


def make_realtime(priority: int = PRIORITY) -> str | None:
    """Put the calling thread under ``SCHED_FIFO`` at ``priority`` (clamped to what the system
    allows). -> None when it runs real-time now (also when it already did), else why not."""
    if not hasattr(os, "sched_setscheduler"):
        return "this system has no POSIX real-time scheduling (Linux has)"
    if is_realtime():
        return None
    lo, hi = os.sched_get_priority_min(os.SCHED_FIFO), os.sched_get_priority_max(os.SCHED_FIFO)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(min(max(priority, lo), hi)))
    except PermissionError:
        return f"real-time scheduling refused (no permission); {REALTIME_HELP}"
    except OSError as exc:
        return f"real-time scheduling refused ({exc})"
    return None


def make_ordinary() -> None:
    """Put the calling thread back under the ordinary policy (``SCHED_OTHER``)."""
    if hasattr(os, "sched_setscheduler") and is_realtime():
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
