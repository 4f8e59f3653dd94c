"""Which processes are alive (Linux /proc): for the tests that check nothing outlives a command."""

import os
from pathlib import Path


def running(pid: int) -> bool:
    """``pid`` exists and is not a zombie (killed, not yet reaped by whoever inherited it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def children() -> set[int]:
    """Live processes whose parent is this one."""
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == os.getpid() and fields[0] not in ("Z", "X"):
            pids.add(int(stat.parent.name))
    return pids
