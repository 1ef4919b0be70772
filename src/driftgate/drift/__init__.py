"""Drift: one entry, `detect(reference, current, settings, engine)`, for every engine and mode.

The CLI, the demo's Batch tab, CI and the monitor all call it, so they reach the same verdicts
on the same data.
"""

from driftgate.drift.detect import ENGINES, detect

__all__ = ["ENGINES", "detect"]
