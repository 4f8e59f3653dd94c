"""The input's own pitch as notes, offline: the preset's encoder over a whole signal, its pitch
latent split into notes and pitch bends placed where the audio has them.

``audiosym resynth`` without ``--midi`` plays a recording's own melody. Streaming, the engine
passes the encoder's pitch latent through as it comes: each value arrives an analysis window
late (half the 128 ms window plus a hop), so every note starts at the previous note's pitch,
and with no note held the output follows the input's level, not the timbre's envelope. Offline
the whole signal is known, so :func:`pitch_track` reads the same latent (the same encoder
graph, batched) and places each value at the centre of its analysis window, and
:func:`track_notes` splits it into notes (a new note where the pitch moves to another semitone
and stays, or where the level re-attacks; a note ends at silence or where the level falls
faster than any decay, a release) and pitch bends (the rest of the latent's pitch:
vibrato, glides within a note, an SPS preset's continuous pitch). The engine then plays these
as it plays a MIDI melody: pitch from the first sample of each note, the timbre's note envelope.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pretty_midi

from audiosym.dsp.features import features
from audiosym.engine.control import MidiEvent, note_off, note_on, pitch_bend
from audiosym.io.audio import atomic_path, resample
from audiosym.preset.model import Preset
from audiosym.timbre.envelope import last_low_point, mean_square

GATE_DB = 40.0  # frames this far under the loudest frame are silence (no note)
FLOOR_DBFS = -70.0  # ... and frames under this level always are
CHANGE_SEMITONES = 0.75  # a note ends where the pitch leaves it by more than this ...
CHANGE_FRAMES = 3  # ... for this many consecutive frames (48 ms at the shipped hop), measured from
REFERENCE_FRAMES = 8  # the median of its first settled frames (vibrato stays inside)
REATTACK_DB = 6.0  # same pitch, new note: the level dipped this far under the note's peak and rose again
RELEASE_DB = 10.0  # a note ends where its level falls this far within RELEASE_WINDOW_S: a
RELEASE_WINDOW_S = 0.1  # release (a decay is slower); its tail is no note until the level attacks again;
RELEASE_CONFIRM_DB = 3.0  # ... unless the level then stops: no further fall of this much over the next
# RELEASE_WINDOW_S is a note settling from its attack to a quieter sustain (MuseScore's harpsichord: its
# high notes drop 10 dB 0.2 s in and ring on; they were cut there before 2026-12-05)
MIN_NOTE_S = 0.05  # a shorter note is no note (its frames pass through)
ONSET_BACKTRACK_S = 0.1  # a note found by its pitch is backed up at most this far, to the level's low point
BEND_STEP_SEMITONES = 0.03  # bends closer than 3 cents to the last one sent are not sent (each costs a decode)
OCTAVE_LOWER_RATIO = 0.3  # odd harmonics of f0 / 2 this strong against its even ones (amplitude): f0 / 2 is the note
OCTAVE_UPPER_RATIO = 0.08  # odd harmonics of f0 this weak against its even ones: 2 f0 is the note
#: Kinds whose encoder's reading gets the octave check. V3 (a code per pitch) confuses octaves
#: on 3-26 % of frames of violin, flute, oboe, trumpet, cello, guitar, sax in held-out soundfonts
#: and the check brings most to 0; SPS's reading has none to fix (0-2 %), and on an organ with a
#: 16' stop (its partials are the harmonics of f0 / 2) the check reads the stop's octave:
#: measured 2026-12-05, BENCHMARKS.md "Full-band sound".
OCTAVE_CHECK_KINDS = ("v3",)
ENCODE_CHUNK_FRAMES = 4096  # encoder frames per onnxruntime call (bounds memory on long files)


@dataclass(frozen=True)
class PitchTrack:
    """``times_s [T]``: each analysis window's centre; ``midi [T]``: the pitch the preset's
    encoder reads there (NaN: none, e.g. an unmapped V3 atom); ``level_db [T]``: the signal's
    RMS level (dBFS) over one hop around that centre; ``settle_s``: how long after a note's onset
    the encoder's window is filled enough with it to read its pitch (half the window)."""

    times_s: np.ndarray
    midi: np.ndarray
    level_db: np.ndarray
    settle_s: float = 0.0  # after a level onset, the encoder reads the new note from this much later


