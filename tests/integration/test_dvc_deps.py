"""dvc.yaml lists every piece of code a stage runs: each stage's command is run for real (on a
small project) and every driftgate module it imported must lie under one of the stage's deps,
so that no code change can leave a stale output behind."""

import json
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, run

PROBE = """
import json, sys
from driftgate.cli.main import app
try:
    app(sys.argv[1:], standalone_mode=False)
finally:
    names = sorted(m.__file__ for n, m in list(sys.modules.items()) if n.startswith("driftgate") and getattr(m, "__file__", None))
    print("MODULES=" + json.dumps(names))
"""

STAGES = ["validate", "train", "evaluate", "drift", "drift-report", "gate"]


def _stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _imported(cwd: Path, stage: str) -> list[Path]:
    command = _stages()[stage]["cmd"].split()
    assert command[0] == "driftgate", stage
    done = run([sys.executable, "-c", PROBE, *command[1:]], cwd)
    line = next((line for line in done.stdout.splitlines() if line.startswith("MODULES=")), None)
    assert line is not None, f"{stage}: {done.stdout}\n{done.stderr}"
    src = ROOT / "src"
    return [Path(name).resolve().relative_to(src.resolve()) for name in json.loads(line.removeprefix("MODULES="))]


@pytest.mark.slow
def test_every_module_a_stage_imports_is_one_of_its_deps(tiny_project):
    undeclared = {}
    for stage in STAGES:
        deps = [Path(d).relative_to("src") for d in _stages()[stage]["deps"] if str(d).startswith("src/")]
        for module in _imported(tiny_project, stage):
            if module.name == "__init__.py" and module.parent == Path("driftgate"):
                continue  # the package's version string: bumping it re-runs nothing on purpose
            if not any(module == dep or dep in module.parents for dep in deps):
                undeclared.setdefault(stage, []).append(str(module))
    assert undeclared == {}, f"modules run by a stage but missing from its deps in dvc.yaml: {undeclared}"


def test_every_stage_reads_only_params_sections_it_declares():
    """A stage's params entries name sections (or keys) that exist in params.yaml."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, stage in _stages().items():
        for key in stage.get("params", []):
            node = params
            for part in str(key).split("."):
                assert isinstance(node, dict) and part in node, f"{name}: params entry {key} is not in params.yaml"
                node = node[part]
