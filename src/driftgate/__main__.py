"""`python -m driftgate` runs the CLI."""

from driftgate.cli import app

app(prog_name="driftgate")
