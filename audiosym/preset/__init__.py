"""Preset files (``.asym``): the file format and its schema, and presets played by onnxruntime."""
