"""Messy and hostile article dumps: every bad file or line is reported with its file (and line),
skipped, and the rest is indexed. Big files are generated in tmp_path at test time."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from relutil import ROOT, answers_of, md
from support import write

from index.embed import HashingEmbedder
from index.loaders import load_corpus
from index.stores.build import build_index
from index.stores.embedded import Snapshot

EMB = HashingEmbedder()

GOOD = {
    "good/port.md": md("Port strike", "Dock workers at the harbour walked out on Monday over pay. "
                       "The strike closed three container terminals."),
    "good/ferry.txt": "Ferry cancelled\nThe island ferry was cancelled because of thick fog. Passengers waited four hours.\n",
    "good/feed.jsonl": json.dumps({"id": "mayor", "title": "Mayor elected", "text":
                                   "Maria Lopez was elected mayor with 54 percent of the vote."}) + "\n",
}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    for name, text in GOOD.items():
        write(root / name, text)
    return root


def _by_where(result) -> dict[tuple[str, int | None], str]:  # type: ignore[no-untyped-def]
    return {(w.path, w.line): w.message for w in result.warnings}


def _assert_good_indexed(corpus: Path, tmp_path: Path, *, extra_ids: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """The good articles load, index and answer; nothing else slipped in."""
    loaded = load_corpus(corpus)
    ids = {a.id for a in loaded.articles}
    assert {"good/port", "good/ferry", "mayor"} | set(extra_ids) == ids
    ix = tmp_path / "ix"
    report = build_index(ix, loaded, EMB)
    assert report.articles == len(ids)
    _, replies = answers_of(ix, EMB, ["Why did the dock workers walk out?", "Who was elected mayor?"])
    assert replies[0].quotes[0][1] == "good/port" and replies[1].quotes[0][1] == "mayor"


# -- single hostile files ---------------------------------------------------------------------------

HOSTILE_FILES: dict[str, tuple[str, str | bytes, int | None, str]] = {
    # name: (file, content, expected line, expected words in the message)
    "empty-md": ("empty.md", "", None, "empty file"),
    "empty-jsonl": ("empty.jsonl", "", None, "empty file"),
    "empty-html": ("empty.html", "", None, "empty file"),
    "whitespace-only": ("blank.txt", "  \n\n\t \n", None, "empty file"),
    "binary-png": ("image.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00", None, "binary"),
    "binary-random": ("noise.txt", bytes(random.Random(1).randrange(256) for _ in range(4096)) + b"\x00", None, "binary"),
    "invalid-utf8-line-3": ("latin1.md", "---\ntitle: Caf\xe9\n---\nBody.\n".encode("latin-1"), 2, "invalid UTF-8"),
    "utf16-with-bom": ("wide.txt", "Title\nA sentence in UTF-16.\n".encode("utf-16"), None, "binary"),
    "front-matter-list": ("list.md", "---\n- a\n- b\n---\nBody text that is fine.\n", 2, "must be a mapping"),
    "front-matter-scalar": ("scalar.md", "---\njust a string\n---\nBody text that is fine.\n", 2, "must be a mapping"),
    "front-matter-number": ("number.md", "---\n42\n---\nBody text that is fine.\n", 2, "must be a mapping"),
    "front-matter-bad-yaml": ("yaml.md", "---\ntitle: [unclosed\n---\nBody text that is fine.\n", 2, "not valid YAML"),
    "front-matter-python-tag": ("tag.md", "---\ntitle: !!python/object/apply:os.system ['echo pwned']\n---\nBody.\n",
                                2, "not valid YAML"),
    "front-matter-too-deep": ("deep.md", "---\ntitle: " + "[" * 20_000 + "\n---\nBody text.\n", 2, "nested too deeply"),
    "front-matter-deep-mapping": ("deepmap.md", "---\ntitle: " + "{a: " * 5_000 + "\n---\nBody text.\n", 2,
                                  "nested too deeply"),
    "front-matter-unclosed": ("open.md", "---\ntitle: never closed\nBody text.\n", 1, "no closing"),
    "front-matter-only": ("nobody.md", "---\ntitle: Nothing below\n---\n\n", 4, "no article text"),
    "html-no-text": ("script.html", "<html><body><script>document.write('Hi there.')</script></body></html>", None,
                     "no article text"),
    "unsupported-type": ("notes.docx", b"PK\x03\x04", None, "unsupported"),
    "no-extension": ("README", "Some text.\n", None, "unsupported"),
}


@pytest.mark.parametrize("case", list(HOSTILE_FILES))
def test_hostile_file_is_reported_with_file_and_line_and_skipped(case: str, corpus: Path, tmp_path: Path) -> None:
    name, content, line, words = HOSTILE_FILES[case]
    write(corpus / name, content)
    result = load_corpus(corpus)
    got = _by_where(result)
    assert (name, line) in got, f"expected a warning at {name}:{line}, got {got}"
    assert words in got[(name, line)]
    assert str(next(w for w in result.warnings if w.path == name)).startswith(name)
    _assert_good_indexed(corpus, tmp_path)


def test_yaml_alias_bomb_in_front_matter_is_harmless(corpus: Path, tmp_path: Path) -> None:
    """'Billion laughs': nine levels of nine aliases. Field values are never str()-ed lists."""
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi"):
        levels.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    text = "---\n" + "\n".join(levels) + "\ntitle: *i\nauthors: *i\nsource: *i\nid: *i\n---\nBomb body text is right here.\n"
    write(corpus / "bomb.md", text)
    started = time.monotonic()
    loaded = load_corpus(corpus)
    assert time.monotonic() - started < 5
    bomb = next(a for a in loaded.articles if a.path == "bomb.md")
    assert bomb.id == "bomb" and bomb.authors == () and bomb.source is None and len(bomb.title) < 100
    _assert_good_indexed(corpus, tmp_path, extra_ids={"bomb"})


# -- big files ----------------------------------------------------------------------------------------


def test_50_mb_file_is_skipped_and_the_rest_indexed(corpus: Path, tmp_path: Path) -> None:
    big = corpus / "huge.txt"
    line = ("The same long sentence is written again and again to make a very large file. " * 14)[:1023] + "\n"
    with big.open("w") as fh:
        for _ in range(50 * 1024):
            fh.write(line)
    assert big.stat().st_size >= 50 * 1024 * 1024
    started = time.monotonic()
    got = _by_where(load_corpus(corpus))
    assert time.monotonic() - started < 10
    assert "file is 50 MiB, over the 20 MiB limit" in got[("huge.txt", None)]
    _assert_good_indexed(corpus, tmp_path)
    big.unlink()


@pytest.mark.parametrize("kind", ["txt", "md", "html", "jsonl"])
def test_article_over_the_size_limit_is_skipped_in_every_format(kind: str, corpus: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import index.loaders

    # The limit is 2 MiB characters; a smaller one exercises the same check without megabytes of HTML.
    monkeypatch.setattr(index.loaders, "MAX_ARTICLE_CHARS", 20_000)
    body = "A sentence about nothing in particular. " * 600
    content = {
        "txt": f"Title\n{body}\n",
        "md": md("Big", body),
        "html": f"<html><body><article><h1>Big</h1><p>{body}</p></article></body></html>",
        "jsonl": json.dumps({"id": "big", "text": body}) + "\n",
    }[kind]
    write(corpus / f"big.{kind}", content)
    got = _by_where(load_corpus(corpus))
    where = ("big.jsonl", 1) if kind == "jsonl" else (f"big.{kind}", None)
    assert "article text over 20,000 characters" in got[where], got
    _assert_good_indexed(corpus, tmp_path)


def test_100k_line_jsonl_with_bad_lines_scattered(corpus: Path, tmp_path: Path) -> None:
    rng = random.Random(7)
    bad_kinds = {
        "malformed": (b'{"id": "x", "text": "unterminated\n', "malformed JSON"),
        "array": (b"[1, 2, 3]\n", "expected a JSON object"),
        "string": (b'"just a string"\n', "expected a JSON object"),
        "no-text": (b'{"id": "notext", "title": "No text"}\n', "no 'text'"),
        "empty-text": (b'{"id": "blank", "text": "   "}\n', "no 'text'"),
        "text-not-string": (b'{"id": "num", "text": 12345}\n', "no 'text'"),
        "invalid-utf8": (b'{"id": "bad", "text": "caf\xe9 au lait."}\n', "invalid UTF-8"),
        "lone-surrogate": (b'{"id": "sur", "text": "Broken \\ud800 text here."}\n', "lone surrogate"),
        "too-deep": (b"[" * 50_000 + b"]" * 50_000 + b"\n", "nested too deeply"),
        "nul-line": (b"\x00\x00\x00\n", "malformed JSON"),
    }
    lines: list[bytes] = []
    expected: dict[int, str] = {}
    n_lines = 100_000
    bad_at = sorted(rng.sample(range(2, n_lines), 300))
    kinds = list(bad_kinds)
    good_ids = []
    bad_iter = iter(bad_at)
    next_bad = next(bad_iter)
    for lineno in range(1, n_lines + 1):
        if lineno == next_bad:
            content, words = bad_kinds[kinds[len(expected) % len(kinds)]]
            lines.append(content)
            expected[lineno] = words
            next_bad = next(bad_iter, -1)
        elif lineno % 10_007 == 0:  # a duplicate of an earlier id
            lines.append(json.dumps({"id": "dump-1", "text": "A duplicate line."}).encode() + b"\n")
            expected[lineno] = "duplicate article id 'dump-1'"
        elif lineno % 9_973 == 0:
            lines.append(b"   \n")  # blank lines are not articles, and not errors
        else:
            good_ids.append(f"dump-{lineno}")
            lines.append(json.dumps({"id": good_ids[-1], "text": f"Item {lineno} was counted."}).encode() + b"\n")
    (corpus / "dump.jsonl").write_bytes(b"".join(lines))

    started = time.monotonic()
    loaded = load_corpus(corpus)
    took = time.monotonic() - started
    got = {w.line: w.message for w in loaded.warnings if w.path == "dump.jsonl"}
    assert set(got) == set(expected), f"missing {sorted(set(expected) - set(got))[:5]}, extra {sorted(set(got) - set(expected))[:5]}"
    for lineno, words in expected.items():
        assert words in got[lineno], (lineno, got[lineno])
    ids = {a.id for a in loaded.articles}
    assert set(good_ids) <= ids and len(ids) == len(good_ids) + 3
    assert took < 30, f"loading 100k lines took {took:.1f}s"


def test_duplicate_article_ids_keep_the_first_and_name_the_second(corpus: Path, tmp_path: Path) -> None:
    write(corpus / "dup/a.md", md("First", "The first copy of the story is here.", id="same"))
    write(corpus / "dup/b.md", md("Second", "The second copy of the story is here.", id="same"))
    write(corpus / "dup/c.jsonl", json.dumps({"id": "same", "text": "A third copy in a feed."}) + "\n"
           + json.dumps({"id": "mayor", "text": "Clashes with an id from good/feed.jsonl."}) + "\n")
    write(corpus / "dup/port.txt", "Port\nSame id as good/port.md? No: ids include the folder.\n")
    loaded = load_corpus(corpus)
    got = _by_where(loaded)
    assert "duplicate article id 'same' (first in dup/a.md)" in got[("dup/b.md", None)]
    assert "duplicate article id 'same'" in got[("dup/c.jsonl", 1)]
    assert "duplicate article id 'mayor' (first in dup/c.jsonl:2)" in got[("good/feed.jsonl", 1)] or \
        "duplicate article id 'mayor'" in got[("dup/c.jsonl", 2)]
    same = next(a for a in loaded.articles if a.id == "same")
    assert same.title == "First"
    build_index(tmp_path / "ix", loaded, EMB)  # one row per id: the UNIQUE constraint holds


# -- links, odd names, special files ---------------------------------------------------------------


def test_symlinks_outside_the_corpus_are_not_followed(corpus: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.md"
    secret.write_text(md("Secret", "The launch code is hidden in this private file."))
    (outside / "sub").mkdir()
    (outside / "sub" / "more.txt").write_text("More\nAnother private sentence lives here.\n")
    os.symlink(secret, corpus / "link-to-file.md")
    os.symlink(outside / "sub", corpus / "link-to-folder")
    os.symlink("../../outside/secret.md", corpus / "good" / "relative-link.md")
    os.symlink("/etc/passwd", corpus / "passwd.txt")
    os.symlink(corpus / "good" / "port.md", corpus / "inside-link.md")  # inside: followed (a duplicate id here)
    os.symlink(corpus / "loop-b.md", corpus / "loop-a.md")
    os.symlink(corpus / "loop-a.md", corpus / "loop-b.md")
    os.symlink(corpus / "nowhere.md", corpus / "dangling.md")
    loaded = load_corpus(corpus)
    got = _by_where(loaded)
    for name in ("link-to-file.md", "link-to-folder", "good/relative-link.md", "passwd.txt"):
        assert "outside the corpus folder, not followed" in got[(name, None)], (name, got)
    for name in ("loop-a.md", "loop-b.md"):
        assert "a loop" in got[(name, None)]
    assert "dangling" in got[("dangling.md", None)]
    assert not any("private" in a.text or "launch code" in a.text or "root:" in a.text for a in loaded.articles)
    ix = tmp_path / "ix"
    build_index(ix, loaded, EMB)
    snap = Snapshot.open(ix, EMB)
    assert not snap._db.execute("SELECT count(*) FROM articles WHERE text LIKE '%private%'").fetchone()[0]  # noqa: SLF001
    snap.close()


def test_odd_file_names_and_special_files(corpus: Path, tmp_path: Path) -> None:
    write(corpus / os.fsdecode(b"bad-\xff-name.md"), md("Bad name", "A file whose name is not UTF-8."))
    write(corpus / "line\nbreak.md", md("Line break", "A file whose name holds a line break."))
    write(corpus / "ünïcödé 名前.md", md("Unicode name", "A file whose name is fine Unicode text."))
    os.mkfifo(corpus / "pipe.md")  # reading it would block for ever
    (corpus / "folder.md").mkdir()  # a folder named like an article
    write(corpus / ".hidden.md", md("Hidden", "Hidden files are not read."))
    loaded = load_corpus(corpus)
    got = _by_where(loaded)
    assert "not valid UTF-8" in got[("bad-\\xff-name.md", None)]
    assert "line break" in got[("line\nbreak.md", None)]
    assert "not a regular file" in got[("pipe.md", None)]
    _assert_good_indexed(corpus, tmp_path, extra_ids={"ünïcödé 名前"})


# -- HTML -------------------------------------------------------------------------------------------


def test_html_scripts_iframes_and_handlers_are_not_indexed(corpus: Path, tmp_path: Path) -> None:
    page = """<!doctype html><html><head><title>Council budget</title>
    <script>document.write('<p>Injected paragraph from a script tag.</p>'); fetch('https://evil.test')</script>
    <style>p { color: red } .ad:after { content: 'Styled text from CSS.' }</style>
    <meta http-equiv="refresh" content="0; url=https://evil.test">
    </head><body>
    <nav>Home | World | Sport</nav>
    <iframe src="https://evil.test/frame"><p>Fallback text inside an iframe.</p></iframe>
    <article><h1>Council budget</h1>
    <p>The council approved the new budget on Tuesday after a long debate about schools, roads and parks.</p>
    <p onclick="alert('handler')">Opponents said the plan would raise taxes for families across the city.</p>
    <noscript><p>Please enable JavaScript to read the comments below.</p></noscript>
    <object data="x.swf"><embed src="x.swf"></object>
    <p><a href="javascript:alert(1)">a link</a> with a javascript URL went nowhere, the clerk said.</p>
    <svg><script>alert('svg')</script></svg>
    <template><p>Template text that is never shown on the page.</p></template>
    <p hidden>Hidden text planted for the bot alone.</p>
    <p style="display: none">Invisible text planted for the bot alone.</p>
    </article></body></html>"""
    write(corpus / "news/budget.html", page)
    loaded = load_corpus(corpus)
    art = next(a for a in loaded.articles if a.id == "news/budget")
    assert "council approved the new budget" in art.text
    for bad in ("Injected paragraph", "evil.test", "Styled text", "Fallback text inside", "alert(", "javascript:",
                "document.write", "Template text", "planted"):
        assert bad not in art.text, bad
    _assert_good_indexed(corpus, tmp_path, extra_ids={"news/budget"})


# -- pathological text: the cleaner and splitter stay linear ------------------------------------------

#: Lines that made a regular expression backtrack quadratically (a megabyte of them would take hours).
PATHOLOGICAL_LINES = {
    "many-at-signs": "a@" * 50_000,
    "photo-credits": "(photo" * 20_000,
    "dots-no-space": "a." * 50_000,
    "punctuation-run": "!?" * 50_000,  # a run of sentence-ending marks not followed by a space
    "ellipses": "…" * 100_000,
    "by-line": "By A, " * 20_000,
    "quotes-and-stops": '."' * 50_000,
}


@pytest.mark.parametrize("case", list(PATHOLOGICAL_LINES))
def test_pathological_line_is_cleaned_and_split_in_linear_time(case: str) -> None:
    """Run in a subprocess with a time limit: a quadratic regex cannot be interrupted in-process."""
    code = (
        "import sys, time\n"
        "from index.clean import classify\nfrom index.split import split_article\n"
        "line = sys.stdin.read()\n"
        "text = 'Title\\nThese words make the line a body sentence, then ' + line + 'x and it ends here.\\n'\n"
        "t = time.perf_counter()\n"
        "split_article('a', text, classify(text))\n"
        "print(time.perf_counter() - t)\n"
    )
    try:
        out = subprocess.run([sys.executable, "-c", code], input=PATHOLOGICAL_LINES[case], capture_output=True,
                             text=True, timeout=10, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    except subprocess.TimeoutExpired:
        pytest.fail(f"cleaning and splitting a {len(PATHOLOGICAL_LINES[case]):,}-character {case} line took over 10 s")
    assert float(out.stdout) < 3.0
