"""Training infrastructure shared by every model family: strict configs, the trainer, runs."""
