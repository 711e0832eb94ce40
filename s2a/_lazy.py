"""The adapters' optional names: imported when first used, with an error naming the extra to install."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any


def lazy_attribute(package: str, lazy: Mapping[str, tuple[str, str, str]], name: str) -> Any:
    """`package.name`, from the module that defines it, for a module-level `__getattr__`.

    Args:
        package: the adapter package, e.g. `langchain_s2a`.
        lazy: each optional name's (module in `package`, what it needs, the s2a extra with it).
        name: the attribute asked for.

    Raises:
        AttributeError: `name` is not one of `lazy`.
        ImportError: the module's optional dependency is missing; the message names the extra.

    """
    if name not in lazy:
        msg = f"module {package!r} has no attribute {name!r}"
        raise AttributeError(msg)
    module, needs, extra = lazy[name]
    try:
        loaded = importlib.import_module(f"{package}.{module}")
    except ModuleNotFoundError as exc:
        missing = (exc.name or "a dependency").split(".")[0]
        msg = f"{name} needs {needs} ({missing} is missing): pip install 's2a[{extra}]'"
        raise ImportError(msg) from exc
    return getattr(loaded, name)
