"""`python -m driftgate` runs the CLI."""

from driftgate.cli.main import app

app(prog_name="driftgate")
