"""Signal processing shared by training and the runtime: features, pitch conversions, resampling, metrics."""
