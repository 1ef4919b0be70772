"""Evidently's HTML drift report, on a bounded sample of both frames.

driftgate's own engine gives the verdicts of record (drift.json); this report is for browsing
distributions in Evidently's interactive UI. It is built on at most `drift.report_sample` rows
per frame so that it stays quick, and says so at the top of the page.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pandas as pd

from driftgate.io import atomic_path


def sample(frame: pd.DataFrame, rows: int, seed: int = 0) -> pd.DataFrame:
    return frame if len(frame) <= rows else frame.sample(rows, random_state=seed)


def banner(reference_rows: int, current_rows: int, reference_total: int, current_total: int) -> str:
    text = (f"Sampled report: {reference_rows:,} of {reference_total:,} reference rows and {current_rows:,} of "
            f"{current_total:,} current rows, drawn at random (seed 0). The verdicts of record, computed on all "
            f"rows, are in drift.json and drift.md beside this file.")
    style = "padding:10px 14px;margin:0;background:#fff4d6;border-bottom:1px solid #e0c46c;font:14px sans-serif"
    return f'<div id="driftgate-sample-note" style="{style}">{html.escape(text)}</div>'


# Evidently names widgets ("id": "<uuid>", time-based) and metric variables (metric_<hex>) with
# fresh ids on every run. Only those are renamed: the page's JavaScript holds UUID constants too.
_FRESH_ID = re.compile(r'(?<="id": ")[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?=")|(?<=metric_)[0-9a-f]{32}\b')


def stable_ids(page: str) -> str:
    """The page with Evidently's per-run ids renumbered in order of first appearance, so the
    same data gives the same bytes (and `dvc repro` on a fresh clone leaves dvc.lock as it was).
    Every occurrence of an id is renamed alike, so the widgets' cross-references still hold."""
    fresh = list(dict.fromkeys(m.group(0) for m in _FRESH_ID.finditer(page)))
    if not fresh:
        return page
    names = {old: (f"00000000-0000-4000-8000-{i:012x}" if "-" in old else f"{i:032x}") for i, old in enumerate(fresh)}
    return re.sub("|".join(map(re.escape, fresh)), lambda m: names[m.group(0)], page)


def write_report(reference: pd.DataFrame, current: pd.DataFrame, kinds: dict[str, str], rows: int, target: Path) -> Path:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    ref, cur = sample(reference, rows), sample(current, rows)
    definition = DataDefinition(numerical_columns=[c for c, k in kinds.items() if k == "numeric"],
                                categorical_columns=[c for c, k in kinds.items() if k == "categorical"])
    columns = list(kinds)
    snapshot = Report([DataDriftPreset()]).run(Dataset.from_pandas(cur[columns], data_definition=definition),
                                               Dataset.from_pandas(ref[columns], data_definition=definition))
    page = stable_ids(snapshot.get_html_str(as_iframe=False))
    note = banner(len(ref), len(cur), len(reference), len(current))
    page = page.replace("<body>", "<body>" + note, 1) if "<body>" in page else note + page
    with atomic_path(target) as tmp:
        tmp.write_text(page)
    return target
