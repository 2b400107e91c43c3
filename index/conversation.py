"""Conversation: telling chit-chat from questions, and reading a follow-up with the question it follows.

Both are plain-text rules, no model: a thread's "and when?" or "what about Jaecoo?" only makes
sense with the question before it, and a "thanks!" is not a question to decline. The front ends
(the Discord bot's threads) call them; the engine answers the question they return.
"""

from __future__ import annotations

import re

from .terms import STOPWORDS

#: Whole messages that are thanks, greetings, reactions or acknowledgements, not questions.
_CHITCHAT = re.compile(
    r"(?:(?:many |great |ok |okay )?thanks?(?: you| a lot| so much| mate| again)*|thank you(?: so much| very much)?|"
    r"thx|ty|cheers|ta|ok(?:ay)?|k|kk|cool|nice|great|awesome|perfect|brilliant|excellent|good|"
    r"good (?:bot|job|answer|one)|got it|makes sense|i see|interesting|wow|lol|lmao|haha+|hehe+|"
    r"hi|hello|hey|hiya|yo|morning|good (?:morning|evening|night)|bye|goodbye|see you|later|"
    r"np|no problem|sure|yes|yeah|yep|no|nope|nah|fine|alright|right|true|agreed|"
    r"(?:that'?s|this is) (?:great|helpful|useful|interesting|perfect|cool|nice|wild|crazy)|"
    r"(?:very )?helpful|love it|amazing)",
    re.IGNORECASE,
)
_CHITCHAT_LEAD = re.compile(rf"(?:{_CHITCHAT.pattern})\b", re.IGNORECASE)
#: Words that may follow thanks without making it a question ("thanks, that helps a lot mate").
_POLITE = frozenset(["helps", "helped", "helpful", "useful", "answer", "answers", "bot", "mate", "buddy", "guys",
                     "everyone", "lot", "much", "perfect", "great", "brilliant", "nice", "info", "clear"])
_NON_WORDS = re.compile(r"[\W_]+", re.UNICODE)

#: Words that open a follow-up which leans on the question before it.
_LEADING = re.compile(r"^\s*(?:and|but|so|also|ok(?:ay)?|then|and then|hmm+|well)\b[\s,]*", re.IGNORECASE)
_WHAT_ABOUT = re.compile(r"^\s*(?:what|how)\s+about\s+(?P<topic>.+?)\s*\??\s*$", re.IGNORECASE)
_ANAPHORA = frozenset(["it", "its", "they", "them", "their", "that", "this", "those", "these", "he", "him", "his",
                       "she", "her", "there", "then", "one"])
_WORD = re.compile(r"[\w'’-]+", re.UNICODE)


def is_chitchat(text: str) -> bool:
    """Whether a message is thanks, a greeting or a reaction (no question to answer or decline)."""
    stripped = text.strip()
    words = _NON_WORDS.sub(" ", stripped).strip()
    if not words:  # empty, or only emoji and punctuation: a reaction
        return True
    if "?" in stripped:
        return False
    if _CHITCHAT.fullmatch(words):
        return True
    lead = _CHITCHAT_LEAD.match(words)  # "thanks, that helps a lot"
    if lead is None or len(words.split()) > 8:
        return False
    return all(w in STOPWORDS or w in _POLITE or _CHITCHAT.fullmatch(w) for w in words[lead.end():].lower().split())


def _content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text) if w.lower() not in STOPWORDS and w.lower() not in _ANAPHORA]


def _names(question: str) -> list[str]:
    """Capitalised word runs after the first word: the question's named things ("Chery", "New York")."""
    words = _WORD.findall(question)
    runs: list[list[str]] = []
    for i, w in enumerate(words):
        if i > 0 and w[:1].isupper() and w.lower() not in STOPWORDS:
            if runs and runs[-1][-1] == words[i - 1]:
                runs[-1].append(w)
            else:
                runs.append([w])
    return [" ".join(r) for r in runs]


def is_elliptical(follow_up: str) -> bool:
    """Whether a follow-up needs the question before it: "and when?", "what about Jaecoo?", "why did
    they do it?"; not a question that names its own subject."""
    text = follow_up.strip()
    if _LEADING.match(text):
        return True
    if _WHAT_ABOUT.match(text):
        return True
    words = [w.lower() for w in _WORD.findall(text)]
    content = _content_words(text)
    if len(content) <= 1:
        return True
    # Short, and naming nothing of its own ("how many jobs?"), or pointing back ("why did they?").
    return len(content) <= 3 and (not _names(text) or any(w in _ANAPHORA for w in words))


def contextualise(follow_up: str, earlier: str | None) -> str:
    """The question a follow-up means, given the question it follows (``earlier``; None: none).

    * "what about X?" asks the earlier question of X: X replaces the earlier question's first named
      thing ("What did Chery say about UK sales?" + "what about Jaecoo?" -> "What did Jaecoo say
      about UK sales?"), or joins it when it names nothing;
    * any other follow-up that leans on it ("and when?", "did they say why?") is asked of it: the
      follow-up, then the earlier question ("When? What did Chery say about UK sales?"), so the
      follow-up's question word decides what kind of answer is wanted.

    A follow-up that stands on its own is returned unchanged.
    """
    text = " ".join(follow_up.split())
    if not earlier or not is_elliptical(text):
        return text
    earlier = " ".join(earlier.split()).rstrip(" ?")
    bare = _LEADING.sub("", text).strip() or text
    about = _WHAT_ABOUT.match(bare)
    if about:
        topic = about["topic"].strip()
        names = _names(earlier)
        if names:
            return re.sub(rf"\b{re.escape(names[0])}\b", topic, earlier, count=1) + "?"
        return f"{earlier}: what about {topic}?"
    bare = bare[:1].upper() + bare[1:]
    return f"{bare.rstrip(' ?')}? {earlier}?"
