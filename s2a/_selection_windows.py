"""One selection call: the items it shows, numbered, and the prompt that shows them.

`s2a.selection.plan_selection` packs the retrieved documents (or their sentences) into windows
that fit the model's prompt budget; each window is one call, built here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from s2a._scores import TOP_LOGPROBS, decisions_regex
from s2a._sentences import Span, numbered
from s2a._types import ChatMessage
from s2a.variants import S2AConfig
from s2a.variants._base import _focus_text, _messages
from s2a.variants.extractive import _keep_schema

SelectionMode = Literal["keep_list", "scored"]
"""One JSON list of the numbers to keep, or a scored keep-or-drop decision per item."""

REPLY_TOKENS_PER_ITEM = 4
"""Room left in a window for the reply: about this many tokens per number."""


@dataclass(frozen=True)
class Window:
    """One S2A call: the items it shows and the messages that show them."""

    messages: tuple[ChatMessage, ...]
    json_schema: dict[str, Any] | None
    units: tuple[tuple[int, int | None], ...]
    """For each number shown (1-based position): (document index, sentence index or None)."""
    regex: str | None = None
    """`scored`: the reply's shape, one `<number> keep|drop` line per unit."""
    top_logprobs: int = 0
    """`scored`: alternatives asked for at each token."""
    max_new_tokens: int | None = None
    """A window's reply is as long as its list: the caller's budget applies."""

    @property
    def needs_llm(self) -> bool:
        """A window always calls the model (an empty document set makes no window)."""
        return True

    @property
    def grammar(self) -> dict[str, Any]:
        """The reply's constraint in TGI's form."""
        if self.regex is not None:
            return {"type": "regex", "value": self.regex}
        return {"type": "json", "value": self.json_schema}


def render(
    plan_texts: Sequence[str], spans: Sequence[Sequence[Span]], units: Sequence[tuple[int, int | None]]
) -> str:
    lines: list[str] = []
    current = -1
    for number, (doc, sentence) in enumerate(units, start=1):
        if sentence is None:
            lines.append(numbered(number, plan_texts[doc]))
            continue
        if doc != current:
            lines.append(f"Document {doc + 1}:")
            current = doc
        span = spans[doc][sentence]
        lines.append(numbered(number, plan_texts[doc][span.start : span.end]))
    return "\n".join(lines)


def make_window(
    texts: Sequence[str],
    spans: Sequence[Sequence[Span]],
    units: Sequence[tuple[int, int | None]],
    *,
    query: str,
    config: S2AConfig,
    unit_name: str,
    mode: SelectionMode,
) -> Window:
    items = render(texts, spans, units)
    template = config.prompts.select_scored if mode == "scored" else config.prompts.select
    user = template.format(focus=_focus_text(config), items=items, query=query, unit_name=unit_name)
    if mode == "scored":
        return Window(
            messages=_messages(config, user),
            json_schema=None,
            units=tuple(units),
            regex=decisions_regex(len(units)),
            top_logprobs=TOP_LOGPROBS,
        )
    return Window(
        messages=_messages(config, user),
        json_schema=_keep_schema(len(units)),
        units=tuple(units),
    )
