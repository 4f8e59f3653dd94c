"""Where tensors live: the one way numpy data enters a torch model, and the way results leave it.

A model trained on a GPU stays there for its periodic evaluation, so every numpy -> torch entry
point in train/ goes through :func:`to_model`, which puts the tensor on the device of the module
that will read it (a CPU tensor fed to a CUDA model fails with "Expected all tensors to be on the
same device"). :func:`to_numpy` brings a result back to host memory.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn


def model_device(module: nn.Module) -> torch.device:
    """The device of ``module``'s first parameter (or buffer); cpu for a module with neither."""
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        return tensor.device
    return torch.device("cpu")


def to_model(x: np.ndarray | torch.Tensor, module: nn.Module, *,
             dtype: torch.dtype | None = torch.float32) -> torch.Tensor:
    """``x`` as a tensor on ``module``'s device, as ``dtype`` (``None``: ``x``'s own dtype).

    On the CPU a numpy array of that dtype is wrapped, not copied.
    """
    return torch.as_tensor(x, dtype=dtype, device=model_device(module))


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """``t`` in host memory; floating tensors as float32 (bfloat16, from autocast, has no numpy
    dtype), integer tensors keep theirs."""
    t = t.detach().cpu()
    return (t.float() if t.is_floating_point() else t).numpy()
