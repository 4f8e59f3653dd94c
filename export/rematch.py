"""``audiosym export OLD.asym --out NEW.asym``: a preset's match data measured again, graphs kept.

What a preset stores about its named timbres (``match.npz``: match corrections, note envelopes,
band profiles; :mod:`audiosym.timbre.match`) is measured on its own ONNX graphs and its training
soundfont, so it can be re-measured without the training run or PyTorch: presets exported before
band profiles existed gain them this way. The new file is checked like any export: it is
re-loaded and must decode what the old one decodes (the graphs are the same; only their embedded
metadata and the match member change). Needs ``onnx`` (the training extra), not torch.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audiosym.data.soundfonts import soundfont_label
from audiosym.errors import PresetError
from audiosym.preset.format import SUFFIX, read_preset_files, sha256_hex
from audiosym.preset.model import Preset
from audiosym.preset.session import load_preset, make_session
from audiosym.timbre.match import MEMBER as MATCH_MEMBER
from audiosym.timbre.match import measure_named, to_bytes
from audiosym.timbre.recorded import measure_recorded
from export.save import save_preset

if TYPE_CHECKING:
    from audiosym.data.recording_set import Recordings


def measure_match(meta: dict[str, Any], enc: bytes, dec: bytes, *, progress: bool = False,
                  recordings: Recordings | None = None) -> tuple[bytes, dict]:
    """``(match.npz bytes, metadata["match"])`` measured on the exported graphs themselves
    (onnxruntime, CPU), so what is stored corrects what a musician's engine will decode: on the
    training soundfont, or for a preset trained on recordings on its training ``recordings``
    (:mod:`audiosym.timbre.recorded`)."""
    probe = Preset(path=Path("<export>"), metadata=meta, encoder=make_session(enc, device="cpu"),
                   decoder=make_session(dec, device="cpu"))
    named = (measure_named(probe, progress=progress) if recordings is None
             else measure_recorded(probe, recordings, progress=progress))
    for name, why in named.info.get("skipped", {}).items():
        print(f"match: timbre {name!r} has no match data ({why}); it plays uncorrected", file=sys.stderr)
    blob = to_bytes(named)
    sf = "" if recordings is not None else soundfont_label(str(named.info["soundfont"]))
    info = {"member": MATCH_MEMBER, "sha256": sha256_hex(blob), "bytes": len(blob),
            "soundfont": sf, "timbres": list(named.info["timbres"]),
            **{k: v for k, v in named.info.items() if k not in ("soundfont", "timbres")}}
    return blob, info


def rematch_preset(old: str | os.PathLike, out: str | os.PathLike, *, name: str | None = None,
                   description: str | None = None, overwrite: bool = False, atol: float = 1e-4,
                   progress: bool = True, log=None) -> Preset:
    """Write ``out``: the preset ``old`` (a path or a preset name) with its match data measured
    again by today's code; ``name``/``description`` replace the old ones when given. Refuses to
    write over ``old`` itself or over an existing ``out`` unless ``overwrite=True``."""
    log = log or sys.stderr
    reference = load_preset(old, device="cpu")
    src = Path(reference.path)
    out = Path(out)
    if out.suffix != SUFFIX:
        raise PresetError(f"out={out} must end in {SUFFIX}")
    if out.exists() and out.resolve() == src.resolve():
        raise PresetError(f"out={out} is the preset being re-measured; write a new file, check it, then move it")
    if out.exists() and not overwrite:
        raise PresetError(f"out={out} already exists; choose another path or pass overwrite=True")
    meta, members = read_preset_files(src)
    if (meta.get("source") or {}).get("recordings"):
        raise PresetError(f"{src.name} was trained on recordings ({meta['train_soundfont']}); its match data is "
                          "measured on those recordings, which a preset does not carry: export its run again "
                          "(audiosym export RUN --out NEW.asym) to measure it again")
    enc, dec = members["encoder.onnx"], members["decoder.onnx"]
    meta = {k: v for k, v in meta.items() if k not in ("graphs", "format_version", "match")}
    if name:
        meta["name"] = name
    if description is not None:
        meta["description"] = description
    print(f"match: measuring the named timbres of {src.name} again (corrections, note envelopes, band profiles)",
          file=log)
    blob, meta["match"] = measure_match(meta, enc, dec, progress=progress)
    preset = save_preset(out, meta, encoder_onnx=enc, decoder_onnx=dec, reference=reference, overwrite=overwrite,
                         atol=atol, members={MATCH_MEMBER: blob})
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB): same graphs as {src.name}, match data measured again",
          file=log)
    return preset
