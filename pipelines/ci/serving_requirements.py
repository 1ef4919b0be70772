"""The demo image's requirements: driftgate's dependencies and its `serve` extra, without the
packages only the pipeline needs (`[tool.driftgate.image] leave-out` in pyproject.toml).

    python3 pipelines/ci/serving_requirements.py pyproject.toml > requirements.txt

The server never imports DVC, Evidently, pandera or the bundled dataset's package (the demo test
runs it with them made unimportable), and leaving them out makes the image about a third smaller.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path


def distribution(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9._-]+", requirement).group(0).lower().replace("_", "-")


def requirements(pyproject: dict) -> list[str]:
    project = pyproject["project"]
    leave_out = {distribution(name) for name in pyproject["tool"]["driftgate"]["image"]["leave-out"]}
    wanted = project["dependencies"] + project["optional-dependencies"]["serve"]
    unknown = leave_out - {distribution(r) for r in wanted}
    if unknown:
        raise SystemExit(f"pyproject.toml: [tool.driftgate.image] leave-out names {', '.join(sorted(unknown))}, "
                         "which is not a dependency: remove it from the list")
    return [r for r in wanted if distribution(r) not in leave_out]


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")
    print("\n".join(requirements(tomllib.loads(path.read_text()))))
