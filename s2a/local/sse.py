"""Server-sent events framed as TGI's clients read them: `data: {json}` and a blank line."""

from __future__ import annotations

import json
from typing import Any

DONE = b"data: [DONE]\n\n"
"""The last event of a chat stream; huggingface_hub matches exactly `data: [DONE]`."""


def event(data: Any) -> bytes:
    """One event: `data: ` then compact JSON, then a blank line."""
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"
