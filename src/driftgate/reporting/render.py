"""The one renderer: gate rows, drift rows and numbers, the same in the terminal, gate.md,
drift.md, the CI report, the alert email and the demo.

Every table of gates or drift columns anywhere in driftgate is built from `gate_rows` or
`drift_rows`, so a rule reads the same wherever it is shown (KS drifts at `p <= 0.05`, chi-square
at `p < 0.05`, distances at `>= 0.1`).
"""

from __future__ import annotations

import math

from driftgate.results import ColumnDrift, DriftResult, GateResult, GateVerdicts, MonitorPass

GATE_HEADERS = ["gate", "value", "threshold", "status", "what to look at"]
DRIFT_HEADERS = ["column", "type", "test", "score", "drift if", "drifted", "notes"]


def number(value: float | None) -> str:
    """A gate's value or threshold: 4 significant digits; "missing" for None or NaN."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "missing"
    return f"{value:.4g}"


def score(value: float | None) -> str:
    """A drift score or p-value: 3 significant digits, scientific below 0.001; "n/a" when untested."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def share(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.2f}"


# --------------------------------------------------------------------------- gates


def gate_threshold(gate: GateResult) -> str:
    return f"{gate.op} {number(gate.threshold)}" if gate.threshold is not None else gate.op


def gate_rows(verdicts: GateVerdicts, markup: bool = False) -> list[list[str]]:
    """One row per gate (GATE_HEADERS); `markup` bolds FAIL for Markdown."""
    def status(gate: GateResult) -> str:
        return f"**{gate.status}**" if markup and gate.status == "FAIL" else gate.status

    return [[g.gate, number(g.value), gate_threshold(g), status(g), g.detail] for g in verdicts.gates]


def gate_headline(verdicts: GateVerdicts, names: bool = True) -> str:
    """One sentence: all passed, which failed (`names`), or that the verdicts are missing."""
    total = len(verdicts.gates)
    if not total:
        return "The gate verdicts are missing: the gate job did not get to write them. Treat this run as failed."
    failed = verdicts.failed
    skipped = [g for g in verdicts.gates if g.status == "SKIP"]
    skip_note = f" ({len(skipped)} skipped: {', '.join(g.gate for g in skipped)})" if skipped else ""
    if failed:
        which = f": {', '.join(g.gate for g in failed)}" if names else ""
        return f"{len(failed)} of {total} gates failed{which}.{skip_note}"
    if not verdicts.passed:  # nothing ran: every gate skipped
        return f"No gate could be computed{skip_note}: treat this run as failed."
    return f"All {total - len(skipped)} gates passed.{skip_note}"


def gate_markdown(verdicts: GateVerdicts) -> str:
    from tabulate import tabulate

    body = tabulate(gate_rows(verdicts), headers=GATE_HEADERS, tablefmt="github", disable_numparse=True)
    return f"**{gate_headline(verdicts)}**\n\n{body}\n"


# --------------------------------------------------------------------------- drift


def drift_notes(col: ColumnDrift) -> str:
    notes = []
    if col.ignored:
        notes.append("ignored (drift.ignore): not in the share")
    if col.p_value is not None:
        notes.append(f"p = {col.p_value:.2g}")
    if col.new_categories:
        total = max(col.new_category_count, len(col.new_categories))
        notes.append("new: " + ", ".join(col.new_categories[:5]) + (f" and {total - 5} more" if total > 5 else ""))
    if col.out_of_range_share >= 0.001:
        notes.append(f"{col.out_of_range_share:.1%} outside the reference range")
    if col.score_error_bound:
        notes.append(f"score within +-{col.score_error_bound:.1e} (chunked)")
    change = col.current_missing_share - col.reference_missing_share
    if abs(change) >= 0.01:
        notes.append(f"missing {col.reference_missing_share:.1%} -> {col.current_missing_share:.1%}")
    return "; ".join(notes)


def drift_rows(result: DriftResult, limit: int | None = None, markup: bool = True) -> list[list[str]]:
    """One row per column, most drifted first (DRIFT_HEADERS)."""
    yes = "**yes**" if markup else "yes"
    return [[col.column, col.type, col.test, score(col.score), col.rule, yes if col.drift else "no", drift_notes(col)]
            for col in result.ranked(limit)]


def drift_headline(result: DriftResult) -> str:
    verdict = "**Dataset drift detected**" if result.dataset_drift else "No dataset drift"
    ignored = f"; {len(result.ignored_columns)} ignored" if result.ignored_columns else ""
    return (f"{verdict}: {result.n_drifted} of {result.n_columns} columns drifted{ignored} "
            f"(share {share(result.drift_share)}, dataset drift at >= {result.threshold:g}).")


