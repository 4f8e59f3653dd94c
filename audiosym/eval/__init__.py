"""Held-out evaluation of a trained run or a preset, one module per model family."""
