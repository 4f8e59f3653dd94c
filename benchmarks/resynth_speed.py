"""Offline resynthesis throughput (issue #6: >= 100x real time per CPU core): one JSON object on
stdout, progress on stderr. The same code as ``audiosym bench resynth`` (audiosym/bench/speed.py):
realtime factor of the offline engine and of ``resynthesize`` at 44.1 and 16 kHz, MIDI-driven and
pass-through pitch, process CPU time and wall time, one onnxruntime thread.

    OMP_NUM_THREADS=1 python3 benchmarks/resynth_speed.py --preset sps-default
    OMP_NUM_THREADS=1 python3 benchmarks/resynth_speed.py --preset v3-default --seconds 30 --repeats 3
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")

from audiosym.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["bench", "resynth", "--json", *sys.argv[1:]]))
