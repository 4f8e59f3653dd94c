"""Where ``audiosym resynth`` writes, and how a rerun recognises its own outputs.

An output is named after its input, the preset and the timbre (``take.wav`` played by
``sps-default`` as ``violin`` -> ``take.sps-default.violin.wav``; with ``--timbre-from
my violin.wav``: ``take.sps-default.ref-my_violin.wav``), so runs with other timbres or presets
share a folder. Each WAV also records every setting that shapes its sound (its INFO comment, a
JSON object: :func:`settings_record`); a rerun skips an output made with the same settings
(resume) and refuses, in words, one made with other settings, instead of skipping it silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from audiosym.errors import ParameterError
from audiosym.io.audio import read_wav_comment
from audiosym.preset.format import resolve_preset

#: Marks a WAV comment as a resynth settings record (and its layout's version).
RECORD_KIND = "audiosym resynth settings 1"


def name_part(text: str) -> str:
    """``text`` as part of a file name on any system: letters, digits, ``_ + - .`` kept, each
    run of anything else (``:``, ``/``, spaces, ...) becomes one ``-``; no leading or trailing
    ``.`` or ``-`` (``ref:my clarinet`` -> ``ref-my-clarinet``)."""
    part = re.sub(r"[^\w.+-]+", "-", text).strip(".-")
    return part or "-"


def preset_stem(preset: str | os.PathLike) -> str:
    """The preset's file name without ``.asym``: what the user calls it (``sps-default``)."""

    return resolve_preset(preset).stem


def output_tag(settings: Any) -> str:
    """``<preset>.<timbre>``, the part of every output name after the input's name."""
    return f"{name_part(preset_stem(settings.preset))}.{name_part(settings.timbre_name)}"


def _file_id(path: str | os.PathLike | None) -> str:
    """``name sha256:<16 hex>`` of a file the output depends on ("" for none): a file edited or
    replaced under the same name is a different setting."""
    if path is None:
        return ""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:  # reported where the file is used (load_for_batch), in its own words
        return f"{Path(path).name} (unreadable)"
    return f"{Path(path).name} sha256:{digest.hexdigest()[:16]}"


def settings_record(settings: Any, *, format_name: str) -> dict[str, str]:
    """Every setting of ``settings`` (:class:`audiosym.offline.resynth.ResynthSettings`) that
    shapes an output's sound, as strings; files (preset, reference, MIDI) by name and content
    hash. ``format_name``: the ``--format`` (a key of :data:`audiosym.io.audio.WAV_FORMATS`)."""

    if settings.midi_path is not None:
        track = "" if settings.midi_track is None else f" track {settings.midi_track}"
        pitch = f"midi {_file_id(settings.midi_path)}{track}"
    else:
        pitch = f"input {settings.input_pitch}"
        if settings.input_pitch == "stream" and settings.pitch_follow != "encoder":  # "input stream": as before #15
            pitch += f" {settings.pitch_follow}"
    return {
        "kind": RECORD_KIND,
        "preset": _file_id(resolve_preset(settings.preset)),
        "timbre": settings.timbre_name,
        "timbre_from": _file_id(settings.timbre_from),
        "timbre_from_midi": _file_id(settings.timbre_from_midi),
        "match": "off" if not settings.match else "measured now" if settings.match_named else "stored",
        "dynamics": settings.dynamics,
        "pitch": pitch,
        "transpose": f"{settings.transpose_semitones:g}",
        "sample_rate": "input" if settings.sample_rate is None else str(settings.sample_rate),
        "format": format_name,
    }


def record_text(record: dict[str, str]) -> str:
    """``record`` as the one-line JSON stored in an output's comment."""
    return json.dumps(record, sort_keys=True, ensure_ascii=False)


def read_record(path: str | os.PathLike) -> dict[str, str] | None:
    """The settings record stored in the WAV at ``path``; None when it holds none (not made by
    ``audiosym resynth``, or not a readable WAV)."""

    text = read_wav_comment(path)
    try:
        record = json.loads(text) if text else None
    except ValueError:
        return None
    return record if isinstance(record, dict) and record.get("kind") == RECORD_KIND else None


def describe_changes(old: dict[str, str], new: dict[str, str]) -> str:
    """The settings that differ, in words: ``transpose 0 -> 3, format float -> pcm16``; a
    file kept its name but changed: ``preset sps-default.asym: the file changed``."""
    parts = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, ""), new.get(key, "")
        if a == b:
            continue
        name_a, name_b = a.split(" sha256:")[0], b.split(" sha256:")[0]
        if name_a == name_b and a and b:
            parts.append(f"{key} {name_a}: the file changed")
        else:
            parts.append(f"{key} {name_a or 'none'} -> {name_b or 'none'}")
    return ", ".join(parts)


def check_out_dir(out_dir: str | os.PathLike) -> None:
    """Refuse, once and before any input is read, an output folder that cannot be one: a file,
    under a file, or under a folder this user cannot write to."""
    given = Path(out_dir)
    path = given.absolute()
    for folder in (path, *path.parents):
        if not os.path.lexists(folder):
            continue
        if not folder.is_dir():
            where = "is a file" if folder == path else f"is under {folder}, which is a file"
            raise ParameterError(f"out_dir={given} {where}, not a folder; give a folder (it is created when missing)")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ParameterError(f"out_dir={given}: {folder} is not writable by this user; choose another output "
                                 "folder or change its permissions")
        return
