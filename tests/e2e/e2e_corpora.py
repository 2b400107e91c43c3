"""Extra articles for the end-to-end tests: hostile text, very long sentences, enough to page through.

:func:`write_hostile_corpus` copies the seed corpus and adds

* ``harbour.md``: sentences (and a title and outlet) with ``@everyone``, a role mention and a
  masked link, which the bot must quote as harmless text;
* ``tideway-N.md``: one sentence of about 3,500 characters each, so an answer quoting them
  would overflow Discord's limits unless it is trimmed;
* ``lighthouse-NN.md``: many short articles on one story, so answers cite many sources and
  ``/sources`` has several pages.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

EVIL_URL = "https://evil.example"
MASKED_LINK = f"[click here]({EVIL_URL})"
LIGHTHOUSE_ARTICLES = 22
LONG_ARTICLES = 4

HOSTILE_QUESTION = "When do the harbour festival fireworks start?"
LONG_QUESTION = "What did the Tideway barrier inquiry conclude about the flood gates?"
MANY_QUESTION = "How much did the Gull Rock lighthouse restoration cost?"


def hostile_article(role_id: int) -> str:
    role = f"<@&{role_id}>"
    return f"""---
id: harbour
title: "@everyone Harbour festival {role} {MASKED_LINK}"
source: "{role} Gazette"
url: https://news.example/harbour
published: 2025-06-01
---
The harbour festival fireworks start at 9pm on Saturday, organisers told @everyone at the quayside meeting.
Volunteers were asked by {role} to arrive at the harbour festival by 7pm to help with the fireworks barriers.
Tickets for the harbour festival fireworks are on sale at {MASKED_LINK} according to a flyer handed out in town.
The festival committee said the harbour fireworks would go ahead even if it rains, @here included.
"""


def _long_sentence(n: int, length: int = 4500) -> str:
    clause = (
        f"the Tideway barrier inquiry concluded in report {n} that the flood gates had been "
        "poorly maintained for years, that inspections of the flood gates were skipped, and that the "
        "contractor responsible for the barrier's hydraulic flood gates ignored repeated warnings"
    )
    parts = [clause]
    while sum(len(p) for p in parts) < length:
        parts.append(clause.replace("the Tideway", "and the Tideway", 1))
    return "In its findings " + ", ".join(parts) + "."


def long_article(n: int) -> str:
    """One sentence of about 4,500 characters: alone it overflows an embed's 4,096."""
    return f"""---
id: tideway-{n}
title: Tideway barrier inquiry findings, part {n}
source: River Post
url: https://news.example/tideway/{n}
published: 2025-05-{n + 10:02d}
---
{_long_sentence(n)}
"""


def lighthouse_article(n: int) -> str:
    cost = 2 + n / 10
    return f"""---
id: lighthouse-{n:02d}
title: Gull Rock lighthouse restoration report {n:02d}
source: Coastal Herald {n:02d}
url: https://news.example/lighthouse/{n}
published: 2025-04-{n % 28 + 1:02d}
---
The Gull Rock lighthouse restoration cost £{cost:.1f} million, according to report {n:02d} from the Coastal Herald.
Engineers replaced the lantern room of the Gull Rock lighthouse during the restoration, which took {n + 10} months.
The restoration of the lighthouse was paid for by the harbour trust and a national heritage grant.
"""


def write_hostile_corpus(dst: Path, role_id: int) -> Path:
    """The seed corpus plus the articles above, in ``dst``."""
    shutil.copytree(ROOT / "corpus", dst)
    (dst / "harbour.md").write_text(hostile_article(role_id), encoding="utf-8")
    for n in range(1, LONG_ARTICLES + 1):
        (dst / f"tideway-{n}.md").write_text(long_article(n), encoding="utf-8")
    for n in range(1, LIGHTHOUSE_ARTICLES + 1):
        (dst / f"lighthouse-{n:02d}.md").write_text(lighthouse_article(n), encoding="utf-8")
    return dst
