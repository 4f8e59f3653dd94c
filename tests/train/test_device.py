"""Tensors reach a model on the model's device (issue #17: `train sps --device cuda` crashed at
its first evaluation). No GPU needed: a model on torch's ``meta`` device (shapes, no data) stands
in for one on a GPU, since torch refuses to mix a CPU tensor into a meta model's arithmetic just
as it refuses a CUDA one."""

from __future__ import annotations

import dataclasses
import warnings
from contextlib import contextmanager

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from train.core.device import model_device, to_model, to_numpy  # noqa: E402
from train.core.trainer import Task, Trainer, TrainSettings  # noqa: E402

META = torch.device("meta")


class _Reached(Exception):
    """Raised by the hook once the network has its input: a meta model has no values to return."""


@contextmanager
def _first_input_devices():
    """The devices of the tensors the first module called receives (then the call stops)."""
    seen: list[set] = []

    def hook(module, args):
        seen.append({a.device for a in args if isinstance(a, torch.Tensor)})
        raise _Reached

    handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def test_to_model_puts_numpy_on_the_modules_device():
    module = torch.nn.Linear(3, 2).to(META)
    assert model_device(module) == META
    x = to_model(np.zeros((4, 3)), module)
    assert x.device == META and x.dtype == torch.float32
    assert to_model(np.arange(3), module, dtype=None).dtype == torch.int64
    frames = np.ones((2, 3), np.float32)
    on_cpu = to_model(frames, torch.nn.Linear(3, 2))
    assert on_cpu.device.type == "cpu" and np.shares_memory(on_cpu.numpy(), frames)  # wrapped, not copied
    assert model_device(torch.nn.ReLU()).type == "cpu"  # no parameters: the host


def test_to_numpy_brings_autocast_results_home_as_float32():
    assert to_numpy(torch.ones(2, dtype=torch.bfloat16)).dtype == np.float32
    assert to_numpy(torch.arange(3)).dtype == np.int64


def _latent(kind: str):
    """An untrained model of the real architecture, loaded as a run's LatentModel would be."""
    if kind == "sps":
        from train.sps import method

        cfg = method.Config(soundfont="TimGM6mb", programs=(73, 71), encoder_hidden=16, decoder_hidden=16,
                            prior_hidden=4, timbre_dim=4)
        state = method.SPSModel(cfg, cfg.features.n_bins).state_dict()
        latents = {"z_pitch": np.zeros((1, 2, 1)), "z_timbre": np.zeros((1, 2, 4))}
    else:
        from train.v3 import method  # type: ignore[no-redef]

        cfg = method.Config(soundfont="TimGM6mb", train_programs=(73, 71), heldout_programs=(40,),
                            pitch_limits=(60, 71), velocities=(100,), hidden=16, content_dim=4, style_dim=4)
        state = {f"net.{k}": v for k, v in method.build_net(cfg).state_dict().items()}
        latents = {"content_q": np.zeros((1, 2, 4)), "style": np.zeros((1, 2, 4))}
    model = method.load_latent_model({"method": kind, "config": dataclasses.asdict(cfg), "model": state})
    return model, latents


@pytest.mark.parametrize("kind", ["sps", "v3"])
def test_encode_and_decode_feed_the_network_on_its_device(kind):
    """The trainer evaluates the model where it trains: encode/decode take numpy and must hand
    the network tensors on its device (the old SPS encode handed a CUDA model CPU frames)."""
    model, latents = _latent(kind)
    model.torch_model.to(META)
    frames = np.full((1, model.context_frames + 1, model.features.n_bins), -5.0, np.float32)
    with _first_input_devices() as seen, pytest.raises(_Reached):
        model.encode(frames)
    with _first_input_devices() as seen_decode, pytest.raises(_Reached):
        model.decode(**latents)
    assert seen == [{META}] and seen_decode == [{META}]


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 1)

    def forward(self, batch):
        loss = (self.lin(batch["x"]) ** 2).mean()
        return loss, {}


def _task() -> Task:
    return Task(model=_Tiny(), sample=lambda rng, step: {"x": torch.from_numpy(rng.normal(size=(4, 3)).astype(np.float32))})


def test_resume_onto_another_device(tmp_path):
    """A checkpoint resumes on a device other than the one that wrote it: the weights and the
    optimizer state go to the model's device, the CPU RNG state stays on the host."""
    settings = TrainSettings(steps=2, log_every=1, eval_every=0, ckpt_every=2)
    kw = dict(config={"steps": 2}, method="tiny", progress=False)
    Trainer(_task(), settings, tmp_path, device=torch.device("cpu"), **kw).fit()
    elsewhere = Trainer(_task(), settings, tmp_path, device=META, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # loading values into a meta model copies nothing, and says so
        assert elsewhere.resume()
    assert elsewhere.step == 2 and model_device(elsewhere.model) == META


@pytest.mark.parametrize("kind", ["sps", "v3"])
def test_export_reads_the_latent_layout_of_a_model_on_another_device(kind):
    """Export's layout probe feeds the encoder an example on the encoder's own device (it built
    that example on the CPU, which a GPU-resident run refuses, as a meta one does here)."""
    from export.onnx_graphs import latent_layout

    model, _ = _latent(kind)
    model.torch_model.to(META)
    with _first_input_devices() as seen, pytest.raises(_Reached):
        latent_layout(model)
    assert seen == [{META}]
