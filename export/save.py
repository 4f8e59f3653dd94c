"""Write a preset file: embed the metadata in the graphs, hash, validate, write atomically, re-check.

Writing lives on the export side (it needs the ``onnx`` package of ``audiosym[train]``);
reading and validation live in :mod:`audiosym.preset.format`, running in :mod:`audiosym.preset.session`;
both stay torch-free.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from audiosym.errors import ParameterError, PresetError
from audiosym.families.base import LatentModel
from audiosym.preset.format import (
    FORMAT_VERSION,
    METADATA,
    ONNX_METADATA_KEY,
    SUFFIX,
    embedded_metadata,
    sha256_hex,
    validate_metadata,
)
from audiosym.preset.model import Preset
from audiosym.preset.session import compare_models, load_preset


def _with_metadata(onnx_bytes: bytes, text: str) -> bytes:
    model = onnx.load_from_string(onnx_bytes)
    for prop in list(model.metadata_props):
        if prop.key == ONNX_METADATA_KEY:
            model.metadata_props.remove(prop)
    model.metadata_props.add(key=ONNX_METADATA_KEY, value=text)
    return model.SerializeToString()


def save_preset(
    path: str | os.PathLike,
    metadata: dict[str, Any],
    *,
    encoder_onnx: bytes,
    decoder_onnx: bytes,
    reference: LatentModel | None = None,
    overwrite: bool = False,
    atol: float = 1e-4,
    seed: int = 0,
    check_frames: np.ndarray | None = None,
    members: dict[str, bytes] | None = None,
) -> Preset:
    """Validate and write a preset atomically, then re-load it and (given ``reference``, a
    LatentModel such as the torch run) check that it computes the same numbers on
    ``check_frames [N, T, F]`` (default: random frames).

    ``metadata`` needs every schema field except ``graphs`` and ``format_version``, which are
    filled in here. ``members``: further zip members (``match.npz``), whose sha256/bytes must
    already be in ``metadata`` (``metadata["match"]``). Refuses to replace an existing file
    unless ``overwrite=True``.
    """
    path = Path(path)
    if path.suffix != SUFFIX:
        raise ParameterError(f"preset path {path} must end in {SUFFIX}")
    if path.exists() and not overwrite:
        raise PresetError(f"{path} already exists; choose another path or pass overwrite=True")
    members = dict(members or {})
    match = metadata.get("match")
    if match is not None:
        blob = members.get(match["member"])
        if blob is None or sha256_hex(blob) != match["sha256"] or len(blob) != match["bytes"]:
            raise ParameterError(f"metadata['match'] names {match['member']} with sha256 {match['sha256'][:12]}…, "
                                 "but members does not hold those bytes; pass the measured member or drop 'match'")
    meta = {**metadata, "format_version": FORMAT_VERSION, "graphs": {}}
    text = embedded_metadata(meta)
    graphs = {"encoder.onnx": _with_metadata(encoder_onnx, text), "decoder.onnx": _with_metadata(decoder_onnx, text)}
    meta["graphs"] = {m: {"sha256": sha256_hex(b), "bytes": len(b)} for m, b in graphs.items()}
    validate_metadata(meta, where="preset metadata")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(METADATA, json.dumps(meta, indent=1, sort_keys=True))
                for m, b in {**graphs, **members}.items():
                    zf.writestr(m, b)
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a preset is meant to be shared
        # Re-load the written bytes and compare with the in-memory model before the file
        # takes its name (neutone's practice): a preset that does not reproduce is never saved.
        preset = load_preset(tmp, device="cpu")
        if reference is not None:
            compare_models(preset, reference, atol=atol, seed=seed, frames=check_frames)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if the path appeared meanwhile: never clobber
            os.unlink(tmp)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dataclasses.replace(preset, path=path)


