"""Stance rules: sentences that tell the answerer what someone believes the answer is, found by their words.

A small model's one-word opinion test tells opinions from facts little better than a coin
beyond the wordings it was tuned on (docs/evaluation.md: AUC 0.70 on the tuning half's
phrasings, 0.38 on hearsay). What marks an opinion about the answer is largely in its words,
in a few families that linguistics describes as stance (epistemic verbs, hedges and boosters,
evidentials, appeals to the many) and that hold whatever the answer is:

- **first-person belief**: the writer (I, my, me) with a verb or phrase of belief, guess or
  certainty ("I reckon", "my gut says", "I'd go with", "I'm fairly certain");
- **reported belief, popularity, assertion or doubt about the answer**: a sentence that refers
  to the answer ("it's", "it was", "the answer is", "that would be") and reports what someone
  says or insists, what most people think, asserts it with a booster ("obviously", "100%") or
  doubts or rejects it ("I doubt", "can't be", "seems wrong");
- **what the many say**: "most people say", "the consensus seems to be";
- **musing**: "rings a bell", "on the tip of my tongue", "my first instinct".

And one rule for biographies: when the question asks where the answerer stands ("Do you agree
or disagree ...", "Which comes closest to your view?", "would you rather", "would you say", or
choices on a survey's scale such as "(A) A great deal (B) Not at all") and, in the sentence that
asks, says nothing of the asker, no sentence in which the writer describes themselves can be needed
to answer it, and every such sentence is what a sycophantic answer feeds on.

A sentence the rules mark is dropped by `scored` (with `focus` `objectivity` or `both`) with no
model call; what they miss is left to the model's opinion test. The question's own sentences
and quoted material are never marked (they are not judged at all, or not tested for opinion).
"""

from __future__ import annotations

import re
from functools import lru_cache

from s2a._question import is_closed, is_question, is_request
from s2a._sentences import split_sentences

_I = r"(?:\bi\b|\bi'(?:m|d|ve|ll)\b|\bmy\b|\bme\b|\bmine\b|\bmyself\b|\bim\b)"
_WE = r"(?:\bwe\b|\bwe'(?:re|d|ve|ll)\b|\bour\b|\bus\b)"
"""The writer in the plural (a team, a family): what "we" guessed is the writer's guess too."""

_BELIEF = (
    r"think|thought|believe[ds]?|believing|reckon|guess|guessing|suppose|assume|(?<=i )bet|(?<='d )bet|"
    r"feel|feeling|"
    r"(?<!make )sure|certain|confident|convinced|suspect|doubt|gut|instinct|hunch|go with|going with|"
    r"pick(?!\s+up)|lean|leaning|want to say|'d say|would say|swear|fairly|probably|maybe|perhaps|"
    r"opinion|seems?|wrong|mistaken"
)
_REPORT = (
    r"says?|said|saying|swears?|swore|insists?|insisted|claims?|claimed|tells?|told|telling|"
    r"reckons?|thinks?|believes?|according to|apparently|supposedly|reportedly|heard|read|"
    r"argues?|argued|maintains?|keeps? saying|put|answered|answers|voted|picked|guessed|"
    r"mentions?|mentioned|states?|stated|wrote|posts?|posted|tweeted|replied|responded|"
    r"confirms?|confirmed|denies|denied|recalls?|recalled|suggests?|suggested|explains?|explained|"
    r"notes?|noted|remarks?|remarked|adds?|added|announced|declared|assures?|assured|"
    r"guarantees?|guaranteed|reckoned|adamant|convinced|positive|"
    r"went with|goes with|go with|chose|chooses|choose|went for|plumped for|put down|wrote down|"
    r"votes?|polls?|survey(?:ed|s)?"
)
"""What someone said, wrote or chose: the verbs of communication of Levin's classes (say, tell),
the adjectives of a held view (adamant, convinced), and the verbs and nouns
of choosing an answer (went with, voted, a poll)."""
_MANY = (
    r"most people|everyone|everybody|all my|the majority|majority of|consensus|popular answer|"
    r"common answer|usual answer|general view|people (?:say|think|keep|seem)|most votes|"
    r"(?:most|many|lots of|loads of|a lot of|plenty of|tons of|half (?:of )?(?:the|my)|"
    r"all (?:the|of the|our)|nearly all|almost all|nearly everyone|almost everyone|every|the whole)"
    r"\s+(?:\w+\s+)?(?:people|"
    r"folks|friends|mates|colleagues|co-?workers|classmates|students|kids|users|commenters|comments|"
    r"posters|players|teams|guys|replies|answers|votes)"
)
"""Appeals to the many: a quantifier over people (or their answers, comments, votes)."""
_BOOST = (
    r"obviously|definitely|certainly|clearly|undoubtedly|100\s*%|no doubt|without (?:a )?doubt|for sure|"
    r"full stop|\bperiod\b|of course|everyone knows|surely|no question|hands down|guaranteed"
)
_DOUBT = (
    r"doubt|don't (?:buy|believe|think)|not (?:convinced|sure|buying)|can't be|cannot be|couldn't be|"
    r"wrong|surprised|refuse|unlikely|no way|disagree|mistaken"
)
_HEDGE = (
    r"apparently|appears?|arguably|assume|assumed|believe|believed|certain|certainly|clearly|could|"
    r"definitely|doubt|doubtful|essentially|evidently|guess|honestly|likely|may|maybe|might|must|"
    r"obviously|perhaps|plausibly|possibly|presumably|pretty|probably|reckon|seems?|seemingly|should|"
    r"sure|surely|suppose|supposedly|suspect|think|totally|truly|unclear|undoubtedly|unlikely|wonder|"
    r"agree|hopefully|prefer|wrong"
)
"""Hedges, boosters and attitude markers, after Hyland's lists of stance in written English: on a
short sentence that names a candidate for the answer, any of them makes it an opinion of it."""
_MY_ANSWER = (
    r"\b(?:my|our) (?:answer|guess|bet|pick|vote|choice|money)\b|\bi(?:'d| would) (?:answer|go|put|pick)\b|"
    r"\b(?:i|we) (?:put(?: down)?|wrote(?: down)?|went (?:with|for)|answered|guessed|picked|chose|said)\b"
)
_MUSING = (
    r"rings? a bell|tip of my tongue|first instinct|part of me|my memory|back and forth|popped into|"
    r"keep (?:coming|going) back|can't shake|feels? right|sounds? right|rings? true|"
    r"could be (?:wrong|mixing)|correct me|not confident|off the top of my head|if i had to|"
    r"my money|i want to say|second opinion|am i right|gut feeling"
)
_REF = (
    r"\bthe (?:\w+ ){0,2}answer(?:'s| is| was| would be| must be| has to be| ?[=:])?|"
    r"\b(?:my|our) answer(?: is)?|\banswer ?[=:]|"
    r"\bit(?: \w+ly| just| really)?(?:'s| is| was| isn't| wasn't| would be| must be| has to be| can't be|"
    r" could be| might be| should be| turned out to be| to be)(?: not)?|\bthat would be|\bseems? to be|"
    r"\bwould be|\bmust be|\bhas to be|\bis my answer"
)
_CANDIDATE = r"(?:\s+[^\s,.;:!?]+){1,5}\s*(?:[,.;:!?]|$)"
"""A short candidate that ends its clause: what an opinion about the answer names."""

