"""The Gradio demo, mounted on the serving API: Predict, Batch, Model and Monitoring tabs.

`create_app()` returns one FastAPI app with the REST routes (/predict, /health, /metrics, /docs)
and the UI at /. `app.py`, `driftgate serve` and `make demo` all start it.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import ValidationError

from driftgate.config import DriftFiles, Params, Paths, RunLayout, ValidationConfig, load_params
from driftgate.errors import EXIT_BAD_INPUT, ConfigError, DataError, DriftgateError
from driftgate.serving.api import create_api
from driftgate.serving.metrics import Metrics
from driftgate.serving.model import ServedModel
from driftgate.serving.retraining_api import COMPARED, AliasRow, Comparison, Decision, Models, Retraining, Status, Version, comparison
from driftgate.serving.schema import readable_error
from driftgate.serving.service import Service
from driftgate.serving.uploads import read_batch
from driftgate.store.predictions import PredictionLog

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

DEFAULT_PORT = 7860
DRIFT_COLUMNS = ["column", "type", "test", "score", "drift if", "drifted"]  # the Batch tab's drift table (render.DRIFT_HEADERS)


# --------------------------------------------------------------------------- pure helpers


def number_info(name: str, info: dict, limits: ValidationConfig) -> str | None:
    """The hint under a number of the Predict form: the allowed range and the training range."""
    parts = []
    if name in limits.ranges:
        low, high = limits.ranges[name]
        parts.append(f"allowed {low:g} to {high:g}")
    if info:
        parts.append(f"training range {info.get('min')} to {info.get('max')}")
    return "; ".join(parts) or None


def refusal_markdown(exc: ValidationError) -> str:
    """Why the Predict form's values cannot be scored, one line per field."""
    errors = [readable_error(e) for e in exc.errors(include_url=False)]
    return "**Cannot predict:**\n\n" + "\n".join(f"- `{e['field']}`: {e['message']}" for e in errors)


def verdict_markdown(model: ServedModel, prediction: dict, request_id: str, warnings: list[dict]) -> str:
    """The Predict form's answer: the decision, the probability against the threshold, the model
    that scored it, and any warnings."""
    text = (f"**{prediction['decision']}**: probability of {model.positive} {prediction['probability']:.1%} against the "
            f"threshold {model.threshold:.0%} (model `{model.version}`, request `{request_id[:8]}`)")
    return text + "".join(f"\n\n- note: `{w['field']}`: {w['message']}" for w in warnings)


def empty_drift_table() -> pd.DataFrame:
    """The drift table before a batch is checked: its headers, no rows."""
    return pd.DataFrame(columns=DRIFT_COLUMNS)


def card_markdown(card: dict, metrics: dict | None, positive: str = "positive", rows: str = "rows") -> str:
    """The model card as Markdown; `positive` is what label 1 is called, `rows` what many rows are.
    Hashes and paths are shown whole, in code spans, so they can be copied and compared."""
    features = card.get("features", {})
    lines = [f"### Model `{str(card.get('model_sha256', '?'))[:12]}`", "",
             f"- **Model sha256:** `{card.get('model_sha256', '?')}`",
             f"- **Estimator:** {card.get('estimator')} (driftgate {card.get('driftgate_version')})",
             f"- **Trained on:** {card.get('train_window')} ({card.get('fit_rows', 0):,} {rows}, "
             f"{card.get('positive_share', 0):.1%} {positive})",
             f"- **Decision threshold:** {card.get('threshold')}",
             "- **Data:**", *[f"  - {key}: " + (f"`{value}`" if value is not None else "(not recorded)")
                              for key, value in (card.get("data") or {}).items()],
             f"- **Features:** {', '.join(features.get('numeric', []))}; {', '.join(features.get('categorical', []))}",
             f"- **Params:** `{json.dumps(card.get('params', {}))}`"]
    return "\n".join(lines + _metrics_table(metrics))


def _metrics_table(metrics: dict | None) -> list[str]:
    """metrics.json's holdout and current scores as Markdown table lines (n/a where a split has no labels)."""
    names = ("f1", "precision", "recall", "roc_auc", "pr_auc")
    rows = [(split, metrics[split]) for split in ("holdout", "current") if metrics and metrics.get(split)]
    if not rows:
        return []

    def shown(value) -> str:
        return f"{value:.3f}" if isinstance(value, (int, float)) else "n/a"

    return ["", "| split | window | F1 | precision | recall | ROC-AUC | PR-AUC |", "|---|---|---|---|---|---|---|",
            *[f"| {split} | {m.get('window', '')} | " + " | ".join(shown(m.get(name)) for name in names) + " |" for split, m in rows]]


def batch_history(reports: Path) -> pd.DataFrame:
    """F1 and drift share of the pipeline's current batch and of every checked batch."""
    rows = []
    runs = [("pipeline", RunLayout(reports))] + [(run.out.name, run) for run in RunLayout.checked_batches(reports)]
    sources = [(name, run.metrics, run.drift.json) for name, run in runs]
    for name, metrics_path, drift_path in sources:
        try:
            metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
            drift = json.loads(drift_path.read_text()) if drift_path.is_file() else {}
        except ValueError:
            continue
        current = metrics.get("current") or {}
        if current or drift:
            rows.append({"batch": current.get("window") or drift.get("current_window") or name, "f1": current.get("f1"),
                         "drift_share": drift.get("drift_share")})
    frame = pd.DataFrame(rows, columns=["batch", "f1", "drift_share"])
    return frame.drop_duplicates("batch").sort_values("batch").reset_index(drop=True)


