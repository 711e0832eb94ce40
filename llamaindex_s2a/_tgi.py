"""`tgi_llm`: a LlamaIndex LLM for a text-generation-inference server."""

from __future__ import annotations

from llama_index.llms.huggingface_api import HuggingFaceInferenceAPI

from s2a.tgi import check_base_url, no_hub_traffic


def tgi_llm(
    base_url: str, *, max_new_tokens: int = 512, temperature: float = 0.1, timeout: float = 120.0
) -> HuggingFaceInferenceAPI:
    """llama-index's `HuggingFaceInferenceAPI` for the TGI server at `base_url`.

    It asks the server's `/info` for the context window (llama-index does this on creation)
    and sends nothing to the Hugging Face Hub. llama-index requires
    `temperature > 0`; the S2A postprocessor's own calls are greedy regardless.
    """
    no_hub_traffic()
    return HuggingFaceInferenceAPI(
        model=check_base_url(base_url),
        provider="hf-inference",  # a URL model; "auto" would stop llama-index reading /info
        temperature=temperature,
        num_output=max_new_tokens,
        timeout=timeout,
    )
