"""Read a corpus folder into :class:`Article` records.

Supported inputs: Markdown with YAML front matter (``.md``), plain text (``.txt``), JSON Lines
(``.jsonl``, one article a line) and HTML (``.html``/``.htm``, main text extracted by trafilatura).
A file (or a JSON line) that cannot be read is reported as a :class:`CorpusWarning` naming the file
and line, and skipped; the rest of the corpus is still loaded.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import logging
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CorpusError
from .records import Article, CorpusWarning

log = logging.getLogger(__name__)

#: Bump when loading or cleaning changes what an article's text or blocks are: forces re-indexing.
PIPELINE_VERSION = "3"

SUPPORTED = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".jsonl": "jsonl",
             ".html": "html", ".htm": "html"}
#: Files (other than JSON Lines, which are streamed) larger than this are skipped with a warning.
MAX_FILE_BYTES = 20 * 1024 * 1024
#: An article whose text is larger than this is skipped with a warning.
MAX_ARTICLE_CHARS = 2 * 1024 * 1024

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?\r?\n)?---[ \t]*(\r?\n|\Z)", re.S)


@dataclass
class LoadResult:
    """What :func:`load_corpus` found: the articles, and a warning for everything skipped."""

    articles: list[Article] = field(default_factory=list)
    warnings: list[CorpusWarning] = field(default_factory=list)
    files: int = 0


def article_fingerprint(a: Article) -> str:
    """sha256 over everything that is indexed about an article (and the pipeline version)."""
    payload = json.dumps(
        [PIPELINE_VERSION, a.id, a.title, a.text, a.source, a.url, a.published, list(a.authors)],
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _finish(a: Article) -> Article:
    from dataclasses import replace

    return replace(a, fingerprint=article_fingerprint(a))


def _norm_date(value: Any) -> str | None:
    """An ISO date (YYYY-MM-DD) from a date, datetime or string such as '2023/05/01', else None."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    s = str(value).strip()
    m = re.match(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", s)
    if m:
        try:
            return dt.date(int(m[1]), int(m[2]), int(m[3])).isoformat()
        except ValueError:
            return None
    return None


#: Field values that are read as text. Lists and mappings are refused, never str()-ed: a YAML
#: alias bomb ("billion laughs") makes a small file into a list of a billion items.
_SCALARS = (str, int, float, dt.date)


def _opt_str(value: Any) -> str | None:
    if value is None or isinstance(value, bool) or not isinstance(value, _SCALARS):
        return None
    s = str(value).strip()
    return s or None


def _authors(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(a.strip() for a in re.split(r";|,| and ", value) if a.strip())
    if isinstance(value, (list, tuple)):
        names = (_opt_str(a) for a in value[:50])
        return tuple(n for n in names if n)
    return ()


#: The JSON Lines fields that are read (see ``_iter_jsonl``).
_JSON_FIELDS = ("id", "title", "text", "source", "outlet", "url", "published", "date", "authors")


def _has_lone_surrogate(obj: dict[str, Any]) -> bool:
    """True when a field that is read holds text that cannot be stored as UTF-8.

    JSON can spell a lone surrogate ("\\ud800"), which is not Unicode text: SQLite would refuse it
    at the end of a rebuild, so the line is refused here, when it can still be named.
    """
    for key in _JSON_FIELDS:
        value = obj.get(key)
        for v in (value[:50] if isinstance(value, list) else [value]):
            if isinstance(v, str):
                try:
                    v.encode("utf-8")
                except UnicodeEncodeError:
                    return True
    return False


def _line_of(data: bytes, pos: int) -> int:
    return data.count(b"\n", 0, pos) + 1


def _decode(data: bytes, rel: str) -> tuple[str | None, CorpusWarning | None]:
    """Decode UTF-8 text, refusing binary files and naming the line of the first bad byte."""
    if not data.strip():
        return None, CorpusWarning(rel, None, "empty file")
    if b"\x00" in data[:8192]:
        return None, CorpusWarning(rel, None, "binary file (contains NUL bytes), not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        return None, CorpusWarning(
            rel, _line_of(data, e.start), f"invalid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})"
        )
    return text.replace("\r\n", "\n").replace("\r", "\n"), None


def _title_from_text(text: str, fallback: str) -> tuple[str, str]:
    """A title taken from a first line that looks like a heading, and the text below it.

    With no such line the text is kept whole and the title is the start of its first sentence:
    taken from the article itself, never made up. ``fallback`` serves when there is no text.
    """
    stripped = text.lstrip("\n")
    first, _, rest = stripped.partition("\n")
    line = first.strip().lstrip("#").strip()
    if line and len(line) <= 200 and not re.search(r"[.!:;,]$", line) and rest.strip():
        return line, rest
    return (_lead_title(line) or fallback), text


def _lead_title(line: str, limit: int = 90) -> str:
    """The first sentence of ``line``, cut at a word boundary to at most ``limit`` characters."""
    sentence = re.split(r"(?<=[.!?])\s", line, maxsplit=1)[0].strip()
    if len(sentence) <= limit:
        return sentence
    cut = sentence[:limit].rsplit(" ", 1)[0].rstrip(",;:–- ")
    return cut + "…"


def _fallback_title(path: Path) -> str:
    return path.stem.replace("_", " ").replace("-", " ").strip() or path.name


#: Front matter nested deeper than this (``[[[[...``) is refused before YAML parses it.
MAX_FRONT_MATTER_DEPTH = 64


def _flow_depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` in ``text`` (quotes ignored: an upper bound is enough)."""
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}" and depth:
            depth -= 1
    return deepest


def _load_markdown(text: str, rel: str, path: Path) -> tuple[Article | None, CorpusWarning | None]:
    import yaml

    meta: dict[str, Any] = {}
    body = text
    body_line = 1
    m = _FRONT_MATTER.match(text)
    if m:
        raw = m.group(1) or ""
        if _flow_depth(raw) > MAX_FRONT_MATTER_DEPTH:  # PyYAML takes quadratic time, then overflows the stack
            return None, CorpusWarning(rel, 2, "front matter is nested too deeply to read")
        try:
            loaded = yaml.safe_load(raw) if raw.strip() else {}
        except RecursionError:
            return None, CorpusWarning(rel, 2, "front matter is nested too deeply to read")
        except yaml.YAMLError as e:
            mark = getattr(e, "context_mark", None) or getattr(e, "problem_mark", None)
            line = (mark.line + 2) if mark is not None else 1  # +1 for 0-based, +1 for the '---' line
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            return None, CorpusWarning(rel, line, f"front matter is not valid YAML: {problem}")
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            return None, CorpusWarning(
                rel, 2, f"front matter must be a mapping of fields, got a {type(loaded).__name__}"
            )
        meta = {str(k).lower(): v for k, v in loaded.items()}
        body = text[m.end():]
        body_line = text.count("\n", 0, m.end()) + 1
    elif text.startswith("---"):
        return None, CorpusWarning(rel, 1, "front matter starts with '---' but has no closing '---' line")
    title = _opt_str(meta.get("title"))
    if not title:
        title, body = _title_from_text(body, _fallback_title(path))
    if not body.strip():
        return None, CorpusWarning(rel, body_line, "no article text after the front matter")
    art = Article(
        id=_opt_str(meta.get("id")) or path.with_suffix("").as_posix(),
        title=title,
        text=body,
        source=_opt_str(meta.get("source") or meta.get("outlet")),
        url=_opt_str(meta.get("url") or meta.get("link")),
        published=_norm_date(meta.get("published") or meta.get("date")),
        authors=_authors(meta.get("authors") or meta.get("author")),
        path=rel,
    )
    return art, None


def _load_text(text: str, rel: str, path: Path) -> tuple[Article | None, CorpusWarning | None]:
    title, body = _title_from_text(text, _fallback_title(path))
    return Article(id=path.with_suffix("").as_posix(), title=title, text=body, path=rel), None


#: An XML declaration (XHTML pages start with one): lxml refuses a str that starts with one naming
#: an encoding.
_XML_DECLARATION = re.compile(r"\A[\ufeff\s]*<\?xml\b[^>]*>")


def _strip_hidden(html: str) -> str:
    """``html`` without elements a reader never sees but trafilatura keeps: ``<template>`` and
    anything with the ``hidden`` attribute (a page could plant text there for the bot alone)."""
    from lxml import etree
    from lxml import html as lxml_html

    html = _XML_DECLARATION.sub("", html, count=1)
    try:
        doc = lxml_html.document_fromstring(html)
    except (ValueError, etree.ParserError):
        return html
    hidden = doc.xpath("//template | //*[@hidden]")
    if not hidden:
        return html
    for el in hidden:
        el.drop_tree()  # keeps the text that follows the element
    return lxml_html.tostring(doc, encoding="unicode")


def _load_html(text: str, rel: str, path: Path) -> tuple[Article | None, CorpusWarning | None]:
    import trafilatura

    doc = trafilatura.bare_extraction(
        _strip_hidden(text), with_metadata=True, include_comments=False, include_tables=False, favor_precision=True
    )
    if doc is None:
        return None, CorpusWarning(rel, None, "no article text found in the HTML")
    data = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)
    body = (data.get("text") or "").strip()
    if not body:
        return None, CorpusWarning(rel, None, "no article text found in the HTML")
    return Article(
        id=path.with_suffix("").as_posix(),
        title=_opt_str(data.get("title")) or _fallback_title(path),
        text=body,
        source=_opt_str(data.get("sitename")),
        url=_opt_str(data.get("url")),
        published=_norm_date(data.get("date")),
        authors=_authors(data.get("author")),
        path=rel,
    ), None


def _iter_jsonl(path: Path, rel: str) -> Iterator[tuple[Article | None, CorpusWarning | None]]:
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            where = f"{rel}:{lineno}"
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as e:
                yield None, CorpusWarning(rel, lineno, f"invalid UTF-8 at column {e.start + 1}")
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                yield None, CorpusWarning(rel, lineno, f"malformed JSON ({e.msg} at column {e.colno})")
                continue
            except RecursionError:
                yield None, CorpusWarning(rel, lineno, "JSON nested too deeply to read")
                continue
            if not isinstance(obj, dict):
                yield None, CorpusWarning(rel, lineno, f"expected a JSON object, got {type(obj).__name__}")
                continue
            if _has_lone_surrogate(obj):
                yield None, CorpusWarning(rel, lineno, "text with an invalid \\u escape (a lone surrogate), not Unicode")
                continue
            text = obj.get("text")
            if not isinstance(text, str) or not text.strip():
                yield None, CorpusWarning(rel, lineno, "no 'text' field with the article's text")
                continue
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            if len(text) > MAX_ARTICLE_CHARS:
                yield None, CorpusWarning(rel, lineno, f"article text over {MAX_ARTICLE_CHARS:,} characters")
                continue
            title = _opt_str(obj.get("title"))
            if not title:
                title, text = _title_from_text(text, f"{path.stem} line {lineno}")
            yield _finish(Article(
                id=_opt_str(obj.get("id")) or where,
                title=title,
                text=text,
                source=_opt_str(obj.get("source") or obj.get("outlet")),
                url=_opt_str(obj.get("url")),
                published=_norm_date(obj.get("published") or obj.get("date")),
                authors=_authors(obj.get("authors")),
                path=where,
            )), None


_LOADERS = {"markdown": _load_markdown, "text": _load_text, "html": _load_html}


def _printable_name(rel: str) -> str:
    """``rel`` as it can be logged and stored: undecodable bytes of a file name shown as \\xNN."""
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _link_warning(path: Path, rel: str, root_real: Path) -> CorpusWarning | None:
    """Why a symbolic link is not followed, or None when it leads to a place inside the corpus."""
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError) as e:  # a loop (RuntimeError on 3.11) or a dangling link
        why = "a loop" if isinstance(e, RuntimeError) or getattr(e, "errno", None) == errno.ELOOP else "dangling"
        return CorpusWarning(rel, None, f"symbolic link that cannot be followed ({why}), skipped")
    if not target.is_relative_to(root_real):
        return CorpusWarning(rel, None, "symbolic link to outside the corpus folder, not followed")
    return None


def iter_files(root: Path) -> Iterator[tuple[Path, str, CorpusWarning | None]]:
    """Every candidate file under ``root`` (sorted), refusing links that lead outside it.

    Folders reached through a symbolic link are never entered (an inside link would only read the
    same files twice); links, odd names and special files (pipes, devices) are reported, not read.
    """
    root_real = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for d in sorted(dirnames):
            path = Path(dirpath) / d
            if not d.startswith(".") and path.is_symlink():
                rel = _printable_name(path.relative_to(root).as_posix())
                w = _link_warning(path, rel, root_real)
                yield path, rel, w or CorpusWarning(rel, None, "symbolic link to a folder, not followed")
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            shown = _printable_name(rel)
            if shown != rel or "\n" in rel or "\r" in rel:
                yield path, shown, CorpusWarning(shown, None, "file name is not valid UTF-8 text (or holds a line break): rename it")
                continue
            if path.is_symlink():
                w = _link_warning(path, rel, root_real)
                if w is not None:
                    yield path, rel, w
                    continue
            try:
                mode = path.stat().st_mode
            except OSError as e:
                yield path, rel, CorpusWarning(rel, None, f"cannot be read: {e.strerror or e}")
                continue
            if not stat.S_ISREG(mode):
                yield path, rel, CorpusWarning(rel, None, "not a regular file (a pipe, socket or device), skipped")
                continue
            yield path, rel, None


def load_corpus(root: Path) -> LoadResult:
    """Load every supported file under ``root``; bad files and lines become warnings."""
    if not root.exists():
        raise CorpusError(f"corpus folder {root} does not exist: create it or set NEWSBOT_CORPUS_DIR / --corpus")
    if root.is_file():  # a single file: a JSON Lines dump, say
        return _load_files(root.parent, [(root, root.name, None)])
    return _load_files(root, iter_files(root))


def load_paths(root: Path, rels: Iterable[str]) -> LoadResult:
    """Load these files of the corpus folder ``root`` (paths relative to it), as :func:`load_corpus`
    would read them: the same ids, text and fingerprints."""
    return _load_files(root, [(root / rel, rel, None) for rel in rels])


def _load_files(root: Path, files: Iterable[tuple[Path, str, CorpusWarning | None]]) -> LoadResult:
    result = LoadResult()
    seen: dict[str, str] = {}

    def accept(art: Article | None, warning: CorpusWarning | None) -> None:
        if warning is not None:
            result.warnings.append(warning)
            return
        assert art is not None
        if art.id in seen:
            result.warnings.append(
                CorpusWarning(*_split_where(art.path), f"duplicate article id {art.id!r} (first in {seen[art.id]}), skipped")
            )
            return
        seen[art.id] = art.path
        result.articles.append(art)  # fingerprinted by load_text / _iter_jsonl

    for path, rel, warning in files:
        if warning is not None:
            result.warnings.append(warning)
            continue
        kind = SUPPORTED.get(path.suffix.lower())
        if kind is None:
            result.warnings.append(CorpusWarning(rel, None, f"unsupported file type {path.suffix or '(none)'!r}, skipped"))
            continue
        result.files += 1
        try:
            if kind == "jsonl":
                if path.stat().st_size == 0:
                    result.warnings.append(CorpusWarning(rel, None, "empty file"))
                    continue
                for art, w in _iter_jsonl(path, rel):
                    accept(art, w)
                continue
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                result.warnings.append(
                    CorpusWarning(rel, None, f"file is {size / 2**20:.0f} MiB, over the {MAX_FILE_BYTES / 2**20:.0f} MiB limit for one article")
                )
                continue
            text, w = _decode(path.read_bytes(), rel)
            if w is not None:
                accept(None, w)
                continue
            assert text is not None
            accept(*load_text(kind, text, rel, path.relative_to(root)))
        except OSError as e:
            result.warnings.append(CorpusWarning(rel, None, f"cannot be read: {e.strerror or e}"))
    for w in result.warnings:
        log.warning("skipped %s", w)
    return result


def load_text(kind: str, text: str, rel: str, path: Path) -> tuple[Article | None, CorpusWarning | None]:
    """One article from the decoded ``text`` of a file of ``kind`` (markdown, text, html) at ``rel``,
    fingerprinted; or the warning that says why not."""
    art, w = _LOADERS[kind](text, rel, path)
    if art is not None and len(art.text) > MAX_ARTICLE_CHARS:
        return None, CorpusWarning(rel, None, f"article text over {MAX_ARTICLE_CHARS:,} characters")
    return (None, w) if art is None else (_finish(art), None)


def _split_where(where: str) -> tuple[str, int | None]:
    path, sep, line = where.rpartition(":")
    if sep and line.isdigit():
        return path, int(line)
    return where, None
