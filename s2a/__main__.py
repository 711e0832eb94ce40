"""`python -m s2a`: the same as the `s2a` command."""

from s2a.cli import app

app(prog_name="s2a")
