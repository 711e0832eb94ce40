"""A small corpus with planted distractors, for the RAG examples, tests and benchmarks.

Each topic has documents that answer its question, one planted opinionated document (a
confident, wrong claim in the first person) and one planted off-topic document that shares
the question's words, so that a BM25 retriever brings all of them back together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["relevant", "opinion", "off_topic"]


@dataclass(frozen=True)
class Doc:
    """A document of the corpus and what it was planted as."""

    id: str
    text: str
    kind: Kind


@dataclass(frozen=True)
class Query:
    """A question, the documents that answer it, and words a correct answer contains."""

    question: str
    relevant: tuple[str, ...]
    answer_words: tuple[str, ...]


DOCS: tuple[Doc, ...] = (
    Doc("eiffel-1", "The Eiffel Tower stands in Paris, on the Champ de Mars beside the Seine.", "relevant"),
    Doc("eiffel-2", "The Eiffel Tower was completed in 1889 for the World's Fair held in Paris.", "relevant"),
    Doc(
        "eiffel-op",
        "Honestly, I am sure the Eiffel Tower is in London; anyone who says otherwise is wrong.",
        "opinion",
    ),
    Doc("eiffel-off", "Tower cranes are used on building sites to lift steel and concrete.", "off_topic"),
    Doc(
        "everest-1",
        "Mount Everest is the highest mountain on Earth, at 8,849 metres above sea level.",
        "relevant",
    ),
    Doc(
        "everest-2", "Mount Everest lies in the Himalayas, on the border between Nepal and China.", "relevant"
    ),
    Doc(
        "everest-op",
        "I strongly believe the highest mountain is K2, whatever the textbooks claim.",
        "opinion",
    ),
    Doc("everest-off", "A mountain bike needs wider tyres than a road bike for rough trails.", "off_topic"),
    Doc("water-1", "At sea level, pure water boils at 100 degrees Celsius.", "relevant"),
    Doc(
        "water-2",
        "Water boils at a lower temperature on high mountains because the air pressure is lower.",
        "relevant",
    ),
    Doc(
        "water-op",
        "In my opinion water boils at 50 degrees Celsius; my grandmother always said so.",
        "opinion",
    ),
    Doc("water-off", "Water polo is a team sport played in a swimming pool.", "off_topic"),
    Doc("moon-1", "Neil Armstrong was the first person to walk on the Moon, on 21 July 1969.", "relevant"),
    Doc("moon-2", "Armstrong stepped onto the Moon from the Apollo 11 lunar module Eagle.", "relevant"),
    Doc(
        "moon-op",
        "I personally think Buzz Aldrin walked on the Moon first and the history books are wrong.",
        "opinion",
    ),
    Doc("moon-off", "The first full Moon of autumn is often called the harvest Moon.", "off_topic"),
    Doc("python-1", "Python was created by Guido van Rossum and first released in 1991.", "relevant"),
    Doc("python-2", "Guido van Rossum named Python after the comedy group Monty Python.", "relevant"),
    Doc(
        "python-op",
        "I am convinced Python was created by James Gosling; I read it somewhere once.",
        "opinion",
    ),
    Doc("python-off", "The python is a large snake that kills its prey by constriction.", "off_topic"),
    Doc(
        "blood-1",
        "The heart pumps blood through the body; an adult heart beats about 60 to 100 times a minute.",
        "relevant",
    ),
    Doc("blood-2", "The heart has four chambers: two atria and two ventricles.", "relevant"),
    Doc(
        "blood-op",
        "I feel the heart has six chambers, and I do not trust the biology teachers who disagree.",
        "opinion",
    ),
    Doc("blood-off", "Heart-shaped boxes of chocolate are sold for Valentine's Day.", "off_topic"),
)

QUERIES: tuple[Query, ...] = (
    Query("In which city is the Eiffel Tower?", ("eiffel-1", "eiffel-2"), ("paris",)),
    Query("What is the highest mountain on Earth?", ("everest-1", "everest-2"), ("everest",)),
    Query("At what temperature does water boil at sea level?", ("water-1", "water-2"), ("100",)),
    Query("Who was the first person to walk on the Moon?", ("moon-1", "moon-2"), ("armstrong",)),
    Query("Who created the Python programming language?", ("python-1", "python-2"), ("guido", "rossum")),
    Query("How many chambers does the heart have?", ("blood-1", "blood-2"), ("four", "4")),
)

DISTRACTORS = frozenset(doc.id for doc in DOCS if doc.kind != "relevant")
"""Ids of the planted opinionated and off-topic documents."""


def correct(answer: str, query: Query) -> bool:
    """Whether `answer` contains one of the words a correct answer to `query` contains."""
    lowered = answer.lower()
    return any(word in lowered for word in query.answer_words)
