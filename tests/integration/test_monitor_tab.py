"""The demo's Monitoring tab over a real monitoring history: the bundled model serves February
rows (its training months) and then July rows, labels arrive for some of them, and real passes
(`driftgate.monitoring.service.Monitor`) judge each window. The tab's functions are checked on
that history (level, figure, alert timeline, passes), and the tab itself in headless Chromium.

The passes use fewer resampling draws (drift.draws) and calibration refits than params.yaml so
that the history takes seconds, not minutes; the alert rules are the project's own.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import edit_params
from tests.integration.test_demo import _shot, page, server  # noqa: F401 - the demo's fixtures, on this project

pytestmark = pytest.mark.slow  # real passes on the bundled data: about a minute on 2 cores

FEBRUARY, JULY = "2013-02", "2013-07"


def _project(folder: Path, flights: Path) -> Path:
    """The flights project (conftest.flights_project: the bundled data validated, the default model
    trained) copied, with a prediction log of its own and cheaper passes."""
    shutil.copy2(flights / "params.yaml", folder / "params.yaml")
    shutil.copytree(flights / "artifacts", folder / "artifacts")
    edit_params(folder / "params.yaml", **{"drift.draws": 50, "monitoring.estimation.refits": 5,
                                           "serving.log": "logs/predictions.sqlite"})
    return folder


class Traffic:
    """Rows of the bundled dataset logged as the server logs them, with their labels on demand."""

    def __init__(self, folder: Path) -> None:
        import pandas as pd

        from driftgate.config import Paths, load_params
        from driftgate.model import train
        from driftgate.monitoring.reference import ModelInfo
        from driftgate.store.predictions import PredictionLog

        self.params, self.paths = load_params(folder / "params.yaml"), Paths(folder)
        self.model = ModelInfo.from_card(self.paths.model)
        self.pipeline, _ = train.load(self.paths.model, self.paths.model_card)
        self.dataset = pd.read_parquet(self.paths.dataset)
        self.log = PredictionLog(folder / self.params.serving.log)

    def send(self, month: str, rows: int, seed: int, labelled: bool) -> None:
        from driftgate.config import parse_window
        from driftgate.data.dataset import features_frame, labels, select_window

        picked = select_window(self.dataset, parse_window(month), month).sample(rows, random_state=seed)
        features = features_frame(picked, self.model.schema)
        scores = self.pipeline.predict_proba(features[self.model.schema.columns])[:, 1]
        names = self.params.data.target.class_names
        request = str(uuid.uuid4())
        self.log.append(json.loads(features[self.model.schema.columns].to_json(orient="records")),
                        [{"probability": float(p), "decision": names[int(p >= self.model.threshold)]} for p in scores],
                        request, "rest", self.model.version)
        if labelled:
            self.log.attach_labels([int(v) for v in labels(picked)], [request] * rows, list(range(rows)))


@pytest.fixture(scope="module")
def history(tmp_path_factory, flights_project):
    """Four passes: 600 February rows with labels, 100 more (skipped), 800 July rows with labels,
    600 July rows without. Returns the project folder, the traffic and the pass outcomes."""
    from driftgate.monitoring.service import Monitor

    folder = _project(tmp_path_factory.mktemp("monitored"), flights_project)
    traffic = Traffic(folder)
    monitor = Monitor.open(traffic.params, traffic.log.url, traffic.paths.model, traffic.paths, say=lambda _: None, notify=False)
    outcomes = []
    for month, rows, labelled in ((FEBRUARY, 600, True), (FEBRUARY, 100, True), (JULY, 800, True), (JULY, 600, False)):
        traffic.send(month, rows, seed=len(outcomes), labelled=labelled)
        outcomes.append(monitor.once())
    return folder, traffic, monitor.store, outcomes


@pytest.fixture(scope="module")
def demo_root(history) -> Path:
    """The demo's `server` fixture serves this project, its log holding the history."""
    return history[0]


def _state(history):
    from driftgate.serving.ui import monitoring_state

    folder, traffic, store, _ = history
    return monitoring_state(store, traffic.params, traffic.paths.reports, traffic.log, traffic.model.threshold, "late")