def monitoring_figure(history: pd.DataFrame, log: pd.DataFrame, gates: dict, threshold: float | None = None,
                      positive: str = "positive"):
    """Before any monitoring pass: F1 and drift share of the checked batches (left); the logged
    probabilities of `positive` (right)."""
    from driftgate.reporting.plots import new_figure

    fig = new_figure(figsize=(11, 3.8))
    left, right = fig.subplots(1, 2)
    if len(history):
        x = np.arange(len(history))
        left.plot(x, history["f1"].astype(float), marker="o", label="F1")
        left.plot(x, history["drift_share"].astype(float), marker="s", label="drift share")
        if gates.get("f1_min") is not None:
            left.axhline(gates["f1_min"], color="C0", linestyle=":", label=f"F1 minimum {gates['f1_min']}")
        if gates.get("drift_share_max") is not None:
            left.axhline(gates["drift_share_max"], color="C1", linestyle=":", label=f"drift share maximum {gates['drift_share_max']}")
        left.set_xticks(x, history["batch"], rotation=30, fontsize=8)
        left.legend(fontsize=7)
    left.set_title("Production batches: F1 and drift share")
    positive_share = ""
    if len(log):
        scores = log["probability"].astype(float)
        right.hist(scores, bins=np.linspace(0, 1, 41), color="C2", alpha=0.8)
        if threshold is not None:
            right.axvline(threshold, color="black", linestyle="--", label=f"decision threshold {threshold:g}")
            positive_share = f", {float((scores >= threshold).mean()):.0%} predicted {positive}"
            right.legend(fontsize=7)
        right.set_xlabel(f"predicted probability of {positive}")
    right.set_title(f"Prediction log: {len(log):,} predictions{positive_share}")
    fig.tight_layout()
    return fig


# The Monitoring tab, from the monitoring history in the prediction log's database.
MONITOR_PASSES = 500  # the newest passes the tab draws and lists
MONITOR_ALERTS = 200  # the newest alert rows it lists
ALERT_COLUMNS = ["time", "event", "level", "rule", "message"]
NO_PASS_YET = "no monitoring pass yet: run `driftgate monitor --once` or start with --monitor-every"


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else ""


