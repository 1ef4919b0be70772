"""The CI report stays under the forge's comment limit: a long drift table is cut with a notice
and a link to the full table, and the rest of the report is kept whole."""

from pathlib import Path

from driftgate.reporting.report import CML_HEADROOM, COMMENT_LIMITS, CiContext, ci_report
from driftgate.results import DriftResult, GateVerdicts

GATES = GateVerdicts.model_validate({"passed": False, "gates": [
    {"gate": "drift share", "value": 0.9, "op": "<=", "threshold": 0.55, "status": "FAIL", "detail": "see drift.md"}]})
GITLAB = {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_PROJECT_PATH": "ml/wide", "CI_JOB_URL": "https://gitlab.example.org/ml/wide/-/jobs/7"}
GITHUB = {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_REPOSITORY": "ml/wide", "GITHUB_RUN_ID": "42",
          "GITHUB_SERVER_URL": "https://github.example.org"}


def wide_drift(columns: int, drifted: int) -> DriftResult:
    """A drift result over many columns with long names, the first `drifted` of them drifted."""
    cols = {f"sensor_{i:05d}_{'reading_' * 6}": {
        "type": "numeric", "test": "psi", "score": 0.5 - i / (2 * columns), "threshold": 0.1, "drift": i < drifted,
        "reference_rows": 1000, "current_rows": 1000, "reference_missing_share": 0.0, "current_missing_share": 0.0}
        for i in range(columns)}
    return DriftResult.model_validate({"dataset_drift": True, "drift_share": drifted / columns, "threshold": 0.5,
                                       "n_columns": columns, "n_drifted": drifted,
                                       "drifted_columns": list(cols)[:drifted], "columns": cols,
                                       "reference_window": "2013-01..2013-03", "current_window": "2013-09"})


def _drift_table_rows(report: str) -> list[str]:
    return [line for line in report.splitlines() if line.startswith("| sensor_")]


def test_github_report_with_a_long_drift_table_is_cut_under_65536_characters_with_a_notice_and_a_link(tmp_path):
    drift = wide_drift(3000, 2500)
    report = ci_report(GATES, None, drift, tmp_path / "report.md", CiContext.from_env(GITHUB),
                       drift_markdown=Path("reports/drift/drift.md"))
    assert len(report) <= COMMENT_LIMITS["github"] - CML_HEADROOM
    rows = _drift_table_rows(report)
    assert 100 < len(rows) < 2500  # as many rows as fit, most drifted first
    assert rows[0].startswith("| sensor_00000_") and rows[-1].startswith(f"| sensor_{len(rows) - 1:05d}_")
    notice = next(line for line in report.splitlines() if ":scissors:" in line)
    assert f"the {len(rows)} most drifted of 3,000 columns (2,500 drifted)" in notice
    assert "GitHub's comment limit (65,536 characters)" in notice
    assert "[drift.md](https://github.example.org/ml/wide/actions/runs/42#artifacts)" in notice
    # the parts around the table are whole: the gate table before it, the footer after it
    assert report.startswith("## :x: driftgate: 1 of 1 gates failed: drift share") and report.rstrip().endswith("</sub>")


def test_gitlab_report_is_held_to_gitlabs_larger_limit_and_links_the_drift_md_file(tmp_path):
    drift = wide_drift(3000, 2500)
    report = ci_report(GATES, None, drift, tmp_path / "report.md", CiContext.from_env(GITLAB),
                       drift_markdown=Path("reports/drift/drift.md"))
    assert len(_drift_table_rows(report)) == 2500  # every drifted column: ~0.5 MB fits in GitLab's 1,000,000
    assert ":scissors:" not in report and len(report) <= COMMENT_LIMITS["gitlab"] - CML_HEADROOM
    wider = ci_report(GATES, None, wide_drift(12000, 10000), tmp_path / "report.md", CiContext.from_env(GITLAB),
                      drift_markdown=Path("reports/drift/drift.md"))
    assert len(wider) <= COMMENT_LIMITS["gitlab"] - CML_HEADROOM and ":scissors:" in wider
    assert "GitLab's comment limit (1,000,000 characters)" in wider
    assert "[drift.md](https://gitlab.example.org/ml/wide/-/jobs/7/artifacts/file/reports/drift/drift.md)" in wider


def test_short_drift_table_is_not_cut_and_every_drifted_column_is_shown(tmp_path):
    drift = wide_drift(40, 20)
    report = ci_report(GATES, None, drift, tmp_path / "report.md", CiContext("ml/wide"),
                       drift_markdown=tmp_path / "drift" / "drift.md")
    assert ":scissors:" not in report and len(_drift_table_rows(report)) == 20  # more than the 12 shown by default
    assert "The 20 most drifted of 40 columns; all of them are in [drift.md](drift/drift.md)." in report


def test_report_too_long_even_without_its_drift_table_is_cut_at_a_line_with_a_notice(tmp_path):
    """A huge params diff: the last resort cuts the text itself, at a line break, and says where the rest is."""
    changed = {f"features.param_{i:05d}": {"old": i, "new": i + 1} for i in range(5000)}
    report = ci_report(GATES, None, wide_drift(30, 5), tmp_path / "report.md", CiContext.from_env(GITHUB),
                       params_changed=changed, drift_markdown=Path("reports/drift/drift.md"))
    assert len(report) <= COMMENT_LIMITS["github"] - CML_HEADROOM
    body, notice = report.rsplit("\n\n> :scissors:", 1)
    assert body.splitlines()[-1].startswith("| `features.param_")  # a whole row, not half of one
    assert "the rest is in [the run's artifacts](https://github.example.org/ml/wide/actions/runs/42#artifacts)" in notice


def test_explicit_limit_cuts_the_table_to_fit(tmp_path):
    report = ci_report(GATES, None, wide_drift(200, 150), tmp_path / "report.md", CiContext("ml/wide"), limit=8000)
    assert len(report) <= 8000 and ":scissors:" in report and "within 8,000 characters" in report


def test_job_summary_version_names_the_plots_instead_of_linking_local_images(tmp_path):
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "confusion_matrix.png").write_bytes(b"\x89PNG")
    ci = CiContext.from_env(GITHUB)
    report = ci_report(GATES, None, None, tmp_path / "report.md", ci, plots=[tmp_path / "plots" / "confusion_matrix.png"],
                       images=False)
    assert "![" not in report
    assert "Plots (confusion matrices) are in [the run's artifacts](https://github.example.org/ml/wide/actions/runs/42#artifacts)." in report