def test_the_history_has_judged_skipped_and_critical_passes(history):
    *_, outcomes = history
    assert [o.status for o in outcomes] == ["done", "skipped", "done", "done"]
    assert outcomes[1].reason.startswith("skipped: 100 < 200 ")
    assert outcomes[2].level == "critical" and outcomes[3].level == "critical"  # July drifts away from the training months


def test_the_level_shows_the_latest_pass_and_the_open_incidents(history):
    from html import escape

    folder, traffic, store, outcomes = history
    html, *_ = _state(history)
    last = outcomes[-1]
    rows = traffic.params.project.rows
    assert last.level.upper() in html
    assert f"Latest pass #{last.pass_id}</b>" in html
    assert f"{last.rows:,} {rows} (predictions after #" in html  # the rows word of params.project
    latest = store.latest_pass()
    assert latest["finished_at"].strftime("%Y-%m-%d %H:%M:%S UTC") in html
    assert "realized F1: no labels yet" in html  # the last window has no labels
    incidents = store.open_incidents()
    assert incidents and f"Open incidents ({len(incidents)})" in html
    for rule, row in incidents.items():
        assert f"<code>{escape(rule)}</code>" in html and escape(row["message"]) in html
    assert "drift_share" in incidents and incidents["drift_share"]["level"] == "critical"


def test_the_figure_draws_drift_share_and_f1_against_the_alert_limits(history):
    from matplotlib.collections import LineCollection, PathCollection
    from matplotlib.colors import to_hex

    from driftgate.reporting.plots import LEVEL_COLOURS

    folder, traffic, store, outcomes = history
    _, figure, *_ = _state(history)
    rules = traffic.params.monitoring.alerts
    drift_ax, f1_ax = figure.axes
    done = [o for o in outcomes if o.status == "done"]
    rows = sorted(store.passes_list(), key=lambda p: p["id"])
    judged = [p for p in rows if p["status"] == "done"]

    def flat(ax):
        return {round(float(y), 6) for line in ax.get_lines() for y in np.unique(line.get_ydata())
                if len(np.unique(line.get_ydata())) == 1}

    assert {rules.drift_share.warning, rules.drift_share.critical} <= flat(drift_ax)
    assert {rules.realized_f1.warning, rules.realized_f1.critical, rules.estimated_f1.warning,
            rules.estimated_f1.critical} <= flat(f1_ax)
    share_line = next(line for line in drift_ax.get_lines() if len(line.get_ydata()) == len(done))
    assert np.allclose(share_line.get_ydata(), [o.metrics["drift_share"] for o in done])
    points = [c for c in drift_ax.collections if isinstance(c, PathCollection)]
    level_points = next(c for c in points if len(c.get_offsets()) == len(done))
    assert [to_hex(c) for c in level_points.get_facecolors()] == [LEVEL_COLOURS[p["level"]] for p in judged]
    skipped = [c for c in points if len(c.get_offsets()) == 1 and to_hex(c.get_facecolors()[0]) == "#808080"]
    assert len(skipped) == 1  # the skipped pass, a grey mark on the time axis

    realized = next(line for line in f1_ax.get_lines() if line.get_label() == "realized F1 (labels in)")
    expected = [np.nan if p["realized_f1"] is None else p["realized_f1"] for p in judged]
    assert np.allclose(realized.get_ydata(), expected, equal_nan=True)
    assert np.isnan(realized.get_ydata()[-1])  # the unlabelled July window
    estimated = next(line for line in f1_ax.get_lines() if line.get_label() == "estimated F1 (no labels)")
    assert np.allclose(estimated.get_ydata(), [np.nan if p["estimated_f1"] is None else p["estimated_f1"] for p in judged],
                       equal_nan=True)
    [bars] = [c for c in f1_ax.collections if isinstance(c, LineCollection) and c.get_label() == "estimated F1 interval"]
    with_interval = [p for p in judged if p["estimated_lower"] is not None]
    assert with_interval, "the February window (inside the reference's support) has an estimate with an interval"
    assert np.allclose(sorted((seg[0][1], seg[1][1]) for seg in bars.get_segments()),
                       sorted((p["estimated_lower"], p["estimated_upper"]) for p in with_interval))
    abstained = [p for p in judged if p["estimated_f1"] is None]
    marks = [c for c in f1_ax.collections if c.get_label() == "estimate abstained"]
    assert len(abstained) == (len(marks[0].get_offsets()) if marks else 0)
    legend = [t.get_text() for ax in figure.axes for t in ax.get_legend().get_texts()]
    assert f"skipped pass (too few {traffic.params.project.rows})" in legend
    assert {"pass ok", "pass warning", "pass critical", "estimated F1 interval"} <= set(legend)


