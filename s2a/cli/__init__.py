"""The `s2a` command line.

`app`, the typer app (the `s2a` entry point), with its commands: `run` and `serve` in
`s2a.cli._run`, `eval` in `s2a.cli._eval`, `bench` in `s2a.cli._bench`; what they share in
`s2a.cli._common`.
"""

from __future__ import annotations

import typer

from s2a.cli._bench import bench
from s2a.cli._eval import eval_
from s2a.cli._run import run, serve

app = typer.Typer(
    name="s2a",
    help="System 2 Attention: regenerate the context, then answer from it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _main() -> None:
    """System 2 Attention for LangChain and LlamaIndex."""


app.command()(run)
app.command()(serve)
app.command("eval")(eval_)
app.command()(bench)
