"""SQL persistence only: the prediction log (and, later, labels, monitoring history, the model registry)."""
