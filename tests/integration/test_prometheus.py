"""deploy/ for real: Debian's Prometheus scrapes a running `driftgate serve` with deploy's config
and rules, and every query of the Grafana dashboard is run against it.

The demo is a real process on 127.0.0.1 serving a small project trained for real, with its
monitor inside (--monitor-every); traffic goes through the real POST /predict and /labels.
Prometheus runs on 127.0.0.1 with its own data dir, deploy/prometheus/prometheus.yml pointed at
the demo's port and scraping every second. promtool checks the config, the rules (and their unit
tests) and the demo's /metrics. The compose file is checked against the Compose specification's
schema (check-jsonschema's vendored copy): there is no container engine here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from driftgate.config import load_params
from tests.conftest import BIN, ROOT, make_tiny_frame, set_dotted

DEPLOY = ROOT / "deploy"
PROMETHEUS_YML = DEPLOY / "prometheus" / "prometheus.yml"
RULES = DEPLOY / "prometheus" / "rules.yml"
RULES_TEST = DEPLOY / "prometheus" / "rules_test.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "driftgate.json"
DATASOURCE = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
PROVIDER = DEPLOY / "grafana" / "provisioning" / "dashboards" / "driftgate.yml"
COMPOSE = DEPLOY / "compose.yaml"
FEATURES = ["x1", "x2", "plan"]


def installed(command: str) -> str:
    found = shutil.which(command)
    assert found, f"{command} is not installed: `make tools` installs it (Debian: apt-get install -y prometheus)"
    return found


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([installed("promtool"), *args], input=stdin, capture_output=True, text=True, timeout=120)


def panel_queries() -> list[tuple[str, str, str]]:
    """(panel title, refId, PromQL) of every target of every panel of the dashboard."""
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["refId"], target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(check, processes: dict[str, subprocess.Popen], what: str, seconds: float = 120):
    """Poll `check()` until it returns something truthy; a process dying ends the wait."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                raise AssertionError(f"{name} exited ({process.returncode}) before {what}: {process.stderr.read()}")
        try:
            found = check()
        except httpx.TransportError:
            found = None
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"no {what} within {seconds:.0f} s")


def _stop(process: subprocess.Popen) -> str:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
    try:
        return process.communicate(timeout=60)[1]
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        return process.communicate()[1]


# The estimate needs only 20 rows a block on the tiny data, so a pass over 300 predictions has one;
# and an estimated F1 below 0.9 is critical here, so the pass (F1 about 0.7, no drift) is critical
# for the monitor, and the deploy rule that follows its level fires.
SETTINGS = {"monitoring.estimation.min_rows": 20, "monitoring.alerts.estimated_f1": {"warning": 0.95, "critical": 0.9}}


