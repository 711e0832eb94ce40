"""LangChain: S2A over a chat history, turn after turn.

Earlier turns carry facts, an opinion and off-topic chatter; at each turn `S2ARunnable` reads
the history as `{"messages": [...]}` (the last user message is the question, the rest is
filtered) and the same model answers from `result.prompt`. The answers go back into the
history, which is kept in a plain list.

    S2A_TGI_URL=http://127.0.0.1:8080 python examples/conversational_chain.py
"""

from __future__ import annotations

import os

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser

from langchain_s2a import S2ARunnable, tgi_chat_model

HISTORY: list[BaseMessage] = [
    HumanMessage(
        "I'm planning a trip to Rome next spring, mostly for the food. My cat hates travelling, though."
    ),
    AIMessage(
        "Rome is lovely in spring. The Colosseum stands in the centre of Rome, "
        "and the Tiber flows through the city."
    ),
    HumanMessage(
        "I'm pretty sure the Colosseum was built by Julius Caesar, my neighbour told me so. "
        "Also, I spilled coffee on my laptop this morning."
    ),
    AIMessage(
        "Sorry about the laptop! The Colosseum was begun under the emperor Vespasian "
        "and completed under Titus in 80 AD."
    ),
]
QUESTIONS = (
    "Who built the Colosseum?",
    "Which river flows through the city the Colosseum is in?",
)


def main() -> None:
    llm = tgi_chat_model(os.environ.get("S2A_TGI_URL", "http://127.0.0.1:8080"), max_new_tokens=96)
    # The default, scored: the model only says keep or drop for each of the history's sentences
    # (and the stance rules drop a stated belief by its words), so even a small model cannot
    # answer in place of filtering. The rewriting variant ("separated") suits larger models
    # such as LLaMA-2-70B-chat.
    s2a = S2ARunnable(llm=llm)
    answer = llm | StrOutputParser()
    history = list(HISTORY)
    for number, question in enumerate(QUESTIONS, start=1):
        history.append(HumanMessage(question))
        result = s2a.invoke({"messages": history})
        reply = answer.invoke(result.prompt).strip()
        history.append(AIMessage(reply))
        print(f"=== turn {number}: {question}")
        print(f"--- S2A prompt (sentences kept: {result.kept}, fallback: {result.fallback}):")
        print(result.prompt)
        print("--- answer:", reply)
    print(f"=== history: {len(history)} messages")


if __name__ == "__main__":
    main()
