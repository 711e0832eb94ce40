"""LangChain's own standard chat-model suite (langchain-tests) on `tgi_chat_model` and the local server.

The suite is LangChain's, unmodified, with tool calling and structured output on; what the
server cannot do is declared, and the suite skips those tests itself: image, audio and PDF
input, JSON mode without a schema (docs/local-server.md lists every skip).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_huggingface import ChatHuggingFace
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_s2a import tgi_chat_model

# The suite's async tests build a model per test and nothing in langchain-huggingface closes
# its async HTTP client, so the event loop's sockets are collected unclosed after the test.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture(autouse=True)
def _collect_unclosed_clients() -> Iterator[None]:
    """Collect those clients at each test's teardown, under this module's filter, not in a later test."""
    yield
    gc.collect()


class TestTGIChatModel(ChatModelIntegrationTests):
    url = ""

    @pytest.fixture(autouse=True)
    def _local_server(self, server_url: str) -> None:
        self.url = server_url

    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        """The suite builds models as `chat_model_class(**params)`; ours come from the factory."""
        url = self.url

        class TGIChatModel(ChatHuggingFace):
            def __new__(cls, **params: Any) -> ChatHuggingFace:  # type: ignore[misc]
                chat_fields = {key: params.pop(key) for key in ("output_version",) if key in params}
                return tgi_chat_model(url, **params).model_copy(update=chat_fields)

        return TGIChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"max_new_tokens": 100}

    @pytest.fixture
    def model(self, request: pytest.FixtureRequest) -> BaseChatModel:
        extra = getattr(request, "param", None) or {}
        return self.chat_model_class(**{**self.chat_model_params, **extra})

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_image_inputs(self) -> bool:
        return False

    @property
    def returns_usage_metadata(self) -> bool:
        return True