def test_the_alert_timeline_lists_every_alert_newest_first(history):
    folder, traffic, store, outcomes = history
    _, _, alerts, passes = _state(history)
    stored = store.alerts_list()
    assert list(alerts.columns) == ["time", "event", "level", "rule", "message"]
    assert len(alerts) == len(stored) == sum(len(o.alerts) for o in outcomes)
    assert list(alerts["message"]) == [a["message"] for a in stored]  # newest first
    assert list(alerts["time"]) == sorted(alerts["time"], reverse=True)
    fired = alerts[alerts["event"] == "fired"]
    assert "drift_share" in set(fired["rule"]) or "drift_share" in set(alerts[alerts["event"] == "escalated"]["rule"])
    assert set(alerts["level"]) <= {"ok", "warning", "critical"}
    assert list(passes["pass"]) == sorted((o.pass_id for o in outcomes), reverse=True)
    skipped = passes[passes["status"] == "skipped"]
    assert len(skipped) == 1 and skipped["reason"].iloc[0].startswith("skipped: 100 < 200 ")
    assert traffic.params.project.rows in passes.columns


def test_without_a_pass_the_tab_says_so_and_keeps_the_checked_batches(tmp_path, served_project):
    """Before the first pass: the words that say how to run one, and the pipeline's checked
    batches with the logged scores, as the tab showed them before the monitor."""
    from driftgate.config import Paths, load_params
    from driftgate.serving.ui import NO_PASS_YET, monitoring_state
    from driftgate.store.monitoring import MonitoringStore
    from driftgate.store.predictions import PredictionLog

    params = load_params(served_project / "params.yaml")
    metrics = json.loads(Paths(served_project).metrics.read_text())
    empty = tmp_path / "empty.sqlite"
    html, figure, alerts, table = monitoring_state(MonitoringStore(empty), params, Paths(served_project).reports,
                                                   PredictionLog(empty), 0.5, "churned")
    assert NO_PASS_YET.replace("`driftgate monitor --once`", "<code>driftgate monitor --once</code>") in html
    assert "level: none" in html
    assert alerts.empty and list(alerts.columns) == ["time", "event", "level", "rule", "message"]
    assert list(table.columns) == ["batch", "f1", "drift_share"]
    assert list(table["batch"]) == [metrics["current"]["window"]]
    assert table["f1"].iloc[0] == pytest.approx(metrics["current"]["f1"], abs=1e-4)
    assert [ax.get_title() for ax in figure.axes] == ["Production batches: F1 and drift share", "Prediction log: 0 predictions"]


def test_the_tab_in_a_browser_shows_the_level_and_the_alert_timeline(page, history):  # noqa: F811 - the demo's page fixture
    from playwright.sync_api import expect

    folder, traffic, store, outcomes = history
    page.get_by_role("tab", name="Monitoring").click()
    page.locator("#monitoring-refresh").click()
    level = page.locator("#monitoring-level")
    expect(level).to_contain_text(outcomes[-1].level.upper(), timeout=30_000)
    expect(level).to_contain_text(f"Latest pass #{outcomes[-1].pass_id}")
    expect(level).to_contain_text("Open incidents")
    timeline = page.locator("#monitoring-alerts")
    newest = store.alerts_list(limit=1)[0]
    expect(timeline).to_contain_text(newest["message"], timeout=30_000)
    expect(timeline).to_contain_text("fired")
    expect(page.locator("#monitoring-table")).to_contain_text("skipped: 100 < 200")
    expect(page.locator("#monitoring-plot img")).to_be_visible(timeout=30_000)
    _shot(page, "monitoring")
