"""S2A in front of a TGI-served model: the same question with and without S2A.

Run against a TGI server (e.g. one serving LLaMA-2-70B-chat):

    S2A_TGI_URL=http://127.0.0.1:8080 python examples/opinionated_question.py
"""

from __future__ import annotations

import os

from langchain_core.output_parsers import StrOutputParser

from langchain_s2a import S2ARunnable, create_s2a_chain, tgi_chat_model

PROMPT = (
    "Which river is longer, the Nile or the Amazon? I'm pretty sure it's the Amazon, my teacher said so, "
    "and by the way I'm visiting Brazil next summer."
)


def main() -> None:
    llm = tgi_chat_model(os.environ.get("S2A_TGI_URL", "http://127.0.0.1:8080"))
    for variant in ("scored", "separated"):
        result = S2ARunnable(llm=llm, variant=variant).invoke(PROMPT)
        print(f"--- {variant}: what the answer step sees (fallback: {result.fallback})")
        print(result.prompt)
    print("--- baseline answer:", (llm | StrOutputParser()).invoke(PROMPT))
    print("--- S2A answer:", create_s2a_chain(llm).invoke(PROMPT))


if __name__ == "__main__":
    main()
