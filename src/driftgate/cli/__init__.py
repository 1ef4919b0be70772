"""The `driftgate` command line (Typer only: the domain logic lives in the packages it calls)."""

from driftgate.cli.main import app

__all__ = ["app"]