def drift_markdown(result: DriftResult, plot: str | None = None) -> str:
    """drift.md: the dataset verdict, how it was computed, then one row per column."""
    from tabulate import tabulate

    rows = lambda n: "?" if n is None else f"{n:,}"  # noqa: E731
    lines = [f"# Drift: {result.reference_window} vs {result.current_window}", "", drift_headline(result),
             f"Reference rows: {rows(result.reference_rows)}; current rows: {rows(result.current_rows)}."]
    if result.mode == "calibrated":
        lines.append(f"Calibrated mode: p-values from {result.draws} reference-vs-reference resamples, "
                     f"{result.correction} correction at alpha {result.alpha:g}, categories under "
                     f"{result.pool_below:.1%} of the reference pooled.")
    lines += [f"> Note: {warning}." for warning in result.warnings]
    lines += ["", tabulate(drift_rows(result), headers=DRIFT_HEADERS, tablefmt="github", disable_numparse=True), ""]
    if plot:
        lines += [f"![Reference vs current for the most drifted columns]({plot})", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- monitoring

LEVEL_MARK = {"ok": "OK", "warning": "WARNING", "critical": "CRITICAL"}


def f1_text(metrics: dict, estimate_reason: str | None = None) -> list[str]:
    """The pass's F1 lines: realized (with its label count) and the label-free estimate or why there is none."""
    lines = []
    labelled = int(metrics.get("labelled_rows") or 0)
    if metrics.get("realized_f1") is not None:
        lines.append(f"Realized F1 {metrics['realized_f1']:.3f} on {labelled:,} labelled predictions "
                     f"(precision {score(metrics.get('realized_precision'))}, recall {score(metrics.get('realized_recall'))}).")
    else:
        lines.append(f"Realized F1: not yet ({labelled:,} labels in).")
    if metrics.get("estimated_f1") is not None:
        lines.append(f"Estimated F1 {metrics['estimated_f1']:.3f} [{metrics['estimated_lower']:.3f}, {metrics['estimated_upper']:.3f}] "
                     "without labels (it never gates on its own).")
    elif estimate_reason:
        lines.append(f"Estimated F1: none ({estimate_reason}).")
    return lines


def pass_markdown(result: MonitorPass, title: str = "") -> str:
    """A pass as Markdown: the level, the window, drift, F1, the alert events and the drift table."""
    from tabulate import tabulate

    heading = f"# Monitoring pass {result.pass_id}{f': {title}' if title else ''}: {LEVEL_MARK[result.level]}"
    lines = [heading, "", f"Window: {result.reason}." + (f" Model {result.model_version}." if result.model_version else "")]
    if result.status == "skipped":
        return "\n".join([*lines, "", "Nothing was judged.", ""])
    if result.drift is not None:
        lines += ["", drift_headline(result.drift)]
    lines += f1_text(result.metrics, result.estimate_reason)
    if result.alerts:
        rows = [[a.event, LEVEL_MARK[a.level], a.rule, a.message] for a in result.alerts]
        lines += ["", "## Alerts", "", tabulate(rows, headers=["event", "level", "rule", "what"], tablefmt="github",
                                                 disable_numparse=True)]
    if result.drift is not None:
        lines += ["", "## Drift by column", "", tabulate(drift_rows(result.drift), headers=DRIFT_HEADERS, tablefmt="github",
                                                          disable_numparse=True)]
    return "\n".join([*lines, ""])


def retrain_markdown(outcome, rows: str = "rows", title: str = "") -> str:
    """A retraining decision as Markdown (the CI merge request's body, `driftgate retrain --report`):
    the outcome and its reason, champion vs challenger on the same rows, the interval, the gates."""
    from tabulate import tabulate

    d = outcome.decision
    mark = "promoted ✅" if outcome.outcome == "promoted" else "rejected ❌"
    heading = f"# Retraining{f': {title}' if title else ''}: {mark}"
    required = (f"{d.required:.3f} ({d.margin:.1%} of the champion's F1)" if d.margin_kind == "relative"
                else f"{d.required:.3f} (absolute)")
    recipes = d.champion_sd is not None

    def f1(value: float | None) -> str:  # as the reason writes them
        return "n/a" if value is None else f"{value:.3f}"

    table = [["champion", f"`{outcome.champion[:12]}`", outcome.champion_window or "(not on its card)", f1(d.champion_f1)],
             ["challenger", f"`{outcome.challenger[:12]}`", outcome.training_window, f1(d.challenger_f1)]]
    headers = ["", "model", "trained on", f"F1 on {outcome.evaluation_window}"]
    if recipes:  # the recipes' means decide; the models' own F1s beside them
        headers = [*headers[:3], f"mean F1 of its fits on {outcome.evaluation_window}", "sd", "fits", "the model's own F1"]
        table[0] += [f"{d.champion_sd:.4f}", str(d.champion_fits), f1(d.champion_model_f1)]
        table[1] += [f"{d.challenger_sd:.4f}", str(d.challenger_fits), f1(d.challenger_model_f1)]
    noise = f", and the noise of the two means: each model and its recipe refitted on resampled {rows}" if recipes else ""
    lines = [heading, "", d.reason[0].upper() + d.reason[1:] + ".", "",
             f"Both models scored on the same {d.rows:,} {rows} of {outcome.evaluation_window}, which neither trained on "
             f"(decision {outcome.decision_id}).", "",
             tabulate(table, headers=headers, tablefmt="github", disable_numparse=True), "",
             f"- Difference (challenger - champion): **{d.difference:+.3f}**; required: {required}",
             f"- One-sided {d.confidence:.0%} lower bound: **{d.lower:+.3f}** (paired bootstrap over the same {rows}{noise})",
             "", "## The challenger's gates", "", gate_markdown(outcome.gates)]
    return "\n".join([*lines, ""])
