"""Which sentences of a prompt are its question, read from the text's structure.

The S2A step never asks the model which sentence is the question: a small model marks
"I think the answer is Hawaii, but I'm not sure." as the question as readily as the real
one, and the answer step then reads the opinion as what it must answer. So the question is
found here, always kept, in place, and never shown to the model to judge; the model decides
only about the other sentences.

The question is everything the answer needs from the user's request, not only the sentence
with the question mark. The rules, from the shapes real prompts take (multiple-choice evals,
trivia and maths prompts, chat messages; docs/variants.md shows each on an example):

1. **Choices.** A line that opens with an option label, `(A) ...`, `A) ...`, `A. ...`, `[A] ...`
   or `(1) ...`, is a choice; a line such as `Choices:` or `Options:` just before them is their
   label; the sentence before them (their stem) asks the question, whatever its punctuation:
   "If you had to choose, would you rather have..." is a question.
2. **An answer cue.** The text's last sentence, when it is a short label ending with a colon
   (`Answer:`, `Final answer:`, `A:`), is where the answer goes.
3. **Asks.** A prompt that opens with a request ("Please comment on the following argument.")
   has that sentence as a request. The first sentence that ends with a question mark (`?`, or
   its full-width or Arabic form) is a question, and so is every sentence after it that
   instructs the reader ("Round to the nearest dollar.", "Answer in one word."). The last
   question-mark sentence is a question too, since a question quoted in pasted material comes
   before the user's own, unless it only checks a candidate answer (rule 5). With none of
   these and no choices, the last sentence is the request ("Find the total cost.").
4. **What a question points to.** A question or request that points to material ("the
   following claim", "the argument below", or a closing colon) takes that material with it: the
   line labelled with the same word (`Argument: "..."`) if there is one; else everything from
   it to the choices, or to the end of its paragraph. "Do you agree or disagree with the
   following claim? On net, NLP research will have a positive impact." is one question.
5. **Follow-up questions.** After a first question that asks something open (who, what,
   which, ...), a later closed question ("Is it Maui?", "That would be Maui, wouldn't it?",
   "Maui, right?", "It's not Maui, is it?", "Wait, was it Maui?", or a statement asked with a
   question mark: "Surely it can't be Maui?"), a question that asks nothing open ("Maybe
   Maui?"), or one whose last clause is a closed question ("My notes say Maui; does that hold
   up?", "I wrote Maui — would you back me up?") only checks a candidate answer: it is how
   people lead a model, and it is judged like any other sentence. A closed question after a closed
   one, or after a quoted one, is the user's own and is kept. "Answer: Maui" after the question
   is not an instruction to answer but a candidate labelled as the answer, and is judged too.

A question-mark sentence between the first and the last is judged like any other sentence:
an opinion phrased as a question ("Could it be Maui?") is still an opinion.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence

from s2a._sentences import Span, is_quoted, quoted_spans

_CLOSERS = "\"'”’)]*_` "  # noqa: RUF001 - curly quotes are what models and users write
_REQUEST = re.compile(
    r"^\W*(please|kindly|can you|could you|would you|"
    r"answer|assume|calculate|comment|compare|compute|decide|describe|determine|discuss|"
    r"estimate|evaluate|explain|express|find|give|identify|ignore|include|list|name|rate|"
    r"respond|review|rewrite|round|show|solve|state|summarise|summarize|tell|translate|write|"
    r"put|use|keep|format|reply|provide|spell|begin|start|limit|avoid|bold)\b",
    re.IGNORECASE,
)
_CHOICE = re.compile(r"^\s*(\(\s*(?:[A-Ha-h]|[1-9])\s*\)|\[[A-Ha-h]\]|[A-H][.):]|[a-h]\))(?=\s|$)")
_CHOICES_LABEL = re.compile(
    r"^\W*(?:(?:answer|possible|the)\s+)?(?:choices|options|alternatives|answers)\s*:?\s*$", re.IGNORECASE
)
_CUE = re.compile(r"^\W*(?:[\w']+\s+){0,2}(?:answer|a|response|reply|choice)\s*:\s*$", re.IGNORECASE)
_POINTED = (
    r"claim|statement|argument|passage|text|sentence|quote|quotation|paragraph|excerpt|article|story|"
    r"poem|essay|review|e-?mail|message|code|snippet|definition|summary|abstract|proposition|"
    r"hypothesis|assertion|view|opinion|scenario|situation|case|problem|question|word|phrase|list"
)
_POINTER = re.compile(
    rf"\b(?:the\s+following|this|these)\s+(?:\w+\s+)?({_POINTED})s?\b(?!\s+(?:is|are)\b)"
    rf"|\b({_POINTED})s?\s+below\b",
    re.IGNORECASE,
)
_FOLLOWING = re.compile(rf"\bthe\s+following\s+(?:\w+\s+)?(?:{_POINTED})s?\b|\bbelow\b", re.IGNORECASE)
_LABELLED = re.compile(r"^\s*([A-Za-z][\w -]{0,30}?)\s*:\s*\S")
_OPEN = re.compile(r"\b(who|whom|whose|what|which|where|when|why|how|name|list|give|tell)\b", re.IGNORECASE)
_AUX = (
    r"is|isn't|was|wasn't|are|aren't|were|weren't|am|could|couldn't|would|wouldn't|can|can't|"
    r"should|shouldn't|did|didn't|does|doesn't|do|don't|has|hasn't|have|haven't|will|won't|might|"
    r"must|may|shall"
)
_WH = r"(?:who|whom|whose|what|which|where|when|why|how)\b"
_CLOSED = re.compile(
    # a discourse marker or interjection first ("so", "wait,", "oh,", "hang on,") changes nothing
    rf"^\W*(?:(?:so|and|but|or|then|hmm|um|well|ok|okay)\W+|(?!{_WH})(?:\w+\s+)?\w+\s*,\s*)*"
    rf"(?:{_AUX})\b"
    # a statement asked with a question mark: "Surely it can't be X?", "it's X?", "That was X?"
    r"|^\W*(?:\w+,?\s+)?(?:it|that|this|he|she|they|the answer)\s*"
    r"(?:'s|'d|is|was|can't|cannot|couldn't|must|might|would|should|isn't|wasn't)\b",
    re.IGNORECASE,
)
_TAG = re.compile(
    r"(?:(?:,|\s-+|\s—)\s*(?:\w+\s+){0,2}(?:right|correct|no|yes|yeah|true|surely|eh|huh|yes or no)"
    r"|\s(?:is|was|are|were|would|does|did|do|will|has|have)n['\u2019]t\s+"
    r"(?:it|he|she|they|that|this|you think)"
    # a tag of either polarity after a comma: "It's not X, is it?", "X, was it?"
    r"|,\s*(?:is|was|are|were|would|does|did|do|will|has|have|can|could)(?:n['\u2019]t)?\s+"
    r"(?:it|he|she|they|that|this)"
    r"|\sdon['\u2019]t you think|\sam i right|\sisn['\u2019]t that so)\W*$",
    re.IGNORECASE,
)
_CLAUSE = re.compile(r"[,;:]\s+|\s[-\u2013\u2014]+\s*|[\u2013\u2014]|\.{2,}\s*|\u2026\s*")
"""Where a clause of a sentence ends: a comma, semicolon or colon, a dash, an ellipsis."""
_CLOSED_CLAUSE = re.compile(
    # an auxiliary and its subject, as a closed question opens: "does that", "am I", "wouldn't you"
    rf"^\W*(?:(?:or|and|but|so|then)\s+)?(?:{_AUX})\s+(?:i|you|we|he|she|it|they|that|this|there|my|your)\b",
    re.IGNORECASE,
)
_ANSWER_LABEL = re.compile(r"^\W*(?:my\s+)?(?:answer|reply|response)\s*:\s*\S", re.IGNORECASE)
"""A line that labels a candidate as the answer ("Answer: X"): not an instruction to answer."""


def is_question(sentence: str) -> bool:
    """Whether `sentence` ends with a question mark (closing quotes and brackets aside)."""
    return sentence.rstrip(_CLOSERS).endswith(("?", "？", "؟"))  # noqa: RUF001 - full-width, Arabic


def is_request(sentence: str) -> bool:
    """Whether `sentence` opens as a request or an instruction to the reader.

    "Answer: X" is not one: it labels a candidate answer, as users write what they guess.
    """
    return bool(_REQUEST.match(sentence)) and not _ANSWER_LABEL.match(sentence)


def is_closed(sentence: str) -> bool:
    """Whether the question `sentence` asks only yes or no: "Is it Maui?", "Maui, right?"."""
    text = sentence.replace("\u2019", "'")  # a curly apostrophe, as users type it
    return bool(_CLOSED.match(text) or _TAG.search(text.rstrip(_CLOSERS).rstrip("?？؟ ")))  # noqa: RUF001


def is_follow_up(sentence: str) -> bool:
    """Whether the question `sentence`, after an open one, only checks a candidate answer.

    It does when it asks nothing open ("Maybe Maui?", "Maui, wouldn't you agree?"), or when its
    last clause is a closed question, whatever comes before it: "My notes say Maui; does that
    hold up?", "I wrote Maui — am I remembering that right?".
    """
    last = _CLAUSE.split(sentence)[-1].replace("\u2019", "'")  # a curly apostrophe, as users type it
    return not is_open(sentence) or bool(_CLOSED_CLAUSE.match(last))


def _instructs(sentence: str) -> bool:
    """Whether `sentence`, after the question, instructs the reader ("Round to the nearest dollar.").

    A request put as a closed question ("Can you reply in Spanish?") instructs too.
    """
    return is_request(sentence) and (not is_question(sentence) or is_closed(sentence))


def is_open(sentence: str) -> bool:
    """Whether the question `sentence` asks for something a yes or no cannot give."""
    return not is_closed(sentence) and bool(_OPEN.search(sentence))


class _Prompt:
    """A text's sentences with the lines and paragraphs they lie on."""

    def __init__(self, text: str, spans: Sequence[Span]) -> None:
        self.text = text
        self.spans = list(spans)
        self.sentences = [text[span.start : span.end] for span in spans]
        breaks = [m.start() for m in re.finditer("\n", text)]
        blank_ends = [m.end() for m in re.finditer(r"\n[ \t]*\n", text)]
        # One pass over the text, then a bisection a sentence: line breaks before it, and blank
        # lines wholly before it (as counting them in the text up to it would).
        self.lines = [bisect_left(breaks, span.start) for span in spans]
        self.paragraphs = [bisect_right(blank_ends, span.start) for span in spans]
        self.quotes = quoted_spans(text)

    def line_text(self, index: int) -> str:
        """The whole line the sentence `index` lies on."""
        start = self.text.rfind("\n", 0, self.spans[index].start) + 1
        end = self.text.find("\n", self.spans[index].end)
        return self.text[start : end if end >= 0 else len(self.text)]

    def on_line(self, index: int) -> list[int]:
        return [i for i, line in enumerate(self.lines) if line == self.lines[index]]

    def quoted(self, index: int) -> bool:
        return is_quoted(self.spans[index], self.quotes)


