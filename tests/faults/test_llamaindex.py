"""`S2ANodePostprocessor` over `tgi_llm` against a misbehaving server.

`tgi_llm` reads the server's `GET /info` when it is created (the server answers it as TGI
does); the faults then hit the postprocessor's one chat call per query.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.schema import NodeWithScore, TextNode

from llamaindex_s2a import S2ANodePostprocessor, S2ASelectionEndEvent, tgi_llm
from s2a import FallbackPolicy, S2AUnavailableError
from tests.faults.common import CASES, HANG_TIMEOUT, QUESTION, TIMEOUT, Case, check_error, policy
from tests.faults.misbehaving_tgi import INFO, Fault, MisbehavingTGI, refused_url

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

TEXTS = ["Paris is in France.", "I am sure Paris is in Spain.", "Bananas are yellow."]


def nodes() -> list[NodeWithScore]:
    return [NodeWithScore(node=TextNode(text=t, id_=f"n{i}"), score=1.0) for i, t in enumerate(TEXTS)]


class SelectionEnds(BaseEventHandler):
    """Records the postprocessor's end events, where a fallback's reason is reported."""

    seen: list[S2ASelectionEndEvent] = []  # noqa: RUF012 - llama-index handlers are pydantic models

    @classmethod
    def class_name(cls) -> str:
        return "SelectionEnds"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, S2ASelectionEndEvent):
            self.seen.append(event)


@pytest.fixture
def ends() -> Iterator[list[S2ASelectionEndEvent]]:
    handler = SelectionEnds(seen=[])
    root = get_dispatcher()
    root.add_event_handler(handler)
    try:
        yield handler.seen
    finally:
        root.event_handlers.remove(handler)


def postprocessor(
    url: str, fallback: FallbackPolicy, attempts: int = 3, timeout: float = TIMEOUT
) -> S2ANodePostprocessor:
    llm = tgi_llm(url, timeout=timeout, connect_timeout=timeout)
    return S2ANodePostprocessor(mode="keep_list", llm=llm, fallback=fallback, retry=policy(attempts))


async def aclose(s2a: S2ANodePostprocessor) -> None:
    await s2a.llm._async_client.close()  # type: ignore[union-attr]


def test_info_is_read_over_the_socket_then_nodes_are_selected(tgi: MisbehavingTGI) -> None:
    tgi.reply = '{"keep": [1]}'
    s2a = postprocessor(tgi.url, "raise")
    assert s2a.llm is not None
    assert s2a.llm.metadata.context_window == INFO["max_input_tokens"]
    kept = s2a.postprocess_nodes(nodes(), query_str=QUESTION)
    assert [n.node.node_id for n in kept] == ["n0"]
    info, call = tgi.requests
    assert (info.method, info.path) == ("GET", "/info")
    assert call.body is not None
    assert call.body["response_format"]["type"] == "json"


@pytest.mark.parametrize("case", CASES, ids=str)
def test_postprocess_raises_typed_or_keeps_every_node(
    tgi: MisbehavingTGI, case: Case, ends: list[S2ASelectionEndEvent]
) -> None:
    tgi.faults = case.faults
    with pytest.raises(case.error) as caught:
        postprocessor(tgi.url, "raise", case.attempts, case.timeout).postprocess_nodes(
            nodes(), query_str=QUESTION
        )
    check_error(caught.value, case, len(tgi.posts))
    tgi.faults = case.faults
    given = nodes()
    kept = postprocessor(tgi.url, "original", case.attempts, case.timeout).postprocess_nodes(
        given, query_str=QUESTION
    )
    assert kept == given
    (end,) = ends
    assert end.fallback is not None
    assert end.fallback.startswith(f"the S2A call failed: {case.says}")


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.name in {"hang", "reset_mid_request", "503"}], ids=str
)
async def test_apostprocess_raises_typed_or_keeps_every_node(tgi: MisbehavingTGI, case: Case) -> None:
    s2a = postprocessor(tgi.url, "raise", case.attempts, case.timeout)
    try:
        tgi.faults = case.faults
        with pytest.raises(case.error) as caught:
            await s2a.apostprocess_nodes(nodes(), query_str=QUESTION)
        check_error(caught.value, case, len(tgi.posts))
        tgi.faults = case.faults
        given = nodes()
        kept = await s2a.model_copy(update={"fallback": "original"}).apostprocess_nodes(
            given, query_str=QUESTION
        )
        assert kept == given
    finally:
        await aclose(s2a)


def test_refused_port_fails_fast_as_unavailable() -> None:
    start = time.monotonic()
    s2a = postprocessor(refused_url(), "raise")  # its /info is refused too: llama-index's default window
    with pytest.raises(S2AUnavailableError, match="could not reach the model server after 3 attempts"):
        s2a.postprocess_nodes(nodes(), query_str=QUESTION)
    assert time.monotonic() - start < 2 * TIMEOUT


def test_creating_tgi_llm_is_bounded_by_its_timeouts(tgi: MisbehavingTGI) -> None:
    """A server that accepts but never answers /info must not block `tgi_llm` for ever."""
    tgi.info_fault = Fault("hang")
    created = threading.Event()

    def create() -> None:
        tgi_llm(tgi.url, timeout=HANG_TIMEOUT, connect_timeout=HANG_TIMEOUT)
        created.set()

    thread = threading.Thread(target=create, daemon=True)
    thread.start()
    in_time = created.wait(4 * HANG_TIMEOUT)  # connect, then read: at most 2 * HANG_TIMEOUT
    tgi.cut()  # release it either way
    thread.join(TIMEOUT)
    assert created.is_set()
    assert in_time, (
        f"tgi_llm(timeout={HANG_TIMEOUT}) was still blocked on GET /info after {4 * HANG_TIMEOUT} s"
    )
