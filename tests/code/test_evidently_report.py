"""Evidently's HTML report, written by driftgate: the same data gives the same bytes."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from driftgate.drift.evidently_report import stable_ids, write_report

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def frames(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    reference = pd.DataFrame({"a": rng.normal(size=400), "c": rng.choice(list("xyz"), 400)})
    current = pd.DataFrame({"a": rng.normal(0.4, size=300), "c": rng.choice(list("xyzw"), 300)})
    return reference, current


def test_the_same_data_gives_the_same_report_bytes(tmp_path):
    reference, current = frames()
    kinds = {"a": "numeric", "c": "categorical"}
    first = write_report(reference, current, kinds, 2000, tmp_path / "one.html").read_bytes()
    second = write_report(reference, current, kinds, 2000, tmp_path / "two.html").read_bytes()
    assert first == second
    page = first.decode()
    assert '"id": "00000000-0000-4000-8000-000000000001"' in page  # renumbered in order of appearance
    assert not re.search(rf'"id": "(?!00000000-0000-4000-8000-){UUID}"', page)
    assert "Sampled report: 400 of 400 reference rows" in page


def test_ids_are_renamed_alike_everywhere_and_nothing_else_changes():
    page = ('<script>var metric_0123456789abcdef0123456789abcdef = {"id": "01a20a84-be34-71b8-b126-68b9490b9b27", '
            '"parts": [{"id": "01a20a84-bdf1-7af0-b30a-77379743a7c7"}], "link": "01a20a84-be34-71b8-b126-68b9490b9b27"};'
            'render(metric_0123456789abcdef0123456789abcdef); const DNS="6ba7b810-9dad-11d1-80b4-00c04fd430c8";</script>')
    assert stable_ids(page) == (
        '<script>var metric_00000000000000000000000000000000 = {"id": "00000000-0000-4000-8000-000000000001", '
        '"parts": [{"id": "00000000-0000-4000-8000-000000000002"}], "link": "00000000-0000-4000-8000-000000000001"};'
        'render(metric_00000000000000000000000000000000); const DNS="6ba7b810-9dad-11d1-80b4-00c04fd430c8";</script>')
    assert stable_ids("<p>no ids</p>") == "<p>no ids</p>"
