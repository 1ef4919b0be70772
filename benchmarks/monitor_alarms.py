"""The monitor's false alarms and its detection, through the real pass, on the bundled data and model.

    .venv/bin/python benchmarks/monitor_alarms.py --out /tmp/monitor_alarms.json
    .venv/bin/python benchmarks/monitor_alarms.py --order time --passes 50

Every scenario replays rows of the bundled dataset (artifacts/dataset.parquet) scored by the
bundled model (artifacts/model.joblib) into a fresh SQLite prediction log, as the server logs
them (requests of 50 predictions, inputs as JSON), and runs `run_pass` (since_last, calibrated
mode, params.yaml's monitoring settings) after every `--rows` predictions:

(a) false alarms: rows of the reference window (windows.train) replayed in consecutive passes,
    in random order (`--order random`: each window a random draw of the reference) and in time
    order (`--order time`: consecutive rows, a few hours of one day per window). The share of
    passes at warning or critical, and per rule. The per-rule shares come from the same
    conditions the monitor judges (`levels.conditions` on each pass's metrics and verdicts), so
    other rule settings are judged on the same passes without replaying them: the table of
    alternatives below the first (and a stricter drift alpha, from the same p-values).
(b) detection: rows of July 2013 in random order, for `--seeds` different draws, and of every
    month from April to December: after how many predictions the level first reaches critical
    (and warning), and which rule made it so.

Markdown tables go to stdout; --out writes every figure (and every pass) as JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUEST = 50  # predictions per logged request
MONTHS = [f"2013-{m:02d}" for m in range(4, 13)]


class Replay:
    """A fresh log per scenario, copied from one whose model reference is already frozen."""

    def __init__(self, folder: Path) -> None:
        import pandas as pd

        from driftgate.config import Paths, load_params
        from driftgate.model import train
        from driftgate.monitoring.reference import ModelInfo, frozen
        from driftgate.store.monitoring import MonitoringStore
        from driftgate.store.predictions import PredictionLog

        self.folder = folder
        self.params, self.paths = load_params(), Paths()
        self.model = ModelInfo.from_card(self.paths.model)
        self.pipeline, _ = train.load(self.paths.model, self.paths.model_card)
        self.data = pd.read_parquet(self.paths.dataset)
        self.template = folder / "template.sqlite"
        log, store = PredictionLog(self.template), MonitoringStore(self.template)
        frozen(store, self.params, self.model, self.paths, self.paths.model)
        log.engine.dispose(), store.engine.dispose()
        with sqlite3.connect(self.template) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.count = 0

    def rows(self, window: str, order: str, seed: int, limit: int):
        """Features, scores and decisions of up to `limit` rows of `window`, in time or random order."""
        import numpy as np

        from driftgate.config import parse_window
        from driftgate.data.dataset import TIME, features_frame, select_window

        rows = select_window(self.data, parse_window(window), window)
        if order == "time":
            rows = rows.sort_values(TIME, kind="stable").iloc[:limit]
        else:
            rows = rows.iloc[np.random.default_rng(seed).permutation(len(rows))[:limit]]
        features = features_frame(rows, self.model.schema)
        scores = self.pipeline.predict_proba(features)[:, 1]
        records = json.loads(features[self.model.schema.columns].to_json(orient="records"))
        names = self.params.data.target.class_names
        predictions = [{"probability": float(p), "decision": names[int(p >= self.model.threshold)]} for p in scores]
        return records, predictions, rows[TIME]

    def run(self, window: str, order: str, seed: int, passes: int, rows: int, stop_at_critical: bool, say) -> list[dict]:
        """Replay and judge; one dict per pass."""
        from driftgate.monitoring.monitor import run_pass
        from driftgate.store.monitoring import MonitoringStore
        from driftgate.store.predictions import PredictionLog

        self.count += 1
        path = self.folder / f"scenario-{self.count}.sqlite"
        shutil.copy(self.template, path)
        log, store = PredictionLog(path), MonitoringStore(path)
        records, predictions, times = self.rows(window, order, seed, passes * rows)
        out = []
        try:
            for i in range(min(passes, len(records) // rows)):
                lo = i * rows
                for start in range(lo, lo + rows, REQUEST):
                    end = min(start + REQUEST, lo + rows)
                    log.append(records[start:end], predictions[start:end], str(uuid.uuid4()), "simulate", self.model.version)
                clock = time.perf_counter()
                outcome = run_pass(self.params, log, store, self.model, self.paths, seed=0)
                out.append(self.judged(outcome, (i + 1) * rows, time.perf_counter() - clock,
                                       (str(times.iloc[lo]), str(times.iloc[lo + rows - 1]))))
                if stop_at_critical and outcome.level == "critical":
                    break
        finally:
            log.engine.dispose(), store.engine.dispose()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        levels = [p["level"] for p in out]
        name = window if isinstance(window, str) else "reference window"
        say(f"  {name} {order} seed {seed}: {len(out)} passes, {levels.count('warning')} warning, {levels.count('critical')} critical")
        return out

    def judged(self, outcome, predictions: int, seconds: float, span: tuple[str, str]) -> dict:
        from driftgate.data.dataset import PREDICTED_LABEL, PREDICTION

        drift = outcome.drift
        return {
            "predictions": predictions, "seconds": seconds, "level": outcome.level, "rows_span": span,
            "metrics": {k: outcome.metrics.get(k) for k in ("drift_share", "drifted_columns", "prediction_drift",
                                                           "missing_share_rise", "estimated_f1", "estimated_lower",
                                                           "estimated_upper")},
            "estimate_reason": outcome.estimate_reason,
            "p_values": {name: col.p_value for name, col in drift.columns.items() if not col.ignored},
            "drifted": {name: col.drift for name, col in drift.columns.items() if not col.ignored},
            "prediction_columns": [c for c in (PREDICTION, PREDICTED_LABEL) if c in drift.columns],
        }


# --------------------------------------------------------------------------- judging the passes again


def conditions_of(p: dict, rules, alpha: float | None = None, correction: str = "bh") -> dict[str, str]:
    """Each rule's level on one pass under `rules` (and, with `alpha`, the drift verdicts redone
    from the pass's p-values at that level)."""
    from driftgate.drift.calibrated import adjust
    from driftgate.monitoring.levels import conditions

    drifted, metrics = dict(p["drifted"]), dict(p["metrics"])
    if alpha is not None:
        tested = [c for c, v in p["p_values"].items() if v is not None]
        rejected = dict(zip(tested, adjust([p["p_values"][c] for c in tested], alpha, correction)))
        drifted = {c: bool(rejected.get(c, drifted[c])) for c in drifted}
        metrics["drift_share"] = sum(drifted.values()) / len(drifted) if drifted else None
    found = conditions({**metrics, "realized_f1": None}, drifted, rules, prediction_columns=p["prediction_columns"])
    return {c.rule: c.level for c in found}


