"""What a request passes before any route sees it: the Bearer API key, then the payload limit.

Both are TGI launcher options (`--api-key`, `--payload-limit`). They are checked in plain ASGI,
ahead of FastAPI, so a request without the key is refused before its body is read, and a body
over the limit is refused before it is parsed, whether it declares a Content-Length or comes
chunked. Refusals have TGI's error shape, `{"error": ..., "error_type": ...}`.
"""

from __future__ import annotations

import enum
import hmac
import logging

from pydantic import SecretStr
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

DEFAULT_PAYLOAD_LIMIT = 2_000_000
"""TGI's `--payload-limit` default, in bytes."""

OPEN_ROUTES = frozenset({("GET", "/health")})
"""Routes that answer without the API key: liveness probes carry no credentials."""


def check_api_key(key: str) -> str:
    """`key`, if an Authorization header can carry it.

    Raises:
        ValueError: the key is empty, or starts or ends with whitespace.

    """
    if not key or key != key.strip():
        msg = (
            "the API key (--api-key or S2A_API_KEY) is empty or starts or ends with whitespace, "
            "which no Authorization header can carry; give the key alone, or unset it to serve without one"
        )
        raise ValueError(msg)
    return key


class _Unread(enum.Enum):
    TOO_LARGE = enum.auto()
    CLIENT_GONE = enum.auto()


def _refusal(
    status: int, message: str, error_type: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": message, "error_type": error_type}, status_code=status, headers=headers)


def bearer_token(headers: Headers) -> bytes | None:
    """The token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive)."""
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip().encode("latin-1")


class RequestGuard:
    """ASGI middleware: refuse requests without the API key (401) or with too large a body (413)."""

    def __init__(self, app: ASGIApp, *, api_key: SecretStr | None, payload_limit: int) -> None:
        key = check_api_key(api_key.get_secret_value()) if api_key is not None else None
        if payload_limit < 1:
            msg = f"the payload limit must be at least 1 byte, not {payload_limit}"
            raise ValueError(msg)
        self.app = app
        self._key = key.encode("utf-8") if key is not None else None
        self._limit = payload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if not self._authorized(scope, headers):
            client = scope.get("client")
            logger.warning(
                "refused %s %s from %s: missing or wrong API key",
                scope["method"],
                scope["path"],
                client[0] if client else "?",
            )
            message = "Unauthorized: this server needs `Authorization: Bearer <its API key>`"
            refusal = _refusal(401, message, "unauthorized", {"WWW-Authenticate": "Bearer"})
            await refusal(scope, receive, send)
            return
        body = await self._read_body(headers, receive)
        if body is _Unread.TOO_LARGE:
            message = f"Payload too large: the request body is over the limit of {self._limit} bytes"
            await _refusal(413, message, "payload_limit")(scope, receive, send)
        elif body is not _Unread.CLIENT_GONE:
            await self.app(scope, _replay(body, receive), send)

    def _authorized(self, scope: Scope, headers: Headers) -> bool:
        if self._key is None or (scope["method"], scope["path"]) in OPEN_ROUTES:
            return True
        token = bearer_token(headers)
        return token is not None and hmac.compare_digest(token, self._key)

    async def _read_body(self, headers: Headers, receive: Receive) -> bytes | _Unread:
        """The whole body, unless it is over the limit (by its Content-Length or as it arrives)."""
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._limit:
            return _Unread.TOO_LARGE
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return _Unread.CLIENT_GONE
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._limit:
                return _Unread.TOO_LARGE
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the buffered body once, then what the client sends (its disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
