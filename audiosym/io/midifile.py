"""Monophonic melodies from Standard MIDI Files (via pretty_midi), for offline resynthesis.

A track may hold chords or overlapping notes (legato playing often overlaps by a few ms);
the engine is monophonic, so a track is reduced with **last-note priority**, as a mono synth
plays it: the most recently pressed note that is still held sounds; when it is released and
an earlier note is still held, the earlier one sounds again from that moment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pretty_midi

from audiosym.errors import AudiosymError, ParameterError


@dataclass(frozen=True)
class MelodyNote:
    """One sounding segment: ``onset_s``/``offset_s`` in seconds, MIDI ``pitch``, ``velocity`` 1..127."""

    onset_s: float
    offset_s: float
    pitch: int
    velocity: int

    @property
    def duration_s(self) -> float:
        return self.offset_s - self.onset_s


@dataclass(frozen=True)
class TrackInfo:
    """A track of a MIDI file as pretty_midi sees it (one per track × channel × program)."""

    index: int
    name: str
    program: int
    is_drum: bool
    n_notes: int

    def describe(self) -> str:
        kind = "drums" if self.is_drum else f"program {self.program}"
        name = self.name or "(unnamed)"
        return f"{self.index}: {name!r} ({kind}, {self.n_notes} notes)"


def _load(path: str | os.PathLike):
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"MIDI file {str(path)!r} does not exist; give the path of a .mid file")
    try:
        return pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:  # noqa: BLE001 - mido/pretty_midi raise many types for bad files
        raise AudiosymError(f"{path}: not a readable Standard MIDI File ({exc})") from None


def list_tracks(path: str | os.PathLike) -> list[TrackInfo]:
    """The tracks of ``path`` with their index (what ``--track`` takes), name, program and note count."""
    pm = _load(path)
    return [
        TrackInfo(i, inst.name.strip(), int(inst.program), bool(inst.is_drum), len(inst.notes))
        for i, inst in enumerate(pm.instruments)
    ]


def select_track(tracks: list[TrackInfo], track: int | str | None, *, path: str = "") -> TrackInfo:
    """Choose a track: an index, a name (case-insensitive, exact before substring), or None.

    None picks the non-drum track with the most notes (the lowest index on a tie).
    """
    listing = "\n".join("  " + t.describe() for t in tracks) or "  (none)"
    if not tracks or all(t.n_notes == 0 for t in tracks):
        raise ParameterError(f"MIDI file {path!r} has no notes; tracks:\n{listing}")
    if track is None:
        melodic = [t for t in tracks if not t.is_drum and t.n_notes > 0]
        if not melodic:
            raise ParameterError(
                f"MIDI file {path!r} has only drum tracks; pick one explicitly with track=INDEX. Tracks:\n{listing}"
            )
        return max(melodic, key=lambda t: (t.n_notes, -t.index))
    if isinstance(track, int) or (isinstance(track, str) and track.strip().lstrip("-").isdigit()):
        index = int(track)
        if not 0 <= index < len(tracks):
            raise ParameterError(
                f"track={index} is out of range: {path!r} has tracks 0..{len(tracks) - 1}:\n{listing}"
            )
        return tracks[index]
    wanted = str(track).strip().lower()
    exact = [t for t in tracks if t.name.lower() == wanted]
    partial = [t for t in tracks if wanted in t.name.lower()]
    for group in (exact, partial):
        if len(group) == 1:
            return group[0]
        if len(group) > 1:
            raise ParameterError(
                f"track={track!r} matches several tracks of {path!r}; give an index instead:\n"
                + "\n".join("  " + t.describe() for t in group)
            )
    raise ParameterError(f"track={track!r} names no track of {path!r}; tracks:\n{listing}")


def monophonic(notes: list[tuple[float, float, int, int]]) -> list[MelodyNote]:
    """Reduce ``(onset_s, offset_s, pitch, velocity)`` notes to non-overlapping segments.

    Last-note priority: at any time the most recently started note still held sounds.
    At equal times releases are applied before presses, so back-to-back notes do not
    overlap. Segments shorter than 1 µs are dropped.
    """
    events = []  # (time, order, seq, pitch, velocity): order 0 = release, 1 = press
    for seq, (onset, offset, pitch, velocity) in enumerate(notes):
        if offset <= onset:
            continue
        events.append((float(onset), 1, seq, int(pitch), int(velocity)))
        events.append((float(offset), 0, seq, int(pitch), int(velocity)))
    events.sort()
    held: list[tuple[int, int, int]] = []  # (seq, pitch, velocity) in press order
    out: list[MelodyNote] = []
    current: tuple[int, int, int] | None = None
    start = 0.0
    for time, order, seq, pitch, velocity in events:
        if order == 1:
            held.append((seq, pitch, velocity))
        else:
            held = [h for h in held if h[0] != seq]
        top = held[-1] if held else None
        if top != current:
            if current is not None and time - start > 1e-6:
                out.append(MelodyNote(start, time, current[1], current[2]))
            current, start = top, time
    return out


def load_track_notes(path: str | os.PathLike, *, track: int | str | None = None) -> list[MelodyNote]:
    """The notes of one track as played (may overlap), sorted by onset (see :func:`select_track`)."""
    pm = _load(path)
    tracks = [
        TrackInfo(i, inst.name.strip(), int(inst.program), bool(inst.is_drum), len(inst.notes))
        for i, inst in enumerate(pm.instruments)
    ]
    chosen = select_track(tracks, track, path=str(path))
    notes = pm.instruments[chosen.index].notes
    return sorted(
        (MelodyNote(float(n.start), float(n.end), int(n.pitch), int(n.velocity)) for n in notes if n.end > n.start),
        key=lambda n: (n.onset_s, n.pitch),
    )


def load_melody(path: str | os.PathLike, *, track: int | str | None = None) -> list[MelodyNote]:
    """The monophonic melody of one track: :func:`monophonic` of :func:`load_track_notes`."""
    notes = load_track_notes(path, track=track)
    return monophonic([(n.onset_s, n.offset_s, n.pitch, n.velocity) for n in notes])


def transpose_melody(melody: list[MelodyNote], semitones: int) -> list[MelodyNote]:
    """The same melody shifted by whole ``semitones`` (used by benchmarks and tests)."""
    return [MelodyNote(n.onset_s, n.offset_s, n.pitch + int(semitones), n.velocity) for n in melody]
