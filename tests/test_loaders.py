from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support import write

from index.errors import CorpusError
from index.loaders import load_corpus


def test_markdown_front_matter(tmp_path: Path) -> None:
    write(tmp_path / "a.md", "---\ntitle: Big news\nsource: The Paper\nurl: https://example.org/a\n"
          "published: 2024-05-01\nauthors: [Ann Lee, Bo Chen]\n---\nSomething happened today in the town.\n")
    r = load_corpus(tmp_path)
    assert r.warnings == []
    (a,) = r.articles
    assert (a.id, a.title, a.source, a.url, a.published, a.authors) == (
        "a", "Big news", "The Paper", "https://example.org/a", "2024-05-01", ("Ann Lee", "Bo Chen"))
    assert a.text == "Something happened today in the town.\n"
    assert len(a.fingerprint) == 64


def test_seed_corpus_metadata_is_only_what_the_text_says() -> None:
    from support import ROOT

    arts = {a.id: a for a in load_corpus(ROOT / "corpus").articles}
    assert set(arts) == {"000_58346f7b7de47b31", "001_21befda17cf27a6e"}
    a0, a1 = arts["000_58346f7b7de47b31"], arts["001_21befda17cf27a6e"]
    assert a0.source == "Motoring Research" and a1.source is None
    for a in (a0, a1):
        assert a.url is None and a.published is None and a.authors == ()
        assert a.title.rstrip("…") in a.text  # the title is the start of the article's own text


def test_plain_text_and_jsonl_and_html(tmp_path: Path) -> None:
    write(tmp_path / "t.txt", "A Headline Without Stop\nThe body sentence is here.\n")
    write(tmp_path / "d.jsonl", json.dumps({"id": "j1", "url": "https://x.test/1", "title": "J", "source": "x.test",
                                             "published": "2023/05/01", "authors": [], "text": "Text one is long enough."}) + "\n")
    write(tmp_path / "p.html", "<html><head><title>Page title</title></head><body><nav>Home | About</nav>"
          "<article><h1>Page title</h1><p>The council approved the new budget on Tuesday after a long debate "
          "about schools, roads and parks across the whole city.</p><p>Opponents said the plan would raise "
          "taxes for families who can least afford it this year.</p></article>"
          "<script>alert('x')</script><iframe src='https://evil.test'></iframe></body></html>")
    r = load_corpus(tmp_path)
    by = {a.id: a for a in r.articles}
    assert by["t"].title == "A Headline Without Stop" and by["t"].text.strip() == "The body sentence is here."
    assert by["j1"].published == "2023-05-01" and by["j1"].path == "d.jsonl:1"
    assert "council approved the new budget" in by["p"].text
    assert "alert(" not in by["p"].text and "Home | About" not in by["p"].text


def test_bad_inputs_are_named_with_file_and_line_and_skipped(tmp_path: Path) -> None:
    write(tmp_path / "good.md", "---\ntitle: Good\n---\nThis one is fine and should be indexed.\n")
    write(tmp_path / "empty.md", "")
    write(tmp_path / "binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR")
    write(tmp_path / "latin1.txt", "Line one is fine.\nCaf\xe9 au lait.\n".encode("latin-1"))
    write(tmp_path / "bad.jsonl", '{"id": "ok", "text": "Fine line of text here."}\n{"id": "broken", "text": \n'
          '[1, 2]\n{"id": "notext"}\n')
    write(tmp_path / "yaml.md", "---\ntitle: [unclosed\n---\nBody text that is fine.\n")
    write(tmp_path / "list.md", "---\n- a\n- b\n---\nBody text that is fine.\n")
    write(tmp_path / "open.md", "---\ntitle: never closed\nBody text.\n")
    write(tmp_path / "notes.docx", b"PK\x03\x04")
    r = load_corpus(tmp_path)
    assert sorted(a.id for a in r.articles) == ["good", "ok"]
    got = {(w.path, w.line): w.message for w in r.warnings}
    assert got[("empty.md", None)] == "empty file"
    assert "binary" in got[("binary.txt", None)]
    assert "invalid UTF-8" in got[("latin1.txt", 2)]
    assert "malformed JSON" in got[("bad.jsonl", 2)]
    assert "expected a JSON object" in got[("bad.jsonl", 3)]
    assert "no 'text'" in got[("bad.jsonl", 4)]
    assert "not valid YAML" in got[("yaml.md", 2)]
    assert "must be a mapping" in got[("list.md", 2)]
    assert "no closing" in got[("open.md", 1)]
    assert "unsupported" in got[("notes.docx", None)]
    assert str(r.warnings[0]).startswith(r.warnings[0].path)


def test_duplicate_ids_and_outside_symlinks(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write(corpus / "a.jsonl", '{"id": "same", "text": "First copy of the text."}\n{"id": "same", "text": "Second."}\n')
    outside = write(tmp_path / "secret.txt", "Top secret text outside the corpus.\n")
    os.symlink(outside, corpus / "link.txt")
    r = load_corpus(corpus)
    assert [a.text for a in r.articles] == ["First copy of the text."]
    msgs = [str(w) for w in r.warnings]
    assert any("a.jsonl:2" in m and "duplicate article id" in m for m in msgs)
    assert any("link.txt" in m and "outside the corpus" in m for m in msgs)


def test_missing_corpus_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "nope")
