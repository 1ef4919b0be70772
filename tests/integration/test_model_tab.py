"""The demo's Model tab over a real model registry, in headless Chromium: the bundled flights model
serves (`python app.py`, as users start it), the tab's Retrain button runs a real retraining in the
server (the worker POST /retrain uses), and the tab shows the decision GET /retraining/status
returns. After a promotion the Predict tab scores with the new champion and says so.

The challenger is smaller than params.yaml's model (model.max_iter 60) and is refitted 3 times
(retraining.replicas) so the retraining takes seconds: the tab, not the model, is under test.
"""

# ruff: noqa: F811 - the demo's fixtures (imported from test_demo) are the tests' arguments
from __future__ import annotations

import json
import shutil
import sqlite3
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import edit_params
from tests.integration.test_demo import _shot, page, prediction_log, server  # noqa: F401 - the demo's fixtures, on this project

pytestmark = pytest.mark.slow  # a served project and a real retraining: about two minutes on 2 cores

LOG = "logs/predictions.sqlite"
RETRAINING = {"model.max_iter": 60, "retraining.window": "2013-04..2013-06", "retraining.evaluation": "2013-07",
              "retraining.replicas": 3, "retraining.draws": 500, "retraining.margin": 0.01, "retraining.margin_kind": "absolute",
              "retraining.confidence": 0.95, "retraining.on_alert": False}


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory, flights_project) -> Path:
    """The flights project (conftest.flights_project: the bundled data validated, the default model
    trained) copied with a prediction log (and so a registry) of its own and a small retraining."""
    folder = tmp_path_factory.mktemp("registry")
    shutil.copy2(flights_project / "params.yaml", folder / "params.yaml")
    shutil.copytree(flights_project / "artifacts", folder / "artifacts")
    edit_params(folder / "params.yaml", **RETRAINING, **{"serving.log": LOG})
    return folder


def _get(server: str, route: str) -> dict:
    with urllib.request.urlopen(f"{server}{route}", timeout=30) as response:
        return json.load(response)


def _shown_time(text: str) -> str:
    """An ISO time of the API as the tab shows it."""
    return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M:%S UTC")


def _open_model_tab(page) -> None:
    page.get_by_role("tab", name="Model").click()
    page.locator("#model-refresh").click()


def test_an_empty_registry_says_no_retraining_was_decided(page, server, demo_root):
    from playwright.sync_api import expect

    from driftgate.serving.ui import NO_DECISION_YET

    card = json.loads((demo_root / "artifacts" / "model.json").read_text())
    status = _get(server, "/retraining/status")
    assert status["last_decision"] is None and status["champion"] is None  # what the tab must agree with
    _open_model_tab(page)
    decision = page.locator("#model-decision")
    expect(decision).to_contain_text(NO_DECISION_YET.replace("`", ""), timeout=30_000)
    expect(decision).to_contain_text("no decision")
    champion = page.locator("#model-champion")
    expect(champion).to_contain_text("Champion: none yet")
    expect(champion).to_contain_text(f"the model the server started with serves, {card['model_sha256'][:12]}")
    expect(page.locator("#model-retraining")).to_contain_text("Retraining: idle")
    expect(page.locator("#model-card")).to_contain_text(card["model_sha256"])  # the model card is still there
    expect(page.locator("#model-decision-plot img")).to_have_count(0)  # nothing to draw before a comparison


@pytest.fixture(scope="module")
def started(page, demo_root):
    """Retrain pressed once: the tab's answer, and when the click was made."""
    from playwright.sync_api import expect

    _open_model_tab(page)
    page.locator("#model-retrain").click()
    message = page.locator("#model-retrain-message")
    expect(message).to_contain_text("Retraining started", timeout=30_000)
    return message.inner_text()


@pytest.fixture(scope="module")
def decided(started, page, server):
    """The retraining started by the Retrain button, once it is done: GET /retraining/status's answer."""
    deadline = time.monotonic() + 600
    while (status := _get(server, "/retraining/status"))["state"] == "running":
        assert time.monotonic() < deadline, "the retraining did not finish in 10 minutes"
        time.sleep(1)
    assert status["job"]["error"] is None, status["job"]
    page.get_by_role("tab", name="Model").click()
    page.locator("#model-refresh").click()
    return status


def test_a_second_retrain_click_while_one_runs_says_it_runs_already(page, server, started):
    from playwright.sync_api import expect

    assert _get(server, "/retraining/status")["state"] == "running"  # the first click's retraining is still going
    assert "2013-04..2013-06 (retraining.window)" in started and "2013-07 (retraining.evaluation)" in started
    page.locator("#model-retrain").click()
    message = page.locator("#model-retrain-message")
    expect(message).to_contain_text("A retraining is running already", timeout=30_000)
    expect(message).to_contain_text("trigger manual")
    expect(page.locator("#model-retraining")).to_contain_text("Retraining: running (trigger manual")
    history = _get(server, "/retraining/history")["decisions"]
    assert len(history) <= 1  # the second click started nothing


