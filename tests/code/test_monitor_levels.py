"""Alert levels and incidents (pure): which rule breaches at which level, and the rows an
incident leaves as it fires, persists, changes level and resolves."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from driftgate.config import AlertRules, Levels, MonitoringConfig, parse_duration
from driftgate.monitoring.levels import conditions, transitions, worst

RULES = AlertRules()
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def by_rule(found):
    return {c.rule: c for c in found}


def test_drift_share_levels_at_or_above_their_limits():
    levels = {share: by_rule(conditions({"drift_share": share}, {}, RULES))["drift_share"].level for share in (0.1, 0.2, 0.49, 0.5)}
    assert levels == {0.1: "ok", 0.2: "warning", 0.49: "warning", 0.5: "critical"}


def test_f1_levels_below_their_limits_and_unjudged_when_missing():
    found = by_rule(conditions({"estimated_f1": 0.39, "realized_f1": 0.30}, {}, RULES))
    assert found["estimated_f1"].level == "warning" and found["realized_f1"].level == "critical"
    assert "0.390 < 0.4" in found["estimated_f1"].message
    assert "estimated_f1" not in by_rule(conditions({"estimated_f1": None}, {}, RULES))  # abstained: not judged


def test_named_columns_and_prediction_drift_take_their_configured_level():
    rules = AlertRules(columns={"dest": "critical"}, prediction_drift="warning")
    found = by_rule(conditions({}, {"dest": True, "prediction": True, "predicted_label": False}, rules,
                               prediction_columns=("prediction", "predicted_label")))
    assert found["column:dest"].level == "critical"
    assert found["prediction_drift"].level == "warning" and "prediction" in found["prediction_drift"].message
    off = by_rule(conditions({}, {"prediction": True}, AlertRules(prediction_drift="ok"), prediction_columns=("prediction",)))
    assert "prediction_drift" not in off


def test_missing_share_rise_names_the_column():
    found = by_rule(conditions({"missing_share_rise": 0.3, "missing_share_column": "temp"}, {}, RULES))["missing_share"]
    assert found.level == "critical" and "(temp)" in found.message


def test_worst_level():
    assert worst(["ok", "critical", "warning"]) == "critical" and worst([]) == "ok"


def test_an_incident_fires_once_renotifies_after_the_cooldown_escalates_and_resolves():
    breach = conditions({"drift_share": 0.3}, {}, RULES)
    [fired] = transitions({}, breach, T0, cooldown=3600)
    assert fired["event"] == "fired" and fired["incident"] is None and fired["level"] == "warning"
    open_ = {"drift_share": {"incident": 7, "level": "warning", "notified_at": T0}}
    assert transitions(open_, breach, T0 + timedelta(minutes=10), cooldown=3600) == []  # persisting, inside the cooldown
    [again] = transitions(open_, breach, T0 + timedelta(hours=1), cooldown=3600)
    assert again["event"] == "renotified" and again["incident"] == 7
    [up] = transitions(open_, conditions({"drift_share": 0.6}, {}, RULES), T0, cooldown=3600)
    assert up["event"] == "escalated" and up["level"] == "critical" and up["incident"] == 7
    critical = {"drift_share": {"incident": 7, "level": "critical", "notified_at": T0}}
    [down] = transitions(critical, breach, T0, cooldown=3600)
    assert down["event"] == "deescalated" and down["level"] == "warning"
    [resolved] = transitions(open_, conditions({"drift_share": 0.05}, {}, RULES), T0, cooldown=3600)
    assert resolved["event"] == "resolved" and resolved["incident"] == 7 and resolved["level"] == "ok"
    assert transitions({}, conditions({"drift_share": 0.05}, {}, RULES), T0, cooldown=3600) == []  # ok and no incident: nothing


def test_an_unjudged_rule_leaves_its_incident_open():
    open_ = {"realized_f1": {"incident": 3, "level": "critical", "notified_at": T0}}
    assert transitions(open_, conditions({"realized_f1": None}, {}, RULES), T0 + timedelta(days=1), cooldown=60) == []


def test_durations_and_rule_order_are_checked_with_the_key_named():
    assert parse_duration("5m", "x") == 300 and parse_duration("1.5h", "x") == 5400 and parse_duration(30, "x") == 30
    assert MonitoringConfig(every="2h", window="24h").sliding == 86400 and MonitoringConfig().sliding is None
    assert MonitoringConfig(every="90s").window_every == "90s" and MonitoringConfig().window_every == "5m"
    with pytest.raises(ValidationError, match="duration"):
        MonitoringConfig(every="soon")
    with pytest.raises(ValidationError, match="duration"):
        MonitoringConfig(window="yesterday")
    with pytest.raises(ValidationError, match="more drift is worse"):
        AlertRules(drift_share=Levels(warning=0.5, critical=0.2))
    with pytest.raises(ValidationError, match="lower F1 is worse"):
        AlertRules(realized_f1=Levels(warning=0.3, critical=0.4))