def _f1(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def alert_table(alerts: list[dict]) -> pd.DataFrame:
    """The alert timeline, newest first: one row per fired, renotified, escalated, eased or resolved alert."""
    rows = sorted(alerts, key=lambda a: a["id"], reverse=True)
    return pd.DataFrame([[_when(a["at"]), a["event"], a["level"], a["rule"], a["message"]] for a in rows], columns=ALERT_COLUMNS)


def pass_table(passes: list[dict], rows: str = "rows") -> pd.DataFrame:
    """Every pass, newest first: when, status, level, window size, drift share, F1 estimated (and its
    interval) and realized, and the reason (why a pass was skipped, what its window was)."""
    columns = ["pass", "finished", "status", "level", rows, "drift share", "estimated F1", "interval", "realized F1",
               f"labelled {rows}", "reason"]
    out = []
    for p in sorted(passes, key=lambda p: p["id"], reverse=True):
        judged = p["status"] == "done"
        interval = (f"{p['estimated_lower']:.3f} to {p['estimated_upper']:.3f}"
                    if p.get("estimated_lower") is not None and p.get("estimated_upper") is not None else "")
        estimate = _f1(p.get("estimated_f1")) if p.get("estimated_f1") is not None else ("abstained" if judged else "")
        out.append([p["id"], _when(p["finished_at"]), p["status"], p["level"] if judged else "", p["rows"],
                    "" if p.get("drift_share") is None else round(p["drift_share"], 3), estimate, interval,
                    "" if p.get("realized_f1") is None else round(p["realized_f1"], 3),
                    int(p.get("labelled_rows") or 0) if judged else "", p.get("reason") or ""])
    return pd.DataFrame(out, columns=columns)


def level_html(latest: dict | None, newest: dict | None, incidents: dict[str, dict], params: Params) -> str:
    """The current level (the latest judged pass's, as /metrics/latest gives it) in large type,
    with that pass's time, window and metrics, a newer skipped pass if any, and the open incidents."""
    from html import escape

    from driftgate.reporting.plots import LEVEL_COLOURS

    rows = params.project.rows
    if latest is None:
        text = NO_PASS_YET.replace("`driftgate monitor --once`", "<code>driftgate monitor --once</code>")
        if newest is not None:
            text = (f"no judged monitoring pass yet: the newest, #{newest['id']} at {_when(newest['finished_at'])}, was "
                    f"{escape(newest.get('reason') or 'skipped')}. Run <code>driftgate monitor --once</code> once more "
                    f"{escape(rows)} are logged, or start with --monitor-every")
        return (f"<div class='driftgate-level' style='border-left:8px solid #9e9e9e;padding:8px 14px'>"
                f"<div style='font-size:1.6em;font-weight:700;color:#757575'>level: none</div><p>{text}.</p></div>")
    level = latest["level"]
    colour = LEVEL_COLOURS.get(level, "#9e9e9e")
    estimate = (f"estimated F1 {_f1(latest['estimated_f1'])} (interval {_f1(latest.get('estimated_lower'))} to "
                f"{_f1(latest.get('estimated_upper'))})" if latest.get("estimated_f1") is not None
                else f"estimated F1: abstained ({escape(latest.get('estimate_reason') or 'no estimate')})")
    realized = (f"realized F1 {_f1(latest['realized_f1'])} on {int(latest.get('labelled_rows') or 0):,} labelled {escape(rows)}"
                if latest.get("realized_f1") is not None else "realized F1: no labels yet")
    share = "n/a" if latest.get("drift_share") is None else f"{latest['drift_share']:.3f}"
    window = (latest.get("reason") or "").removeprefix(f"{latest['rows']:,} {rows}: ")  # the reason opens with the count
    lines = [f"<div class='driftgate-level' style='border-left:8px solid {colour};padding:8px 14px'>",
             f"<div style='font-size:2.2em;font-weight:800;letter-spacing:0.04em;color:{colour}'>{level.upper()}</div>",
             f"<p><b>Latest pass #{latest['id']}</b>, finished {_when(latest['finished_at'])}: {latest['rows']:,} "
             f"{escape(rows)} ({escape(window)}). Model <code>{escape(latest['model_version'])}</code>.</p>",
             f"<p>Drift share {share} &middot; {estimate} &middot; {realized}</p>"]
    if newest is not None and newest["id"] != latest["id"]:
        lines.append(f"<p>Newer pass #{newest['id']}, {_when(newest['finished_at'])}: {escape(newest.get('reason') or newest['status'])}</p>")
    if incidents:
        lines.append(f"<p><b>Open incidents ({len(incidents)}):</b></p><ul>")
        for rule, row in sorted(incidents.items(), key=lambda item: item[1]["id"], reverse=True):
            mark = LEVEL_COLOURS.get(row["level"], "#9e9e9e")
            lines.append(f"<li><span style='color:{mark};font-weight:700'>{row['level']}</span> <code>{escape(rule)}</code>: "
                         f"{escape(row['message'])} (incident {row['incident']}, last {row['event']} {_when(row['at'])})</li>")
        lines.append("</ul>")
    else:
        lines.append("<p>No open incident.</p>")
    return "\n".join(lines) + "</div>"


def monitoring_state(store, params: Params, reports: Path, log: PredictionLog, threshold: float | None = None,
                     positive: str = "positive"):
    """What the Monitoring tab shows: (level HTML, figure, alert table, table of passes). With no
    monitoring pass in `store` yet, it says so, and the figure and table are the CI pipeline's
    checked batches and the prediction log's scores, as before the monitor existed."""
    from driftgate.reporting.plots import monitoring_plot

    passes = store.passes_list(limit=MONITOR_PASSES)
    if not passes:
        history = batch_history(reports)
        figure = monitoring_figure(history, log.frame(limit=50_000), params.gates.model_dump(), threshold, positive)
        return level_html(None, None, {}, params), figure, alert_table([]), history.round(4)
    latest = next((p for p in passes if p["status"] == "done"), None)
    figure = monitoring_plot(passes, params.monitoring.alerts, params.project.rows, params.monitoring.min_rows)
    return (level_html(latest, passes[0], store.open_incidents(), params), figure,
            alert_table(store.alerts_list(limit=MONITOR_ALERTS)), pass_table(passes, params.project.rows))


# The Model tab, from the model registry in the prediction log's database (what /models and /retraining/* read).
DECISIONS_SHOWN = 200  # the newest decisions the tab draws and lists
DECISION_COLUMNS = ["#", "when", "trigger", "outcome", "champion F1", "challenger F1", "difference", "lower bound",
                    "reason"]
ALIAS_COLUMNS = ["version", "from", "until", "reason"]
NO_DECISION_YET = "no retraining has been decided yet: press Retrain, POST /retrain, or run `driftgate retrain`"
OUTCOME_COLOURS = {"promoted": "#2e7d32", "rejected": "#ef6c00", "rolled_back": "#1565c0", "failed": "#c62828"}


def _signed(value) -> str:
    return "n/a" if value is None else f"{value:+.3f}"


def _sha(value: str | None) -> str:
    return str(value)[:12] if value else "?"


def models_view(registry, serving: str) -> Models:
    """What GET /models answers: the champion, the model serving now, the versions and the alias history."""
    champion = registry.champion()
    versions = [Version(version=row["sha256"][:12], champion=row["sha256"] == champion, **row) for row in registry.versions()]
    return Models(champion=champion, serving=serving, versions=versions, aliases=[AliasRow(**row) for row in registry.alias_history()],
                  message=None if versions else "the registry is empty: the model the server started with serves")


def champion_markdown(models: Models, refused: str | None = None, rows: str = "rows") -> str:
    """The registry's champion (version, since when, training window) and the model serving now,
    which differs from the champion only while it loads (or when it was refused)."""
    if models.champion is None:
        return (f"### Champion: none yet\n\nThe model registry is empty: the model the server started with serves, "
                f"`{models.serving}`. The first retraining registers it as the first champion.")
    version = next((v for v in models.versions if v.sha256 == models.champion), None)
    since = next((a.since for a in reversed(models.aliases) if a.sha256 == models.champion and a.until is None), None)
    lines = [f"### Champion `{models.champion[:12]}`", "",
             f"- **Champion since:** {_when(since)}",
             f"- **Trained on:** {version.train_window if version and version.train_window else '(not recorded)'}"
             + (f" ({version.fit_rows:,} {rows})" if version and version.fit_rows else "")]
    if models.serving == models.champion[:12]:
        lines.append(f"- **Serving now:** `{models.serving}`, the champion")
    elif refused == models.champion:
        lines.append(f"- **Serving now:** `{models.serving}`: the champion was refused when it was loaded (the server's log says "
                     "why), so the model before it keeps serving")
    else:
        lines.append(f"- **Serving now:** `{models.serving}`: the server is swapping to the champion (within a second)")
    return "\n".join(lines)


def _compared_lines(d: Decision | Comparison, rows: str, details: dict | None) -> list[str]:
    """A comparison in words: the F1s on the same rows, the difference and its bound, the margin, the noise."""
    from html import escape

    champion_f1 = d.champion.f1 if isinstance(d, Comparison) else d.champion_f1
    challenger_f1 = d.challenger.f1 if isinstance(d, Comparison) else d.challenger_f1
    confidence = f"{d.confidence:.0%}" if d.confidence is not None else "the"
    lines = [f"<p>Champion F1 <b>{_f1(champion_f1)}</b> &rarr; challenger F1 <b>{_f1(challenger_f1)}</b> on "
             f"{d.rows or 0:,} {escape(rows)} of the evaluation window {escape(d.evaluation_window or '?')}"
             + (f" (the challenger trained on {escape(d.training_window)})" if d.training_window else "") + ".</p>",
             f"<p>Difference <b>{_signed(d.difference)}</b>, one-sided {confidence} lower bound <b>{_signed(d.lower)}</b>; "
             f"margin {d.margin if d.margin is not None else 'n/a'} ({d.margin_kind or 'n/a'})"]
    details = details or {}
    if d.margin_kind == "relative" and details.get("required") is not None:
        lines[-1] += f", i.e. a required difference of {details['required']:.3f}"
    lines[-1] += ".</p>"
    if details.get("champion_sd") is not None:
        fits = (1 + len(details.get("champion_refit_f1") or []), 1 + len(details.get("challenger_refit_f1") or []))
        lines.append(f"<p>The F1s are the means over each recipe's fits ({fits[0]} and {fits[1]}: the model and its recipe "
                     f"refitted on resampled {escape(rows)}; sd {details['champion_sd']:.4f} and {details['challenger_sd']:.4f}); "
                     f"the models' own F1s: {_f1(details.get('champion_model_f1'))} and {_f1(details.get('challenger_model_f1'))}. "
                     "The lower bound includes the noise of both means.</p>")
    return lines


def decision_html(decisions: list[Decision], details: dict[int, dict], last: Comparison, rows: str = "rows") -> str:
    """The newest decision as a short card: its outcome in large type, the comparison behind it, the
    reason in words; a rollback or failure also shows the last comparison."""
    from html import escape

    if not decisions:
        text = escape(NO_DECISION_YET).replace("`driftgate retrain`", "<code>driftgate retrain</code>")
        return (f"<div class='driftgate-decision' style='border-left:8px solid #9e9e9e;padding:8px 14px'>"
                f"<div style='font-size:1.4em;font-weight:700;color:#757575'>no decision</div><p>{text}.</p></div>")
    d = decisions[0]
    colour = OUTCOME_COLOURS.get(d.outcome, "#9e9e9e")
    lines = [f"<div class='driftgate-decision' style='border-left:8px solid {colour};padding:8px 14px'>",
             f"<div style='font-size:2em;font-weight:800;letter-spacing:0.04em;color:{colour}'>"
             f"{d.outcome.replace('_', ' ').upper()}</div>",
             f"<p><b>Decision #{d.id}</b>, {_when(d.at)} (trigger {escape(d.trigger)}): " + {
                 "rolled_back": f"<code>{_sha(d.challenger_sha256)}</code> restored in place of <code>{_sha(d.champion_sha256)}</code>",
                 "failed": f"the champion <code>{_sha(d.champion_sha256)}</code> kept serving"}.get(
                 d.outcome, f"challenger <code>{_sha(d.challenger_sha256)}</code> against champion <code>{_sha(d.champion_sha256)}</code>")
             + ".</p>"]
    if d.outcome in COMPARED:
        lines += _compared_lines(d, rows, details.get(d.id))
    lines.append(f"<p><b>Reason:</b> {escape(d.reason)}</p>")
    if d.outcome not in COMPARED and last.decision_id is not None:
        lines.append(f"<p><b>The last comparison</b>, decision #{last.decision_id} ({last.outcome}, {_when(last.at)}):</p>")
        lines += _compared_lines(last, rows, details.get(last.decision_id))
    return "\n".join(lines) + "</div>"


def decision_table(decisions: list[Decision]) -> pd.DataFrame:
    """The decisions, newest first: when, trigger, outcome, the F1s, the difference, its lower bound, the reason."""
    def shown(value):
        return "" if value is None else round(value, 4)

    return pd.DataFrame([[d.id, _when(d.at), d.trigger, d.outcome, shown(d.champion_f1), shown(d.challenger_f1), shown(d.difference),
                          shown(d.lower), d.reason] for d in sorted(decisions, key=lambda d: d.id, reverse=True)],
                        columns=DECISION_COLUMNS)


def alias_table(aliases: list[AliasRow]) -> pd.DataFrame:
    """The champion alias's history, newest first: which version served from when until when, and why."""
    rows = sorted(aliases, key=lambda a: a.since, reverse=True)
    return pd.DataFrame([[a.sha256[:12], _when(a.since), _when(a.until) if a.until else "(champion now)", a.reason] for a in rows],
                        columns=ALIAS_COLUMNS)


def decisions_figure(decisions: list[Decision], details: dict[int, dict]):
    """Each comparison, oldest first: the challenger's F1 minus the champion's with its one-sided
    interval [lower bound, difference], against the margin it had to reach and 0. None before the first."""
    from driftgate.reporting.plots import new_figure

    compared = sorted((d for d in decisions if d.outcome in COMPARED and d.difference is not None), key=lambda d: d.id)
    if not compared:
        return None
    fig = new_figure(figsize=(11, 3.6))
    ax = fig.subplots()
    x = np.arange(len(compared))
    ax.axhline(0, color="#616161", linewidth=1)
    required = [(details.get(d.id) or {}).get("required",
                                               d.margin * (d.champion_f1 or 0) if d.margin_kind == "relative" else d.margin)
                for d in compared]
    if len({r for r in required if r is not None}) == 1 and None not in required:
        ax.axhline(required[0], color="black", linestyle="--", linewidth=1,
                   label=f"margin {required[0]:.3f} ({compared[-1].margin_kind})")
    else:
        ax.hlines([np.nan if r is None else r for r in required], x - 0.3, x + 0.3, color="black", linestyles="--", linewidth=1,
                  label="margin (required difference)")
    for outcome in COMPARED:
        picked = [i for i, d in enumerate(compared) if d.outcome == outcome]
        if not picked:
            continue
        difference = np.array([compared[i].difference for i in picked])
        lower = np.array([compared[i].lower if compared[i].lower is not None else compared[i].difference for i in picked])
        ax.errorbar(x[picked], difference, yerr=[difference - lower, np.zeros(len(picked))], fmt="o", markersize=7, capsize=5,
                    color=OUTCOME_COLOURS[outcome], label=f"{outcome}: difference, down to its lower bound")
    confidence = compared[-1].confidence
    ax.set_xticks(x, [f"#{d.id}\n{d.at:%Y-%m-%d %H:%M}" for d in compared], fontsize=8)
    ax.set_xlim(-0.7, len(compared) - 0.3)
    ax.set_ylabel("challenger F1 - champion F1")
    ax.set_title("Retraining decisions: the challenger's F1 gain on the same rows, "
                 + (f"with its one-sided {confidence:.0%} lower bound" if confidence else "with its lower bound"))
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def retraining_line(status: Status) -> str:
    """Whether a retraining runs in this server, or how the last one it ran ended."""
    job = status.job
    if status.state == "running" and job is not None:
        return (f"**Retraining: running** (trigger {job.trigger}, started {_when(job.started_at)}). Refresh shows its decision "
                "when it is done.")
    if job is None:
        return "**Retraining: idle.**"
    ended = f"{job.outcome}" + (f", decision #{job.decision_id}" if job.decision_id is not None else "")
    if job.error:
        ended += f": {job.error}"
    return (f"**Retraining: idle.** The last one this server ran (trigger {job.trigger}, started {_when(job.started_at)}) "
            f"finished {_when(job.finished_at)}: {ended}.")


def model_state(service: Service, params: Params, worker: Retraining | None, limit: int = DECISIONS_SHOWN):
    """What the Model tab shows, read as the REST routes read it: (champion Markdown, retraining
    state, decision card HTML, figure, decision table, alias table). An empty registry says that no
    retraining was decided yet; a registry that cannot be read says so in the card, in one line."""
    from html import escape

    from sqlalchemy.exc import SQLAlchemyError

    from driftgate.store.predictions import _reason, _shown

    serving = service.model.version
    running = worker is not None and worker.running
    job = worker.job if worker is not None else None
    try:
        try:
            registry = service.registry()
            rows = registry.decisions(limit)
            models = models_view(registry, serving)
        except SQLAlchemyError as exc:  # a database that opens but whose registry tables cannot be read
            raise DataError(f"{_shown(service.log.url)}: the model registry", f"cannot be read ({_reason(exc)})",
                            "point serving.log at the database the registry was written to, or at a new file") from None
    except DriftgateError as exc:
        line = escape(one_line(exc))
        return (f"### Champion: unknown\n\nServing now: `{serving}`.",
                retraining_line(Status(state="running" if running else "idle", serving=serving, job=job)),
                f"<p><b>Cannot read the model registry.</b> {line}</p>", None, decision_table([]), alias_table([]))
    decisions = [Decision.model_validate(row) for row in rows]
    details = {row["id"]: row.get("details") or {} for row in rows}
    status = Status(state="running" if running else "idle", serving=serving, champion=models.champion, job=job,
                    last_decision=decisions[0] if decisions else None)
    return (champion_markdown(models, service.refused_champion, params.project.rows), retraining_line(status),
            decision_html(decisions, details, comparison(rows), params.project.rows), decisions_figure(decisions, details),
            decision_table(decisions), alias_table(models.aliases))


# --------------------------------------------------------------------------- the app


def create_app(params_path: Path | str = "params.yaml", model_path: Path | str | None = None, log: str | None = None,
               root: Path | str = ".", monitor_every: float | None = None, follow_champion: bool = True):
    """The FastAPI app with the Gradio UI mounted at /. Refuses to start (a DriftgateError naming
    the file or setting) on a bad params.yaml, a missing model or card, a model whose sha256 does
    not match its card, or a prediction log that is not a database. These are checked before
    Gradio is imported, so a refusal takes a second, not ten. With `monitor_every` (seconds),
    `serve()` runs a monitoring pass that often in the server process (app.state.monitor). With
    `follow_champion`, the served model follows the model registry's champion in the log's
    database: looked at once now, then every second by a thread (app.state.champion_watch, an
    Event that stops it); with an empty registry the model at `model_path` serves."""
    root = Path(root)
    params = load_params(root / params_path if not Path(params_path).is_absolute() else params_path)
    paths = Paths(root)
    model_file = Path(model_path) if model_path else paths.model
    model = ServedModel.load(model_file, params)
    log_target = log or params.serving.log
    log_setting = log_target if "://" in log_target else root / log_target
    service = Service(model, PredictionLog(log_setting), Metrics(paths.gate), params=params, baseline=paths.metrics,
                      paths=paths, model_path=model_file)
    app_watch = None
    if follow_champion:
        from driftgate.serving import swap

        swap.check(service)
        app_watch = swap.watch(service)
    import gradio as gr

    api = create_api(service, params.serving.max_upload_mb, params.serving.max_batch_rows)
    demo = build_demo(service, params, paths, api.state.retraining)  # the worker POST /retrain uses: one retraining at a time
    # Gradio refuses a larger upload before it reaches the disk; read_batch checks again.
    app = gr.mount_gradio_app(api, demo, path="/", footer_links=["api"],
                              max_file_size=int(params.serving.max_upload_mb * 1024 * 1024))
    app.state.monitor = None
    app.state.champion_watch = app_watch
    if monitor_every:
        from driftgate.monitoring.service import Monitor
        from driftgate.serving.service import PassLines

        app.state.monitor = (Monitor(params, service.log, service.store, model_file, paths, say=PassLines()), monitor_every)
    return app


def header_markdown(model: ServedModel) -> str:
    """The page's heading: the project's title and question, and the model serving now."""
    project = model.project
    return (f"# driftgate: {project.title}\n{project.question} "
            f"Model `{model.version}`, decision threshold {model.threshold}. Every prediction is logged.")


def build_demo(service: Service, params: Params, paths: Paths, retraining: Retraining | None = None):
    """The Gradio Blocks. Every event reads `service.model` when it runs, so after a swap to a new
    champion the Predict and Batch tabs score with it and say its version. `retraining` is the
    worker POST /retrain uses (create_app passes it), so the Model tab's Retrain button and the
    route never run two retrainings at once; without it the tab has one of its own."""
    import gradio as gr

    retraining = retraining or Retraining(service)
    model = service.model  # what the form is built from: its features and their training profile
    project, positive = model.project, model.positive
    profile = model.card.get("feature_profile", {})
    form_columns = list(model.schema.columns)

    def read_json(path: Path) -> dict | None:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    with gr.Blocks(title=f"driftgate: {project.title}") as demo:
        gr.Markdown(lambda: header_markdown(service.model), elem_id="header")  # read at each page load
        with gr.Tab("Predict"):
            inputs = []
            with gr.Row():
                with gr.Column():
                    for name in model.schema.numeric:
                        info = profile.get("numeric", {}).get(name, {})
                        inputs.append(gr.Number(value=info.get("median"), label=name, elem_id=f"input-{name}",
                                                info=number_info(name, info, model.limits)))
                with gr.Column():
                    for name in model.schema.categorical:
                        info = profile.get("categorical", {}).get(name, {})
                        # allow_custom_value: a value off the list gets our message (validation.allowed), not Gradio's error
                        inputs.append(gr.Dropdown(choices=info.get("categories", []), value=info.get("most_frequent"),
                                                  label=name, elem_id=f"input-{name}", allow_custom_value=True))
                    button = gr.Button("Predict", variant="primary", elem_id="predict-button")
                    probability = gr.Label(label=f"probability of {positive}", num_top_classes=2, elem_id="predict-label")
                    verdict = gr.Markdown(elem_id="predict-verdict")

            def predict_one(*values):
                served = service.model  # the model serving now: it parses, scores and is named in the verdict
                try:
                    records, warnings = served.parse(dict(zip(form_columns, values)))
                except ValidationError as exc:  # nothing is scored or logged
                    return None, refusal_markdown(exc)
                [prediction], request_id = service.predict_records(records, "ui", model=served)
                p = prediction["probability"]
                return ({served.class_names[1]: p, served.class_names[0]: 1 - p},
                        verdict_markdown(served, prediction, request_id, warnings))

            button.click(predict_one, inputs, [probability, verdict], api_name="predict")

        with gr.Tab("Batch"):
            gr.Markdown(f"Upload a CSV or Parquet file with the model's columns (up to {params.serving.max_upload_mb:g} MB): "
                        "you get the predictions as a file and a drift check of the batch against the training data.")
            # No file_types: Gradio would refuse other names itself, with a traceback in the server's log; read_batch says why.
            upload = gr.File(label="batch (CSV or Parquet)", elem_id="batch-upload")
            run = gr.Button("Score and check drift", variant="primary", elem_id="batch-button")
            batch_status = gr.Markdown(elem_id="batch-status")
            download = gr.File(label="predictions", elem_id="batch-download")
            drift_table = gr.Dataframe(empty_drift_table(), headers=DRIFT_COLUMNS, label="drift per column, most drifted first",
                                       elem_id="batch-drift")
            drift_image = gr.Image(label="reference vs batch", type="filepath", elem_id="batch-plot")

            def score_batch(file):
                from driftgate.io import write_text
                from driftgate.reporting.plots import drift_plot
                from driftgate.reporting.render import drift_headline, drift_rows, gate_headline
                from driftgate.serving.batch import batch_drift, reference_rows

                if file is None:
                    return "**Choose a file first.**", None, empty_drift_table(), None
                served = service.model
                path = Path(file if isinstance(file, str) else file.name)
                frame, refusal, warnings = read_batch(path, served, params.serving.max_upload_mb, params.serving.max_batch_rows)
                if frame is None:
                    return refusal, None, empty_drift_table(), None
                predictions, request_id = service.predict_frame(frame, "batch", model=served)
                out_dir = Path(tempfile.mkdtemp(prefix="driftgate-batch-"))
                scored = frame.assign(probability=[p["probability"] for p in predictions],
                                      label=[p["label"] for p in predictions], decision=[p["decision"] for p in predictions])
                result_path = out_dir / f"{path.stem}-predictions.csv"
                write_text(result_path, scored.to_csv(index=False))
                status = (f"Scored **{len(frame):,} {project.rows}** with model `{served.version}`: "
                          f"{sum(p['label'] for p in predictions):,} predicted {served.positive}.")
                if warnings:
                    status += "\n\n" + "\n".join(f"- note: {w}" for w in warnings) + "\n\n"
                table, image = None, None
                reference = reference_rows(paths, params)
                if reference is not None:
                    drift, gates, ref, cur = batch_drift(params, served, reference, frame, path.name)
                    status += (f"\n\nDrift: {drift_headline(drift)} Drift gate (gates.drift_share_max "
                               f"{params.gates.drift_share_max:g}, as in CI): {gate_headline(gates)}")
                    status += "".join(f"\n\n> Note: {warning}." for warning in drift.warnings)
                    table = pd.DataFrame([row[:6] for row in drift_rows(drift, markup=False)], columns=DRIFT_COLUMNS)
                    plot = drift_plot(drift, ref, cur, DriftFiles(out_dir).png)
                    image = str(plot) if plot else None
                else:
                    status += " (No reference data here, so no drift check: run the pipeline first.)"
                return status, str(result_path), empty_drift_table() if table is None else table, image

            def score_or_refuse(file):
                """score_batch, with a problem found past read_batch's checks said in the tab, not as an error."""
                try:
                    return score_batch(file)
                except DriftgateError as exc:
                    return f"**Cannot score this batch:** {exc.problem}", None, empty_drift_table(), None

            run.click(score_or_refuse, [upload], [batch_status, download, drift_table, drift_image], api_name="batch")

        with gr.Tab("Model"):
            settings = params.retraining
            window = f"{settings.window.label} (retraining.window)" if settings.window else "retraining.window (not set yet)"
            evaluation = (f"{settings.evaluation.label} (retraining.evaluation)" if settings.evaluation
                          else "retraining.evaluation (not set yet)")
            gr.Markdown(f"The model registry's champion, the model serving now and the retraining decisions (as GET /models and "
                        f"/retraining/history give them). **Retrain** trains a challenger on the {project.rows} of {window}, "
                        f"scores it and the champion on the same {project.rows} of {evaluation}, and promotes it only if its "
                        f"F1 beats the champion's by retraining.margin with a one-sided lower bound above 0 and it passes "
                        f"the CI gates; a promoted challenger serves at once.")
            with gr.Row():
                model_refresh = gr.Button("Refresh", elem_id="model-refresh")
                retrain_button = gr.Button("Retrain", variant="primary", elem_id="model-retrain")
            retrain_message = gr.Markdown(elem_id="model-retrain-message")
            retraining_state = gr.Markdown(elem_id="model-retraining")
            with gr.Row():
                with gr.Column(scale=2):
                    champion_info = gr.Markdown(elem_id="model-champion")
                with gr.Column(scale=3):
                    decision_card = gr.HTML(elem_id="model-decision")
            decision_plot = gr.Plot(elem_id="model-decision-plot", show_label=False)
            gr.Markdown("### Retraining decisions, newest first")
            decision_rows = gr.Dataframe(decision_table([]), headers=DECISION_COLUMNS, elem_id="model-decisions", wrap=True,
                                         column_widths=["4%", "15%", "7%", "8%", "7%", "8%", "7%", "7%", "37%"])
            gr.Markdown("### The champion's history, newest first")
            alias_rows = gr.Dataframe(alias_table([]), headers=ALIAS_COLUMNS, elem_id="model-aliases", wrap=True,
                                      column_widths=["12%", "18%", "18%", "52%"])
            started_sha = model.card.get("model_sha256")

            def served_card() -> str:
                """The card of the model serving now; the pipeline's scores (reports/metrics.json) only with the model they belong to."""
                served = service.model
                if served.card.get("model_sha256") == started_sha:
                    return card_markdown(served.card, read_json(paths.metrics), served.positive, project.rows)
                return (card_markdown(served.card, None, served.positive, project.rows)
                        + f"\n\n(The pipeline's test scores belong to the model the server started with, "
                        f"`{str(started_sha)[:12]}`; this one's F1 is in its decision above.)")

            card = gr.Markdown(served_card(), elem_id="model-card")
            confusion = paths.run.plots.confusion_png
            if confusion.is_file():
                gr.Image(str(confusion), label=f"confusion matrices of the pipeline's model {str(started_sha)[:12]}", show_label=True,
                         interactive=False)

            def model_tab():
                return (*model_state(service, params, retraining), served_card())

            def retrain_now():
                job = retraining.start("manual")
                if job is None:
                    running = retraining.job
                    message = ("**A retraining is running already**" + (f" (trigger {running.trigger}, started "
                                                                         f"{_when(running.started_at)})" if running else "")
                               + ": Refresh shows its decision when it is done.")
                else:
                    message = (f"**Retraining started** {_when(job.started_at)}: a challenger trained on {window}, it and the "
                               f"champion scored on {evaluation}. Refresh shows the decision when it is done.")
                return (message, *model_tab())

            def refreshed():
                """The tab read again; Retrain's answer kept while its retraining runs, then left to the state line."""
                return (gr.update() if retraining.running else "", *model_tab())

            model_outputs = [retrain_message, champion_info, retraining_state, decision_card, decision_plot, decision_rows, alias_rows,
                             card]
            model_refresh.click(refreshed, None, model_outputs, api_name="model")
            retrain_button.click(retrain_now, None, model_outputs, api_name="retrain")
            demo.load(refreshed, None, model_outputs)
            if hasattr(gr, "Timer"):  # as the Monitoring tab: refresh every 10 s while the page is open
                gr.Timer(10).tick(refreshed, None, model_outputs, show_progress="hidden")

        with gr.Tab("Monitoring"):
            gr.Markdown("The monitor's passes over the prediction log: the current level, drift share and F1 over time "
                        "against the alert limits (params.yaml `monitoring.alerts`), and the alert timeline. Before the "
                        f"first pass: the pipeline's checked batches (`make run CURRENT=<window>` adds one) and the "
                        f"probability of {positive} of every logged prediction.")
            refresh = gr.Button("Refresh", elem_id="monitoring-refresh")
            level = gr.HTML(elem_id="monitoring-level")
            figure = gr.Plot(elem_id="monitoring-plot")
            gr.Markdown("### Alert timeline, newest first")
            alerts = gr.Dataframe(alert_table([]), headers=ALERT_COLUMNS, elem_id="monitoring-alerts", wrap=True)
            gr.Markdown("### Passes, newest first (before the first pass: the checked batches)")
            history_table = gr.Dataframe(elem_id="monitoring-table")
            stores = []  # the monitoring history in the log's database, opened at the first refresh

            def monitoring():
                from html import escape

                from driftgate.store.monitoring import MonitoringStore

                try:
                    if not stores:
                        stores.append(MonitoringStore(service.log.url))
                    return monitoring_state(stores[0], params, paths.reports, service.log, service.model.threshold, positive)
                except DriftgateError as exc:
                    return (f"<p><b>Cannot read the monitoring history.</b> {escape(one_line(exc))}</p>", None,
                            alert_table([]), None)

            outputs = [level, figure, alerts, history_table]
            refresh.click(monitoring, None, outputs, api_name="monitoring")
            demo.load(monitoring, None, outputs)
            if hasattr(gr, "Timer"):  # Gradio 4.40 and newer: refresh every 10 s while the page is open
                gr.Timer(10).tick(monitoring, None, outputs, show_progress="hidden")
    return demo


def server_port() -> int:
    """GRADIO_SERVER_PORT, or 7860."""
    text = os.environ.get("GRADIO_SERVER_PORT", str(DEFAULT_PORT))
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError("GRADIO_SERVER_PORT", f"{text!r} is not a port number", f"use a number from 1 to 65535, e.g. {DEFAULT_PORT}")
    return int(text)


def serve(app=None, host: str | None = None, port: int | None = None) -> None:
    """Run the app with uvicorn on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT (127.0.0.1:7860), and its
    monitor, if create_app was given monitor_every, in a background thread of this process."""
    import uvicorn

    host = host or os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    port = port or server_port()
    app = app or create_app()
    monitor = getattr(app.state, "monitor", None)
    stop = None
    if monitor is not None:
        from driftgate.monitoring.service import background

        _, stop = background(*monitor)
    # What was built so far (the model, Gradio, pandas...) lives as long as the server: moved out
    # of the collector's reach, a full collection under load scans only what requests allocate
    # (here 7-12 ms instead of up to 175 ms, a pause every request in flight waits out).
    gc.collect()
    gc.freeze()
    try:
        uvicorn.run(app, host=host, port=port, log_level="info")
    finally:
        if stop is not None:
            stop.set()


def one_line(exc: DriftgateError) -> str:
    """An error as one line: where, what, and what to do (a YAML parser's multi-line message joined)."""
    text = f"{exc.where}: {exc.problem}" + (f" -> {exc.hint}" if exc.hint else "")
    return "error: " + " ".join(text.split())


def _refuse(exc: DriftgateError):
    print(one_line(exc), file=sys.stderr)
    raise SystemExit(EXIT_BAD_INPUT) from None


def app_or_exit(**settings):
    """`create_app(**settings)`, or, when it refuses to start, the reason as one line on stderr
    and exit code 2 (what `driftgate serve` does): `python app.py` shows no traceback."""
    try:
        return create_app(**settings)
    except DriftgateError as exc:
        _refuse(exc)


def main() -> None:
    """`python app.py`: check the settings and the model, then serve; exit code 2 and the reason if it cannot."""
    try:
        port = server_port()
        app = create_app()
    except DriftgateError as exc:
        _refuse(exc)
    serve(app, port=port)