_FIRST_BELIEF = re.compile(
    rf"(?:{_I}|{_WE})[^.!?]{{0,40}}?\b(?:{_BELIEF})\b|\b(?:{_BELIEF})\b[^.!?]{{0,40}}?(?:{_I}|{_WE})",
    re.IGNORECASE,
)
_REPORTED = re.compile(rf"\b(?:{_REPORT})\b", re.IGNORECASE)
_SAID = r"says?|said|swears?|swore|insists?|insisted|claims|claimed|reckons?|thinks|believes|told (?:me|us)"
_PRONOUN = (
    r"(?!\s+(?:they|he|she|we|it|you|i|there|this|these|those|in|on|at|to|for|with|by|from|of|about)\b)"
)
"""What a reported candidate does not start with: a clause ("said they could not come") or a
prepositional phrase ("said, in big red letters")."""
_REPORTED_LAST = re.compile(rf"\b(?:{_SAID})\b(?:\s+that)?{_PRONOUN}{_CANDIDATE}", re.IGNORECASE)
_MANY_SAY = re.compile(rf"\b(?:{_MANY})\b", re.IGNORECASE)
_BOOSTED = re.compile(rf"(?:{_BOOST})", re.IGNORECASE)
_DOUBTED = re.compile(rf"\b(?:{_DOUBT})", re.IGNORECASE)
_MUSED = re.compile(rf"\b(?:{_MUSING})\b", re.IGNORECASE)
_NAMES = re.compile(rf"(?:{_REF}){_CANDIDATE}", re.IGNORECASE)
_ANSWER_IS = re.compile(
    rf"(?:\b(?:the|my|our) (?:\w+ ){{0,2}}answer(?:'s| is| was| would be| must be| has to be| ?[=:])|"
    rf"\banswer ?[=:]){_CANDIDATE}",
    re.IGNORECASE,
)
"""A sentence that says what the answer is: from anyone but the question, a claim about it."""
_ELLIPTIC = re.compile(r"^(?!.*\b(?:who|what|when|where|which|why|how|whose|whom)\b)", re.IGNORECASE)
_ELLIPSIS = 3
"""Words in a question short enough to be a bare candidate put as a question ("Sydney?", "or
maybe Perth??"), unless it has a question word ("Wonder who?")."""
_HEDGED = re.compile(rf"\b(?:{_HEDGE})\b", re.IGNORECASE)
_MINE = re.compile(_MY_ANSWER, re.IGNORECASE)
_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”")
_WRITER = re.compile(_I, re.IGNORECASE)
_READERS_VIEW = re.compile(
    r"\b(?:do|would|will|did|can|could) you\b[^?]{0,40}\b(?:agree|disagree|prefer|rather|choose|support|"
    r"oppose|favou?r)\b|\byour (?:own )?(?:view|opinion|position|stance|preference|choice)s?\b|"
    r"\bcomes? closest\b|\bwould you rather\b|\bhow do you feel\b|\bif you had to choose\b|\bwould you say\b",
    re.IGNORECASE,
)
"""Where the answerer stands: agrees, prefers, chooses, supports, would say. Not "do you think",
which as often asks what is true of the asker's situation ("My daughter has a fever of 39C. Do
you think she needs a doctor?"), where what the asker says of themselves is needed."""
_SCALE = re.compile(
    r"\(\s*[a-e]\s*\)\s*(?:strongly |somewhat |mostly )?(?:agree|disagree|a great deal|a fair amount|"
    r"not at all|not too much|not much|favou?r|oppose|support)\b",
    re.IGNORECASE,
)
"""Answer choices on a survey's scale of agreement, degree or support ("(A) A great deal (B) Not
at all"): the question asks where the answerer stands, whatever its words."""
_SHORT = 6
"""Words in a sentence short enough that a booster or "what most people say" is about a candidate."""
_LONG = 16
"""Words past which a sentence is taken for a statement, not a remark about a candidate: the rules
that need no first person apply only to sentences this long or shorter."""
_CHECK = 10
"""Words in a closed question short enough to be checking a candidate ("Is it Maui?")."""


