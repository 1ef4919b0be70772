"""set_params: a promotion rewrites keys of params.yaml with its comments and layout kept, in one
atomic write, and never writes a file that would not load."""

import shutil

import pytest

from driftgate.config import load_params, set_params
from driftgate.errors import ConfigError
from tests.conftest import ROOT


@pytest.fixture
def params_file(tmp_path):
    target = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", target)
    return target


def test_keys_change_and_every_other_line_stays_byte_for_byte(params_file):
    before = params_file.read_text().splitlines()
    replaced = set_params(params_file, {"windows.train": "2013-04..2013-06", "windows.current": "2013-07"})
    assert replaced == {"windows.train": "2013-01..2013-03", "windows.current": "2013-04"}
    after = params_file.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert len(before) == len(after) and len(changed) == 2
    assert changed[0][1] == "  train: 2013-04..2013-06           # training and reference window"
    assert changed[1][1].startswith("  current: 2013-07 ") and changed[1][1].endswith('# the "production" batch checked for drift and scored')
    params = load_params(params_file)
    assert params.windows.train.label == "2013-04..2013-06" and params.windows.current.label == "2013-07"


def test_a_value_that_would_not_load_is_refused_and_the_file_is_untouched(params_file):
    before = params_file.read_bytes()
    with pytest.raises(ConfigError) as caught:
        set_params(params_file, {"windows.train": "2013-13"})
    assert "windows.train" in caught.value.where and "would not load" in caught.value.problem
    assert params_file.read_bytes() == before
    assert [p.name for p in params_file.parent.iterdir()] == ["params.yaml"]  # no temp file left


def test_a_missing_section_is_named(params_file):
    with pytest.raises(ConfigError, match="has no section 'nowhere'"):
        set_params(params_file, {"nowhere.train": "2013-04"})
