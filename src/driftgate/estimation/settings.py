"""The settings of a label-free estimate: every threshold, with its default and why.

They live in params.yaml under ``monitoring.estimation`` (the class is defined with the other
sections in driftgate.config); the defaults are the values docs/estimation.md measured.
"""

from driftgate.config import EstimationSettings

__all__ = ["EstimationSettings"]
