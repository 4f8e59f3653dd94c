"""Training on a folder of recordings (``audiosym train sps|v3 --audio DIR``): load and analyse
it, say what was found on stderr, split it by file."""

from __future__ import annotations

import sys
from pathlib import Path

from audiosym.data.recording_set import MIN_NOTES, Recordings, load_recordings
from audiosym.dsp.features import FeatureConfig


def training_recordings(audio: str, features: FeatureConfig, *, holdout: float, seed: int,
                        progress: bool = True, min_notes: int = MIN_NOTES) -> tuple[Recordings, Recordings]:
    """``(train, test)`` recordings of the folder ``audio``, split by file with ``seed``; the
    summary (files, minutes, notes per timbre, pitch range found), skipped files and warnings go
    to stderr before training starts. ``test`` has no files when no timbre has two."""
    recs = load_recordings(Path(audio), features, progress=progress, min_notes=min_notes)
    train_mask, test_mask = recs.split(holdout, seed)
    for line in recs.summary_lines():
        print(line, file=sys.stderr)
    print(f"  split by file (seed {seed}): {int(train_mask.sum())} file(s) to train on, "
          f"{int(test_mask.sum())} held out for evaluation", file=sys.stderr)
    for line in recs.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    for line in recs.warnings:
        print(f"warning: {line}", file=sys.stderr)
    single = [recs.timbres[t] for t in range(len(recs.timbres)) if (recs.file_timbre == t).sum() < 2]
    if holdout > 0 and single:
        print(f"warning: no held-out file for {', '.join(single)} (one file each): evaluation "
              "during training leaves them out; add a second recording", file=sys.stderr)
    return recs.subset(train_mask), recs.subset(test_mask)