def alarm_rates(passes: list[dict], rules, alpha: float | None = None) -> dict:
    from driftgate.monitoring.levels import worst

    judged = [conditions_of(p, rules, alpha) for p in passes]
    n = len(judged) or 1
    rules_seen = sorted({rule for j in judged for rule in j})
    return {
        "passes": len(judged),
        "any": sum(worst(j.values()) != "ok" for j in judged) / n,
        "critical": sum(worst(j.values()) == "critical" for j in judged) / n,
        "per_rule": {rule: sum(j.get(rule, "ok") != "ok" for j in judged) / n for rule in rules_seen},
    }


def first_level(passes: list[dict], level: str) -> int | None:
    rank = {"ok": 0, "warning": 1, "critical": 2}
    return next((p["predictions"] for p in passes if rank[p["level"]] >= rank[level]), None)


def critical_rules(passes: list[dict], rules) -> list[str]:
    p = next((p for p in passes if p["level"] == "critical"), None)
    return [] if p is None else sorted(rule for rule, level in conditions_of(p, rules).items() if level == "critical")


def alternatives(rules):
    """Other rule settings judged on the same passes: (label, rules, drift alpha or None)."""
    def changed(**update):
        return rules.model_copy(update=update)

    from driftgate.config import Levels

    return [
        ("defaults (params.yaml)", rules, None),
        ("prediction_drift: ok (off)", changed(prediction_drift="ok"), None),
        ("drift_share warning 0.3", changed(drift_share=Levels(warning=0.3, critical=rules.drift_share.critical)), None),
        ("estimated_f1 warning 0.35", changed(estimated_f1=Levels(warning=0.35, critical=rules.estimated_f1.critical)), None),
        ("drift alpha 0.01 (BH), rules as default", rules, 0.01),
        ("prediction_drift off + alpha 0.01", changed(prediction_drift="ok"), 0.01),
    ]


# --------------------------------------------------------------------------- tables


def percent(x: float) -> str:
    return f"{100 * x:.1f}%"