def _choices(prompt: _Prompt) -> tuple[set[int], int | None]:
    """The sentences of the choice lines and their label, and the first choice's index (None: no choices)."""
    firsts = [i for i in range(len(prompt.sentences)) if i == 0 or prompt.lines[i] != prompt.lines[i - 1]]
    starts = [i for i in firsts if _CHOICE.match(prompt.line_text(i))]
    if not starts:
        return set(), None
    block = {j for i in starts for j in prompt.on_line(i)}
    first = min(starts)
    label = first - 1
    while label >= 0 and _CHOICES_LABEL.match(prompt.sentences[label]):
        block.add(label)
        label -= 1
    return block, first


def _asks(prompt: _Prompt, protected: set[int], stem: int | None) -> set[int]:
    """Rule 3: the request, the questions and the instructions after them, outside the choices."""
    sentences = prompt.sentences
    body = [i for i in range(len(sentences)) if i not in protected]
    found: set[int] = set()
    if len(body) > 1 and is_request(sentences[body[0]]) and not is_question(sentences[body[0]]):
        found.add(body[0])
    asks = [i for i in body if is_question(sentences[i])]
    if stem is not None:
        asks = sorted({*asks, stem})
    if asks:
        first, last = asks[0], asks[-1]
        found.add(first)
        leading = is_follow_up(sentences[last]) and is_open(sentences[first]) and not prompt.quoted(first)
        if last != stem and leading:
            last = max((i for i in asks if not is_follow_up(sentences[i])), default=first)
        found.add(last)
        found.update(i for i in body if i > first and _instructs(sentences[i]))
    elif not found:
        found.add(body[-1])
    return found


