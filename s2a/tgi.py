"""Reaching a text-generation-inference (TGI) server through huggingface_hub's clients.

Production serves LLaMA-2-70B-chat with TGI; locally any server that speaks TGI's HTTP API
works the same. Nothing here contacts the Hugging Face Hub: a URL model makes
huggingface_hub talk to that server directly.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from huggingface_hub import AsyncInferenceClient, InferenceClient, constants
from pydantic import BaseModel, ConfigDict, Field

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


def inference_client(base_url: str, *, timeout: float = 120.0) -> InferenceClient:
    """A huggingface_hub `InferenceClient` bound to the TGI server at `base_url`."""
    no_hub_traffic()
    return InferenceClient(model=check_base_url(base_url), timeout=timeout)


def async_inference_client(base_url: str, *, timeout: float = 120.0) -> AsyncInferenceClient:
    """A huggingface_hub `AsyncInferenceClient` bound to the TGI server at `base_url`."""
    no_hub_traffic()
    return AsyncInferenceClient(model=check_base_url(base_url), timeout=timeout)