def odd_even_ratio(mag: np.ndarray, midi: np.ndarray, cfg) -> np.ndarray:
    """Per frame: the mean amplitude at harmonics 1, 3, 5, 7 of ``midi [t]`` over that at 2, 4, 6,
    8, read from linear log-frequency magnitudes ``mag [t, n_bins]`` (the peak within one bin);
    NaN where no harmonic pair fits under the top bin."""
    top = mag.shape[1] - 1
    rows = np.arange(len(mag))
    sums = np.zeros((2, len(mag)))
    for parity, ks in enumerate(((1, 3, 5, 7), (2, 4, 6, 8))):
        for k in ks:
            b = np.rint(cfg.midi_to_bin(midi + 12 * np.log2(k))).astype(np.int64)
            ok = (b >= 1) & (b < top)
            bb = np.clip(b, 1, top - 1)
            peak = np.maximum(np.maximum(mag[rows, bb - 1], mag[rows, bb]), mag[rows, bb + 1])
            sums[parity] += np.where(ok, peak, 0.0)
    return np.where(sums[1] > 0, sums[0] / np.maximum(sums[1], 1e-30), np.nan)


def octave_checked(logmag: np.ndarray, midi: np.ndarray, cfg, midi_range: tuple[int, int]) -> np.ndarray:
    """``midi [t]`` with octave errors the input's own spectrum ``logmag [t, n_bins]`` rules out,
    inside the preset's ``midi_range``: a note whose sub-octave has strong odd harmonics is that
    sub-octave (``OCTAVE_LOWER_RATIO``); a note whose odd harmonics are missing is its upper
    octave (``OCTAVE_UPPER_RATIO``). A model-free check of the encoder's reading, not a pitch
    tracker: it only ever moves a reading by an octave (see ``OCTAVE_CHECK_KINDS``)."""
    midi = np.array(midi, dtype=np.float64)
    lo, hi = midi_range
    mag = np.maximum(np.exp(logmag.astype(np.float64)) - cfg.eps, 0.0)
    ok = np.isfinite(midi)
    m = np.where(ok, midi, 0.0)
    down = ok & (m - 12 >= lo - 0.5) & (odd_even_ratio(mag, m - 12, cfg) > OCTAVE_LOWER_RATIO)
    up = ok & ~down & (m + 12 <= hi + 0.5) & (odd_even_ratio(mag, m, cfg) < OCTAVE_UPPER_RATIO)
    midi[down] -= 12
    midi[up] += 12
    return midi


