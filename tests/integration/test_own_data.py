"""The README's "Use your own data" walkthrough, copy-pasted: its params.yaml and its commands,
run as written on a fresh copy of the repository, on a CSV without a time column.

The two code blocks are read from README.md itself, so the test runs exactly what a user is
told to run. `make install` would create .venv with pip; here .venv is a virtual environment
whose site-packages point at the test's own (installed in editable mode), so `make install`
finds it in place and the rest runs unchanged.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT, copy_project

pytestmark = pytest.mark.slow

SECTION = "## Use your own data"


def walkthrough() -> tuple[str, str]:
    """The section's params.yaml (its first yaml block) and its commands (its first bash block)."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split(SECTION, 1)[1].split("\n## ", 1)[0]
    params = re.search(r"```yaml\n(.*?)```", section, re.S)
    commands = re.search(r"```bash\n(.*?)```", section, re.S)
    assert params and commands, "the walkthrough has a yaml and a bash block"
    return params.group(1), commands.group(1)


def customers(rows: int = 4000, seed: int = 7) -> pd.DataFrame:
    """What the README describes: one row per customer, oldest first, no time column."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, rows)
    plan = rng.choice(["basic", "pro", "team"], rows, p=[0.5, 0.3, 0.2])
    spend = rng.gamma(2.0, 30.0, rows).round(2)
    logit = -2.2 + 0.035 * (spend - 60) + 0.04 * (age - 50) + np.where(plan == "basic", 1.2, -0.6)
    churned = (rng.uniform(size=rows) < 1 / (1 + np.exp(-3 * logit))).astype(int)
    return pd.DataFrame({"customer_id": np.arange(100_000, 100_000 + rows), "age": age, "plan": plan,
                         "monthly_spend": spend, "churned": churned})


def installed_venv(project: Path) -> None:
    """What `make install` leaves behind: .venv with driftgate and DVC, and its stamp file."""
    venv = project / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = Path(sysconfig.get_paths()["purelib"])
    target = next((venv / "lib").glob("python*/site-packages"))
    (target / "_test_packages.pth").write_text(f"import site; site.addsitedir({str(purelib)!r})\n")
    for script in ("driftgate", "dvc"):
        body = (Path(sys.executable).parent / script).read_text().split("\n", 1)[1]
        (venv / "bin" / script).write_text(f"#!{venv / 'bin' / 'python'}\n{body}")
        (venv / "bin" / script).chmod(0o755)
    (venv / ".installed").touch()  # newer than pyproject.toml: make install has nothing to do


def test_the_readme_walkthrough_runs_on_own_data_without_a_time_column(tmp_path):
    params_text, commands = walkthrough()
    params = yaml.safe_load(params_text)
    assert "time_column" not in params["data"], "the walkthrough shows data without a time column"
    home = tmp_path / "home"
    home.mkdir()
    data_file = params["data"]["path"]
    customers().to_csv(home / Path(data_file).name, index=False)
    assert f"cp ~/{Path(data_file).name} data/" in commands

    project = copy_project(tmp_path / "clone", with_data=False)  # what a fresh clone holds
    installed_venv(project)
    (project / "params.yaml").write_text(params_text)  # "Replace params.yaml with:"

    script = "set -euo pipefail\n" + commands
    env = {"HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin", "DVC_NO_ANALYTICS": "1", "COLUMNS": "200",
           "OMP_NUM_THREADS": "1", "LANG": "C.UTF-8"}
    result = subprocess.run(["bash", "-c", script], cwd=project, env=env, capture_output=True, text=True, timeout=1200)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert "pip install" not in log, "make install had nothing left to do"

    gate = json.loads((project / "reports" / "gate.json").read_text())
    assert gate["passed"] is True, log
    names = {g["gate"] for g in gate["gates"]}
    assert names == {"f1 (holdout)", "f1 (current rows 75%..100%)", "drift share"}, names
    assert "All 3 gates passed" in (project / "reports" / "gate.md").read_text() + log
    for output in ("reports/gate.md", "reports/metrics.json", "reports/drift/drift.json", "reports/drift/drift.md",
                   "reports/validation.json", "artifacts/dataset.parquet", "artifacts/model.json"):
        assert (project / output).is_file(), output

    card = json.loads((project / "artifacts" / "model.json").read_text())
    assert card["features"] == {"numeric": ["age", "monthly_spend"], "categorical": ["plan"]}  # customer_id excluded
    assert card["train_window"] == "rows 0%..75%" and card["fit_rows"] == 2400
    assert card["fit_time_range"] == ["0", "2399"], "without a time column, time is the row number"
    assert card["project"]["title"] == "churn risk"
    dataset = pd.read_parquet(project / "artifacts" / "dataset.parquet")
    assert dataset["timestamp"].tolist() == list(range(4000))
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    assert metrics["current"]["rows"] == 1000 and metrics["holdout"]["rows"] == 600
    assert yaml.safe_load((project / "data.dvc").read_text())["outs"][0]["path"] == "data"
