"""SPS training: networks, the method (data, loss, evaluation hooks), ONNX export wrappers."""
