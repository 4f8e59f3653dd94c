"""V3 method: discrete pitch codes + continuous timbre styles (``audiosym train v3``).

Data: a sample is a sequence of ``L`` fragments (one note each) played by one
instrument; a fragment is ``C`` consecutive frames from the note's sustained part
(frames >= ``sustain_start_frame``; the first 8 frames of a 2048-sample window still
hold the silence before the onset). Notes come from a :class:`audiosym.data.notes.NoteTable`
rendered once. Each sample gets a smooth random loudness envelope. A batch holds one
sample per training instrument (``samples_per_batch=0``) or that many random ones.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from audiosym.data.notes import NoteSetSpec, load_notes
from audiosym.data.plans import V3_HELDOUT_PROGRAMS, V3_TRAIN_PROGRAMS
from audiosym.data.soundfonts import default_train_soundfont, find_soundfont
from audiosym.dsp.features import FeatureConfig
from audiosym.errors import ParameterError
from train.core.config import from_dict
from train.core.trainer import Task, TrainSettings
from train.v3.model import LossWeights, V3Loss, V3Net

ORDERS = ("random", "chromatic", "mixed")


@dataclass
class Config(TrainSettings):
    """V3 settings. Pitches 60..83 (C4..B5, two octaves) fit every held-out instrument and all
    but four training ones, whose samples then hold the part of the range they can play."""

    soundfont: str = ""  # '' = default_train_soundfont() (FluidR3_GM when installed)
    test_soundfont: str = ""  # '' = default_test_soundfont(train) (MuseScore_General here)
    train_programs: tuple[int, ...] = V3_TRAIN_PROGRAMS
    heldout_programs: tuple[int, ...] = V3_HELDOUT_PROGRAMS
    pitch_limits: tuple[int, ...] = (60, 83)
    velocities: tuple[int, ...] = (80, 100, 120)
    note_seconds: float = 0.5
    sustain_start_frame: int = 8
    fragments_per_sample: int = 24
    samples_per_batch: int = 0  # 0 = one sample per training instrument
    fragment_order: str = "random"  # random | chromatic | mixed
    loudness_db: float = 6.0  # std of the smooth random gain envelope
    eq_db: float = 0.0  # std of a random smooth spectral envelope (EQ) per sample, 0 = off
    eq_components: int = 4  # cosines over the frequency axis making up that EQ curve
    context_frames: int = 1
    content_dim: int = 16
    style_dim: int = 16
    n_atoms: int = 24
    hidden: int = 256
    conv_channels: int = 0  # > 0: frequency-equivariant conv front end for content
    conv_kernel: int = 61
    content_norm: bool = False  # content on a sphere of radius sqrt(content_dim)
    style_dft: int = 0  # > 0: style also sees |DFT over frequency| (pitch-shift invariant), this many terms
    ema_decay: float = 0.99
    dead_fraction: float = 0.2
    relativity: float = 15.0
    recon_style: str = "own"  # own | shuffle: decode with the style of another fragment of the sample
    loss: LossWeights = field(default_factory=LossWeights)
    eval_heldout_soundfont: bool = True

    def __post_init__(self) -> None:
        self.loss = LossWeights.parse(self.loss)
        if self.fragment_order not in ORDERS:
            raise ParameterError(f"fragment_order={self.fragment_order!r} must be one of {ORDERS}")
        if len(self.pitch_limits) != 2 or self.pitch_limits[0] > self.pitch_limits[1]:
            raise ParameterError(f"pitch_limits={self.pitch_limits} must be (low, high) MIDI pitches, e.g. 60,83")
        if self.pitch_limits[0] < 24:
            raise ParameterError(f"pitch_limits={self.pitch_limits}: the feature axis starts at MIDI 24")
        for name in ("context_frames", "content_dim", "style_dim", "n_atoms", "hidden", "fragments_per_sample"):
            if getattr(self, name) < 1:
                raise ParameterError(f"{name}={getattr(self, name)} must be a positive integer")
        if self.fragments_per_sample < 2:
            raise ParameterError("fragments_per_sample must be >= 2: content must vary within a sample")


# Our measured best (BENCHMARKS.md, V3 section); "paper" is the authors' scale for a GPU.
CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": {"steps": 3000, "lr": 1e-3, "eval_every": 500, "ckpt_every": 500,
             "eq_db": 10.0, "recon_style": "shuffle", "content_norm": True, "loss": {"vocab": 1.0}},
    "paper": {"steps": 100000, "lr": 1e-3, "optimizer": "adamw", "weight_decay": 0.1,
              "samples_per_batch": 32, "hidden": 1024, "content_dim": 64, "style_dim": 64,
              "context_frames": 4, "eval_every": 5000, "ckpt_every": 5000, "warmup_steps": 1000,
              "eq_db": 10.0, "recon_style": "shuffle", "content_norm": True, "loss": {"vocab": 1.0}},
}


def note_spec(cfg: Config, soundfont: str, programs: tuple[int, ...]) -> NoteSetSpec:
    return NoteSetSpec(
        soundfont=soundfont, programs=tuple(int(p) for p in programs), velocities=tuple(cfg.velocities),
        note_seconds=cfg.note_seconds, pitch_limits=(int(cfg.pitch_limits[0]), int(cfg.pitch_limits[1])),
        features=FeatureConfig(),
    )


def build_net(cfg: Config) -> V3Net:
    return V3Net(
        n_bins=FeatureConfig().n_bins, context_frames=cfg.context_frames, content_dim=cfg.content_dim,
        style_dim=cfg.style_dim, n_atoms=cfg.n_atoms, hidden=cfg.hidden, conv_channels=cfg.conv_channels,
        conv_kernel=cfg.conv_kernel, ema_decay=cfg.ema_decay, dead_fraction=cfg.dead_fraction,
        style_dft=cfg.style_dft, content_norm=cfg.content_norm,
    )


class FragmentSampler:
    """Draws batches ``frames [B, L, C, F]`` (+ ``pitch [B, L]``, ``program [B]`` for logging)."""

    def __init__(self, table, cfg: Config) -> None:
        self.cfg = cfg
        self.frames = table.frames
        self.programs = [int(p) for p in cfg.train_programs if np.any(table.program == p)]
        if not self.programs:
            raise ParameterError(f"no training notes rendered for programs {cfg.train_programs}")
        # rows[i][pitch] -> row indices (one per velocity) of instrument i
        self.rows: list[dict[int, np.ndarray]] = []
        for p in self.programs:
            m = np.flatnonzero(table.program == p)
            self.rows.append({int(k): m[table.pitch[m] == k] for k in np.unique(table.pitch[m])})
        n_frames = self.frames.shape[1]
        self.t_lo = cfg.sustain_start_frame
        self.t_hi = n_frames - cfg.context_frames  # inclusive start of the last context window
        if self.t_hi < self.t_lo:
            raise ParameterError(
                f"note_seconds={cfg.note_seconds} gives {n_frames} frames: too few for sustain_start_frame="
                f"{cfg.sustain_start_frame} and context_frames={cfg.context_frames}"
            )

    def _pitches(self, rng: np.random.Generator, avail: list[int]) -> list[int]:
        L = self.cfg.fragments_per_sample
        order = self.cfg.fragment_order
        if order == "mixed":
            order = "random" if rng.random() < 0.5 else "chromatic"
        if order == "chromatic":  # ascending chromatic cycle from a random start (the paper's order)
            start = int(rng.integers(len(avail)))
            return [avail[(start + i) % len(avail)] for i in range(L)]
        out: list[int] = []
        while len(out) < L:  # every pitch once (shuffled), then again, so coverage is even
            out.extend(int(x) for x in rng.permutation(avail))
        return out[:L]

    def envelope(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """A smooth random log-gain (natural log units) over ``n`` frames."""
        if self.cfg.loudness_db <= 0:
            return np.zeros(n)
        k = 9
        noise = rng.normal(size=n + k - 1)
        smooth = np.convolve(noise, np.hanning(k + 2)[1:-1], mode="valid")
        smooth = smooth / (smooth.std() + 1e-9)
        return smooth * self.cfg.loudness_db * np.log(10) / 20

    def eq(self, rng: np.random.Generator, n_samples: int, n_bins: int) -> np.ndarray:
        """Random smooth log-gain curves over frequency ``[n_samples, n_bins]``, one per sample.

        A smooth spectral envelope is what separates instruments in a source-filter view, so
        an EQ shared by all fragments of a sample makes a new "instrument" each time: content
        must not depend on it, style may.
        """
        if self.cfg.eq_db <= 0:
            return np.zeros((n_samples, n_bins))
        k = np.arange(1, self.cfg.eq_components + 1)
        f = np.arange(n_bins) / n_bins
        amp = rng.normal(size=(n_samples, len(k))) / np.sqrt(len(k))
        phase = rng.uniform(0, 2 * np.pi, size=(n_samples, len(k)))
        curve = (amp[:, :, None] * np.cos(np.pi * k[None, :, None] * f[None, None, :] + phase[:, :, None])).sum(1)
        return curve * self.cfg.eq_db * np.log(10) / 20

    def __call__(self, rng: np.random.Generator, step: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        if cfg.samples_per_batch:
            inst = rng.integers(len(self.programs), size=cfg.samples_per_batch)
        else:
            inst = np.arange(len(self.programs))
        B, L, C = len(inst), cfg.fragments_per_sample, cfg.context_frames
        rows = np.empty((B, L), np.int64)
        pitch = np.empty((B, L), np.int64)
        for b, i in enumerate(inst):
            avail = sorted(self.rows[i])
            for j, m in enumerate(self._pitches(rng, avail)):
                cand = self.rows[i][m]
                rows[b, j] = cand[rng.integers(len(cand))]
                pitch[b, j] = m
        t0 = rng.integers(self.t_lo, self.t_hi + 1, size=(B, L))
        x = self.frames[rows[..., None], t0[..., None] + np.arange(C)]  # [B, L, C, F]
        gain = np.stack([self.envelope(rng, L * C).reshape(L, C) for _ in range(B)])[..., None]
        gain = gain + self.eq(rng, B, x.shape[-1])[:, None, None, :]
        eps = FeatureConfig().eps
        # The gain acts on magnitudes, not on log values: the eps floor stays where it is.
        x = np.log(np.maximum(np.exp(x.astype(np.float64)) - eps, 0.0) * np.exp(gain) + eps)
        return {
            "frames": torch.from_numpy(x.astype(np.float32)),
            "pitch": torch.from_numpy(pitch),
            "program": torch.as_tensor([self.programs[i] for i in inst]),
        }


class TorchV3Model:
    """A trained V3Net as a :class:`audiosym.families.base.LatentModel` (numpy in, numpy out)."""

    kind = "v3"

    def __init__(self, net: V3Net, cfg: Config, *, train_soundfont: str) -> None:
        self.torch_model = net
        self.config = cfg
        self.features = FeatureConfig()
        self.context_frames = cfg.context_frames
        self.metadata = {
            "method": "v3",
            "train_soundfont": train_soundfont,
            "test_soundfont": cfg.test_soundfont,
            "train_programs": [int(p) for p in cfg.train_programs],
            "heldout_programs": [int(p) for p in cfg.heldout_programs],
            "pitch_limits": [int(p) for p in cfg.pitch_limits],
            "velocities": [int(v) for v in cfg.velocities],
            "note_seconds": cfg.note_seconds,
            "sustain_start_frame": cfg.sustain_start_frame,
            "n_atoms": cfg.n_atoms,
        }
        self._encoder, self._decoder = net.export_modules()

    def _device(self) -> torch.device:
        return next(self.torch_model.parameters()).device

    def encode(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim != 3 or frames.shape[1] < self.context_frames:
            raise ParameterError(
                f"frames has shape {frames.shape}; expected [N, T >= {self.context_frames}, {self.features.n_bins}]"
            )
        was = self.torch_model.training
        self.torch_model.eval()
        with torch.no_grad():
            out = self._encoder(torch.from_numpy(frames).to(self._device()))
        self.torch_model.train(was)
        names = ("content", "code", "content_q", "style")
        return {k: v.float().cpu().numpy() if k != "code" else v.cpu().numpy().astype(np.int64)
                for k, v in zip(names, out)}

    def codebook(self) -> np.ndarray:
        """``[K, Dc]`` float32: the atoms, what ``content_q`` is where ``code == k`` (export calibrates with it)."""
        return self.torch_model.codebook.atoms.detach().float().cpu().numpy()

    def decode(self, *, content_q: np.ndarray, style: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            dev = self._device()
            y = self._decoder(torch.as_tensor(content_q, dtype=torch.float32, device=dev),
                              torch.as_tensor(style, dtype=torch.float32, device=dev))
        return y.float().cpu().numpy()


def _train_soundfont(cfg: Config) -> str:
    return find_soundfont(cfg.soundfont) if cfg.soundfont else default_train_soundfont()


def build_task(cfg: Config, *, device: torch.device, progress: bool) -> Task:
    from audiosym.eval.v3 import evaluate_v3, prepare_eval

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

    def evaluate(m: torch.nn.Module) -> dict[str, float]:
        assert isinstance(m, V3Loss)
        metrics = evaluate_v3(TorchV3Model(m.net, cfg, train_soundfont=sf), data=data)
        return {k: v for k, v in metrics.items() if isinstance(v, float)}

    return Task(model=model, sample=sampler, evaluate=evaluate)


def config_from_record(record: dict[str, Any]) -> Config:
    data = {k: v for k, v in record.items() if k != "name"}
    return from_dict(Config, data, where="Config")


def load_latent_model(state: dict[str, Any]) -> TorchV3Model:
    """The model of a V3 checkpoint (``state`` from train.core.trainer.load_checkpoint)."""
    cfg = config_from_record(state["config"])
    net = build_net(cfg)
    weights = {k[len("net."):]: v for k, v in state["model"].items() if k.startswith("net.")}
    net.load_state_dict(weights)
    net.eval()
    return TorchV3Model(net, cfg, train_soundfont=_train_soundfont(cfg))


def describe(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
