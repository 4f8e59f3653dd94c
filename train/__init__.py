"""Training (torch): SPS and V3 models, the shared trainer, evaluation hooks. Needs ``audiosym[train]``."""
