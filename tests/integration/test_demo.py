"""The demo in a real browser: the server started as users start it, driven by headless
Chromium (Debian's, through Playwright) on 127.0.0.1.

With DRIFTGATE_SCREENSHOTS=DIR the test also saves a screenshot of each tab there (the README's
pictures come from `make screenshots`, which runs it against this repository's own model).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, make_tiny_frame

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def demo_root(served_project) -> Path:
    """This repository (after `make run`) when DRIFTGATE_DEMO_ROOT says so, else the test project."""
    return Path(os.environ["DRIFTGATE_DEMO_ROOT"]) if os.environ.get("DRIFTGATE_DEMO_ROOT") else served_project


# Run before the server's own imports (a sitecustomize on PYTHONPATH): the packages the demo
# image leaves out cannot be imported, so every tab below proves the image has what it needs.
WITHOUT = """
import sys

LEFT_OUT = {left_out!r}


class LeftOut:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in LEFT_OUT:
            raise ModuleNotFoundError(f"{{name}} is left out of the demo image", name=name)
        return None


sys.meta_path.insert(0, LeftOut())
"""


@pytest.fixture(scope="module")
def server(demo_root, tmp_path_factory):
    """`python app.py` in the project folder, as a user starts it, on a free port of 127.0.0.1,
    with only the packages the demo image installs."""
    port = _free_port()
    folder = tmp_path_factory.mktemp("demo")
    log = folder / "server.log"
    left_out = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["driftgate"]["image"]["leave-out"]
    (folder / "site").mkdir()
    (folder / "site" / "sitecustomize.py").write_text(WITHOUT.format(left_out=sorted(left_out)))
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_ANALYTICS_ENABLED": "False",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(folder / "site"), os.environ.get("PYTHONPATH")]))}
    with open(log, "w") as output:
        process = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=demo_root, env=env, stdout=output,
                                   stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, f"the demo exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"the demo did not start in 120 s:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Chromium is not installed: `apt-get install chromium` (.ci/run does)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        outside = []
        context.on("request", lambda request: outside.append(request.url)
                   if not request.url.startswith(("http://127.0.0.1", "data:", "blob:")) else None)
        page = context.new_page()
        page.goto(server, wait_until="networkidle")
        yield page
        browser.close()
    assert outside == [], f"the page reached outside 127.0.0.1: {outside[:5]}"


def _shot(page, name: str) -> None:
    folder = os.environ.get("DRIFTGATE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def prediction_log(demo_root):
    """The server's prediction log (serving.log of the project it serves), read directly."""
    from driftgate.config import load_params
    from driftgate.store.predictions import PredictionLog

    setting = load_params(demo_root / "params.yaml").serving.log
    return PredictionLog(setting if "://" in setting else demo_root / setting)


def test_predict_tab_fills_the_form_and_shows_the_decision(page, prediction_log):
    from playwright.sync_api import expect

    before = prediction_log.count()
    page.get_by_role("tab", name="Predict").click()
    if os.environ.get("DRIFTGATE_DEMO_ROOT"):  # the flights model: an evening departure in rain and fog
        for name, value in {"hour": "19", "precip": "0.12", "visib": "1.5"}.items():
            page.locator(f"#input-{name} input").fill(value)
    else:
        page.locator("#input-x1 input").fill("2.5")
    page.locator("#predict-button").click()
    verdict = page.locator("#predict-verdict")
    expect(verdict).to_contain_text("probability of", timeout=30_000)
    expect(verdict).to_contain_text("against the threshold")
    assert prediction_log.count() == before + 1  # the click's prediction is in the log, and only it
    [source] = prediction_log.frame(limit=1)["source"]
    assert source == "ui"
    _shot(page, "predict")


def test_batch_tab_scores_an_upload_and_shows_the_drift_table(page, tmp_path, demo_root, prediction_log):
    from playwright.sync_api import expect

    batch = tmp_path / "batch.csv"
    if os.environ.get("DRIFTGATE_DEMO_ROOT"):
        from driftgate.config import parse_window
        from driftgate.data.dataset import load_dataset, select_window

        frame = select_window(load_dataset(demo_root / "artifacts" / "dataset.parquet"), parse_window("2013-09"), "batch")
        frame.sample(5000, random_state=0).to_csv(batch, index=False)
    else:
        shifted = make_tiny_frame(400, seed=3)
        shifted["x1"] = shifted["x1"] + 1.5
        shifted.to_csv(batch, index=False)
    rows, before = sum(1 for _ in batch.open()) - 1, prediction_log.count()
    page.get_by_role("tab", name="Batch").click()
    page.locator("#batch-upload input[type=file]").set_input_files(str(batch))
    page.locator("#batch-button").click()
    status = page.locator("#batch-status")
    expect(status).to_contain_text("Scored", timeout=60_000)
    expect(status).to_contain_text("Drift:")
    table = page.locator("#batch-drift")
    expect(table).to_contain_text("wasserstein" if not os.environ.get("DRIFTGATE_DEMO_ROOT") else "temp", timeout=30_000)
    assert prediction_log.count() == before + rows  # every row of the upload is logged
    _shot(page, "batch")


def test_batch_tab_refuses_a_file_without_the_models_columns(page, tmp_path, prediction_log):
    from playwright.sync_api import expect

    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n")
    page.reload(wait_until="networkidle")  # a fresh upload box
    page.get_by_role("tab", name="Batch").click()
    before = prediction_log.count()
    page.locator("#batch-upload input[type=file]").set_input_files(str(wrong))
    page.locator("#batch-button").click()
    expect(page.locator("#batch-status")).to_contain_text("none of the model's columns", timeout=30_000)
    assert prediction_log.count() == before
    expect(page.locator("#batch-drift")).to_contain_text("drifted")  # the empty table keeps its headers


def test_model_and_monitoring_tabs(page, demo_root):
    from playwright.sync_api import expect

    card = json.loads((demo_root / "artifacts" / "model.json").read_text())
    page.get_by_role("tab", name="Model").click()
    expect(page.locator("#model-card")).to_contain_text("Decision threshold")
    for whole in (card["model_sha256"], card["data"]["dataset_sha256"], card["data"]["dataset"]):  # shown whole, not cut
        expect(page.locator("#model-card")).to_contain_text(whole)
    _shot(page, "model")
    page.get_by_role("tab", name="Monitoring").click()
    page.locator("#monitoring-refresh").click()
    expect(page.locator("#monitoring-table")).to_contain_text("drift_share", timeout=30_000)
    expect(page.locator("#monitoring-plot img")).to_be_visible(timeout=30_000)  # the matplotlib figure
    expect(page.locator("#monitoring-plot")).not_to_contain_text("processing", timeout=30_000)
    _shot(page, "monitoring")


def test_api_docs_render_with_no_internet(page, server):
    """/docs (Swagger UI) and /redoc load their scripts from this server: both render the API in
    the browser, and (the `page` fixture checks) no request leaves 127.0.0.1."""
    from playwright.sync_api import expect

    with urllib.request.urlopen(f"{server}/openapi.json") as response:
        title = json.load(response)["info"]["title"]
    docs = page.context.new_page()
    docs.goto(f"{server}/docs", wait_until="networkidle")
    expect(docs.locator(".opblock-summary-path", has_text="/predict")).to_be_visible(timeout=30_000)
    expect(docs.locator(".info .title")).to_contain_text(title)
    _shot(docs, "docs")
    docs.goto(f"{server}/redoc", wait_until="networkidle")
    expect(docs.locator("h1", has_text=title)).to_be_visible(timeout=30_000)
    expect(docs.get_by_text("/predict").first).to_be_attached()
    docs.close()
