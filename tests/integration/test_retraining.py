"""The retraining controller on the bundled flights: a challenger trained on a newer window,
both models scored on the same later rows, the decision recorded, the alias history, rollback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from driftgate.cli.main import app
from driftgate.config import Paths, Window, load_params
from driftgate.errors import DataError
from driftgate.results import PromotionDecision
from driftgate.retraining.controller import retrain
from driftgate.store.registry import ModelRegistry
from tests.conftest import BIN, ROOT, run


@pytest.fixture
def project(flights_project, tmp_path, monkeypatch) -> Path:
    """The trained flights project (cwd), a params file with a retraining section, a store of its own."""
    monkeypatch.chdir(flights_project)
    monkeypatch.setenv("DRIFTGATE_MONITOR_LOG", str(tmp_path / "store.sqlite"))
    raw = yaml.safe_load((flights_project / "params.yaml").read_text())
    raw["retraining"] = {"window": "2013-04..2013-06", "evaluation": "2013-07", "draws": 500, "replicas": 3}
    raw["model"]["max_iter"] = 60  # a smaller challenger: the decision's logic, not the model, is under test
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return tmp_path / "params.yaml"


def cli(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_a_retrain_scores_both_models_on_the_same_rows_and_records_every_field(project, tmp_path):
    params = load_params(project)
    registry = ModelRegistry(tmp_path / "store.sqlite")
    outcome = retrain(params, Paths(), registry, trigger="manual")
    decision = outcome.decision
    assert outcome.champion != outcome.challenger
    assert decision.rows > 20_000  # all of July, scored by both
    assert decision.difference == pytest.approx(decision.challenger_f1 - decision.champion_f1)
    assert decision.lower <= decision.difference
    assert outcome.outcome == ("promoted" if decision.promote else "rejected")
    assert decision.promote == (decision.difference >= 0.01 and decision.lower > 0 and outcome.gates.passed)
    [row] = registry.decisions()
    assert row["trigger"] == "manual" and row["outcome"] == outcome.outcome and row["reason"] == decision.reason
    assert (row["training_window"], row["evaluation_window"]) == ("2013-04..2013-06", "2013-07")
    assert len(row["training_data_sha256"]) == len(row["evaluation_data_sha256"]) == 64
    assert row["champion_sha256"] == outcome.champion and row["challenger_sha256"] == outcome.challenger
    assert row["at"].tzinfo is not None
    # each recipe refitted 3 times on resampled rows (the champion's from its card): the means over 4 fits decide
    details = row["details"]
    challenger_fits = [details["challenger_model_f1"], *details["challenger_refit_f1"]]
    champion_fits = [details["champion_model_f1"], *details["champion_refit_f1"]]
    assert len(challenger_fits) == len(champion_fits) == 4 and len(set(challenger_fits)) > 1 and len(set(champion_fits)) > 1
    assert decision.challenger_fits == decision.champion_fits == 4
    assert decision.challenger_f1 == pytest.approx(np.mean(challenger_fits), abs=1e-5)
    assert decision.champion_f1 == pytest.approx(np.mean(champion_fits), abs=1e-5)
    assert decision.challenger_sd == pytest.approx(np.std(challenger_fits, ddof=1), abs=1e-5)
    assert row["champion_f1"] == pytest.approx(decision.champion_f1)
    assert {v["sha256"] for v in registry.versions()} == {outcome.champion, outcome.challenger}
    expected = outcome.challenger if decision.promote else outcome.champion
    assert registry.champion() == expected
    assert registry.champion_at(datetime.now(UTC) - timedelta(days=1)) is None  # nothing served before the registry


def test_rollback_restores_the_previous_champion_and_records_it(project, tmp_path):
    registry = ModelRegistry(tmp_path / "store.sqlite")
    outcome = retrain(load_params(project), Paths(), registry)
    if not outcome.decision.promote:  # make the challenger champion by hand, as a promotion would
        registry.set_champion(outcome.challenger, "promoted by hand for the test")
    between = datetime.now(UTC)
    result = cli("rollback", "--params", str(project))
    assert result.exit_code == 0, result.output
    assert f"{outcome.champion[:12]} serves again instead of {outcome.challenger[:12]}" in result.output
    assert registry.champion() == outcome.champion
    assert registry.decisions()[0]["outcome"] == "rolled_back"
    at = cli("models", "--params", str(project), "--at", between.isoformat())
    assert outcome.challenger in at.output  # which model served at that time


def test_rollback_with_nothing_to_roll_back_to_says_so(project):
    result = cli("rollback", "--params", str(project))
    assert result.exit_code == 2 and "no champion yet" in result.output and "Traceback" not in result.output


def test_retrain_refuses_missing_and_overlapping_windows_with_the_key_named(project):
    raw = yaml.safe_load(project.read_text())
    del raw["retraining"]["window"]
    project.write_text(yaml.safe_dump(raw))
    result = cli("retrain", "--params", str(project))
    assert result.exit_code == 2 and "retraining.window" in result.output and "is not set" in result.output
    raw["retraining"].update(window="2013-06..2013-08", evaluation="2013-07")
    project.write_text(yaml.safe_dump(raw))
    result = cli("retrain", "--params", str(project))
    assert result.exit_code == 2 and "overlaps the challenger's training window" in result.output
    raw["retraining"].update(window="2013-04..2013-06", evaluation="2013-02")
    project.write_text(yaml.safe_dump(raw))
    result = cli("retrain", "--params", str(project))
    assert result.exit_code == 2 and "overlaps the champion's training window 2013-01..2013-03" in result.output


def test_models_at_a_bad_time_is_refused(project):
    result = cli("models", "--params", str(project), "--at", "yesterday")
    assert result.exit_code == 2 and "--at" in result.output and "ISO" in result.output


def test_dvc_yaml_declares_the_model_as_a_dvc_model_artifact():
    artifacts = yaml.safe_load((ROOT / "dvc.yaml").read_text())["artifacts"]
    [(name, entry)] = artifacts.items()
    assert entry["type"] == "model" and entry["path"] == "artifacts/model.joblib"
    assert name == name.lower() and " " not in name  # DVC's artifact naming rule


def test_a_critical_pass_triggers_a_retrain_when_on_alert_is_on(project, tmp_path):
    from driftgate.monitoring.service import Monitor
    from tests.conftest import fill_log

    raw = yaml.safe_load(project.read_text())
    raw["retraining"]["on_alert"] = True
    project.write_text(yaml.safe_dump(raw))
    store = tmp_path / "store.sqlite"
    fill_log(Path.cwd(), str(store), "2013-07", 400)
    said: list[str] = []
    outcome = Monitor.open(load_params(project), store, Path("artifacts/model.joblib"), say=said.append, notify=False).once()
    assert outcome.level == "critical"
    [decision] = ModelRegistry(store).decisions()
    assert decision["trigger"] == "alert" and decision["outcome"] in ("promoted", "rejected")
    assert any("retraining (retraining.on_alert)" in line for line in said)


def weak_champion(params_path: Path, registry: ModelRegistry) -> str:
    """A champion trained on the first 3,000 flights of January with 3 boosting rounds: a clearly
    better challenger exists, so a promotion can be tested for what it writes."""
    import hashlib
    import io

    import joblib

    from driftgate.data.dataset import feature_schema, load_dataset
    from driftgate.model import train

    params = load_params(params_path)
    params = params.model_copy(update={"model": params.model.model_copy(update={"max_iter": 3})})
    dataset = load_dataset(Paths().dataset)
    schema = feature_schema(dataset, params.data)
    rows = dataset.iloc[:3000]
    pipeline = train.fit(rows, params, schema)
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer)
    sha = hashlib.sha256(buffer.getvalue()).hexdigest()
    card = {**train.model_card(params, schema, rows, {}), "model_sha256": sha, "train_window": "2013-01-01..2013-01-03"}
    registry.register(sha, card, buffer.getvalue())
    registry.set_champion(sha, "a weak champion for the test")
    return sha


def test_a_promotion_writes_the_report_and_moves_the_windows_when_asked(project, tmp_path):
    registry = ModelRegistry(tmp_path / "store.sqlite")
    weak = weak_champion(project, registry)
    report, decision_file = tmp_path / "retrain.md", tmp_path / "decision.json"
    result = cli("retrain", "--params", str(project), "--report", str(report), "--out", str(decision_file), "--move-window",
                 "--trigger", "schedule")
    assert result.exit_code == 0, result.output
    decision = PromotionDecision.read(decision_file)
    assert decision.promote and decision.lower > 0 and decision.challenger_fits == decision.champion_fits == 4
    assert registry.champion() != weak and registry.decisions()[0]["trigger"] == "schedule"
    moved = yaml.safe_load(project.read_text())["windows"]
    assert (moved["train"], moved["current"]) == ("2013-04..2013-06", "2013-07")
    assert "windows.train 2013-01..2013-03 -> 2013-04..2013-06" in result.output
    text = report.read_text()
    assert text.startswith("# Retraining: ") and "promoted ✅" in text.splitlines()[0]
    def cells(side: str) -> list[str]:
        [row] = [line for line in text.splitlines() if line.startswith(f"| {side}")]
        return [cell.strip() for cell in row.strip("|").split("|")]

    assert cells("champion")[1:4] == [f"`{weak[:12]}`", "2013-01-01..2013-01-03", f"{decision.champion_f1:.3f}"]
    assert f"{decision.challenger_f1:.3f}" in text and f"**{decision.lower:+.3f}**" in text
    assert "mean F1 of its fits on 2013-07" in text and "All 2 gates passed" in text
    assert cells("challenger")[3:] == [f"{decision.challenger_f1:.3f}", f"{decision.challenger_sd:.4f}", "4",
                                       f"{decision.challenger_model_f1:.3f}"]


def test_a_rejection_leaves_the_params_file_alone(project, tmp_path):
    raw = yaml.safe_load(project.read_text())
    raw["retraining"]["margin"] = 0.5  # no challenger beats the champion by half an F1 point
    project.write_text(yaml.safe_dump(raw, sort_keys=False))
    before = project.read_bytes()
    report = tmp_path / "retrain.md"
    result = cli("retrain", "--params", str(project), "--report", str(report), "--move-window")
    assert result.exit_code == 0, result.output
    assert project.read_bytes() == before
    assert "rejected ❌" in report.read_text().splitlines()[0] and "under the margin 0.500" in report.read_text()


def test_the_challenger_is_byte_for_byte_what_the_train_stage_writes_and_its_errors_come_back(project, tmp_path):
    """Fitted in a fresh interpreter: the same sha256 as `driftgate train` on the same window, even
    in a process that has unpickled another model (which makes the same trees pickle differently)."""
    from driftgate.model import train as training
    from driftgate.retraining.controller import fit_fresh

    params = load_params(project)
    params = params.model_copy(update={"windows": params.windows.model_copy(update={"train": params.retraining.window})})
    training.load(Paths().model, Paths().model_card)  # this process now holds an unpickled model
    model = tmp_path / "model.joblib"
    trained = project.parent / "moved.yaml"
    raw = yaml.safe_load(project.read_text())
    raw["windows"]["train"] = "2013-04..2013-06"
    trained.write_text(yaml.safe_dump(raw, sort_keys=False))
    # `driftgate train` in a process of its own, as the train stage runs it
    result = run([str(BIN / "driftgate"), "train", "--params", str(trained), "--model", str(model), "--card",
                  str(tmp_path / "model.json")], cwd=Path.cwd())
    assert result.returncode == 0, result.stdout + result.stderr
    import hashlib

    assert hashlib.sha256(fit_fresh(Paths().dataset, params)).hexdigest() == hashlib.sha256(model.read_bytes()).hexdigest()
    empty = params.model_copy(update={"windows": params.windows.model_copy(update={"train": Window.model_validate("2014-01")})})
    with pytest.raises(DataError) as refused:  # raised in the training process, raised again here as it was
        fit_fresh(Paths().dataset, empty)
    assert "2014-01" in str(refused.value.where) and "cannot learn" in refused.value.problem
