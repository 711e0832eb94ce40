"""Reaching a text-generation-inference (TGI) server through huggingface_hub's clients.

Production serves LLaMA-2-70B-chat with TGI; locally any server that speaks TGI's HTTP API
works the same. Nothing here contacts the Hugging Face Hub: a URL model makes
huggingface_hub talk to that server directly.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import httpx
from huggingface_hub import AsyncInferenceClient, InferenceClient, constants, get_session
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from s2a._errors import S2AConfigError


class Decoding(BaseModel):
    """Decoding settings for the S2A step. The defaults are deterministic (greedy).

    TGI's `/generate` rejects `temperature=0`; greedy there means `do_sample=False` with no
    temperature, which is what these defaults become on each route.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_new_tokens: int = Field(default=512, gt=0)
    """Upper bound on generated tokens; a rewrite rarely needs more than its input."""
    temperature: float = Field(default=0.0, ge=0.0)
    """0 means greedy decoding; above 0 turns sampling on."""
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    """Nucleus sampling mass; only used when sampling."""
    seed: int | None = None
    """Sampling seed, for reproducible sampled runs."""
    stop: list[str] = Field(default_factory=list)
    """Stop sequences."""

    @property
    def do_sample(self) -> bool:
        """Whether TGI should sample rather than decode greedily."""
        return self.temperature > 0.0


def no_hub_traffic() -> None:
    """Stop huggingface_hub's telemetry, its only call to the Hub on the way to a TGI server.

    huggingface_hub fetches an "agent harness" registry from the Hub on its first request in
    a process (for its user-agent header) unless telemetry is off. The TGI factories call
    this so that reaching a server sends nothing to the Hub. It is process-wide; an explicit
    `HF_HUB_DISABLE_TELEMETRY` in the environment is left as the user set it.
    """
    if "HF_HUB_DISABLE_TELEMETRY" not in os.environ:
        os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
        constants.HF_HUB_DISABLE_TELEMETRY = True


def check_base_url(base_url: str) -> str:
    """Validate a TGI base URL such as `http://127.0.0.1:8080`; return it without a trailing `/`.

    Raises:
        S2AConfigError: the URL is not an absolute http(s) URL.

    """
    if not isinstance(base_url, str):
        msg = f"base_url must be a str such as 'http://127.0.0.1:8080', got {type(base_url).__name__}"
        raise TypeError(msg)
    parts = urlsplit(base_url.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        msg = f"base_url {base_url!r} is not an http(s) URL; pass e.g. 'http://127.0.0.1:8080'"
        raise S2AConfigError(msg)
    return base_url.strip().rstrip("/")


NO_API_KEY = "no-api-key"
"""Sent as the bearer token when no key is given, so that huggingface_hub does not fall back
to the locally saved Hugging Face token (or `HF_TOKEN`) and send it to a non-Hub server.
A TGI server started without `--api-key` ignores it."""

CONNECT_TIMEOUT = 10.0
"""Default seconds to establish a connection; a server that is down fails fast."""


def timeouts(timeout: float, connect_timeout: float = CONNECT_TIMEOUT) -> httpx.Timeout:
    """Timeouts for httpx: `connect_timeout` to connect, `timeout` for each read, write and pool wait.

    Raises:
        ValueError: a timeout is not positive.

    """
    for name, value in (("timeout", timeout), ("connect_timeout", connect_timeout)):
        if not value > 0:
            msg = f"{name} must be a positive number of seconds, got {value!r}"
            raise ValueError(msg)
    return httpx.Timeout(timeout, connect=connect_timeout)


def bearer(api_key: SecretStr | str | None) -> str:
    """The token to send: the API key, or `NO_API_KEY`; never the user's Hub token."""
    if api_key is None:
        return NO_API_KEY
    value = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
    if not isinstance(value, str) or not value.strip():
        msg = "api_key is empty; pass the server's key (TGI's --api-key) or None"
        raise ValueError(msg)
    return value


def read_info(base_url: str, token: str, limits: httpx.Timeout) -> dict[str, Any]:
    """TGI's `GET /info`, within `limits`, with `token` as the bearer.

    huggingface_hub's own session, so it is the transport every model call uses; its
    `get_endpoint_info` sets no timeout, and a server that accepts but never answers would
    block it for ever.

    Raises:
        httpx.HTTPError: the server could not be reached, timed out, or answered an error.

    """
    response = get_session().get(
        f"{check_base_url(base_url)}/info", headers={"Authorization": f"Bearer {token}"}, timeout=limits
    )
    response.raise_for_status()
    info: dict[str, Any] = response.json()
    return info


def inference_client(
    base_url: str,
    *,
    timeout: float = 120.0,
    connect_timeout: float = CONNECT_TIMEOUT,
    api_key: SecretStr | str | None = None,
) -> InferenceClient:
    """A huggingface_hub `InferenceClient` bound to the TGI server at `base_url`.

    `api_key` is sent as `Authorization: Bearer ...` (TGI's `--api-key`); it is kept out of
    the client's repr.
    """
    no_hub_traffic()
    client = InferenceClient(model=check_base_url(base_url), api_key=bearer(api_key))
    client.timeout = timeouts(timeout, connect_timeout)  # type: ignore[assignment] # httpx takes either
    return client


def async_inference_client(
    base_url: str,
    *,
    timeout: float = 120.0,
    connect_timeout: float = CONNECT_TIMEOUT,
    api_key: SecretStr | str | None = None,
) -> AsyncInferenceClient:
    """A huggingface_hub `AsyncInferenceClient` bound to the TGI server at `base_url`."""
    no_hub_traffic()
    client = AsyncInferenceClient(model=check_base_url(base_url), api_key=bearer(api_key))
    client.timeout = timeouts(timeout, connect_timeout)  # type: ignore[assignment]
    return client
