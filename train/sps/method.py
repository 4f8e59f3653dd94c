"""SPS: learn a pitch-linear latent from unlabelled note audio (Liu et al., arXiv 2302.10890).

A sequence of notes (a scale or a random walk of one instrument) is encoded frame by
frame to ``z = (z_pitch, z_timbre)``; every note is decoded with ONE timbre vector per
sequence, taken from a *different random note of the same instrument* (so timbre cannot
carry register); a GRU prior predicts each next ``z_pitch``; ``K`` counterfactual copies shift
the whole ``z_pitch`` sequence by ``T``, run the prior, shift the prediction back and ask it to
match the true next note (MSE on z, reconstruction of the decoded prediction). ``K = 0`` is the
ablation without the symmetry term.

The ``tiny`` recipe's pitch head (a translation-equivariant soft-argmax over a harmonic-sum style
convolution on spectral peaks) starts from a near-zero random kernel and learns it; a
filter-invariance term (a low-passed copy of each note must get the same pitch posterior) is what
makes that reliable across seeds: without it a learned kernel may read lone fundamentals (high
notes whose upper partials are weak) on a different tooth than rich notes (octave-sized jumps).

Use: ``audiosym train sps --config tiny --out runs/sps``. Layout of the trained model: see
:mod:`audiosym.families.base`.

The family's entry point for :mod:`train.core.runs` (the same names as :mod:`train.v3.method`):
:class:`Config` and :data:`CONFIGS` (:mod:`train.sps.config`), :func:`build_task`,
:func:`load_latent_model`, the LatentModel wrapper :class:`TorchSPS` and its :func:`metadata`.
The parts: ``config`` (settings), ``data`` (notes, batches), ``model`` (networks), ``loss``
(the module the trainer optimises), ``export`` (ONNX wrappers).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from audiosym.data.notes import load_notes
from audiosym.data.soundfonts import default_train_soundfont, find_soundfont, soundfont_label
from audiosym.errors import ParameterError
from audiosym.eval.recordings import evaluate_sps_recordings
from audiosym.eval.sps import evaluate_sps
from train.core.config import from_record
from train.core.device import to_model, to_numpy
from train.core.recordings import training_recordings
from train.core.trainer import Task
from train.sps.config import CONFIGS, RECORDINGS, Config
from train.sps.data import RecordingSampler, SequenceSampler, note_spec
from train.sps.loss import SPSModel

__all__ = ["CONFIGS", "RECORDINGS", "Config", "SPSModel", "TorchSPS", "build_task", "load_latent_model", "metadata"]


class TorchSPS:
    """A trained SPS model as an :class:`audiosym.families.base.LatentModel` (numpy in, numpy out)."""

    kind = "sps"

    def __init__(self, model: nn.Module, cfg: Config, metadata: dict[str, Any]) -> None:
        self.torch_model, self.config, self.features = model, cfg, cfg.features
        self.context_frames = cfg.context_frames
        self.metadata = metadata
        self._encoder, self._decoder = model.export_modules()  # type: ignore[operator]

    def encode(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """``frames [N, T, F]`` log-magnitudes -> ``z_pitch [N, T', 1]``, ``z_timbre [N, T', D]``."""
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim != 3 or frames.shape[1] < self.context_frames:
            raise ParameterError(f"frames has shape {frames.shape}; expected [N, T >= {self.context_frames}, F]")
        was = self.torch_model.training
        self.torch_model.eval()
        with torch.no_grad():
            zp, zt = self._encoder(to_model(frames, self.torch_model))
        self.torch_model.train(was)
        return {"z_pitch": to_numpy(zp), "z_timbre": to_numpy(zt)}

    def decode(self, **latents: np.ndarray) -> np.ndarray:
        """``decode(z_pitch=[N, T', 1], z_timbre=[N, T', D]) -> logmag [N, T', F]``."""
        if set(latents) != {"z_pitch", "z_timbre"}:
            raise ParameterError(f"decode got {sorted(latents)}; an SPS model decodes z_pitch= and z_timbre=")
        with torch.no_grad():
            out = self._decoder(to_model(latents["z_pitch"], self.torch_model),
                                to_model(latents["z_timbre"], self.torch_model))
        return to_numpy(out)


def metadata(cfg: Config) -> dict[str, Any]:
    """What the LatentModel tells evaluation and export about the run: its training soundfont
    and the settings that shape the latent."""
    if cfg.audio:
        return {"method": "sps", "train_audio": cfg.audio, "holdout": cfg.holdout, "seed": cfg.seed,
                "decoder": cfg.decoder, "K": cfg.K, "bins_per_unit": cfg.bins_per_unit}
    sf = cfg.soundfont or default_train_soundfont()
    return {"method": "sps", "train_soundfont": find_soundfont(sf), "train_soundfont_label": soundfont_label(find_soundfont(sf)),
            "decoder": cfg.decoder, "K": cfg.K, "bins_per_unit": cfg.bins_per_unit}


def build_task(cfg: Config, *, device: torch.device, progress: bool = True) -> Task:
    """Render (or load cached) training notes and build model + sampler + periodic evaluation."""
    if cfg.audio:
        return _recordings_task(cfg, progress=progress)
    if not cfg.soundfont:
        # recorded in the run's config: the run names the soundfont it was trained on
        cfg.soundfont = find_soundfont(default_train_soundfont())
    table = load_notes(note_spec(cfg), progress=progress)
    if len(table) == 0:
        raise ParameterError(f"no note of programs {cfg.programs} rendered audibly from {cfg.soundfont}")
    model = SPSModel(cfg, cfg.features.n_bins)
    sampler = SequenceSampler(table, cfg)

    def evaluate(m: nn.Module) -> dict[str, float]:
        res = evaluate_sps(TorchSPS(m, cfg, metadata(cfg)), synthesis=cfg.eval_synthesis, progress=False)
        out = {"r2_mean": res["r2_mean"], "r2_mean_all": res["r2_mean_all"], "slope_cv": res["slope_cv"],
               "semitone_slope": res["semitone_slope"]}
        out.update({f"r2_{k}": v for k, v in res["r2_per_instrument"].items()})
        if cfg.eval_synthesis:
            out["synthesis_r2_mean"] = res["synthesis_r2_mean"]
        return out

    return Task(model=model, sample=sampler, evaluate=evaluate)


def _recordings_task(cfg: Config, *, progress: bool) -> Task:
    """Train on a folder of recordings: consecutive notes of each file, evaluated on held-out files
    against pyin (:mod:`audiosym.eval.recordings`)."""
    train, test = training_recordings(cfg.audio, cfg.features, holdout=cfg.holdout, seed=cfg.seed, progress=progress)
    model = SPSModel(cfg, cfg.features.n_bins)
    sampler = RecordingSampler(train.training_view(), cfg)
    scored = test if len(test.files) else train

    def evaluate(m: nn.Module) -> dict[str, float]:
        res = evaluate_sps_recordings(TorchSPS(m, cfg, metadata(cfg)), scored)
        out: dict[str, float] = {k: res[k] for k in ("r2_mean", "slope_cv", "semitone_slope", "pooled_r2", "cents_error_median",
                                   "octave_error_rate") if k in res}
        out.update({f"r2_{k}": v for k, v in res["r2_per_instrument"].items()})
        out["eval_on_heldout_files"] = float(scored is test)
        return out

    return Task(model=model, sample=sampler, evaluate=evaluate)


def load_latent_model(state: dict[str, Any]) -> TorchSPS:
    """The model of an SPS checkpoint (``state`` from train.core.trainer.load_checkpoint)."""
    cfg = from_record(Config, state["config"])
    model = SPSModel(cfg, cfg.features.n_bins)
    model.load_state_dict(state["model"])
    model.eval()
    meta = metadata(cfg)
    meta.update(step=int(state.get("step", 0)), config_name=state["config"].get("name"))
    return TorchSPS(model, cfg, meta)
