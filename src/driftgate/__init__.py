"""driftgate: quality gates for ML pipelines."""

__version__ = "0.1.0"
