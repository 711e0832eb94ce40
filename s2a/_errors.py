"""The s2a exception hierarchy.

    S2AError                  base class: catch this to catch everything s2a raises
    ├── S2AParseError         the model's output could not be used (carries `.raw`)
    ├── S2AConfigError        a setting or prompt template is invalid (also a ValueError)
    └── S2ACallError          the model call failed, retries included (carries `.failure`)
        ├── S2ATimeoutError       it timed out (connect or read)
        └── S2AUnavailableError   the server could not be reached, died mid-call, or stayed
                                  overloaded (429) or unavailable (503)

With the default `fallback="original"`, parse and call errors are not raised: the original
context is kept and `S2AResult.fallback` (or the selection's `fallback`) says why.

Wrong input types raise the built-in `TypeError`, invalid values `ValueError`, each naming
the field at fault.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from s2a._faults import Failure

CALL_FAILED = "the S2A call failed"
"""How a fallback reason starts when the model call failed (not its reply): `S2AResult.fallback`
and a selection's, then `: <what failed>`."""


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


class S2ACallError(S2AError):
    """The S2A step's model call failed and was not (or no longer) retried.

    Raised only with `fallback="raise"`; with `fallback="original"` the original context is
    kept, flagged. The message says what happened and what to try; the client's own exception
    is the `__cause__`.
    """

    def __init__(self, message: str, failure: Failure, attempts: int) -> None:
        super().__init__(message)
        self.failure = failure
        """What the client's exception said: kind, HTTP status, Retry-After."""
        self.attempts = attempts
        """Calls made, the first included."""

    @property
    def status(self) -> int | None:
        """The HTTP status of the last failure, if there was one."""
        return self.failure.status


class S2ATimeoutError(S2ACallError):
    """The model call timed out (connecting or reading)."""


class S2AUnavailableError(S2ACallError):
    """The model server could not be reached, dropped the call, or stayed overloaded."""
