"""Readable summaries (Markdown) of the pipeline's JSON outputs."""

from __future__ import annotations

import math

from tabulate import tabulate

from driftgate.drift import P_VALUE_TESTS, ranked


def _score(value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def drift_markdown(drift: dict) -> str:
    """The drift summary: dataset verdict, then one row per column, most drifted first."""
    verdict = "**Dataset drift detected**" if drift["dataset_drift"] else "No dataset drift"
    lines = [
        f"# Drift: {drift.get('reference_window', 'reference')} vs {drift.get('current_window', 'current')}",
        "",
        f"{verdict}: {drift['n_drifted']} of {drift['n_columns']} columns drifted "
        f"(share {drift['drift_share']:.2f}, dataset drift at >= {drift['threshold']:g}).",
        f"Reference rows: {drift.get('reference_rows', '?'):,}; current rows: {drift.get('current_rows', '?'):,}.",
        "",
    ]
    table = []
    for name, col in ranked(drift["columns"]):
        direction = "p <" if col["test"] in P_VALUE_TESTS else ">="
        notes = []
        if col.get("new_categories"):
            notes.append("new: " + ", ".join(col["new_categories"][:5]))
        change = col["current_missing_share"] - col["reference_missing_share"]
        if abs(change) >= 0.01:
            notes.append(f"missing {col['reference_missing_share']:.1%} -> {col['current_missing_share']:.1%}")
        table.append([name, col["type"], col["test"], _score(col["score"]), f"{direction} {col['threshold']:g}",
                      "**yes**" if col["drift"] else "no", "; ".join(notes)])
    lines.append(tabulate(table, headers=["column", "type", "test", "score", "drift if", "drifted", "notes"], tablefmt="github"))
    lines.append("")
    return "\n".join(lines)
