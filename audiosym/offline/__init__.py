"""The engine run offline: whole signals, batches of files, the input's own notes, the demo."""
