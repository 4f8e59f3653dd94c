"""V3: discrete pitch codes + continuous timbre styles (``audiosym train v3``).

Each note is encoded to a content vector, quantised to the nearest of ``K`` codebook atoms
(the pitch code), and a style vector (the timbre); the decoder adds the two parts back into a
spectrum. Hinge losses on mean pairwise distances push content to vary between the notes of a
sample and style between samples (instruments); see :mod:`train.v3.loss`.

Use: ``audiosym train v3 --config tiny --out runs/v3``. Layout of the trained model: see
:mod:`audiosym.families.base`.

The family's entry point for :mod:`train.core.runs` (the same names as :mod:`train.sps.method`):
:class:`Config` and :data:`CONFIGS` (:mod:`train.v3.config`), :func:`build_task`,
:func:`load_latent_model`, the LatentModel wrapper :class:`TorchV3` and its :func:`metadata`.
The parts: ``config`` (settings), ``data`` (notes, batches), ``model`` (networks), ``loss``
(the module the trainer optimises), ``export`` (ONNX wrappers).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from audiosym.data.notes import load_notes
from audiosym.data.soundfonts import default_train_soundfont, find_soundfont
from audiosym.errors import ParameterError
from audiosym.eval.recordings import evaluate_v3_recordings
from audiosym.eval.v3 import evaluate_v3, prepare_eval
from train.core.config import from_record
from train.core.device import to_model, to_numpy
from train.core.recordings import training_recordings
from train.core.trainer import Task
from train.v3.config import CONFIGS, Config
from train.v3.data import FragmentSampler, RecordingFragmentSampler, note_spec
from train.v3.loss import V3Loss
from train.v3.model import V3Net, build_net

__all__ = ["CONFIGS", "Config", "TorchV3", "build_net", "build_task", "load_latent_model", "metadata"]


class TorchV3:
    """A trained V3Net as a :class:`audiosym.families.base.LatentModel` (numpy in, numpy out)."""

    kind = "v3"

    def __init__(self, net: V3Net, cfg: Config, metadata: dict[str, Any]) -> None:
        self.torch_model, self.config, self.features = net, cfg, cfg.features
        self.context_frames = cfg.context_frames
        self.metadata = metadata
        self._encoder, self._decoder = net.export_modules()

    def encode(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """``frames [N, T, F]`` log-magnitudes -> ``content``, ``content_q [N, T', Dc]``,
        ``code [N, T']`` (int64), ``style [N, T', Ds]``."""
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim != 3 or frames.shape[1] < self.context_frames:
            raise ParameterError(
                f"frames has shape {frames.shape}; expected [N, T >= {self.context_frames}, {self.features.n_bins}]"
            )
        was = self.torch_model.training
        self.torch_model.eval()
        with torch.no_grad():
            out = self._encoder(to_model(frames, self.torch_model))
        self.torch_model.train(was)
        return {k: to_numpy(v) for k, v in zip(("content", "code", "content_q", "style"), out)}

    def codebook(self) -> np.ndarray:
        """``[K, Dc]`` float32: the atoms, what ``content_q`` is where ``code == k`` (export calibrates with it)."""
        return self.torch_model.codebook.atoms.detach().float().cpu().numpy()

    def decode(self, *, content_q: np.ndarray, style: np.ndarray) -> np.ndarray:
        """``decode(content_q=[N, T', Dc], style=[N, T', Ds]) -> logmag [N, T', F]``."""
        with torch.no_grad():
            y = self._decoder(to_model(content_q, self.torch_model), to_model(style, self.torch_model))
        return to_numpy(y)


def _train_soundfont(cfg: Config) -> str:
    return find_soundfont(cfg.soundfont) if cfg.soundfont else default_train_soundfont()


def metadata(cfg: Config) -> dict[str, Any]:
    """What the LatentModel tells evaluation and export about the run: its soundfonts, the
    instruments, pitches and velocities it was trained and evaluated on, the codebook size."""
    if cfg.audio:
        return {"method": "v3", "train_audio": cfg.audio, "holdout": cfg.holdout, "seed": cfg.seed,
                "sustain_start_frame": cfg.sustain_start_frame, "n_atoms": cfg.n_atoms}
    return {
        "method": "v3",
        "train_soundfont": _train_soundfont(cfg),
        "test_soundfont": cfg.test_soundfont,
        "train_programs": [int(p) for p in cfg.train_programs],
        "heldout_programs": [int(p) for p in cfg.heldout_programs],
        "pitch_limits": [int(p) for p in cfg.pitch_limits],
        "velocities": [int(v) for v in cfg.velocities],
        "note_seconds": cfg.note_seconds,
        "sustain_start_frame": cfg.sustain_start_frame,
        "n_atoms": cfg.n_atoms,
    }


def build_task(cfg: Config, *, device: torch.device, progress: bool = True) -> Task:
    """Render (or load cached) training and evaluation notes and build model + sampler +
    periodic evaluation."""
    if cfg.audio:
        return _recordings_task(cfg, progress=progress)
    sf = _train_soundfont(cfg)
    table = load_notes(note_spec(cfg, sf, cfg.train_programs), progress=progress)
    sampler = FragmentSampler(table, cfg)
    net = build_net(cfg)
    model = V3Loss(net, weights=cfg.loss, relativity=cfg.relativity, seed=cfg.seed, recon_style=cfg.recon_style)
    data = prepare_eval(
        features=table.spec.features, train_soundfont=sf, test_soundfont=cfg.test_soundfont or None, train_programs=cfg.train_programs,
        heldout_programs=cfg.heldout_programs, pitch_limits=tuple(cfg.pitch_limits),
        velocities=tuple(cfg.velocities), note_seconds=cfg.note_seconds,
        sustain_start_frame=cfg.sustain_start_frame, heldout_soundfont=cfg.eval_heldout_soundfont,
        progress=progress,
    )
    meta = metadata(cfg)

    def evaluate(m: torch.nn.Module) -> dict[str, float]:
        assert isinstance(m, V3Loss)
        metrics = evaluate_v3(TorchV3(m.net, cfg, meta), data=data)
        return {k: v for k, v in metrics.items() if isinstance(v, float)}

    return Task(model=model, sample=sampler, evaluate=evaluate)


def _recordings_task(cfg: Config, *, progress: bool) -> Task:
    """Train on a folder of recordings; evaluated on its held-out files against pyin, through an
    atom->pitch map fitted on the training files (:mod:`audiosym.eval.recordings`)."""
    train, test = training_recordings(cfg.audio, cfg.features, holdout=cfg.holdout, seed=cfg.seed, progress=progress)
    sampler = RecordingFragmentSampler(train.training_view(), cfg)
    net = build_net(cfg)
    model = V3Loss(net, weights=cfg.loss, relativity=cfg.relativity, seed=cfg.seed, recon_style=cfg.recon_style)
    meta = metadata(cfg)

    def evaluate(m: torch.nn.Module) -> dict[str, float]:
        assert isinstance(m, V3Loss)
        scored = test if len(test.files) else train
        res = evaluate_v3_recordings(TorchV3(m.net, cfg, meta), scored, fit_on=train if scored is test else None)
        return {k: v for k, v in res.items() if isinstance(v, float)}

    return Task(model=model, sample=sampler, evaluate=evaluate)


def load_latent_model(state: dict[str, Any]) -> TorchV3:
    """The model of a V3 checkpoint (``state`` from train.core.trainer.load_checkpoint)."""
    cfg = from_record(Config, state["config"])
    net = build_net(cfg)
    weights = {k[len("net."):]: v for k, v in state["model"].items() if k.startswith("net.")}
    net.load_state_dict(weights)
    net.eval()
    return TorchV3(net, cfg, metadata(cfg))
