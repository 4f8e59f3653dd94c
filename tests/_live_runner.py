"""Runs a LiveSession with the fake preset under whatever JACK server JACK_DEFAULT_SERVER names.

Used by tests/io/test_live.py in a subprocess (sounddevice binds to a JACK server at import).
Prints the session's counters as one JSON line at exit.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))  # the repo, when audiosym is not installed

from _fake_preset import FakePreset  # noqa: E402

from audiosym.engine.engine import Engine  # noqa: E402
from audiosym.io.live import LiveSession  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mode", default="synth")
    p.add_argument("--midi-port", default=None)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--block", type=int, default=128)
    a = p.parse_args()
    engine = Engine(FakePreset(), timbre="flute", sample_rate=48000, block_size=a.block, mode=a.mode)
    with LiveSession(engine, midi_port=a.midi_port, midi_api="jack", block_size=a.block) as live:
        print("running", flush=True)
        live.wait(seconds=a.seconds, report_every_s=1.0)
    print(json.dumps(live.stats.as_dict()), flush=True)


if __name__ == "__main__":
    main()
