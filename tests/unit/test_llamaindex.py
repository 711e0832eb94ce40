"""S2ANodePostprocessor with LlamaIndex's MockLLM (scripted) and over the in-memory TGI."""

from __future__ import annotations

import json
import re

import pytest
from llama_index.core import Settings
from llama_index.core.prompts import PromptTemplate
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from llamaindex_s2a import S2ANodePostprocessor, S2ASelectionEndEvent, S2ASelectionStartEvent, tgi_llm
from s2a import S2AParseError
from tests.fake_models import ScriptedLLM, recorded_events
from tests.fake_tgi import FakeTGI

QUERY = "Where is Paris?"


def keep(*numbers: int) -> ScriptedLLM:
    return ScriptedLLM(lambda _prompt: json.dumps({"keep": list(numbers)}))


def nodes() -> list[NodeWithScore]:
    texts = [
        "Paris is in France.",
        "I am sure Paris is in Spain.",
        "Bananas are yellow.",
        "Paris is on the Seine.",
    ]
    return [
        NodeWithScore(node=TextNode(text=t, id_=f"n{i}", metadata={"source": f"doc{i}"}), score=1.0 - i / 10)
        for i, t in enumerate(texts)
    ]


def test_keeps_ids_metadata_scores_and_order() -> None:
    given = nodes()
    kept = S2ANodePostprocessor(mode="keep_list", llm=keep(4, 1)).postprocess_nodes(given, query_str=QUERY)
    assert [n.node.node_id for n in kept] == ["n0", "n3"]
    assert [n.node.metadata for n in kept] == [{"source": "doc0"}, {"source": "doc3"}]
    assert [n.score for n in kept] == [given[0].score, given[3].score]
    assert kept[0] is given[0]  # untouched nodes are passed through as they are


def test_one_call_per_query() -> None:
    llm = keep(1)
    S2ANodePostprocessor(mode="keep_list", llm=llm).postprocess_nodes(nodes(), query_str=QUERY)
    assert len(llm.prompts) == 1
    assert "[4] Paris is on the Seine." in llm.prompts[0]


@pytest.mark.parametrize(("numbers", "ids"), [((9, 0, -1), []), ((2, 2, 2), ["n1"]), ((), [])])
def test_out_of_range_and_repeated_numbers(numbers: tuple[int, ...], ids: list[str]) -> None:
    kept = S2ANodePostprocessor(mode="keep_list", llm=keep(*numbers)).postprocess_nodes(
        nodes(), query_str=QUERY
    )
    assert [n.node.node_id for n in kept] == ids


def test_empty_node_list_makes_no_call() -> None:
    llm = keep(1)
    assert S2ANodePostprocessor(mode="keep_list", llm=llm).postprocess_nodes([], query_str=QUERY) == []
    assert llm.prompts == []


def test_sentence_granularity_rebuilds_text_from_kept_sentences() -> None:
    node = NodeWithScore(
        node=TextNode(text="Paris is in France. I love cheese. It is big.", id_="x"), score=0.5
    )
    kept = S2ANodePostprocessor(mode="keep_list", llm=keep(1, 3), granularity="sentence").postprocess_nodes(
        [node], query_str=QUERY
    )
    assert kept[0].node.get_content() == "Paris is in France. It is big."
    assert (kept[0].node.node_id, kept[0].score) == ("x", 0.5)
    assert (
        node.node.get_content() == "Paris is in France. I love cheese. It is big."
    )  # the input is not mutated


def test_windowing_on_a_large_set() -> None:
    many = [
        NodeWithScore(node=TextNode(text=f"Fact {i} about Paris and its history.", id_=str(i)))
        for i in range(60)
    ]
    llm = keep(1)
    kept = S2ANodePostprocessor(mode="keep_list", llm=llm, window_tokens=400).postprocess_nodes(
        many, query_str=QUERY
    )
    assert len(llm.prompts) > 1
    assert [n.node.node_id for n in kept] == sorted((n.node.node_id for n in kept), key=int)
    firsts = [re.search(r"\[1\] Fact (\d+)", p) for p in llm.prompts]
    assert [n.node.node_id for n in kept] == [m.group(1) for m in firsts if m]


async def test_sync_and_async_agree() -> None:
    many = [NodeWithScore(node=TextNode(text=f"Fact {i} about Paris.", id_=str(i))) for i in range(30)]
    postprocessor = S2ANodePostprocessor(mode="keep_list", llm=keep(2, 3), window_tokens=300)
    sync = postprocessor.postprocess_nodes(many, query_str=QUERY)
    asynchronous = await postprocessor.apostprocess_nodes(many, query_str=QUERY)
    assert [n.node.node_id for n in sync] == [n.node.node_id for n in asynchronous]
    assert len(sync) > 2


