"""Terms of sentences and questions for the lexical features: tokenise, drop stop words, stem.

Each sentence's terms are computed once, at build time, and stored with it; the index keeps a
document frequency for every term, so a question's term weights (IDF) and each candidate's BM25
cost dictionary look-ups, not queries.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections import Counter
from functools import lru_cache

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)

STOPWORDS = frozenset(
    ["a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "whose", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves", "according", "reportedly", "said", "says", "say", "week", "weeks", "year", "years", "day", "days", "recently", "recent", "new", "news", "what's", "who's", "it's"]
)

# A small thesaurus of words that news text uses interchangeably (after stemming): a question that
# says "stopped production" should match a sentence that says "halted output". Deliberately short
# and general; each group maps to its first word.
_SYNONYM_GROUPS = [
    "stop halt suspend interrupt pause shut shutdown cease",
    "production output manufactur",
    "rise increase jump climb soar surge",
    "fall drop decline plunge slump tumble",
    "buy acquire purchase",
    "sell sold",
    "kill dead death die",
    "injure hurt wound",
    "say told tell state announce",
    "ceo chief executive boss head leader",
    "firm company business",
    "car vehicle",
    "job employment",
    "win won victory",
    "lose lost defeat",
    "begin start launch",
    "end finish conclude",
    "attack strike assault",
    "ban prohibit outlaw",
    "fire sack dismiss",
    "hire recruit",
    "plant factory facility site",
    "law legislation bill",
    "price cost",
]
SYNONYMS: dict[str, str] = {}
for _group in _SYNONYM_GROUPS:
    _words = _group.split()
    for _w in _words:
        SYNONYMS.setdefault(_w, _words[0])


_MEMBERS: dict[str, set[str]] = {}
for _w, _head in SYNONYMS.items():
    _MEMBERS.setdefault(_head, set()).add(_w)


def canon(term: str) -> str:
    """The representative of a term's synonym group (the term itself when it has none)."""
    return SYNONYMS.get(term, term)


def members(key: str) -> frozenset[str]:
    """Every term whose :func:`canon` is ``key``: the reverse of the synonym map."""
    return frozenset(_MEMBERS.get(key, ())) | {key}


BM25_K1 = 1.2
BM25_B = 0.75


def words(text: str) -> list[str]:
    """Lower-cased word tokens (apostrophes normalised)."""
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


def raw_words(text: str) -> list[str]:
    """Word tokens as written (for capitalisation features)."""
    return _WORD.findall(text)


@lru_cache(maxsize=1 << 16)
def stem(w: str) -> str:
    """A light suffix stripper: enough to match "strikes"/"strike", "stopped"/"stop"."""
    for suf in ("'s", "ies", "ing", "ed", "es", "s"):
        if len(w) > len(suf) + 2 and w.endswith(suf):
            base = w[: -len(suf)] + ("y" if suf == "ies" else "")
            if suf in ("ing", "ed") and len(base) > 3 and base[-1] == base[-2] and base[-1] not in "lsz":
                base = base[:-1]  # "stopped" -> "stop", "planning" -> "plan"
            return base
    return w


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def terms(text: str) -> list[str]:
    """The distinct stemmed content words of ``text``, in order of first appearance."""
    return list(dict.fromkeys(stem(w) for w in content_words(text)))


def idf(df: int, n: int) -> float:
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


class TermStats:
    """Document frequencies of terms over the index's sentences."""

    def __init__(self, df: dict[str, int], n_sentences: int, avg_terms: float) -> None:
        self.df = df
        self.n = max(n_sentences, 1)
        self.avg_terms = avg_terms or 1.0

    def idf(self, term: str) -> float:
        return idf(self.df.get(term, 0), self.n)

    def tf_part(self, length: int) -> float:
        """BM25's term-frequency factor for a term that occurs once in a sentence of ``length`` terms."""
        return (BM25_K1 + 1) / (1 + BM25_K1 * (1 - BM25_B + BM25_B * length / self.avg_terms))

    @classmethod
    def load(cls, db: sqlite3.Connection) -> TermStats:
        df = dict(db.execute("SELECT term, df FROM term_df"))
        n, total = db.execute("SELECT count(*), coalesce(sum(n_terms), 0) FROM sentences").fetchone()
        return cls(df, n, total / n if n else 1.0)


SCHEMA = """
CREATE TABLE IF NOT EXISTS term_df(term TEXT PRIMARY KEY, df INTEGER NOT NULL) WITHOUT ROWID;
"""


def update_df(db: sqlite3.Connection, added: Counter[str], removed: Counter[str]) -> None:
    """Apply the document-frequency changes of a rebuild."""
    delta = Counter(added)
    delta.subtract(removed)
    db.executemany(
        "INSERT INTO term_df(term, df) VALUES (?, ?) ON CONFLICT(term) DO UPDATE SET df = df + excluded.df",
        [(t, d) for t, d in delta.items() if d],
    )
    db.execute("DELETE FROM term_df WHERE df <= 0")
