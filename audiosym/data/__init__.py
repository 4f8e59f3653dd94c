"""Training and evaluation data: soundfonts, instruments and note plans, rendered note sets."""