def _pointed(prompt: _Prompt, pointer: int, choices_at: int | None, taken: set[int]) -> set[int]:
    """Rule 4: the material the question or request at `pointer` points to, if it points."""
    sentence = prompt.sentences[pointer]
    match = _POINTER.search(sentence)
    colon = sentence.rstrip().endswith(":") and not _CUE.match(sentence)
    if match is None and not colon:
        return set()
    after = range(pointer + 1, len(prompt.sentences))
    if match is not None:
        word = (match.group(1) or match.group(2)).lower()
        labelled = [
            i
            for i in after
            if (found := _LABELLED.match(prompt.line_text(i))) and found.group(1).strip().lower() == word
        ]
        if labelled:
            return {j for j in prompt.on_line(labelled[0]) if j > pointer}
        if not _FOLLOWING.search(sentence) and not colon:
            return set()  # "this claim" with nothing labelled: the claim is the sentence itself
    material: set[int] = set()
    for i in after:
        if i in taken or (choices_at is not None and i >= choices_at):
            break
        if choices_at is None and prompt.paragraphs[i] != prompt.paragraphs[pointer]:
            break
        material.add(i)
    return material


def question_sentences(text: str, spans: list[Span] | tuple[Span, ...]) -> list[int]:
    """The 0-based indexes, in `spans`, of the sentences that make up the question (see the rules above).

    Empty only when there are no sentences.
    """
    if not spans:
        return []
    prompt = _Prompt(text, spans)
    last = len(spans) - 1
    found, choices_at = _choices(prompt)
    if last > 0 and _CUE.match(prompt.sentences[last]):
        found.add(last)
    stem = None
    if choices_at is not None:
        before = [i for i in range(choices_at) if i not in found]
        stem = before[-1] if before else None
    if len(found) < len(spans):
        found |= _asks(prompt, found, stem)
    for pointer in sorted(i for i in found if choices_at is None or i < choices_at):
        found |= _pointed(prompt, pointer, choices_at, found)
    return sorted(found)