def false_alarm_tables(results: dict, rules, rows: int) -> str:
    lines = []
    for order, passes in results.items():
        rates = alarm_rates(passes, rules)
        lines += [f"\n### Reference window replayed, {order} order: {rates['passes']} passes of {rows:,} predictions\n",
                  "| rule | passes at warning or critical |", "|---|---:|",
                  f"| **any rule** (goal <= 5%) | **{percent(rates['any'])}** |",
                  f"| any rule at critical | {percent(rates['critical'])} |"]
        lines += [f"| {rule} | {percent(share)} |" for rule, share in rates["per_rule"].items()]
        lines += ["", "| rule settings | any alert | critical |", "|---|---:|---:|"]
        for label, alternative, alpha in alternatives(rules):
            r = alarm_rates(passes, alternative, alpha)
            lines.append(f"| {label} | {percent(r['any'])} | {percent(r['critical'])} |")
    return "\n".join(lines)


def detection_table(title: str, runs: dict[str, list[dict]], rules, rows: int) -> str:
    lines = [f"\n### {title}\n", f"| replay | first warning | first critical (goal <= 2,000) | critical by | passes of {rows:,} |",
             "|---|---:|---:|---|---:|"]
    for name, passes in runs.items():
        warning, critical = first_level(passes, "warning"), first_level(passes, "critical")
        lines.append(f"| {name} | {warning if warning is None else f'{warning:,}'} | "
                     f"{'never' if critical is None else f'{critical:,}'} | {', '.join(critical_rules(passes, rules)) or '-'} | {len(passes)} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passes", type=int, default=100, help="passes of the reference replay")
    parser.add_argument("--rows", type=int, default=500, help="predictions per pass")
    parser.add_argument("--order", choices=("random", "time", "both"), default="both", help="order of the reference replay")
    parser.add_argument("--seeds", type=int, default=5, help="random draws of July")
    parser.add_argument("--detect-passes", type=int, default=10, help="most passes per detection replay (stops at critical)")
    parser.add_argument("--no-months", action="store_true", help="skip the April..December table")
    parser.add_argument("--out", type=Path, default=None, help="write every figure as JSON here")
    args = parser.parse_args()
    import os

    os.chdir(ROOT)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    clock = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="monitor-alarms-"))
    try:
        replay = Replay(folder)
        rules = replay.params.monitoring.alerts
        train = replay.params.windows.train
        shown = f"{train.start:%Y-%m-%d}..{train.end:%Y-%m-%d} (end excluded)" if train.kind == "time" else str(train)
        say(f"reference frozen ({time.perf_counter() - clock:.0f} s); replaying the reference window {shown} ...")
        orders = ("random", "time") if args.order == "both" else (args.order,)
        false_alarms = {order: replay.run(train, order, 1, args.passes, args.rows, False, say) for order in orders}
        july = {f"2013-07, draw {seed}": replay.run("2013-07", "random", seed, args.detect_passes, args.rows, True, say)
                for seed in range(1, args.seeds + 1)}
        months = {} if args.no_months else {
            month: replay.run(month, "random", 1, args.detect_passes, args.rows, True, say) for month in MONTHS}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    seconds = [p["seconds"] for runs in (false_alarms, july, months) for passes in runs.values() for p in passes]
    print(f"## Monitor false alarms and detection (bundled data and model, {args.rows:,} predictions per pass)")
    print(false_alarm_tables(false_alarms, rules, args.rows))
    print(detection_table("July 2013 replayed at random: first critical", july, rules, args.rows))
    if months:
        print(detection_table("Each month replayed at random: first critical", months, rules, args.rows))
    print(f"\n{len(seconds)} passes, {sum(seconds) / max(len(seconds), 1):.2f} s a pass on average; "
          f"{time.perf_counter() - clock:.0f} s in all")
    if args.out:
        summary = {
            "rows_per_pass": args.rows,
            "false_alarms": {order: {"rates": alarm_rates(passes, rules),
                                     "alternatives": {label: alarm_rates(passes, alt, alpha)
                                                      for label, alt, alpha in alternatives(rules)}}
                             for order, passes in false_alarms.items()},
            "detection": {name: {"first_warning": first_level(passes, "warning"), "first_critical": first_level(passes, "critical"),
                                 "critical_rules": critical_rules(passes, rules)}
                          for name, passes in {**july, **months}.items()},
            "passes": {"false_alarms": false_alarms, "july": july, "months": months},
        }
        args.out.write_text(json.dumps(summary, indent=2, default=str))
        print(f"figures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
