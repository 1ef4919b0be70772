"""Measure the pipeline on the bundled data, and the drift step against Evidently.

    python benchmarks/repro_time.py            # or: make bench

1. Copies the project into a temp folder and times `dvc repro` end to end (target <= 60 s on
   2 cores) and a second, no-op `dvc repro` (target <= 3 s).
2. On the same reference and current frames the drift stage uses (16 columns: 15 features and
   the model's score), times driftgate's drift computation and Evidently's DataDriftPreset and
   prints the ratio and whether every column's verdict agrees.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = ("params.yaml", "dvc.yaml", "data.dvc", ".gitignore")


def sh(cmd: list[str], cwd: Path) -> float:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def copy_project(dest: Path) -> None:
    for name in FILES:
        shutil.copy2(ROOT / name, dest / name)
    for folder in ("src", "pipelines", "data"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (dest / ".dvc").mkdir()
    shutil.copy2(ROOT / ".dvc" / "config", dest / ".dvc" / "config")
    subprocess.run("git init -q && git add -A && git -c user.email=b@b -c user.name=b commit -qm bench",
                   shell=True, cwd=dest, check=True)


def drift_frames(project: Path):
    sys.path.insert(0, str(ROOT / "src"))
    os.chdir(project)
    from driftgate.config import load_params
    from driftgate.data.dataset import PREDICTION, FeatureSchema, features_frame, load_dataset, select_window
    from driftgate.model import train

    params = load_params("params.yaml")
    model, card = train.load(Path("artifacts/model.joblib"), Path("artifacts/model.json"))
    schema = FeatureSchema.from_dict(card["features"])
    dataset = load_dataset(Path("artifacts/dataset.parquet"))
    frames = []
    for window, what in ((params.windows.reference_window, "reference"), (params.windows.current, "current")):
        frame = features_frame(select_window(dataset, window, what), schema)
        frame[PREDICTION] = model.predict_proba(frame[schema.columns])[:, 1]
        frames.append(frame.reset_index(drop=True))
    kinds = {**schema.kinds(), PREDICTION: "numeric"}
    return frames[0], frames[1], kinds, params


def compare_drift(project: Path) -> None:
    from driftgate.drift import detect

    reference, current, kinds, params = drift_frames(project)
    start = time.perf_counter()
    ours = detect(reference, current, params.drift, "pandas", kinds=kinds).to_json()
    ours_s = time.perf_counter() - start

    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=[c for c, k in kinds.items() if k == "numeric"],
                                categorical_columns=[c for c, k in kinds.items() if k == "categorical"])
    start = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(Dataset.from_pandas(current, data_definition=definition),
                                               Dataset.from_pandas(reference, data_definition=definition))
    theirs_s = time.perf_counter() - start
    scores = {}
    for metric in snapshot.dict()["metrics"]:
        name = metric.get("metric_name", "")
        if name.startswith("ValueDrift(column="):
            column = name.split("column=", 1)[1].split(",", 1)[0]
            scores[column] = float(metric["value"])
    agree = sum(abs(scores[c] - ours["columns"][c]["score"]) <= 1e-9 for c in kinds)
    print(f"drift, {len(kinds)} columns, {len(reference):,} reference x {len(current):,} current rows:")
    print(f"  driftgate {ours_s:6.2f} s   Evidently DataDriftPreset {theirs_s:6.2f} s   "
          f"ratio {theirs_s / ours_s:5.1f}x   scores equal (1e-9) for {agree}/{len(kinds)} columns")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="driftgate-bench-") as tmp:
        project = Path(tmp)
        if not (ROOT / "data").exists():
            sh([sys.executable, "-m", "driftgate", "data"], ROOT)
        copy_project(project)
        full = sh(["dvc", "repro"], project)
        noop = sh(["dvc", "repro"], project)
        print(f"cores: {os.cpu_count()}")
        print(f"dvc repro, full:  {full:6.1f} s  (target <= 60 s)")
        print(f"dvc repro, no-op: {noop:6.1f} s  (target <= 3 s)")
        compare_drift(project)


if __name__ == "__main__":
    main()
