"""Which sentences of a prompt are its question or request, read from the text's structure.

The S2A step never asks the model which sentence is the question: a small model marks
"I think the answer is Hawaii, but I'm not sure." as the question as readily as the real
one, and the answer step then reads the opinion as what it must answer. So the question
sentences are found here, and they are always kept, in place; the model decides only about
the others:

- a prompt that opens with a request ("Please comment on the following argument.",
  "Solve the problem below.") has that sentence as a request;
- the first and the last sentence that end with a question mark (`?`, or its full-width or Arabic form) are
  questions, and so is every sentence after the first question that instructs the reader
  ("Round to the nearest dollar.");
- with none of these, the last sentence is the request ("Find the total cost.").

Both ends are kept because either may be the user's: a question quoted in pasted material
comes before the user's own, and in a trivia prompt the user's question comes first and an
opinion after it. A sentence between them that ends with a question mark is decided like
any other: an opinion phrased as a question ("Could it be Maui?") is still an opinion, and
the model may drop it. At the very end, it is kept, as the user's last question: S2A never
drops a question, at the price of sometimes keeping such an opinion.
"""

from __future__ import annotations

import re

from s2a._sentences import Span

_CLOSERS = "\"'”’)]*_` "  # noqa: RUF001 - curly quotes are what models and users write
_REQUEST = re.compile(
    r"^\W*(please|kindly|can you|could you|would you|"
    r"answer|assume|calculate|comment|compare|compute|decide|describe|determine|discuss|"
    r"estimate|evaluate|explain|express|find|give|identify|ignore|include|list|name|rate|"
    r"respond|review|rewrite|round|show|solve|state|summarise|summarize|tell|translate|write)\b",
    re.IGNORECASE,
)


def is_question(sentence: str) -> bool:
    """Whether `sentence` ends with a question mark (closing quotes and brackets aside)."""
    return sentence.rstrip(_CLOSERS).endswith(("?", "？", "؟"))  # noqa: RUF001 - full-width, Arabic


def is_request(sentence: str) -> bool:
    """Whether `sentence` opens as a request or an instruction to the reader."""
    return bool(_REQUEST.match(sentence))


def question_sentences(text: str, spans: list[Span] | tuple[Span, ...]) -> list[int]:
    """The 0-based indexes, in `spans`, of the sentences that state the question or request.

    Empty only when there are no sentences.
    """
    sentences = [text[span.start : span.end] for span in spans]
    if not sentences:
        return []
    found: set[int] = set()
    if len(sentences) > 1 and is_request(sentences[0]) and not is_question(sentences[0]):
        found.add(0)
    asks = [i for i, sentence in enumerate(sentences) if is_question(sentence)]
    if asks:
        found.update({asks[0], asks[-1]})
        found.update(i for i in range(asks[0] + 1, len(sentences)) if is_request(sentences[i]))
    elif not found:
        found.add(len(sentences) - 1)
    return sorted(found)
