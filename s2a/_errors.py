"""The s2a exception hierarchy.

    S2AError                  base class: catch this to catch everything s2a raises
    ├── S2AParseError         the model's output could not be used (carries `.raw`)
    └── S2AConfigError        a setting or prompt template is invalid (also a ValueError)

Wrong input types raise the built-in `TypeError`, invalid values `ValueError`, each naming
the field at fault.
"""

from __future__ import annotations


class S2AError(Exception):
    """Base class of every error s2a raises on purpose."""


class S2AParseError(S2AError):
    """The S2A step's output could not be turned into a context and a question.

    Raised only with `fallback="raise"`; with the default `fallback="original"` the
    original context is kept and the reason is recorded in `S2AResult.fallback`.
    """

    def __init__(self, reason: str, raw: str) -> None:
        super().__init__(
            f"{reason}. The raw model output is on the `.raw` attribute; "
            'use fallback="original" to keep the original context instead of raising.'
        )
        self.reason = reason
        """Why the output was rejected."""
        self.raw = raw
        """The model's output, verbatim."""


class S2AConfigError(S2AError, ValueError):
    """A setting or a prompt template is invalid."""
