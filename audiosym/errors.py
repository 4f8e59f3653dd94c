"""The one exception family of audiosym: every user-facing error is an AudiosymError."""

from __future__ import annotations


class AudiosymError(Exception):
    """Base class. Messages name the value, the rule it broke, and how to fix it.

    Library messages name what they are about by the Python keyword, librosa-style
    (``shard='3/2' must ...``), never by a command-line flag; the ``audiosym`` command turns
    ``keyword=value`` into its own flag when it prints the error (``--shard 3/2 must ...``,
    :func:`audiosym.cli._common.cli_message`).
    """


class ParameterError(AudiosymError, ValueError):
    """An argument has a value outside its allowed range or set."""


class SoundfontError(AudiosymError):
    """A soundfont could not be found, loaded or rendered."""


class PresetError(AudiosymError):
    """A preset file is missing, corrupt, tampered with, or of an unknown version."""


class DeviceError(AudiosymError):
    """An audio or MIDI device/port is missing or could not be opened."""


class MissingExtraError(AudiosymError):
    """A command needs an optional extra (e.g. ``audiosym[train]``) that is not installed."""
