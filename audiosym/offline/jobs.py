"""A batch's jobs: which inputs, where each output goes, and which shard of the corpus runs here.

Inputs are found once (:func:`audiosym.io.audio.discover_inputs`), sorted and de-duplicated;
each output is named after its input plus the preset and timbre
(:func:`audiosym.offline.naming.output_tag`) and never lands on an input; ``shard=(i, n)``
splits the sorted corpus deterministically so N independent copies cover every file once.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from audiosym.errors import ParameterError
from audiosym.io.audio import InputSource, discover_inputs
from audiosym.offline import naming


def notes_path(output: str | os.PathLike) -> Path:
    """Where ``--save-notes`` writes an output's notes: ``take.sps-default.violin.wav`` ->
    ``take.sps-default.violin.notes.mid``."""
    return Path(output).with_suffix(".notes.mid")


@dataclass(frozen=True)
class Job:
    """One input file and where its output goes; ``error`` is set when planning already failed it."""

    index: int
    input: str
    output: str
    error: str | None = None



def plan_jobs(inputs: list[str], out_dir: str | os.PathLike, *, tag: str | None = None) -> list[Job]:
    """Sorted, de-duplicated jobs with output paths under ``out_dir``.

    Output name: the input's path relative to the folder (or glob base) it was found in,
    with the suffix replaced by ``.<tag>.wav`` (``tag``: :func:`audiosym.offline.naming.output_tag`,
    ``sps-default.violin``; None: just ``.wav``); when two inputs would share an output
    (``a.flac`` and ``a.mp3``), both keep their suffix (``a.flac.<tag>.wav``). A job whose
    output would be an input file (any input of the batch) carries an error instead.
    ``out_dir`` that is a file (or under one), or inside a folder searched for inputs (a rerun
    would take the outputs for inputs), is a ParameterError, before any input is read.
    """
    naming.check_out_dir(out_dir)
    out_dir = os.path.abspath(out_dir)
    ending = f".{tag}.wav" if tag else ".wav"
    sources: dict[str, InputSource] = {}
    for s in discover_inputs(inputs):
        key = os.path.realpath(s.path) if s.error is None else "\0" + s.path
        sources.setdefault(key, s)  # the same file given twice is one job
    real_out = os.path.realpath(out_dir)
    for s in sources.values():
        root = os.path.realpath(s.root) if s.root and s.error is None else None
        if root and (real_out == root or real_out.startswith(root.rstrip(os.sep) + os.sep)):
            raise ParameterError(f"out_dir={out_dir} is inside {s.root}, a folder searched for inputs: a rerun "
                                 "would take the outputs for inputs; choose an output folder outside it")
    ordered = sorted(sources.items(), key=lambda kv: kv[0])
    names = {}
    for key, s in ordered:
        rel = Path(os.path.relpath(s.path, s.root)) if s.root else Path(Path(s.path).name)
        names[key] = rel
    by_out = defaultdict(list)
    for key, rel in names.items():
        by_out[str(rel.with_suffix(""))].append(key)
    input_real = {k for k, s in sources.items() if s.error is None}
    jobs = []
    taken: dict[str, str] = {}
    for index, (key, s) in enumerate(ordered):
        rel = names[key]
        base = rel.with_suffix("") if len(by_out[str(rel.with_suffix(""))]) == 1 else rel
        output = os.path.join(out_dir, f"{base}{ending}")
        error = s.error
        if error is None and os.path.realpath(output) in input_real:
            error = f"{s.path}: output {output} would overwrite an input file; choose another out_dir=..."
        elif error is None and output in taken:
            error = f"{s.path}: output {output} is already the output of {taken[output]}; rename one input"
        if error is None:
            taken[output] = s.path
        jobs.append(Job(index, s.path, output if s.error is None else "", error))
    return jobs


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` -> ``(i, N)`` with ``0 <= i < N``."""
    try:
        i_text, n_text = text.split("/")
        i, n = int(i_text), int(n_text)
    except ValueError:
        raise ParameterError(f"shard={text!r} must look like i/N with integers, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise ParameterError(f"shard={text!r}: need N >= 1 and 0 <= i < N (shards are numbered 0..N-1)")
    return i, n


def shard_jobs(jobs: list[Job], shard: tuple[int, int] | None) -> list[Job]:
    """Every ``n``-th job starting at ``i`` of the sorted list (round robin balances folders)."""
    if shard is None:
        return list(jobs)
    i, n = shard
    return [j for j in jobs if j.index % n == i]
