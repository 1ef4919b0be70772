"""The demo's image, built and pushed for real, then pulled back and run (`make test-image`).

There is no Docker engine here, so the image is built the way CI can build it without one:
`pipelines/ci/image.sh` with buildah (vfs storage, chroot isolation) on a Debian bookworm base
made with debootstrap (public base images cannot be pulled here), pushed to a local registry
(Debian's docker-registry on 127.0.0.1), pulled back and run: /health and one prediction.
It takes several minutes, so `make test` leaves it out and `.ci/run` runs it after.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, copy_project

pytestmark = [pytest.mark.slow, pytest.mark.image]

CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _need(*tools: str) -> None:
    missing = [tool for tool in tools if not shutil.which(tool)]
    assert not missing, f"missing {', '.join(missing)}: apt-get install buildah skopeo debootstrap docker-registry (.ci/run does)"


def sh(*command: str, env: dict | None = None, timeout: int = 1800) -> str:
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def buildah(tmp_path_factory) -> list[str]:
    _need("buildah", "skopeo", "debootstrap", "docker-registry")
    store = tmp_path_factory.mktemp("containers")
    return ["buildah", "--storage-driver", "vfs", "--root", str(store / "root"), "--runroot", str(store / "run")]


@pytest.fixture(scope="module")
def base_image(buildah, tmp_path_factory) -> str:
    """Debian bookworm (minbase) with python3 and venv, trusting the same CAs as this machine."""
    folder = tmp_path_factory.mktemp("base")
    rootfs = folder / "rootfs"
    sh("debootstrap", "--variant=minbase", "--include=python3-minimal,libpython3.11-stdlib,python3-venv,ca-certificates",
       "bookworm", str(rootfs))
    sh("tar", "-C", str(rootfs), "-cf", str(folder / "rootfs.tar"), ".")
    container = sh(*buildah, "from", "scratch").strip()
    sh(*buildah, "add", container, str(folder / "rootfs.tar"), "/")
    if CA_BUNDLE.is_file():  # a proxy's CA on this network must be trusted for pip inside the build
        sh(*buildah, "copy", container, str(CA_BUNDLE), str(CA_BUNDLE))
        sh(*buildah, "config", "--env", f"PIP_CERT={CA_BUNDLE}", container)
    sh(*buildah, "commit", "--rm", container, "localhost/driftgate-base:bookworm")
    return "localhost/driftgate-base:bookworm"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    folder = tmp_path_factory.mktemp("registry")
    port = _free_port()
    config = folder / "config.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n")
    process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2)
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "the registry did not start"
                time.sleep(0.3)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def pushed(buildah, base_image, registry, served_project, tmp_path_factory):
    """`pipelines/ci/image.sh` run as CI runs it, on a clone holding the pipeline's outputs."""
    context = copy_project(tmp_path_factory.mktemp("context"), with_data=False)
    for name in ("model.joblib", "model.json", "dataset.parquet"):
        shutil.copy(served_project / "artifacts" / name, context / "artifacts" / name)
    shutil.copy(served_project / "params.yaml", context / "params.yaml")
    shutil.copytree(served_project / "reports", context / "reports", dirs_exist_ok=True)
    image = f"{registry}/ml/flights/demo"
    env = {**os.environ, "BUILDER": "buildah", "BUILDAH_FLAGS": " ".join(buildah[1:]), "PUSH_FLAGS": "--tls-verify=false",
           "BASE_IMAGE": base_image, "DRIFTGATE_IMAGE": image, "DRIFTGATE_IMAGE_TAG": "test1"}
    start = time.monotonic()
    output = sh(str(context / "pipelines" / "ci" / "image.sh"), env=env)
    print(f"image.sh built and pushed in {time.monotonic() - start:.0f} s")
    assert f"pushed {image}:test1 and {image}:latest" in output
    return image


def test_image_is_in_the_registry_with_both_tags_a_healthcheck_and_a_non_root_user(pushed):
    tags = json.loads(sh("skopeo", "list-tags", "--tls-verify=false", f"docker://{pushed}"))["Tags"]
    assert sorted(tags) == ["latest", "test1"]
    # --raw: the config blob as pushed (without it skopeo converts to OCI, which has no healthcheck)
    config = json.loads(sh("skopeo", "inspect", "--tls-verify=false", "--config", "--raw", f"docker://{pushed}:test1"))["config"]
    assert config["User"] == "10001" and "7860/tcp" in config["ExposedPorts"]
    assert "/health" in " ".join(config["Healthcheck"]["Test"])
    assert "GRADIO_SERVER_NAME=0.0.0.0" in config["Env"]
    manifest = json.loads(sh("skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{pushed}:test1"))
    print(f"pushed layers: {sum(layer['size'] for layer in manifest['layers']) / 1e6:.0f} MB compressed")


def test_pulled_image_serves_health_and_a_prediction(pushed, buildah, served_project):
    for image in sh(*buildah, "images", "-q").split():  # only what the registry gives back counts
        subprocess.run([*buildah, "rmi", "-f", image], capture_output=True)
    sh(*buildah, "pull", "--tls-verify=false", f"{pushed}:test1")
    print(f"image size: {sh(*buildah, 'images', '--format', '{{.Size}}', f'{pushed}:test1').strip()}")
    container = sh(*buildah, "from", f"{pushed}:test1").strip()
    left_out = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["driftgate"]["image"]["leave-out"]
    installed = sh(*buildah, "run", "--isolation", "chroot", container, "--", "python3", "-c",
                   f"import importlib.util as u; print([m for m in {left_out!r} if u.find_spec(m)])")
    assert installed.strip() == "[]", f"the image holds packages only the pipeline needs: {installed}"
    port = _free_port()
    server = subprocess.Popen([*buildah, "run", "--isolation", "chroot", "--env", f"GRADIO_SERVER_PORT={port}",
                               "--env", "GRADIO_SERVER_NAME=127.0.0.1", container, "--", "python3", "app.py"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                health = json.loads(urllib.request.urlopen(f"{url}/health", timeout=2).read())
                break
            except OSError:
                assert server.poll() is None, "the container exited"
                assert time.monotonic() < deadline, "the container's server did not answer in 180 s"
                time.sleep(1)
        card = json.loads((served_project / "artifacts" / "model.json").read_text())
        assert health["model_loaded"] and health["model_version"] == card["model_sha256"][:12]
        assert health["scorer"] == "treelite"
        request = urllib.request.Request(f"{url}/predict", data=json.dumps({"x1": 0.5, "x2": 3.0, "plan": "pro"}).encode(),
                                         headers={"content-type": "application/json"})
        [prediction] = json.loads(urllib.request.urlopen(request, timeout=30).read())["predictions"]
        assert 0 <= prediction["probability"] <= 1
    finally:
        server.terminate()
        server.wait(timeout=30)
        subprocess.run([*buildah, "rm", container], capture_output=True)
