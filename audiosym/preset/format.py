"""The preset file format (``.asym``): where preset files live, their metadata schema, reading them checked.

A preset file is one zip holding ``metadata.json``, ``encoder.onnx`` and ``decoder.onnx``.
``metadata.json`` is validated against ``audiosym/preset/schema/preset.schema.json`` when saved and
when loaded, each graph's sha256 is checked, and the same metadata (less ``graphs``: a file
cannot hold its own hash) sits in each graph's ONNX ``metadata_props`` under the key
``audiosym``. An optional ``match.npz`` (hash in ``metadata["match"]``) holds the named timbres'
match corrections and note envelopes measured at export (:mod:`audiosym.timbre.match`).

Nothing here starts onnxruntime or imports torch: :func:`audiosym.preset.session.load_preset` turns a
checked file into a playable :class:`audiosym.preset.model.Preset`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Any

import jsonschema

from audiosym import families
from audiosym.dsp.features import FeatureConfig
from audiosym.dsp.pitch import short_delay_samples
from audiosym.errors import ParameterError, PresetError
from audiosym.io.audio import atomic_path

FORMAT_VERSION = 2  # 2 (2026-11-30): optional match.npz; version-1 files (no match data) still load
SUFFIX = ".asym"
GRAPHS = ("encoder.onnx", "decoder.onnx")
OPTIONAL_MEMBERS = ("match.npz",)  # audiosym.timbre.match.MEMBER; its sha256 is in metadata["match"]
METADATA = "metadata.json"
ONNX_METADATA_KEY = "audiosym"
ENV_PRESETS = "AUDIOSYM_PRESETS"


# -- where presets live ----------------------------------------------------------------
def shipped_dir() -> Path | None:
    """The ``presets/`` folder shipped with audiosym: beside the package in a checkout or an
    editable install, else ``<prefix>/share/audiosym/presets`` when installed as data files."""
    checkout = Path(__file__).resolve().parents[2]  # the repository, in a checkout
    for cand in (checkout / "presets", Path(sys.prefix) / "share" / "audiosym" / "presets"):
        if cand.is_dir():
            return cand
    return None


def user_dir() -> Path:
    """Where user presets live (may not exist yet): ``$AUDIOSYM_PRESETS``, else
    ``$XDG_DATA_HOME/audiosym/presets`` (the XDG base-directory rule: an absolute
    ``XDG_DATA_HOME`` only), else ``~/.local/share/audiosym/presets``."""
    env = os.environ.get(ENV_PRESETS)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "audiosym" / "presets"


def search_folders() -> list[tuple[str, Path | None]]:
    """The folders a preset name is looked up in, in order: ``[("shipped", dir or None),
    ("user", dir)]``. A path to a file is always taken as it is, before any name."""
    return [("shipped", shipped_dir()), ("user", user_dir())]


def preset_files() -> list[tuple[str, Path, str]]:
    """Every findable preset as ``(name, path, where)``, ``where`` = 'shipped' | 'user', in
    resolution order. A user preset with the same name as a shipped one is listed too but
    resolves second (:func:`resolve_preset`): load it by its path.
    """
    out = []
    for where, folder in search_folders():
        if folder is not None and folder.is_dir():
            out += [(p.stem, p, where) for p in sorted(folder.glob(f"*{SUFFIX}")) if p.is_file()]
    return out


def resolve_preset(path_or_name: str | os.PathLike) -> Path:
    """A preset file path, else a name looked up in the shipped folder, then the user folder
    (:func:`search_folders`; the first match wins)."""
    p = Path(path_or_name).expanduser()
    if p.is_file():
        return p
    name = str(path_or_name)
    if os.sep not in name and "/" not in name:
        stem = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name
        for n, path, _ in preset_files():
            if n == stem:
                return path
    known = ", ".join(sorted({n for n, _, _ in preset_files()})) or "none"
    raise PresetError(
        f"preset {name!r} was not found: it is neither a file nor the name of a preset in "
        f"{shipped_dir() or '(no shipped presets folder)'} or {user_dir()} (set ${ENV_PRESETS} to "
        f"change the user folder); available presets: {known}. Add one with "
        "`audiosym presets install FILE.asym`; `audiosym presets list` shows them all"
    )


#: A user preset's name: what ``--preset NAME`` takes; the file is ``<name>.asym``.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


def install_preset(path: str | os.PathLike, *, name: str | None = None, overwrite: bool = False) -> Path:
    """Copy the preset file ``path`` into :func:`user_dir` as ``<name>.asym`` (``name``: default
    the file's stem), so that it loads by name -> the installed path.

    The file is checked first (zip, schema, hashes: :func:`read_preset_files`); the copy appears
    atomically (a reader sees no half file) with the permissions of a new file (0666 less the
    umask). Refused, naming the fix: a name ``--preset`` cannot take, the name of a shipped
    preset (which would hide it), an existing user preset of that name unless ``overwrite``.
    """

    src = Path(path).expanduser()
    if not src.is_file():
        raise PresetError(f"{src} is not a file; give the path of an exported preset (audiosym export RUN --out P.asym)")
    read_preset_files(src)
    name = src.name if name is None else name
    name = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name
    if not NAME_PATTERN.fullmatch(name):
        raise ParameterError(
            f"name={name!r} cannot be a preset name: a name is 1-64 letters, digits and . _ + - starting with "
            "a letter or digit (it is what a preset is loaded by); give another name=..."
        )
    shipped = shipped_dir()
    if shipped is not None and (shipped / f"{name}{SUFFIX}").is_file():
        raise PresetError(
            f"{name!r} is the name of a shipped preset ({shipped / (name + SUFFIX)}), which names resolve to first: "
            "an installed copy would never load by name; give it another name=..."
        )
    dest = user_dir() / f"{name}{SUFFIX}"
    if dest.exists():
        if dest.resolve() == src.resolve():
            return dest
        if not overwrite:
            raise PresetError(
                f"a user preset named {name!r} exists already ({dest}); overwrite=True replaces it, or name=... "
                "installs this one under another name"
            )
    with atomic_path(dest, suffix=".part") as tmp, open(src, "rb") as fin, open(tmp, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return dest


# -- the real-time contract -------------------------------------------------------------
def latency_samples(features: FeatureConfig, context_frames: int) -> int:
    """Analysis look-behind of a model path, in samples at the model rate (``metadata["latency_samples"]``):
    an output frame depends on the last ``receptive_field_samples`` input samples and is complete
    at the end of its hop, so its oldest input sample lies ``n_fft - hop_length + (context_frames
    - 1) * hop_length`` samples before the start of that hop (1792 + 256 = 2048 samples = 128 ms
    at 16 kHz for the default features and 2 context frames). The engine adds its own synthesis
    and resampling delay and measures the total."""
    return int(features.n_fft - features.hop_length + (context_frames - 1) * features.hop_length)


def latency_summary(meta: dict[str, Any], *, preset: str = "P") -> dict[str, Any]:
    """Which signal path waits for what, from a preset's metadata, in numbers and words
    (``audiosym presets inspect``; ``preset``: the name or path to put in the command shown).

    The input-pitch path (transfer mode, no MIDI note held) follows a short-window estimate
    whose window the preset's lowest playable note sets (:func:`audiosym.dsp.pitch.short_delay_samples`;
    ``input_pitch_ms``, 2026-12-05, issue #15); with ``--pitch-follow encoder`` it waits for the
    analysis window: a new input pitch reaches the output once the encoder's window holds enough
    of it, within the look-behind (measured 2026-12-04 with pyin on a 62 -> 69 step: sps-default
    99 ms of its 128 ms, v3-default 53 ms of its 112 ms; tests/preset/test_latency_words.py).
    MIDI note-on and the input's level wait for neither; their delay (a few ms) belongs to the
    engine, not the preset, and ``audiosym bench engine`` measures it."""
    sr = int(meta["features"]["sample_rate"])
    look = int(meta["latency_samples"])
    frames = int(meta["context_frames"])
    command = f"audiosym bench engine --preset {preset}"
    fast_ms = 1e3 * short_delay_samples(int(meta["midi_range"][0]), sr) / sr
    return {
        "sample_rate": sr,
        "input_pitch_lookbehind_samples": look,
        "input_pitch_lookbehind_ms": round(1e3 * look / sr, 1),
        "input_pitch_ms": round(fast_ms, 1),
        "measure_command": command,
        "note_and_level": ("MIDI note-on -> sound and input onset -> output do not wait for the analysis: a few ms, "
                           f"set by the engine, not the preset; measured on this machine by `{command}` "
                           "(note_latency_ms, input_latency_ms)"),
        "input_pitch": (f"transfer mode with no MIDI note held: the input's own pitch reaches the output within "
                        f"{fast_ms:.1f} ms of a new note (a short-window estimate whose window the lowest playable "
                        "note sets; the encoder guards its octave); with --pitch-follow encoder once the "
                        f"analysis window holds enough of it, within the look-behind of {look} samples = "
                        f"{1e3 * look / sr:.1f} ms at {sr} Hz (latency_samples; {frames} context "
                        f"frame{'s' if frames != 1 else ''}), typically 50-100 ms; + ~3 ms resampling at 44.1/48 kHz"),
    }


def receptive_field_samples(features: FeatureConfig, context_frames: int) -> int:
    """Input samples that feed one output frame: ``n_fft + (context_frames - 1) * hop_length``."""
    return int(features.n_fft + (context_frames - 1) * features.hop_length)


# -- metadata validation ---------------------------------------------------------------
def schema() -> dict[str, Any]:
    return json.loads((Path(__file__).resolve().parent / "schema" / "preset.schema.json").read_text())


def validate_metadata(meta: Any, *, where: str = "metadata") -> None:
    """Raise PresetError naming the first field that breaks the schema or a cross-field rule."""
    if not isinstance(meta, dict):
        raise PresetError(f"{where} must be a JSON object, got {type(meta).__name__}")
    version = meta.get("format_version")
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise PresetError(
            f"{where} has format_version {version}, but this audiosym reads format_version "
            f"{FORMAT_VERSION} and older: the preset was made by a newer audiosym; upgrade audiosym "
            "(pip install -U audiosym)"
        )
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(meta), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        field = ".".join(str(x) for x in err.absolute_path) or "(top level)"
        raise PresetError(f"{where} breaks the preset schema at field {field!r}: {err.message}")
    lo, hi = meta["midi_range"]
    if lo > hi:
        raise PresetError(f"{where}: midi_range [{lo}, {hi}] must have lo <= hi")
    if meta["default_timbre"] not in meta["timbres"]:
        raise PresetError(
            f"{where}: default_timbre {meta['default_timbre']!r} is not one of the timbres "
            f"{sorted(meta['timbres'])}"
        )
    try:
        family = families.get(meta["kind"])
    except ParameterError as exc:
        raise PresetError(f"{where}: kind {meta['kind']!r} is not a model family this audiosym knows ({exc}); "
                          "upgrade audiosym or install the package that registers it") from None
    pc_type = meta["pitch_control"]["type"]
    if pc_type != family.pitch_control_type:
        raise PresetError(f"{where}: a {family.name!r} preset needs pitch_control type "
                          f"{family.pitch_control_type!r}, got {pc_type!r}")
    outputs = {t["name"]: t["shape"] for t in meta["latent"]["encoder_outputs"]}
    pitch_key, timbre_key = family.pitch_latent, family.timbre_latent
    if timbre_key not in outputs or pitch_key not in outputs:
        raise PresetError(f"{where}: latent.encoder_outputs must name {pitch_key} and {timbre_key} for a {family.name} preset")
    dims = {len(t["vector"]) for t in meta["timbres"].values()}
    if dims != {outputs[timbre_key][-1]}:
        raise PresetError(f"{where}: timbre vectors have length(s) {sorted(dims)}, but {timbre_key} has {outputs[timbre_key][-1]} dims")
    family.check_metadata(meta, where=where)


def sha256_hex(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def embedded_metadata(meta: dict[str, Any]) -> str:
    """The JSON stored in each graph's metadata_props: the metadata less ``graphs``."""
    return json.dumps({k: v for k, v in meta.items() if k != "graphs"}, sort_keys=True)


# -- reading ---------------------------------------------------------------------------
def read_preset_files(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, bytes]]:
    """``(metadata, {member: bytes})`` of a preset file, fully checked (zip, schema, hashes)."""
    path = Path(path)
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise PresetError(f"preset file {path} does not exist") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise PresetError(
            f"{path} is not a preset: it is not a complete zip file ({exc}); the file is truncated, "
            "corrupt or of another type. Copy it again or re-export it with `audiosym export`"
        ) from None
    with zf:
        names = set(zf.namelist())
        missing = [m for m in (METADATA, *GRAPHS) if m not in names]
        if missing:
            raise PresetError(
                f"{path} is missing {', '.join(missing)}; a preset holds {METADATA}, {', '.join(GRAPHS)}. "
                "Re-export it with `audiosym export`"
            )
        blobs: dict[str, bytes] = {}
        optional = [m for m in OPTIONAL_MEMBERS if m in names]
        for member in (METADATA, *GRAPHS, *optional):
            try:
                blobs[member] = zf.read(member)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                raise PresetError(
                    f"{path}: member {member} is corrupt ({exc}); the file was damaged. "
                    "Copy it again or re-export it"
                ) from None
    try:
        meta = json.loads(blobs[METADATA].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PresetError(f"{path}: {METADATA} is not valid JSON ({exc})") from None
    validate_metadata(meta, where=f"{path}: {METADATA}")
    for member in GRAPHS:
        want = meta["graphs"][member]
        got = sha256_hex(blobs[member])
        if got != want["sha256"] or len(blobs[member]) != want["bytes"]:
            raise PresetError(
                f"{path}: {member} does not match its recorded sha256 ({got[:12]}… vs "
                f"{want['sha256'][:12]}…, {len(blobs[member])} vs {want['bytes']} bytes): the graph was "
                "changed after export (tampered or damaged). Re-export the preset"
            )
    match = meta.get("match")
    if match is not None:
        member = match["member"]
        blob = blobs.get(member)
        if blob is None:
            raise PresetError(f"{path}: metadata names {member} but the file lacks it; re-export the preset")
        if sha256_hex(blob) != match["sha256"] or len(blob) != match["bytes"]:
            raise PresetError(f"{path}: {member} does not match its recorded sha256: the file was changed after "
                              "export (tampered or damaged). Re-export the preset")
    return meta, {m: blobs[m] for m in (*GRAPHS, *([match["member"]] if match else []))}


def read_metadata(path_or_name: str | os.PathLike) -> dict[str, Any]:
    """The checked metadata of a preset without starting onnxruntime."""
    return read_preset_files(resolve_preset(path_or_name))[0]