def pitch_track(preset: Preset, y: np.ndarray, sample_rate: int, *, octave_check: bool | None = None) -> PitchTrack:
    """The preset encoder's pitch of mono ``y [n]`` at ``sample_rate`` Hz, frame by frame (the
    same frames, graph and calibration the engine's pass-through uses), octave errors the input's
    spectrum rules out corrected (:func:`octave_checked`) where the preset's kind needs it
    (``OCTAVE_CHECK_KINDS``; ``octave_check`` True/False: always/never)."""
    cfg = preset.features
    y16 = resample(np.asarray(y, dtype=np.float32), orig_sample_rate=int(sample_rate),
                   target_sample_rate=cfg.sample_rate)
    logmag = features(y16, cfg)
    c = preset.context_frames
    if len(logmag) < c:
        empty = np.zeros(0)
        return PitchTrack(empty, empty, empty)
    parts = []
    for start in range(0, len(logmag) - c + 1, ENCODE_CHUNK_FRAMES):  # outputs start .. start + chunk - 1
        window = logmag[start : start + ENCODE_CHUNK_FRAMES + c - 1]
        parts.append(np.asarray(preset.input_midi(preset.encode(window[None])), dtype=np.float64)[0])
    midi = np.concatenate(parts)
    frame = np.arange(len(midi)) + c - 1  # encoder output t' ends at feature frame t' + c - 1
    if preset.kind in OCTAVE_CHECK_KINDS if octave_check is None else octave_check:
        midi = octave_checked(logmag[frame], midi, cfg, preset.midi_range)
    centre = (frame + 1) * cfg.hop_length - cfg.n_fft / 2  # samples at the model rate
    level = 10 * np.log10(mean_square(y16, centre, cfg.hop_length // 2) + 1e-20)
    return PitchTrack(centre / cfg.sample_rate, midi, level, settle_s=cfg.n_fft / 2 / cfg.sample_rate)


@dataclass(frozen=True)
class TrackNote:
    """One note of a :class:`PitchTrack`: ``onset_s``, ``offset_s``, ``pitch`` (MIDI, integer)
    and ``bends``: ``(time_s, semitones from pitch)`` at each of its frames."""

    onset_s: float
    offset_s: float
    pitch: int
    bends: tuple[tuple[float, float], ...]


def settles(level: np.ndarray, active: np.ndarray, i: int, lag: int) -> bool:
    """Whether a fall that reached frame ``i`` stops there: over the next ``lag`` frames the level
    stays active and within ``RELEASE_CONFIRM_DB`` under ``level[i]`` (a sustain, not a release)."""
    ahead = slice(i, min(i + lag + 1, len(level)))
    return i + lag < len(level) and bool(active[ahead].all()) and float(level[ahead].min()) > level[i] - RELEASE_CONFIRM_DB


def track_notes(track: PitchTrack, *, transpose_semitones: float = 0.0) -> list[TrackNote]:
    """Split ``track`` into notes (see the module docstring); pitches moved by
    ``transpose_semitones`` (the fraction goes into the bends).

    Two passes. By level: a note starts where the level rises out of silence, a release's tail
    or a dip (``REATTACK_DB``) and ends at silence (``GATE_DB``, ``FLOOR_DBFS``) or a release
    (``RELEASE_DB`` within ``RELEASE_WINDOW_S``, then still falling: :func:`settles`). By pitch, inside those: a new note where the
    pitch leaves the note by ``CHANGE_SEMITONES`` for ``CHANGE_FRAMES`` frames, backed up (at
    most ``ONSET_BACKTRACK_S``) to the level's low point before it. A note's pitch is the median
    over its frames once the encoder has settled on it (``track.settle_s`` after a level onset);
    the frames before that bend to the settled value."""
    times, level = track.times_s, track.level_db
    midi = track.midi + float(transpose_semitones)
    n = len(times)
    if not n:
        return []
    hop_s = float(np.median(np.diff(times))) if n > 1 else 1.0
    lag = max(int(round(RELEASE_WINDOW_S / hop_s)), 1)
    back = int(round(ONSET_BACKTRACK_S / hop_s))
    settle = int(round(track.settle_s / hop_s))
    active = (level > max(float(level.max()) - GATE_DB, FLOOR_DBFS)) & np.isfinite(midi)

    segments: list[tuple[int, int, float]] = []  # level pass: (first frame, end frame, offset_s)
    start, peak, dipped, tail = -1, -np.inf, False, np.nan
    tail_pitch, tail_from, tail_away = np.nan, 0, 0
    for i in range(n + 1):
        if i == n or not active[i]:
            if start >= 0:
                segments.append((start, i, float(times[i - 1]) + hop_s / 2))
            start, tail = -1, np.nan
            continue
        if np.isfinite(tail):  # a released note's tail: no note until the level attacks again or
            tail = min(tail, level[i])  # the pitch moves to another note (its attack overlapped the release)
            tail_away = tail_away + 1 if abs(midi[i] - tail_pitch) > CHANGE_SEMITONES else 0
            if level[i] < tail + REATTACK_DB and tail_away < CHANGE_FRAMES:
                continue
            start, peak, dipped, tail = last_low_point(level, tail_from, i + 1), level[i], False, np.nan
            continue
        if start < 0:
            start, peak, dipped = i, level[i], False
            continue
        if i - start > lag and level[i] < level[i - lag] - RELEASE_DB and not settles(level, active, i, lag):
            seg = level[i - lag : i + 1]
            end = i - lag + int(np.flatnonzero(seg >= seg.max() - 1.0)[-1])  # where the fall began
            segments.append((start, end + 1, float(times[end])))
            tail_pitch = float(np.median(midi[max(start, end - CHANGE_FRAMES) : end + 1]))
            start, tail, tail_from, tail_away = -1, float(level[i]), i, 0
            continue
        dipped = dipped or level[i] < peak - REATTACK_DB
        if dipped and level[i] >= level[i - 1] + REATTACK_DB:  # re-attacked after a dip
            segments.append((start, i, float(times[i])))
            start, peak, dipped = i, level[i], False
            continue
        peak = max(peak, level[i])

    notes: list[TrackNote] = []
    for s, e, offset_s in segments:  # pitch pass
        cuts = [(s, min(s + settle, e - 1))]  # (first frame, first settled frame)
        current = float(np.median(midi[cuts[0][1] : min(cuts[0][1] + REFERENCE_FRAMES, e)]))
        away = 0
        for i in range(cuts[0][1], e):
            away = away + 1 if abs(midi[i] - current) > CHANGE_SEMITONES else 0
            if away >= CHANGE_FRAMES:
                moved = i - away + 1
                lo = max(cuts[-1][0] + 1, moved - back)
                cuts.append((last_low_point(level, lo, moved + 1), moved))
                current, away = float(np.median(midi[moved : min(moved + REFERENCE_FRAMES, e)])), 0
        for k, (a, steady) in enumerate(cuts):
            b = cuts[k + 1][0] if k + 1 < len(cuts) else e
            off = float(times[b]) if k + 1 < len(cuts) else offset_s  # legato: up to the next note
            if off - times[a] < MIN_NOTE_S or b <= a:
                continue
            steady = min(max(steady, a), b - 1)
            value = float(np.median(midi[steady:b]))
            pitch = int(round(value))
            lead = float(np.median(midi[steady : min(steady + CHANGE_FRAMES, b)]))
            bends = tuple((float(times[i]), float((midi[i] if i >= steady else lead) - pitch)) for i in range(a, b))
            notes.append(TrackNote(float(times[a]), off, pitch, bends))
    return notes


def sent_bends(note: TrackNote) -> list[tuple[float, float]]:
    """The ``(time_s, semitones)`` bends of ``note`` worth sending: its first, then each that
    differs from the last one sent by ``BEND_STEP_SEMITONES`` or more (each costs a decode)."""
    out: list[tuple[float, float]] = []
    for t, semitones in note.bends:
        if not out or abs(semitones - out[-1][1]) >= BEND_STEP_SEMITONES:
            out.append((max(t, note.onset_s), semitones))
    return out


def note_events(notes: list[TrackNote], *, sample_rate: int, bend_range_semitones: float,
                n_samples: int | None = None) -> list[MidiEvent]:
    """Engine events for ``notes``: note-on/off and pitch bends (:func:`sent_bends` /
    ``bend_range_semitones``, clipped to the wheel's range), offsets in samples at
    ``sample_rate``, sorted; at one offset: note-off, bend, note-on."""
    keyed = []
    for n in notes:
        on = int(round(n.onset_s * sample_rate))
        off = max(int(round(n.offset_s * sample_rate)), on + 1)
        keyed.append((on, 2, note_on(on, n.pitch, 100)))
        keyed.append((off, 0, note_off(off, n.pitch)))
        for t, semitones in sent_bends(n):
            at = max(int(round(t * sample_rate)), on)
            if at < off:
                keyed.append((at, 1, pitch_bend(at, float(np.clip(semitones / bend_range_semitones, -1, 1)))))
    keyed.sort(key=lambda k: k[:2])
    return [ev for offset, _, ev in keyed if n_samples is None or offset < n_samples]


def input_notes(preset: Preset, y: np.ndarray, sample_rate: int, *, transpose_semitones: float = 0.0) -> list[TrackNote]:
    """The notes of mono ``y [n]`` at ``sample_rate`` Hz as the preset's encoder hears them:
    :func:`track_notes` of :func:`pitch_track`."""
    return track_notes(pitch_track(preset, y, sample_rate), transpose_semitones=transpose_semitones)


def input_note_events(preset: Preset, y: np.ndarray, sample_rate: int, *, engine_rate: int, n_samples: int,
                      bend_range_semitones: float, transpose_semitones: float = 0.0,
                      notes: list[TrackNote] | None = None) -> list:
    """Engine events (at ``engine_rate``) that play mono ``y [n]`` (at ``sample_rate`` Hz)'s own
    pitch as notes: :func:`pitch_track`, :func:`track_notes`, :func:`note_events`; ``notes``:
    those already found (``transpose_semitones`` included), so they are not searched again."""
    if notes is None:
        notes = input_notes(preset, y, sample_rate, transpose_semitones=transpose_semitones)
    return note_events(notes, sample_rate=engine_rate, bend_range_semitones=bend_range_semitones,
                       n_samples=n_samples)


def write_notes_midi(notes: list[TrackNote], path, *, bend_range_semitones: float = 2.0) -> None:
    """``notes`` as a standard MIDI file at ``path``, written atomically (temp + rename): one
    track, velocity 100, the bends as pitch-bend messages for a ``bend_range_semitones`` wheel
    (:func:`sent_bends`, as the engine gets them). ``audiosym resynth
    --midi`` reads its notes back; a DAW or notation program opens it as it is."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    track = pretty_midi.Instrument(program=0, name="audiosym: notes of the input")
    for n in notes:
        track.notes.append(pretty_midi.Note(velocity=100, pitch=int(n.pitch), start=n.onset_s, end=n.offset_s))
        for t, semitones in sent_bends(n):
            value = int(np.clip(round(semitones / bend_range_semitones * 8192), -8192, 8191))
            track.pitch_bends.append(pretty_midi.PitchBend(pitch=value, time=float(t)))
    pm.instruments.append(track)
    with atomic_path(path) as tmp:
        pm.write(tmp)
