"""A trained run -> one preset file: export graphs, check them against torch, calibrate, save.

``build_preset(model, out)`` refuses to write anything when the ONNX graphs do not
reproduce the torch model (max abs error above ``atol`` in float32).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import platform
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import torch

import audiosym
from audiosym.data.soundfonts import soundfont_label
from audiosym.errors import PresetError
from audiosym.families.calibration import training_files
from audiosym.preset.format import SUFFIX, latency_samples, receptive_field_samples
from audiosym.preset.model import Preset
from audiosym.timbre.match import MEMBER as MATCH_MEMBER
from export.calibrate import calibrate, parity_notes, training_setup
from export.onnx_graphs import (
    OPSET,
    ExportableModel,
    ParityReport,
    check_parity,
    export_graphs,
    latent_layout,
)
from export.rematch import measure_match
from export.save import save_preset
from train.core.runs import load_run

EVAL_SETUP_KEYS = ("test_soundfont", "train_programs", "heldout_programs", "pitch_limits", "velocities",
                   "note_seconds", "sustain_start_frame", "n_atoms")


def _versions() -> dict[str, str]:
    return {
        "audiosym": audiosym.__version__, "torch": torch.__version__, "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__, "numpy": np.__version__, "opset": str(OPSET),
        "python": platform.python_version(),
    }


def run_metrics(run_dir: str | os.PathLike | None) -> dict[str, Any]:
    """The run's last evaluation (summary.json ``last_eval``) and step count, if any."""
    if run_dir is None:
        return {}
    path = Path(run_dir) / "summary.json"
    if not path.exists():
        return {}
    summary = json.loads(path.read_text())
    out: dict[str, Any] = {k: v for k, v in (summary.get("last_eval") or {}).items() if isinstance(v, int | float)}
    if out:
        out = {"last_eval": out}  # the run's own periodic evaluation (train/sps/method.py, train/v3/method.py define it)
    out["steps"] = summary.get("steps")
    out["train_seconds"] = summary.get("train_seconds")
    return {k: v for k, v in out.items() if v is not None}


def train_command(argv: list[str] | None) -> str:
    """The ``audiosym train ...`` command line recorded in run.json (argv[0] is the script path)."""
    if not argv:
        return "unknown"
    return " ".join(["audiosym", *(f"'{a}'" if " " in a else a for a in argv[1:])])


def default_name(out: str | os.PathLike) -> str:
    stem = Path(out).stem
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.")[:64] or "preset"


def build_preset(
    model: ExportableModel,
    out: str | os.PathLike,
    *,
    name: str | None = None,
    description: str = "",
    run_dir: str | os.PathLike | None = None,
    metrics: dict[str, Any] | None = None,
    overwrite: bool = False,
    atol: float = 1e-4,
    progress: bool = True,
    log=None,
    match: bool = True,
) -> tuple[Preset, ParityReport]:
    """Export ``model`` (a LatentModel with ``.torch_model``) to the preset file ``out``.

    ``match``: also measure and store the named timbres' match corrections and note envelopes
    (:mod:`audiosym.timbre.match`, a few seconds per timbre)."""
    log = log or sys.stderr
    out = Path(out)
    if out.suffix != SUFFIX:
        raise PresetError(f"out={out} must end in {SUFFIX}")
    if out.exists() and not overwrite:
        raise PresetError(f"out={out} already exists; choose another path or pass overwrite=True")
    model.torch_model.eval().cpu()
    print(f"export: {model.kind} model -> ONNX (opset {OPSET}, dynamic batch and time)", file=log)
    enc, dec = export_graphs(model)
    notes = parity_notes(model, progress=progress)
    report = check_parity(model, enc, dec, atol=atol, notes=notes)
    print(f"parity: torch vs onnxruntime on sequences of {len(notes)} rendered training notes", file=log)
    print(report.table(), file=log)
    if not report.ok:
        raise PresetError(
            f"the exported ONNX graphs do not reproduce the torch model (max abs error "
            f"{report.max_abs_err:.2e} > {atol:.0e}, or codes disagree); no preset was written. "
            "Check the model's export_modules() for data-dependent Python control flow"
        )
    recorded = bool(model.metadata.get("train_audio"))
    print("calibrate: " + ("the notes of the training recordings, pitches from pyin" if recorded else
                           "rendering single notes of the training instruments from the training soundfont"), file=log)
    cal = calibrate(model, progress=progress)
    recordings = cal["calibration"].get("recordings")
    meta: dict[str, Any] = {
        "name": name or default_name(out),
        "kind": model.kind,
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "versions": _versions(),
        "features": model.features.to_dict(),
        "window": "hann_periodic",
        "context_frames": int(model.context_frames),
        "latency_samples": latency_samples(model.features, model.context_frames),
        "receptive_field_samples": receptive_field_samples(model.features, model.context_frames),
        "latent": latent_layout(model),
        "train_soundfont": (f"recordings: {recordings['folder']}" if recordings
                            else soundfont_label(cal["calibration"]["soundfont"])),
        **{k: cal[k] for k in ("pitch_control", "midi_range", "timbres", "default_timbre")},
        "calibration": {**cal["calibration"], "soundfont": soundfont_label(cal["calibration"]["soundfont"])
                        if cal["calibration"]["soundfont"] else ""},
        "metrics": {**run_metrics(run_dir), **(metrics or {})},
        "source": {"parity_max_abs_err": report.max_abs_err, "parity_inputs": f"{len(notes)} rendered training notes"},
    }
    for key in EVAL_SETUP_KEYS:  # the run's evaluation setup, read by audiosym.eval.v3 from a preset too
        value = model.metadata.get(key)
        if value not in (None, "", [], ()):
            meta[key] = list(value) if isinstance(value, tuple | list) else value
    if recordings:
        meta["source"]["recordings"] = recordings  # files, minutes, notes per timbre; sha256 of the file list
    if description:
        meta["description"] = description
    if run_dir is not None:
        run_json = Path(run_dir) / "run.json"
        info = json.loads(run_json.read_text()) if run_json.exists() else {}
        config = getattr(model, "config", None)
        meta["source"].update({
            "run": Path(run_dir).name, "git_commit": info.get("git_commit", "unknown"),
            "seed": info.get("seed"), "config_name": (model.metadata or {}).get("config_name"),
            "train_command": train_command(info.get("command")),
        })
        if config is not None and hasattr(config, "__dataclass_fields__"):
            meta["source"]["config"] = json.loads(json.dumps(dataclasses.asdict(config), default=str))
    members = {}
    if match and recorded:
        print("match: measuring the named timbres' match corrections, note envelopes and band profiles on the "
              "training recordings", file=log)
        files, _ = training_files(training_setup(model), model.features, progress=False)
        blob, meta["match"] = measure_match(meta, enc, dec, progress=progress, recordings=files)
        members[MATCH_MEMBER] = blob
    elif match:
        print("match: measuring the named timbres' match corrections and note envelopes on the training soundfont",
              file=log)
        blob, meta["match"] = measure_match(meta, enc, dec, progress=progress)
        members[MATCH_MEMBER] = blob
    preset = save_preset(out, meta, encoder_onnx=enc, decoder_onnx=dec, reference=model, overwrite=overwrite,
                         atol=atol, check_frames=notes[:4], members=members)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB): re-loaded, runs, and matches torch", file=log)
    return preset, report


def export_run(run_dir: str | os.PathLike, out: str | os.PathLike, **kw) -> tuple[Preset, ParityReport]:
    """``audiosym export RUN --out PRESET``: load the run's checkpoint and build its preset."""
    return build_preset(load_run(run_dir), out, run_dir=run_dir, **kw)
