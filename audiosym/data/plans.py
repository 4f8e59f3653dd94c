"""Instruments (General MIDI programs, playable ranges) and note plans (which pitches in which order)."""

from __future__ import annotations

import re

import numpy as np
import pretty_midi

from audiosym.errors import ParameterError

# Playable MIDI ranges (inclusive) of the GM programs we use, clipped to 36..96 as the SPS
# paper did; an instrument's range decides which scales and notes are rendered.
INSTRUMENT_RANGES: dict[int, tuple[int, int]] = {
    0: (36, 96),  # acoustic grand piano
    1: (36, 96),  # bright acoustic piano
    2: (36, 96),  # electric grand piano
    4: (36, 96),  # electric piano 1
    5: (36, 96),  # electric piano 2
    6: (41, 89),  # harpsichord
    7: (36, 84),  # clavinet
    8: (60, 96),  # celesta
    10: (60, 96),  # music box
    11: (53, 89),  # vibraphone
    12: (48, 84),  # marimba
    16: (36, 96),  # drawbar organ
    19: (36, 96),  # church organ
    21: (53, 89),  # accordion
    22: (60, 84),  # harmonica
    24: (40, 84),  # acoustic guitar (nylon)
    25: (40, 84),  # acoustic guitar (steel)
    26: (40, 86),  # electric guitar (jazz)
    27: (40, 86),  # electric guitar (clean)
    32: (28, 60),  # acoustic bass -> clipped below
    33: (28, 60),
    40: (55, 96),  # violin
    41: (48, 84),  # viola
    42: (36, 76),  # cello
    45: (48, 84),  # pizzicato strings
    46: (36, 96),  # orchestral harp
    48: (36, 96),  # string ensemble 1
    52: (48, 79),  # choir aahs
    56: (54, 86),  # trumpet
    57: (40, 77),  # trombone
    58: (36, 65),  # tuba
    59: (54, 82),  # muted trumpet
    60: (41, 77),  # french horn
    61: (40, 84),  # brass section
    64: (44, 75),  # soprano sax
    65: (49, 81),  # alto sax
    66: (44, 76),  # tenor sax
    67: (36, 69),  # baritone sax
    68: (58, 91),  # oboe
    69: (52, 81),  # english horn
    70: (36, 75),  # bassoon
    71: (50, 91),  # clarinet
    72: (74, 96),  # piccolo
    73: (60, 96),  # flute
    74: (60, 96),  # recorder
    75: (60, 96),  # pan flute
    78: (60, 96),  # whistle
    79: (60, 96),  # ocarina
    80: (36, 96),  # lead 1 (square)
    81: (36, 96),  # lead 2 (sawtooth)
    88: (36, 96),  # pad 1 (new age)
}
DEFAULT_RANGE = (36, 96)
SPS_RANGE_LIMITS = (36, 96)

#: Held-out evaluation instruments (the SPS paper's nine).
EVAL_INSTRUMENTS: dict[str, int] = {
    "piano": 0,
    "accordion": 21,
    "clarinet": 71,
    "e-piano": 4,
    "flute": 73,
    "guitar": 24,
    "saxophone": 65,
    "trumpet": 56,
    "violin": 40,
}

#: V3 paper's InsNotes split.
V3_TRAIN_PROGRAMS = (64, 19, 21, 41, 56, 59, 68, 71, 72, 75, 22, 52)
V3_HELDOUT_PROGRAMS = (0, 4, 73, 78)

MAJOR_SCALE_UP_AND_BACK = (0, 2, 4, 5, 7, 9, 11, 12, 11, 9, 7, 5, 4, 2, 0)


def program_name(program: int) -> str:
    """GM program -> readable name, e.g. 40 -> 'Violin'."""
    if not 0 <= int(program) <= 127:
        raise ParameterError(f"program={program} must be a General MIDI program 0..127")
    return pretty_midi.program_to_instrument_name(int(program))


def timbre_name(program: int) -> str:
    """GM program -> identifier used for named timbres, e.g. 0 -> 'acoustic_grand_piano'."""
    return re.sub(r"[^a-z0-9]+", "_", program_name(program).lower()).strip("_")


def instrument_range(program: int, limits: tuple[int, int] | None = SPS_RANGE_LIMITS) -> tuple[int, int]:
    """Playable MIDI range of a GM program, intersected with ``limits``."""
    lo, hi = INSTRUMENT_RANGES.get(int(program), DEFAULT_RANGE)
    if limits is not None:
        lo, hi = max(lo, limits[0]), min(hi, limits[1])
    if lo > hi:
        raise ParameterError(f"program {program} has no playable pitch inside {limits}")
    return lo, hi


def sps_scale_plan(lo: int, hi: int, pattern=MAJOR_SCALE_UP_AND_BACK) -> list[list[int]]:
    """Every transposition of ``pattern`` (semitone offsets) that fits in ``[lo, hi]``."""
    span = max(pattern)
    return [[start + p for p in pattern] for start in range(lo, hi - span + 1)]


def walk_plan(
    rng: np.random.Generator, lo: int, hi: int, *, length: int = 15, max_step: int = 5
) -> list[int]:
    """A random melodic walk of ``length`` notes, steps of 1..max_step semitones, reflected at the range."""
    if hi - lo < max_step:
        raise ParameterError(f"range {lo}..{hi} is narrower than max_step={max_step}")
    pitch = int(rng.integers(lo, hi + 1))
    out = [pitch]
    for _ in range(length - 1):
        step = int(rng.integers(1, max_step + 1)) * (1 if rng.random() < 0.5 else -1)
        nxt = pitch + step
        if nxt < lo or nxt > hi:
            nxt = pitch - step
        pitch = nxt
        out.append(pitch)
    return out


def single_note_plan(lo: int, hi: int) -> list[int]:
    """Every pitch of the range once, ascending (evaluation)."""
    return list(range(lo, hi + 1))
