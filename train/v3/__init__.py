"""V3 training: the network and the method (data, loss, evaluation hooks)."""
