"""Real-time engine benchmark (issue #5): prints one JSON object on stdout, progress on stderr.

The same code as ``audiosym bench engine`` (audiosym/bench/engine.py): 48 kHz, block 128, one
onnxruntime thread; per-block compute p99, input-onset and note-on latency measured by feeding
signals through the engine, pyin pitch error on sustained notes across the playable range.

    OMP_NUM_THREADS=1 python3 benchmarks/engine.py --preset presets/sps-default.asym
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")

from audiosym.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["bench", "engine", "--json", *sys.argv[1:]]))