def test_fallback_keeps_all_and_raise_raises() -> None:
    unusable = ScriptedLLM(lambda _prompt: "Sorry, I cannot.")
    given = nodes()
    assert (
        S2ANodePostprocessor(mode="keep_list", llm=unusable).postprocess_nodes(given, query_str=QUERY)
        == given
    )
    with pytest.raises(S2AParseError):
        S2ANodePostprocessor(mode="keep_list", llm=unusable, fallback="raise").postprocess_nodes(
            given, query_str=QUERY
        )


def test_llm_defaults_to_settings_and_never_to_a_vendor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Settings, "_llm", None)
    with pytest.raises(ValueError, match="no LLM: pass llm="):
        S2ANodePostprocessor(mode="keep_list").postprocess_nodes(nodes(), query_str=QUERY)
    monkeypatch.setattr(Settings, "_llm", keep(1))
    assert len(S2ANodePostprocessor(mode="keep_list").postprocess_nodes(nodes(), query_str=QUERY)) == 1


def test_query_is_required() -> None:
    with pytest.raises(ValueError, match="needs the query"):
        S2ANodePostprocessor(mode="keep_list", llm=keep(1)).postprocess_nodes(nodes())


def test_prompts_are_swappable() -> None:
    llm = keep(1)
    postprocessor = S2ANodePostprocessor(mode="keep_list", llm=llm)
    assert "selection_prompt" in postprocessor.get_prompts()
    template = PromptTemplate("MINE {focus}|{query}|{unit_name}\n{items}")
    postprocessor.update_prompts({"selection_prompt": template})
    postprocessor.postprocess_nodes(nodes(), query_str=QUERY)
    assert llm.prompts[0].startswith("MINE ")
    with pytest.raises(ValueError, match="must use exactly the fields"):
        postprocessor.update_prompts({"selection_prompt": PromptTemplate("only {query}")})


def test_instrumentation_events() -> None:
    with recorded_events() as seen:
        S2ANodePostprocessor(mode="keep_list", llm=keep(1)).postprocess_nodes(nodes(), query_str=QUERY)
    start = next(e for e in seen if isinstance(e, S2ASelectionStartEvent))
    end = next(e for e in seen if isinstance(e, S2ASelectionEndEvent))
    assert (start.query, start.nodes, start.windows) == (QUERY, 4, 1)
    assert (end.kept, end.nodes, end.calls, end.fallback) == (1, 4, 1, None)
    assert (end.kept_ids, end.dropped_ids) == (["n0"], ["n1", "n2", "n3"])


class FixedRetriever(BaseRetriever):
    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return nodes()


def test_in_a_query_engine() -> None:
    answers = ScriptedLLM(lambda p: '{"keep": [1]}' if "numbered documents" in p else "ANSWER: " + p)
    engine = RetrieverQueryEngine.from_args(
        FixedRetriever(),
        llm=answers,
        node_postprocessors=[S2ANodePostprocessor(mode="keep_list", llm=answers)],
    )
    response = engine.query(QUERY)
    assert [n.node.node_id for n in response.source_nodes] == ["n0"]
    assert "Paris is in France." in str(response)
    assert "Spain" not in str(response)


def test_function_tool() -> None:
    tool = S2ANodePostprocessor(mode="keep_list", llm=keep(1, 3)).as_tool()
    assert tool.metadata.name == "s2a_filter"
    output = tool.call(text="Paris is in France. Buy now! It is big.", question=QUERY)
    assert output.content == "Paris is in France. It is big."


def test_grammar_and_window_through_tgi(fake_tgi: FakeTGI) -> None:
    fake_tgi.max_input_tokens = 1000
    fake_tgi.reply = lambda body: '{"keep": [1]}'
    llm = tgi_llm("http://tgi.test:8080")
    assert llm.metadata.context_window == 1000  # read from the server's /info
    kept = S2ANodePostprocessor(mode="keep_list", llm=llm).postprocess_nodes(nodes(), query_str=QUERY)
    assert [n.node.node_id for n in kept] == ["n0"]
    (body,) = fake_tgi.bodies("/v1/chat/completions")
    assert body["response_format"]["type"] == "json"
    assert body["response_format"]["value"]["properties"]["keep"]["items"]["maximum"] == 4
    assert body["temperature"] == 0.0
    assert fake_tgi.hosts == {"tgi.test"}
