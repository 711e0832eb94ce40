"""The official openai SDK against the local server's OpenAI-style routes (TGI's `/v1`)."""

from __future__ import annotations

import subprocess

from openai import OpenAI

from tests.integration.conftest import API_KEY


def test_openai_sdk(served: tuple[subprocess.Popen[bytes], str]) -> None:
    _, base_url = served
    with OpenAI(base_url=f"{base_url}/v1", api_key=API_KEY, max_retries=0) as client:
        (model,) = client.models.list().data
        assert model.id.startswith("Qwen/Qwen2.5-Coder-1.5B-Instruct")

        chat = client.chat.completions.create(
            model=model.id,
            messages=[{"role": "user", "content": "Say hello."}],
            max_tokens=8,
            temperature=0,
            logprobs=True,
            top_logprobs=2,
        )
        assert chat.choices[0].message.content
        assert chat.usage is not None
        assert chat.usage.completion_tokens <= 8
        assert chat.choices[0].logprobs is not None
        assert chat.choices[0].logprobs.content

        stream = client.chat.completions.create(
            model=model.id,
            messages=[{"role": "user", "content": "Say hello."}],
            max_tokens=8,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert chunks[-1].usage is not None

        completion = client.completions.create(
            model=model.id, prompt="The sky is", max_tokens=6, temperature=0
        )
        assert completion.choices[0].text
        assert completion.usage is not None
        assert completion.usage.completion_tokens <= 6
