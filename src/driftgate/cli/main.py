"""The `driftgate` command line: one command per pipeline stage, one module per command group.

Exit codes: 0 success / all gates pass, 1 a gate failed, 2 bad input or usage.
"""

from driftgate.cli import drift, monitor, pipeline, report, retraining, serve, simulate  # noqa: F401  (each module registers its commands)
from driftgate.cli.common import app

__all__ = ["app"]