def make_project(served: Path, folder: Path) -> Path:
    """What the server reads, in a folder of its own, with SETTINGS."""
    for name in ("artifacts/model.joblib", "artifacts/model.json", "artifacts/dataset.parquet", "reports/metrics.json",
                 "reports/gate.json"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(served / name, folder / name)
    params = yaml.safe_load((served / "params.yaml").read_text())
    (folder / "params.yaml").write_text(yaml.safe_dump(set_dotted(params, **SETTINGS),
                                                       sort_keys=False))
    return folder


def prometheus_config(demo_port: int, folder: Path) -> Path:
    """deploy's prometheus.yml pointed at the demo on 127.0.0.1, scraping and evaluating every second."""
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROMETHEUS_YML.parent / name) for name in config["rule_files"]]
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{demo_port}"]}]
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def stack(served_project, tmp_path_factory):
    """The demo (with its monitor) and Prometheus scraping it; 300 predictions, a bad request, a
    judged pass, then labels for all 300 (so the pass has a realized F1)."""
    folder = tmp_path_factory.mktemp("prometheus")
    project = make_project(served_project, folder / "project")
    demo_port, prometheus_port = _free_port(), _free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith(("DRIFTGATE_SMTP", "DRIFTGATE_ALERT",
                                                                                     "DRIFTGATE_WEBHOOK"))}
    env.update(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", GRADIO_ANALYTICS_ENABLED="False")
    demo = subprocess.Popen([str(BIN / "driftgate"), "serve", "--host", "127.0.0.1", "--port", str(demo_port), "--log",
                             str(folder / "predictions.sqlite"), "--monitor-every", "1s"], cwd=project, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    processes = {"driftgate serve": demo}
    prometheus = None
    demo_url, prometheus_url = f"http://127.0.0.1:{demo_port}", f"http://127.0.0.1:{prometheus_port}"
    try:
        _wait_for(lambda: httpx.get(f"{demo_url}/health", timeout=5).status_code == 200, processes, "demo on /health")
        prometheus = subprocess.Popen([installed("prometheus"), f"--config.file={prometheus_config(demo_port, folder)}",
                                       f"--storage.tsdb.path={folder / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prometheus_port}"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        processes["prometheus"] = prometheus
        _wait_for(lambda: httpx.get(f"{prometheus_url}/-/ready", timeout=5).status_code == 200, processes, "Prometheus ready")
        # Traffic only once Prometheus has scraped: what came before its first scrape is in no rate.
        _wait_for(lambda: httpx.get(f"{prometheus_url}/api/v1/query", params={"query": "up == 1"}, timeout=5).json()["data"]["result"],
                  processes, "a first scrape")

        frame = make_tiny_frame(300, seed=31)
        records, truth = frame[FEATURES].to_dict("records"), frame["churned"].tolist()
        answers = []
        for start in range(0, 300, 100):
            answer = httpx.post(f"{demo_url}/predict", json=records[start:start + 100], timeout=30)
            assert answer.status_code == 200, answer.text
            answers.append(answer.json())
        assert httpx.post(f"{demo_url}/predict", json={"x1": "not a number"}, timeout=30).status_code == 422
        judged = _wait_for(lambda: [r for r in httpx.get(f"{demo_url}/monitoring/runs", timeout=5).json()["runs"]
                                    if r["status"] == "done"], processes, "judged monitoring pass")
        labels = [{"request_id": answer["request_id"], "row": row, "label": label}
                  for i, answer in enumerate(answers) for row, label in enumerate(truth[i * 100:(i + 1) * 100])]
        attached = httpx.post(f"{demo_url}/labels", json={"labels": labels}, timeout=30)
        assert attached.status_code == 200 and attached.json()["attached"] == 300, attached.text

        def labelled_pass():
            latest = httpx.get(f"{demo_url}/metrics/latest", timeout=5).json()["latest"]
            return latest if latest and latest.get("realized_f1") is not None else None

        latest = _wait_for(labelled_pass, processes, "realized F1 on the latest pass")
        # Some more traffic after the pass, so the rates cover a few scrapes.
        for start in range(0, 100, 20):
            assert httpx.post(f"{demo_url}/predict", json=records[start:start + 20], timeout=30).status_code == 200
            httpx.get(f"{demo_url}/health", timeout=5)
        yield {"demo": demo_url, "prometheus": prometheus_url, "processes": processes, "latest": latest,
               "judged": judged, "demo_port": demo_port,
               "decisions": {p["decision"] for answer in answers for p in answer["predictions"]}}
    finally:
        said = {name: _stop(process) for name, process in processes.items()}
    assert "Traceback" not in said["driftgate serve"], said["driftgate serve"]


def query(stack, promql: str) -> list[dict]:
    answer = httpx.get(f"{stack['prometheus']}/api/v1/query", params={"query": promql}, timeout=10)
    assert answer.status_code == 200 and answer.json()["status"] == "success", f"{promql}: {answer.text}"
    return answer.json()["data"]["result"]


def _value(series: dict) -> float:
    return float(series["value"][1])


# --------------------------------------------------------------------------- the live stack


@pytest.mark.slow
def test_prometheus_scrapes_the_demo_with_deploys_config(stack):
    up = _wait_for(lambda: query(stack, 'up{job="driftgate"}'), stack["processes"], "up in Prometheus", seconds=30)
    assert [(s["metric"]["instance"], _value(s)) for s in up] == [(f"127.0.0.1:{stack['demo_port']}", 1.0)]


@pytest.mark.slow
def test_every_query_of_every_dashboard_panel_returns_a_series(stack):
    queries = panel_queries()

    def all_answer():
        results = {(title, ref): query(stack, expr) for title, ref, expr in queries}
        return results if all(results.values()) else None

    def latest_pass_agrees():
        """Every panel answering, with the values of the pass the server calls latest: the monitor
        passes every second, so a pass can land between Prometheus's scrape and the comparison."""
        results = all_answer()
        if results is None:
            return None
        latest = httpx.get(f"{stack['demo']}/metrics/latest", timeout=5).json()["latest"]
        shown = {row["column"]: row["score"] for row in httpx.get(f"{stack['demo']}/drift/data", timeout=5).json()["columns"]}
        first = {title: _value(results[(title, "A")][0]) for title in ("Alert level", "Drift share")}
        scores = {s["metric"]["column"]: _value(s) for s in results[("Drift by column", "A")]}
        f1 = [_value(results[("F1: realized and estimated", ref)][0]) for ref in "ABCD"]
        agrees = (latest and first["Alert level"] == {"ok": 0, "warning": 1, "critical": 2}[latest["level"]]
                  and first["Drift share"] == pytest.approx(latest["drift_share"])
                  and set(shown) <= set(scores) and all(scores[c] == pytest.approx(v) for c, v in shown.items())
                  and latest.get("realized_f1") is not None and f1[0] == pytest.approx(latest["realized_f1"])
                  and f1[1] == pytest.approx(latest["estimated_f1"]))
        return (results, latest, shown, scores, f1) if agrees else None

    try:
        results, latest, shown, scores, f1 = _wait_for(latest_pass_agrees, stack["processes"],
                                                       "every panel query answering with the latest pass's values", seconds=60)
    except AssertionError:
        empty = [f"{title} {ref}: {expr}" for title, ref, expr in queries if not query(stack, expr)]
        raise AssertionError(f"these dashboard queries return no series, or not the latest pass's values: {empty}") from None
    for (title, ref, expr) in queries:
        shown_series = results[(title, ref)]
        print(f"{title} [{ref}] {expr}\n    {len(shown_series)} series, e.g. {shown_series[0]['metric']} = {shown_series[0]['value'][1]}")
    by_title = {title: results[(title, "A")] for title, _, _ in queries}
    assert latest["level"] == "critical" and _value(by_title["Alert level"][0]) == 2
    assert set(FEATURES) <= set(shown) <= set(scores)  # every feature, and the prediction's own drift too
    lower, upper = f1[2], f1[3]
    assert lower <= latest["estimated_f1"] <= upper
    endpoints = {s["metric"]["endpoint"]: _value(s) for s in results[("Request rate", "A")]}
    assert endpoints["/predict"] > 0 and "/metrics" in endpoints  # Prometheus's own scrapes count too
    assert {s["metric"]["status"] for s in results[("Request rate", "B")]} == {"200", "422"}
    p99 = {s["metric"]["endpoint"]: _value(s) for s in results[("Request latency", "B")]}
    assert 0 < p99["/predict"] <= 10
    decisions = {s["metric"]["decision"] for s in by_title["Predictions by class"]}
    assert decisions == stack["decisions"]  # the class names /predict answered with


@pytest.mark.slow
def test_prometheus_loads_the_rules_and_fires_what_the_monitor_decided(stack):
    groups = httpx.get(f"{stack['prometheus']}/api/v1/rules", timeout=10).json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert {group["name"] for group in groups} == {"driftgate-monitor", "driftgate-scrape"}
    assert len(rules) == len([r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]])
    assert all(rule["health"] == "ok" for rule in rules), [(r["name"], r.get("lastError")) for r in rules]
    latest = stack["latest"]
    assert latest["level"] == "critical"  # SETTINGS' estimated_f1 rule
    # deploy's own thresholds (params.yaml's) see nothing wrong in the values: only the monitor's level fires.
    alerts = load_params(ROOT / "params.yaml").monitoring.alerts
    assert latest["drift_share"] < alerts.drift_share.warning and latest["estimated_f1"] >= alerts.estimated_f1.warning
    assert latest["realized_f1"] >= alerts.realized_f1.warning

    def firing():
        alerts = httpx.get(f"{stack['prometheus']}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        return {alert["labels"]["alertname"] for alert in alerts if alert["state"] == "firing"}

    assert _wait_for(lambda: firing() or None, stack["processes"], "the critical alert firing", seconds=30) == {"DriftgateMonitorCritical"}
    time.sleep(2)  # two more evaluations: still that one alone
    assert firing() == {"DriftgateMonitorCritical"}


@pytest.mark.slow
def test_promtool_check_metrics_finds_nothing_on_the_demos_metrics(stack):
    text = httpx.get(f"{stack['demo']}/metrics", timeout=10).text
    for family in ("driftgate_requests_total", "driftgate_request_duration_seconds_bucket", "driftgate_predictions_total",
                   "driftgate_gate_value", "driftgate_monitor_drift_share", "driftgate_monitor_column_drift_score",
                   "driftgate_monitor_estimated_f1_lower", "driftgate_monitor_realized_f1", "driftgate_monitor_alert_level",
                   "driftgate_monitor_pass_timestamp_seconds", "driftgate_monitor_open_alerts"):
        assert f"\n{family}" in text, f"{family} is not on /metrics"
    checked = promtool("check", "metrics", stdin=text)
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked.stdout + checked.stderr


def test_promtool_check_metrics_flags_a_badly_named_metric():
    """The lint the test above relies on does speak up: a counter without _total, a unit not in base units."""
    bad = ("# HELP driftgate_requests HTTP requests\n# TYPE driftgate_requests counter\ndriftgate_requests 1\n"
           "# HELP driftgate_latency_milliseconds latency\n# TYPE driftgate_latency_milliseconds gauge\n"
           "driftgate_latency_milliseconds 3\n")
    checked = promtool("check", "metrics", stdin=bad)
    said = checked.stdout + checked.stderr
    assert checked.returncode != 0 and "driftgate_requests" in said and "milliseconds" in said, said


# --------------------------------------------------------------------------- deploy/, statically


def test_promtool_checks_the_config_and_the_rules():
    config = promtool("check", "config", str(PROMETHEUS_YML))
    assert config.returncode == 0 and "SUCCESS" in config.stdout, config.stdout + config.stderr
    assert "1 rule files found" in config.stdout
    rules = promtool("check", "rules", str(RULES))
    assert rules.returncode == 0 and "SUCCESS: 9 rules found" in rules.stdout, rules.stdout + rules.stderr


def test_promtool_unit_tests_of_the_warning_and_critical_rules_pass():
    tested = promtool("test", "rules", str(RULES_TEST))
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr
    named = {case["alertname"] for test in yaml.safe_load(RULES_TEST.read_text())["tests"] for case in test["alert_rule_test"]}
    alerts = {rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]}
    assert named == alerts  # every rule has a unit test


def test_promtool_unit_tests_fail_when_a_threshold_moves(tmp_path):
    """The unit tests pin the thresholds: a rules file with the drift share's critical level moved fails them."""
    shutil.copy2(RULES_TEST, tmp_path / RULES_TEST.name)
    moved = RULES.read_text().replace("driftgate_monitor_drift_share >= 0.5", "driftgate_monitor_drift_share >= 0.6")
    assert moved != RULES.read_text()
    (tmp_path / RULES.name).write_text(moved)
    tested = promtool("test", "rules", str(tmp_path / RULES_TEST.name))
    said = tested.stdout + tested.stderr
    assert tested.returncode != 0 and "alertname: DriftgateDriftShareCritical, time: 3m" in said, said


def _threshold(expr: str, metric: str, op: str) -> float:
    found = re.search(rf"{metric}\s*{re.escape(op)}\s*([0-9.]+)", expr)
    assert found, f"no '{metric} {op} N' in {expr!r}"
    return float(found.group(1))


def test_the_rules_thresholds_are_params_yaml_monitoring_alerts():
    alerts = load_params(ROOT / "params.yaml").monitoring.alerts
    rules = {rule["alert"]: rule["expr"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]}
    drift, estimated, realized = alerts.drift_share, alerts.estimated_f1, alerts.realized_f1
    assert _threshold(rules["DriftgateDriftShareWarning"], "driftgate_monitor_drift_share", ">=") == drift.warning
    assert _threshold(rules["DriftgateDriftShareWarning"], "driftgate_monitor_drift_share", "<") == drift.critical
    assert _threshold(rules["DriftgateDriftShareCritical"], "driftgate_monitor_drift_share", ">=") == drift.critical
    assert _threshold(rules["DriftgateEstimatedF1Warning"], "driftgate_monitor_estimated_f1", "<") == estimated.warning
    assert _threshold(rules["DriftgateEstimatedF1Warning"], "driftgate_monitor_estimated_f1", ">=") == estimated.critical
    assert _threshold(rules["DriftgateEstimatedF1Critical"], "driftgate_monitor_estimated_f1", "<") == estimated.critical
    assert _threshold(rules["DriftgateRealizedF1Warning"], "driftgate_monitor_realized_f1", "<") == realized.warning
    assert _threshold(rules["DriftgateRealizedF1Warning"], "driftgate_monitor_realized_f1", ">=") == realized.critical
    assert _threshold(rules["DriftgateRealizedF1Critical"], "driftgate_monitor_realized_f1", "<") == realized.critical
    steps = {p["title"]: p["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", [])
             for p in json.loads(DASHBOARD.read_text())["panels"]}
    assert [s["value"] for s in steps["Drift share"]] == [None, drift.warning, drift.critical]


def test_the_dashboard_has_the_panels_and_uses_the_provisioned_datasource():
    dashboard = json.loads(DASHBOARD.read_text())
    (datasource,) = yaml.safe_load(DATASOURCE.read_text())["datasources"]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    titles = [panel["title"] for panel in dashboard["panels"]]
    assert titles == ["Request rate", "Request latency", "Predictions by class", "Alert level", "Drift share", "Drift by column",
                      "F1: realized and estimated", "Quality gates (CI)"]
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(titles)
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": datasource["uid"]}, panel["title"]
        assert panel["targets"] and all(t["datasource"]["uid"] == datasource["uid"] for t in panel["targets"]), panel["title"]
    exprs = " ".join(expr for _, _, expr in panel_queries())
    for metric in ("driftgate_requests_total", "driftgate_request_duration_seconds_bucket", "driftgate_predictions_total",
                   "driftgate_monitor_drift_share", "driftgate_monitor_column_drift_score", "driftgate_monitor_realized_f1",
                   "driftgate_monitor_estimated_f1_lower", "driftgate_monitor_estimated_f1_upper", "driftgate_monitor_alert_level"):
        assert metric in exprs, metric
    interval = next(p for p in dashboard["panels"] if p["title"] == "F1: realized and estimated")["fieldConfig"]["overrides"]
    fill = {o["matcher"]["options"]: {p["id"]: p["value"] for p in o["properties"]} for o in interval}
    assert fill["estimate upper"]["custom.fillBelowTo"] == "estimate lower"  # the interval is shaded


def test_the_compose_file_follows_the_compose_specification():
    checked = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0 and "ok -- validation done" in checked.stdout, checked.stdout + checked.stderr


def test_the_compose_file_is_refused_by_the_schema_when_it_is_wrong(tmp_path):
    compose = yaml.safe_load(COMPOSE.read_text())
    compose["services"]["prometheus"]["ports"] = {"9090": 9090}  # a mapping where the spec wants a list
    bad = tmp_path / "compose.yaml"
    bad.write_text(yaml.safe_dump(compose))
    checked = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(bad)],
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 1 and "ports" in checked.stdout, checked.stdout + checked.stderr


def test_the_compose_stack_wires_the_demo_prometheus_and_grafana():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert set(services) == {"demo", "prometheus", "grafana"}
    build = services["demo"]["build"]
    assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == ROOT / "Dockerfile"
    assert "--monitor-every" in services["demo"]["command"]  # the driftgate_monitor_* gauges need passes
    port = services["demo"]["command"][services["demo"]["command"].index("--port") + 1]
    (job,) = yaml.safe_load(PROMETHEUS_YML.read_text())["scrape_configs"]
    assert job["static_configs"] == [{"targets": [f"demo:{port}"]}]
    mounts = {m.split(":")[1]: m.split(":")[0] for service in services.values() for m in service.get("volumes", [])
              if m.startswith("./")}
    for source in mounts.values():
        assert (COMPOSE.parent / source).exists(), source
    assert mounts["/etc/prometheus"] == "./prometheus"
    provider = yaml.safe_load(PROVIDER.read_text())["providers"][0]["options"]["path"]
    assert (COMPOSE.parent / mounts[provider] / DASHBOARD.name).is_file()
    assert (COMPOSE.parent / mounts["/etc/grafana/provisioning"] / "datasources" / DATASOURCE.name).is_file()


def test_make_monitoring_stack_validates_the_compose_file_and_says_how_to_run_it():
    made = subprocess.run(["make", "-s", "-o", ".venv/.installed-dev", "monitoring-stack"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert made.returncode == 0, made.stdout + made.stderr
    assert "docker compose -f deploy/compose.yaml up --build" in made.stdout
    assert "deploy/compose.yaml: valid" in made.stdout and "http://localhost:3000" in made.stdout
