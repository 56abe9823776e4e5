"""Folder sources: Markdown or HTML files with front matter, as static site generators keep them.

Front matter is YAML between `---` lines (Jekyll, Hugo, Eleventy, Astro) or TOML between `+++`
lines (Hugo). Recognized keys: title, date, updated / lastmod / modified, tags / categories /
keywords, author / authors, description / summary / excerpt, image / cover / thumbnail,
url / permalink / canonical_url, id / guid, lang / language, draft (true: skipped).

Identity: `id` / `guid`, else the canonical `url` / `permalink`, else the file's path inside the
folder; a file's path is as stable as a link, where a content hash would turn every edit into a
new post. The date: `date`, else a `YYYY-MM-DD-` file name prefix, else the file's mtime (then
the post counts as undated).
"""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt

from digest.config import SourceConfig
from digest.errors import SourceError
from digest.models import Post
from digest.sources import SourceResult
from digest.sources.article import extract_article
from digest.sources.encoding import decode
from digest.sources.feed import merge_tags
from digest.sources.html import clean_text, first_image, html_to_text

SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}
_FRONT = re.compile(r"\A(---|\+\+\+)[ \t]*\r?\n(.*?)\r?\n\1[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_DATED_NAME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})-")
_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)
_MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable("table")


class _FrontMatterLoader(yaml.SafeLoader):  # type: ignore[misc]  # yaml has no types here
    """YAML's safe loader without aliases: front matter has no use for them, and a few hundred
    bytes of nested aliases ("billion laughs") expand to gigabytes once the values are read."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in front matter", event.start_mark
            )
        return super().compose_node(parent, index)


def read_folder(source: SourceConfig) -> SourceResult:
    root = Path(source.url.removeprefix("file://"))
    if not root.is_dir():
        raise SourceError(f"source {source.name!r}: {root}: not a folder")
    posts: list[Post] = []
    problems: list[str] = []
    undated: set[str] = set()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.suffix.lower() not in SUFFIXES or not path.is_file():
            continue
        if any(part.startswith((".", "_")) for part in rel.parts) or path.stem.upper() == "README":
            continue  # hidden files, _drafts/, _includes/, the folder's own README
        try:
            result = read_file(source, path, rel.as_posix())
        except (ValueError, OSError, SourceError) as exc:
            problems.append(f"source {source.name!r}: {rel}: {_one_line(str(exc))}; skipped")
            continue
        except Exception as exc:  # whatever one file does, the others go in
            reason = f"{type(exc).__name__}: {_one_line(str(exc))}"
            problems.append(f"source {source.name!r}: {rel}: {reason}; skipped")
            continue
        if result is None:
            continue  # a draft
        post, dated = result
        posts.append(post)
        if not dated:
            undated.add(post.key)
    return SourceResult(tuple(posts), tuple(problems), frozenset(undated))


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """(front matter, body); ({}, text) when the file has none. ValueError if it is invalid."""
    match = _FRONT.match(text)
    if not match:
        return {}, text
    fence, raw = match.group(1), match.group(2)
    try:
        data = tomllib.loads(raw) if fence == "+++" else yaml.load(raw, _FrontMatterLoader)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"invalid front matter: {_one_line(str(exc))}") from None
    except RecursionError:
        raise ValueError("invalid front matter: nested too deeply") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError("front matter is not a table of keys")
    return data, text[match.end() :]


def read_file(source: SourceConfig, path: Path, rel: str) -> tuple[Post, bool] | None:
    text = decode(path.read_bytes(), forced=source.encoding, where=str(path))
    meta, body = split_front_matter(text)
    if meta.get("draft") is True:
        return None
    kind = SUFFIXES[path.suffix.lower()]
    title = _text(meta.get("title"))
    image, image_alt = _image(meta.get("image") or meta.get("cover") or meta.get("thumbnail"))
    extracted_date: datetime | None = None
    if kind == "markdown":
        if not title:
            heading = _HEADING.search(body)
            if heading:
                title = clean_text(heading.group(1))
                body = body[: heading.start()] + body[heading.end() :]
        html = _MARKDOWN.render(body)
        content = html_to_text(html)
    elif meta:
        html = body
        content = html_to_text(body)
    else:
        # a whole HTML page without front matter: read it like an article page
        html = body
        article = extract_article(body, path.resolve().as_uri())
        content = article.text if article else ""
        if article:
            title = title or article.title
            extracted_date = article.published
            meta.setdefault("author", article.author)
            meta.setdefault("description", article.description)
            if image is None:
                image, image_alt = article.image, article.image_alt
    if image is None:
        image, image_alt = first_image(html)
    if not content:
        raise ValueError("no text")
    title = title or path.stem
    link = _text(meta.get("url") or meta.get("permalink") or meta.get("canonical_url"))
    published = _date(meta.get("date")) or extracted_date or _date_from_name(path.name)
    dated = published is not None
    if published is None:
        published = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    updated = _date(meta.get("updated") or meta.get("lastmod") or meta.get("modified"))
    guid = _text(meta.get("id") or meta.get("guid")) or link or rel
    post = Post(
        source=source.name,
        guid=guid,
        url=link or path.resolve().as_uri(),
        title=title,
        text=content,
        published=published,
        author=", ".join(_list(meta.get("authors") or meta.get("author"))),
        updated=updated,
        tags=merge_tags(
            source.tags,
            _list(meta.get("tags")),
            _list(meta.get("categories")),
            _list(meta.get("keywords")),
        ),
        description=_text(meta.get("description") or meta.get("summary") or meta.get("excerpt")),
        image=image,
        image_alt=image_alt,
        language=source.language or _text(meta.get("lang") or meta.get("language"))[:2] or None,
    )
    return post, dated


def _one_line(message: str) -> str:
    """The first line of an error message, cut to a length that fits a line."""
    line = (message.strip().splitlines() or [""])[0]
    return line if len(line) <= 300 else line[:300] + "..."


def _text(value: Any) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    return clean_text(str(value))


def _list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list):
        names = [v.get("name", "") if isinstance(v, dict) else v for v in value]
        return [str(v).strip() for v in names if str(v).strip()]
    if isinstance(value, dict) and value.get("name"):
        return [str(value["name"]).strip()]
    return []


def _image(value: Any) -> tuple[str | None, str]:
    if isinstance(value, dict):
        src = value.get("src") or value.get("image") or value.get("url")
        return (str(src) if src else None), _text(value.get("alt"))
    return (str(value).strip() or None) if value else None, ""


def _date(value: Any) -> datetime | None:
    """YAML gives date / datetime objects, TOML datetimes, JSON-ish strings stay strings.
    A date or a datetime without a zone is taken as UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time())
    elif isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"unreadable date {value!r}") from None
    else:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _date_from_name(name: str) -> datetime | None:
    match = _DATED_NAME.match(name)
    if not match:
        return None
    try:
        year, month, day = (int(g) for g in match.groups())
        return datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        return None
