"""Readable summaries (Markdown) of the pipeline's JSON outputs."""

from __future__ import annotations

import math
from pathlib import Path

from tabulate import tabulate

from driftgate.drift import P_VALUE_TESTS, ranked


def _score(value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def drift_markdown(drift: dict, plot: str | None = None) -> str:
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
    if drift.get("mode") == "calibrated":
        lines[-1:-1] = [f"Calibrated mode: p-values from {drift['draws']} reference-vs-reference resamples, "
                        f"{drift['correction']} correction at alpha {drift['alpha']:g}, categories under "
                        f"{drift['pool_below']:.1%} of the reference pooled."]
    table = []
    for name, col in ranked(drift["columns"]):
        notes = []
        direction = "p <" if col["test"] in P_VALUE_TESTS else ">="
        if col.get("p_value") is not None:
            direction = f"{drift.get('correction', '')} p at"
            notes.append(f"p = {col['p_value']:.2g}")
        if col.get("new_categories"):
            notes.append("new: " + ", ".join(col["new_categories"][:5]))
        if col.get("out_of_range_share", 0) >= 0.001:
            notes.append(f"{col['out_of_range_share']:.1%} outside the reference range")
        if col.get("score_error_bound"):
            notes.append(f"score within +-{col['score_error_bound']:.1e} (chunked)")
        change = col["current_missing_share"] - col["reference_missing_share"]
        if abs(change) >= 0.01:
            notes.append(f"missing {col['reference_missing_share']:.1%} -> {col['current_missing_share']:.1%}")
        table.append([name, col["type"], col["test"], _score(col["score"]), f"{direction} {col['threshold']:g}",
                      "**yes**" if col["drift"] else "no", "; ".join(notes)])
    lines.append(tabulate(table, headers=["column", "type", "test", "score", "drift if", "drifted", "notes"], tablefmt="github"))
    lines.append("")
    if plot:
        lines += [f"![Reference vs current for the most drifted columns]({plot})", ""]
    return "\n".join(lines)


def drift_plot(drift: dict, reference, current, target: Path, top: int = 6) -> Path | None:
    """Reference vs current distributions of the `top` most drifted columns, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    from driftgate.io import atomic_path

    columns = [name for name, _ in ranked(drift["columns"], top)]
    if not columns:
        return None
    ncols = min(3, len(columns))
    nrows = -(-len(columns) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.2 * nrows), squeeze=False)
    for ax, name in zip(axes.flat, columns):
        col = drift["columns"][name]
        ref, cur = reference[name], current[name]
        if col["type"] == "numeric":
            ref = pd.to_numeric(ref, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            cur = pd.to_numeric(cur, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
            both = np.concatenate([ref, cur])
            if both.size:
                low, high = np.percentile(both, [0.5, 99.5])
                edges = np.linspace(low, high if high > low else low + 1, 41)
                ax.hist(ref, edges, density=True, alpha=0.55, label="reference")
                ax.hist(cur, edges, density=True, alpha=0.55, label="current")
        else:
            shares = pd.DataFrame({"reference": ref.value_counts(normalize=True),
                                   "current": cur.value_counts(normalize=True)}).fillna(0)
            shares = shares.loc[shares.max(axis=1).sort_values(ascending=False).index[:12]]
            positions = np.arange(len(shares))
            ax.bar(positions - 0.2, shares["reference"], 0.4, label="reference")
            ax.bar(positions + 0.2, shares["current"], 0.4, label="current")
            ax.set_xticks(positions, [str(v)[:8] for v in shares.index], rotation=60, fontsize=7)
        mark = "DRIFT" if col["drift"] else "no drift"
        ax.set_title(f"{name}: {col['test']} {_score(col['score'])} ({mark})", fontsize=9,
                     color="firebrick" if col["drift"] else "black")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(columns):]:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return target