def _own_words(sentence: str) -> str:
    """`sentence` without what it quotes, apostrophes straightened: only the writer's own words are judged."""
    return _QUOTED.sub(" ", sentence.replace("\u2019", "'"))


def _rules(text: str) -> tuple[tuple[str, bool], ...]:
    """Each stance family, in order, and whether `text` (the writer's own words) shows it."""
    words = len(text.split())
    if words > _LONG:  # a statement: only first-person belief and musing are looked for
        return (
            ("musing", bool(_MUSED.search(text))),
            ("first-person belief", bool(_FIRST_BELIEF.search(text))),
        )
    names, short = bool(_NAMES.search(text)), words <= _SHORT
    return (
        ("musing", bool(_MUSED.search(text))),
        ("first-person belief", bool(_FIRST_BELIEF.search(text)) or bool(_MINE.search(text))),
        (
            "a closed question checking a candidate",
            is_question(text)
            and not is_request(text)
            and (
                (is_closed(text) and words <= _CHECK) or (words <= _ELLIPSIS and bool(_ELLIPTIC.match(text)))
            ),
        ),
        ("assertion", bool(_ANSWER_IS.search(text)) and words <= _CHECK + 2),
        ("popularity", bool(_MANY_SAY.search(text)) and (bool(_REPORTED.search(text)) or names or short)),
        ("reported belief", bool(_REPORTED_LAST.search(text)) and words <= _CHECK + 2),
        ("assertion", (names or short) and bool(_BOOSTED.search(text))),
        ("reported belief", names and bool(_REPORTED.search(text))),
        ("doubt", names and bool(_DOUBTED.search(text))),
        ("a hedged or boosted candidate", names and words <= _CHECK + 2 and bool(_HEDGED.search(text))),
    )


def stance(sentence: str) -> str | None:
    """The stance family `sentence` shows toward an answer, or None: a fact, a request, background."""
    return next((family for family, shown in _rules(_own_words(sentence)) if shown), None)


def asks_readers_view(question: str) -> bool:
    """Whether `question` asks where the answerer stands, and says nothing of the asker.

    The asker is looked for in the sentence that asks, not in the claim, passage or choices the
    question points to ("Do you agree ... with the following claim? I expect an NLP winter ..."):
    those are someone's words put to the answerer, not the asker speaking of themselves.
    """
    asking = [s for s in split_sentences(question) if _READERS_VIEW.search(s)]
    if asking:
        return any(not _WRITER.search(_own_words(s)) for s in asking)
    return bool(_SCALE.search(question)) and not _WRITER.search(_own_words(question))


def about_writer(sentence: str) -> bool:
    """Whether the writer speaks of themselves in `sentence` (I, my, me)."""
    return bool(_WRITER.search(_own_words(sentence)))


@lru_cache(maxsize=4096)  # `scored` asks again for every call of a text: `stance_marks`
def marked(question: str, sentence: str) -> str | None:
    """Why `sentence`, written with `question`, tells what someone believes; None if it does not."""
    found = stance(sentence)
    if found is not None:
        return found
    if asks_readers_view(question) and about_writer(sentence):
        return "the asker's own views, to a question about the answerer's"
    return None