def test_retrain_runs_a_retraining_and_the_tab_shows_its_decision_as_the_api_does(page, server, demo_root, decided):
    from playwright.sync_api import expect

    from driftgate.store.registry import ModelRegistry

    d = decided["last_decision"]
    assert decided["job"]["trigger"] == "manual" and decided["job"]["decision_id"] == d["id"]
    assert d["trigger"] == "manual" and d["outcome"] in ("promoted", "rejected")
    assert _get(server, "/retraining/history")["decisions"] == [d]  # one click, one decision
    [row] = ModelRegistry(demo_root / LOG).decisions()
    details = row["details"]
    assert len(details["challenger_refit_f1"]) == len(details["champion_refit_f1"]) == 3

    card = page.locator("#model-decision")
    expect(card).to_contain_text(d["outcome"].upper(), timeout=30_000)
    for text in (f"Decision #{d['id']}", _shown_time(d["at"]), "trigger manual",
                 f"Champion F1 {d['champion_f1']:.3f}", f"challenger F1 {d['challenger_f1']:.3f}",
                 f"on {d['rows']:,} flights of the evaluation window 2013-07", "trained on 2013-04..2013-06",
                 f"Difference {d['difference']:+.3f}", f"one-sided 95% lower bound {d['lower']:+.3f}",
                 "margin 0.01 (absolute)", f"sd {details['champion_sd']:.4f} and {details['challenger_sd']:.4f}", "4 and 4", d["reason"],
                 d["challenger_sha256"][:12], d["champion_sha256"][:12]):
        expect(card).to_contain_text(text)
    table = page.locator("#model-decisions")
    for text in (_shown_time(d["at"]), "manual", d["outcome"], d["reason"]):
        expect(table).to_contain_text(text)
    champion = decided["champion"]
    expect(page.locator("#model-champion")).to_contain_text(f"Champion {champion[:12]}")
    expect(page.locator("#model-champion")).to_contain_text(f"Serving now: {champion[:12]}, the champion")
    expect(page.locator("#model-champion")).to_contain_text("Trained on: 2013-")
    aliases = page.locator("#model-aliases")
    expect(aliases).to_contain_text(d["champion_sha256"][:12])
    expect(aliases).to_contain_text("(champion now)")
    expect(page.locator("#model-retraining")).to_contain_text("finished")
    expect(page.locator("#model-retraining")).to_contain_text(f"{d['outcome']}, decision #{d['id']}")
    expect(page.locator("#model-retrain-message")).not_to_contain_text("Retraining started")  # done: the state line says how it ended
    expect(page.locator("#model-retrain-message")).not_to_contain_text("running already")
    expect(page.locator("#model-decision-plot img")).to_be_visible(timeout=30_000)
    _shot(page, "model")


def test_the_figure_draws_each_difference_down_to_its_lower_bound_against_the_margin_and_zero(demo_root, decided):
    from matplotlib.collections import LineCollection

    from driftgate.serving.retraining_api import Decision
    from driftgate.serving.ui import decisions_figure
    from driftgate.store.registry import ModelRegistry

    rows = ModelRegistry(demo_root / LOG).decisions()
    decisions = [Decision.model_validate(row) for row in rows]
    [ax] = decisions_figure(decisions, {row["id"]: row["details"] for row in rows}).axes
    d = decided["last_decision"]
    flat = {round(float(line.get_ydata()[0]), 6) for line in ax.get_lines() if len(set(line.get_ydata())) == 1
            and len(line.get_ydata()) == 2}
    assert {0.0, 0.01} <= flat  # the zero line and the margin line
    points = [line for line in ax.get_lines() if line.get_label().endswith("difference, down to its lower bound")
              or line.get_marker() == "o"]
    assert any(np.allclose(line.get_ydata(), [d["difference"]]) for line in points)
    [bar] = [c for c in ax.collections if isinstance(c, LineCollection) and len(c.get_segments()) == 1]
    [(_, low), (_, high)] = bar.get_segments()[0]
    assert sorted((low, high)) == pytest.approx(sorted((d["lower"], d["difference"])))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "margin 0.010 (absolute)" in legend and f"{d['outcome']}: difference, down to its lower bound" in legend
    assert decisions_figure([], {}) is None


def _served(server: str, version: str) -> None:
    deadline = time.monotonic() + 30
    while _get(server, "/health")["model_version"] != version:
        assert time.monotonic() < deadline, f"the server did not swap to {version} in 30 s"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def promoted(decided, demo_root, server) -> str:
    """The retraining's challenger as the champion, serving: promoted by the rule, or by hand as a
    promotion would (registry.set_champion) when the rule rejected it. Returns its sha256."""
    from driftgate.store.registry import ModelRegistry

    registry = ModelRegistry(demo_root / LOG)
    challenger = decided["last_decision"]["challenger_sha256"]
    if registry.champion() != challenger:
        registry.set_champion(challenger, "promoted by hand for the test")
    _served(server, challenger[:12])
    return challenger


