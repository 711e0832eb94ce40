"""`tgi_llm`: a LlamaIndex LLM for a text-generation-inference server."""

from __future__ import annotations

import logging

import httpx
from llama_index.llms.huggingface_api import HuggingFaceInferenceAPI
from pydantic import SecretStr

from s2a._faults import redact
from s2a.tgi import CONNECT_TIMEOUT, NO_API_KEY, bearer, check_base_url, no_hub_traffic, read_info, timeouts

logger = logging.getLogger(__name__)


def tgi_llm(
    base_url: str,
    *,
    max_new_tokens: int = 512,
    temperature: float = 0.1,
    timeout: float = 120.0,
    connect_timeout: float = CONNECT_TIMEOUT,
    api_key: SecretStr | str | None = None,
) -> HuggingFaceInferenceAPI:
    """llama-index's `HuggingFaceInferenceAPI` for the TGI server at `base_url`.

    It asks the server's `/info` for the context window and sends nothing to the Hugging
    Face Hub. `timeout` bounds each read, `connect_timeout` the connection; `api_key` (TGI's
    `--api-key`) is sent as a bearer token and kept out of the LLM's repr. llama-index
    requires `temperature > 0`; the S2A postprocessor's own calls are greedy regardless.

    Raises:
        S2AConfigError: `base_url` is not an http(s) URL.
        ValueError: a timeout is not positive, or `api_key` is empty.

    """
    limits, token = timeouts(timeout, connect_timeout), bearer(api_key)
    no_hub_traffic()
    url = check_base_url(base_url)
    llm = HuggingFaceInferenceAPI(
        model=url,
        # Not "hf-inference": llama-index would then read /info in its constructor with no
        # timeout and without the key. A URL model ignores the provider for its calls.
        provider="auto",
        temperature=temperature,
        num_output=max_new_tokens,
        timeout=timeout,
        token=NO_API_KEY,  # never the locally saved Hub token
    )
    # The key goes on the clients, not in the `token` field, which the repr would show.
    for client in (llm._sync_client, llm._async_client):  # llama-index keeps no setter
        client.token = token
        client.timeout = limits
    try:
        info = read_info(url, token, limits)
        llm.context_window = int(info.get("max_input_tokens", llm.context_window))
    except (httpx.HTTPError, ValueError) as exc:  # llama-index's default window then stands
        logger.warning(
            "could not read %s/info (%s); context window %d", url, redact(str(exc)), llm.context_window
        )
    return llm
