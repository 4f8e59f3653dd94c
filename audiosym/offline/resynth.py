"""Offline batch resynthesis: many audio files through the real-time engine, robustly.

The pipeline per file is ``read (mono, own rate) -> Engine.render -> write WAV atomically``;
:func:`audiosym.offline.render.render_signal` is the one place that drives the engine, and it gives
exactly what streaming the same samples through ``Engine.process`` block by block gives (tested).

Robustness rules: a bad file never stops the batch (it becomes a ``failed`` row with a
one-line reason), an output never replaces an input, outputs appear atomically, a rerun
skips outputs that already exist with the same settings (``overwrite=False``; outputs are named
after the preset and timbre and record their settings, :mod:`audiosym.offline.naming`), and
``shard=(i, n)`` splits the sorted corpus deterministically so N independent copies cover every
file exactly once.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from audiosym.dsp.pitch import midi_name
from audiosym.engine.control import DEFAULT_PITCH_FOLLOW, PITCH_FOLLOW
from audiosym.engine.dynamics import DEFAULT_DYNAMICS
from audiosym.errors import AudiosymError, DeviceError, ParameterError
from audiosym.io.audio import (
    WAV_FORMATS,
    clipped_samples,
    read_audio,
    write_wav,
)
from audiosym.io.midifile import MelodyNote, load_track_notes
from audiosym.offline import naming
from audiosym.offline.jobs import Job, notes_path
from audiosym.offline.pitch_track import input_notes, write_notes_midi
from audiosym.offline.render import INPUT_PITCH, resynthesize
from audiosym.preset.model import Preset
from audiosym.preset.session import load_preset
from audiosym.timbre.match import named_corrections
from audiosym.timbre.reference import TimbreReference, measure_reference, reference_name

STATUSES = ("ok", "skipped", "failed")
Layers = tuple[tuple[TimbreReference, ...], bool, bool]  # one timbre layer: (references, replace_named, stored)


@dataclass(frozen=True)
class ResynthSettings:
    """What every file of a batch gets.

    ``timbre_from``: a reference recording whose measured timbre (audiosym.timbre.reference) is used
    instead of a named one; it is added to the preset as ``timbre`` (default ``ref:<file stem>``);
    ``timbre_from_midi``: that recording's melody as a MIDI file (its pitch then comes from the
    notes, not from pyin: no octave errors).
    ``match``: named timbres get the match corrections stored in the preset (audiosym.timbre.match);
    ``match_named``: measure the named ``timbre``'s correction now on the preset's training
    soundfont instead (:func:`audiosym.timbre.match.named_corrections`; for presets exported
    without match data).
    ``dynamics``: ``"timbre"`` (a MIDI note gets the timbre's stored note envelope) or ``"input"``.
    ``transpose_semitones`` shifts the input's own pitch (transfer mode without MIDI), which
    ``input_pitch`` plays as notes (``"notes"``) or as the engine streams it (``"stream"``; with
    ``pitch_follow``, :class:`audiosym.engine.engine.Engine`);
    ``save_notes`` also writes those notes beside each output (:func:`notes_path`);
    ``midi_path``/``midi_track`` drive pitch from a MIDI melody instead (time 0 of the MIDI
    file = the first sample of each input). ``sample_rate`` is the output rate in Hz (None:
    the input's). Files longer than ``max_seconds`` fail instead of exhausting memory.
    ``subtype``: the output WAVs' libsndfile subtype (:data:`audiosym.io.audio.WAV_FORMATS`).
    """

    preset: str
    timbre: str | None
    timbre_from: str | None = None
    timbre_from_midi: str | None = None
    match_named: bool = False
    match: bool = True
    dynamics: str = DEFAULT_DYNAMICS
    transpose_semitones: float = 0.0
    input_pitch: str = "notes"
    pitch_follow: str = DEFAULT_PITCH_FOLLOW
    save_notes: bool = False
    midi_path: str | None = None
    midi_track: int | str | None = None
    sample_rate: int | None = None
    max_seconds: float = 1800.0
    device: str = "cpu"
    overwrite: bool = False
    subtype: str = "FLOAT"

    def __post_init__(self) -> None:
        if self.timbre is None and self.timbre_from is None:
            raise ParameterError("no timbre: give timbre=NAME (a timbre of the preset) or timbre_from=REF.wav")
        if self.timbre_from_midi is not None and self.timbre_from is None:
            raise ParameterError(f"timbre_from_midi={self.timbre_from_midi} labels a timbre_from recording; "
                                 "give the recording with timbre_from=REF.wav")
        if self.match_named and (self.timbre is None or self.timbre_from is not None):
            raise ParameterError("match_named=True corrects a named timbre; it does not apply to timbre_from")
        if self.input_pitch not in INPUT_PITCH:
            raise ParameterError(f"input_pitch={self.input_pitch!r} must be one of {INPUT_PITCH}")
        if self.save_notes and (self.midi_path is not None or self.input_pitch != "notes"):
            raise ParameterError("save_notes=True writes the notes found in each input; it needs the input's own "
                                 "pitch as notes (no midi_path, input_pitch='notes')")
        if self.pitch_follow not in PITCH_FOLLOW:
            raise ParameterError(f"pitch_follow={self.pitch_follow!r} must be one of {PITCH_FOLLOW}")
        if self.dynamics not in ("input", "timbre"):
            raise ParameterError(f"dynamics={self.dynamics!r} must be 'input' or 'timbre'")
        if self.match_named and not self.match:
            raise ParameterError("match_named=True and match=False contradict each other; use one")
        if self.midi_path is not None and self.transpose_semitones:
            raise ParameterError(
                f"transpose_semitones={self.transpose_semitones:g} and midi_path={self.midi_path} both set the pitch; use one"
            )
        if self.sample_rate is not None and not 1000 <= self.sample_rate <= 384000:
            raise ParameterError(f"sample_rate={self.sample_rate} must be between 1000 and 384000 Hz")
        if not self.max_seconds > 0:
            raise ParameterError(f"max_seconds={self.max_seconds} must be positive")
        if self.device not in ("cpu", "cuda"):
            raise ParameterError(f"device={self.device!r} must be 'cpu' or 'cuda'")
        if self.subtype not in WAV_FORMATS.values():
            raise ParameterError(f"subtype={self.subtype!r} must be one of {sorted(WAV_FORMATS.values())}")

    @property
    def format_name(self) -> str:
        """The ``--format`` name of :attr:`subtype` (``float``, ``pcm24``, ``pcm16``)."""
        return next(name for name, subtype in WAV_FORMATS.items() if subtype == self.subtype)


    @property
    def timbre_name(self) -> str:
        """The timbre the engine plays: ``timbre``, else the reference's default name."""
        if self.timbre is not None:
            return self.timbre

        assert self.timbre_from is not None  # __post_init__ requires one of them
        return reference_name(self.timbre_from)


@dataclass
class Result:
    """How one job ended: ``status`` in :data:`STATUSES`, seconds of audio and of compute."""

    input: str
    output: str
    status: str
    audio_seconds: float = 0.0
    compute_seconds: float = 0.0
    error: str = ""
    warning: str = ""  # an ok output with something to know (clipped samples, folded notes), one per line
    folded_notes: int = 0  # notes outside the preset's range, played octaves up or down (Engine.folded_notes)

    @property
    def realtime_factor(self) -> float:
        """Seconds of audio processed per second of compute (read + render + write)."""
        return self.audio_seconds / self.compute_seconds if self.compute_seconds > 0 else float("nan")


# ---------------------------------------------------------------- rendering

def load_for_batch(settings: ResynthSettings, *, references: list[Layers] | None = None
                   ) -> tuple[Preset, list[MelodyNote] | None]:
    """``(preset, melody)`` checked once per batch: preset, timbre, device and MIDI file.

    Raises plain errors (bad preset, unknown timbre, no CUDA) before any file is touched.
    ``references``: the timbre measurements of an earlier call (:func:`batch_references`), so
    that worker processes wrap the preset the same way without measuring again.
    """

    if settings.device == "cuda" and not (
        os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")
    ):
        raise DeviceError("device='cuda': no NVIDIA GPU driver is present on this machine; use device='cpu'")
    preset = load_preset(settings.preset, device=settings.device, intra_op_threads=1)
    if settings.device == "cuda" and "CUDAExecutionProvider" not in preset.providers:
        raise DeviceError(
            f"device='cuda': onnxruntime could not start its CUDA provider (running on {preset.providers}); "
            "check the NVIDIA driver and that onnxruntime-gpu matches the CUDA version, or use device='cpu'"
        )
    if references is not None:  # measured by the parent process: the same layers, in the same order
        for refs, replace_named, stored in references:
            preset = preset.with_stored_match() if stored else preset.with_references(refs, replace_named=replace_named)
    elif settings.match and not settings.match_named:
        preset = preset.with_stored_match()
    if settings.timbre_from is not None and references is None:  # measured once, before any input is touched
        try:
            notes = load_track_notes(settings.timbre_from_midi) if settings.timbre_from_midi else None
        except AudiosymError as exc:
            raise ParameterError(f"timbre_from={settings.timbre_from}: {exc}") from None
        preset = preset.with_references([measure_reference(preset, settings.timbre_from, name=settings.timbre_name,
                                                           notes=notes)])
    preset.timbre_vector(settings.timbre_name)  # unknown timbre -> ParameterError listing the names
    if settings.match_named and references is None:

        try:
            corrections = named_corrections(preset, [settings.timbre_name])
        except AudiosymError as exc:
            raise ParameterError(f"match_named=True: {exc}") from None
        preset = preset.with_references(corrections, replace_named=True)
    if settings.transpose_semitones:
        preset.transposed(settings.transpose_semitones)  # fractional on a codebook preset
    melody = load_track_notes(settings.midi_path, track=settings.midi_track) if settings.midi_path else None
    return preset, melody


def batch_references(preset: Preset) -> list[Layers]:
    """The timbre layers :func:`load_for_batch` composed onto ``preset``, innermost first, as
    ``[(references, replace_named, stored), ...]`` (picklable: sent to worker processes)."""
    return [(layer.references, layer.replace_named, layer.stored) for layer in preset.layers]


class _Worker:
    """Per-process state: the preset loaded once, the MIDI melody parsed once; ``record``: the
    settings record each output stores (:func:`audiosym.offline.naming.settings_record`)."""

    def __init__(self, settings: ResynthSettings, loaded: tuple[Preset, list[MelodyNote] | None] | None = None,
                 record: dict[str, str] | None = None):
        self.settings = settings
        self.preset, self.melody = loaded if loaded is not None else load_for_batch(settings)
        self.comment = naming.record_text(record) if record else None

    def run(self, job: Job) -> Result:
        s = self.settings
        start = time.perf_counter()
        try:
            y, info = read_audio(job.input, max_seconds=s.max_seconds)
            found, counts = None, {"folded_notes": 0}
            if s.save_notes:

                found = input_notes(self.preset, y, info.sample_rate, transpose_semitones=s.transpose_semitones)
            out, rate = resynthesize(
                self.preset, y, sample_rate=info.sample_rate, timbre=s.timbre_name, notes=self.melody,
                transpose_semitones=s.transpose_semitones, output_sample_rate=s.sample_rate, dynamics=s.dynamics,
                input_pitch=s.input_pitch, input_notes=found, counts=counts, pitch_follow=s.pitch_follow,
            )
            if not np.all(np.isfinite(out)):
                raise ParameterError("the engine produced NaN/inf samples (please report this with the file)")
            if found is not None:
                write_notes_midi(found, notes_path(job.output))
            clipped = clipped_samples(out, s.subtype)
            write_wav(job.output, out, sample_rate=rate, subtype=s.subtype, comment=self.comment)
        except Exception as exc:  # noqa: BLE001 - one bad file must never stop the batch
            message = " ".join(str(exc).split()) or type(exc).__name__
            return Result(job.input, job.output, "failed", 0.0, time.perf_counter() - start, message)
        warnings = []
        if clipped:
            warnings.append(f"{job.output}: {clipped} samples ({clipped / max(len(out), 1):.2%}) beyond full scale "
                            f"were clipped in the {s.format_name} WAV; use format_name=float (never clips) or a quieter input")
        folded = counts["folded_notes"]
        if folded:
            warnings.append(self.folded_warning(job.input, folded))
        return Result(job.input, job.output, "ok", info.seconds, time.perf_counter() - start,
                      warning="\n".join(warnings), folded_notes=folded)

    def folded_warning(self, source: str, folded: int) -> str:
        """One line: how many notes of ``source`` lay outside the preset's range, and the fix."""

        lo, hi = self.preset.midi_range
        fix = (f"move the notes of {self.settings.midi_path} into the range" if self.settings.midi_path
               else "transpose_semitones=N moves the input's pitch into it")
        notes, were = ("note", "was") if folded == 1 else ("notes", "were")
        return (f"{source}: {folded} {notes} outside the playable range of preset {self.preset.name}, "
                f"{midi_name(lo)} .. {midi_name(hi)} (MIDI {lo} .. {hi}), {were} played in the nearest octave "
                f"inside it; {fix}, or use a preset whose range covers them (audiosym presets inspect P shows it)")


_PROCESS_WORKER: _Worker | None = None


def _init_process(settings: ResynthSettings, references, record) -> None:
    global _PROCESS_WORKER
    _PROCESS_WORKER = _Worker(settings, load_for_batch(settings, references=references), record)


def _run_in_process(job: Job) -> Result:
    assert _PROCESS_WORKER is not None, "worker initializer did not run"
    return _PROCESS_WORKER.run(job)


def _presolved(job: Job, settings: ResynthSettings, record: dict[str, str]) -> Result | None:
    """Jobs decided without rendering: planning errors, and finished outputs on a rerun: one
    made with the same settings ``record`` is skipped (with ``--save-notes``: once its notes
    exist too), one that records other settings fails, naming them (never a silent skip)."""
    if job.error:
        return Result(job.input, job.output, "failed", error=job.error)
    if os.path.exists(job.output):
        if os.path.samefile(job.output, job.input):
            return Result(job.input, job.output, "failed", error=f"{job.input}: output is the input file itself")
        if settings.overwrite:
            return None
        made_with = naming.read_record(job.output)
        if made_with is None:
            return Result(job.input, job.output, "skipped", error="output exists (overwrite=True redoes it)")
        if made_with != record:
            return Result(job.input, job.output, "failed", error=(
                f"{job.output} exists, made with other settings ({naming.describe_changes(made_with, record)}); "
                "overwrite=True replaces it, or choose another out_dir=..."))
        if not settings.save_notes or notes_path(job.output).exists():
            return Result(job.input, job.output, "skipped",
                          error="output exists, made with the same settings (overwrite=True redoes it)")
    return None


def run_jobs(
    jobs: list[Job], settings: ResynthSettings, *, workers: int = 1, progress: bool = True, loaded=None,
    words: Callable[[str], str] = str,
) -> list[Result]:
    """Run ``jobs``; results come back in job order whatever order workers finish in.

    ``workers > 1`` uses that many spawned processes (each loads the preset once); with one
    worker the batch runs in this process, reusing ``loaded`` (from :func:`load_for_batch`)
    when given. Each failure and warning is printed as one line on stderr as it happens,
    through ``words`` (the ``audiosym`` command passes one that names its flags instead of
    this module's keywords).
    """

    if workers < 1:
        raise ParameterError(f"workers={workers} must be at least 1")
    record = naming.settings_record(settings, format_name=settings.format_name)
    results: list[Result | None] = [_presolved(job, settings, record) for job in jobs]
    todo = [k for k, r in enumerate(results) if r is None]
    bar = tqdm(total=len(jobs), unit="file", disable=not progress, file=sys.stderr, dynamic_ncols=True)

    def say(line: str) -> None:
        if progress:
            bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def finish(k: int, result: Result) -> None:
        results[k] = result
        if result.status == "failed":
            say(f"failed: {words(result.error)}")
        for line in result.warning.splitlines():
            say(f"warning: {words(line)}")
        bar.update(1)

    for k, r in enumerate(results):
        if r is not None:
            finish(k, r)
    if todo and workers == 1:
        worker = _Worker(settings, loaded, record)
        for k in todo:
            finish(k, worker.run(jobs[k]))
    elif todo:
        # timbre references are measured once (here or by the caller), not again in every worker
        references = batch_references((loaded or load_for_batch(settings))[0])
        _run_pool(jobs, todo, settings, workers, finish, references, record)
    bar.close()
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def _run_pool(jobs, todo, settings, workers, finish, references, record) -> None:

    # spawn, not fork: onnxruntime's thread pools do not survive fork() safely
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=min(workers, len(todo)), mp_context=ctx, initializer=_init_process,
        initargs=(settings, references, record),
    ) as pool:
        futures = {pool.submit(_run_in_process, jobs[k]): k for k in todo}
        for fut in as_completed(futures):
            k = futures[fut]
            try:
                result = fut.result()
            except Exception as exc:  # noqa: BLE001 - a crashed worker fails its file, not the batch
                result = Result(jobs[k].input, jobs[k].output, "failed",
                                error=f"{jobs[k].input}: worker process failed ({type(exc).__name__}: {exc})")
            finish(k, result)