def test_after_a_promotion_the_predict_tab_scores_with_the_new_champion_and_names_it(
        page, server, demo_root, decided, promoted, prediction_log):
    from playwright.sync_api import expect

    from driftgate.config import load_params
    from driftgate.serving.model import ServedModel
    from driftgate.store.registry import ModelRegistry

    d = decided["last_decision"]
    registry = ModelRegistry(demo_root / LOG)
    challenger = promoted
    page.reload(wait_until="networkidle")
    expect(page.locator("#header")).to_contain_text(f"Model {challenger[:12]}", timeout=30_000)  # the page names it too
    page.get_by_role("tab", name="Predict").click()
    page.locator("#predict-button").click()
    verdict = page.locator("#predict-verdict")
    expect(verdict).to_contain_text(f"model {challenger[:12]}", timeout=30_000)
    [logged] = prediction_log.frame(limit=1).to_dict("records")
    assert logged["source"] == "ui" and logged["model_version"] == challenger[:12]
    params = load_params(demo_root / "params.yaml")
    new = ServedModel.from_bytes(*registry.model(challenger), params)
    old = ServedModel.from_bytes(*registry.model(d["champion_sha256"]), params)
    record = {name: logged[name] for name in new.schema.columns}
    assert logged["probability"] == pytest.approx(float(new.score_records([record])[0]), abs=1e-6)  # the new model scored it
    assert logged["probability"] != pytest.approx(float(old.score_records([record])[0]), abs=1e-6)

    _open_model_tab(page)
    expect(page.locator("#model-champion")).to_contain_text(f"Champion {challenger[:12]}", timeout=30_000)
    expect(page.locator("#model-champion")).to_contain_text(f"Serving now: {challenger[:12]}, the champion")
    expect(page.locator("#model-aliases")).to_contain_text(d["champion_sha256"][:12])
    expect(page.locator("#model-card")).to_contain_text(challenger)  # the card of the model serving now


def test_a_registry_that_cannot_be_read_is_said_in_one_line_in_the_tab(tmp_path, demo_root, capsys):
    """A database whose registry tables were written by something else: the tab says so in one
    line naming the database, and nothing is raised (so the server logs no traceback)."""
    from driftgate.config import Paths, load_params
    from driftgate.serving.metrics import Metrics
    from driftgate.serving.model import ServedModel
    from driftgate.serving.service import Service
    from driftgate.serving.ui import model_state
    from driftgate.store.predictions import PredictionLog

    db = tmp_path / "other.sqlite"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE registry_aliases (name TEXT)")
    params, paths = load_params(demo_root / "params.yaml"), Paths(demo_root)
    service = Service(ServedModel.load(paths.model, params), PredictionLog(db), Metrics(paths.gate), params=params, paths=paths)
    champion, state, card, figure, decisions, aliases = model_state(service, params, None)
    assert card.startswith("<p><b>Cannot read the model registry.</b> error: ")
    assert str(db) in card and "the model registry: cannot be read (no such column" in card and "\n" not in card
    assert figure is None and decisions.empty and aliases.empty
    assert f"Serving now: `{service.model.version}`" in champion and "Retraining: idle" in state
    assert "Traceback" not in capsys.readouterr().err


def test_after_a_rollback_the_card_says_what_was_restored_and_keeps_the_last_comparison(demo_root, server, decided, promoted):
    from driftgate.config import Paths, load_params
    from driftgate.retraining.controller import rollback
    from driftgate.serving.metrics import Metrics
    from driftgate.serving.model import ServedModel
    from driftgate.serving.service import Service
    from driftgate.serving.ui import model_state
    from driftgate.store.predictions import PredictionLog
    from driftgate.store.registry import ModelRegistry

    d = decided["last_decision"]
    done = rollback(ModelRegistry(demo_root / LOG))
    assert (done.restored, done.replaced) == (d["champion_sha256"], promoted)
    _served(server, done.restored[:12])  # the server follows the rollback too
    params, paths = load_params(demo_root / "params.yaml"), Paths(demo_root)
    service = Service(ServedModel.load(paths.model, params), PredictionLog(demo_root / LOG), Metrics(paths.gate), params=params,
                      paths=paths)
    champion, _, card, figure, decisions, aliases = model_state(service, params, None)
    assert "ROLLED BACK" in card and f"Decision #{done.decision_id}</b>" in card
    assert f"<code>{done.restored[:12]}</code> restored in place of <code>{promoted[:12]}</code>" in card
    assert f"<b>The last comparison</b>, decision #{d['id']} ({d['outcome']}," in card  # what the rollback compared: nothing
    assert f"Champion F1 <b>{d['champion_f1']:.3f}</b>" in card and f"lower bound <b>{d['lower']:+.3f}</b>" in card
    assert list(decisions["outcome"]) == ["rolled_back", d["outcome"]]  # newest first
    assert list(aliases["version"][:2]) == [done.restored[:12], promoted[:12]] and aliases["until"].iloc[0] == "(champion now)"
    assert f"### Champion `{done.restored[:12]}`" in champion and f"`{done.restored[:12]}`, the champion" in champion
    assert len(figure.axes[0].get_xticklabels()) == 1  # the rollback is no comparison: one point, as before
