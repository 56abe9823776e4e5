"""Ingest: read every configured source into the store, one failing source never stopping the rest.

Per source: fetch (conditionally: a 304 touches nothing), read the posts (feed, page or folder),
complete teasers with their article pages, then upsert by identity. Nothing here deletes or
re-dates a stored post, so a source that fails, or returns less than before, never makes old
posts look new; an edited post is updated in place and keeps its first `published`.

Whatever a source's bytes do (a parser's RecursionError, a lone surrogate, a URL httpx cannot
parse), it ends as that source's one-line error or, for one entry or article page, one problem
line; text is stored only with lone surrogates replaced. What a source may fetch, and from
where, is `digest.sources.fetch.Site`'s rule: its own site (and `allow_hosts`) over http(s).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta

from digest.config import Config, SourceConfig
from digest.errors import DigestError, SourceError
from digest.models import Post
from digest.sources import SourceResult
from digest.sources.article import Article, extract_article, merge_into
from digest.sources.discover import discover_feeds, looks_like_html
from digest.sources.encoding import decode, scrub
from digest.sources.feed import looks_truncated, merge_tags, read_feed
from digest.sources.fetch import Fetcher, Limits, Response, Site, is_remote, short
from digest.sources.folder import read_folder
from digest.sources.page import article_shapes, off_pattern, read_listing
from digest.store import Store

MAX_PARALLEL_SOURCES = 4
MAX_SITEMAPS = 5  # child sitemaps of a sitemap index followed per ingest
FEED_ACCEPT = (
    "application/atom+xml, application/rss+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
HTML_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
MAX_MESSAGE = 500  # characters of one error or problem line
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


@dataclass(frozen=True)
class SourceReport:
    name: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    error: str = ""
    problems: tuple[str, ...] = field(default=())
    not_modified: bool = False  # the server answered 304: nothing was read or changed
    seen: int = 0  # first ingest: old posts recorded as already seen, not stored
    skipped: tuple[str, ...] = ()  # pages of a page or sitemap source that are not articles

    @property
    def failed(self) -> bool:
        return bool(self.error)


@dataclass
class _Read:
    """What reading one source produced, before anything is written."""

    result: SourceResult = field(default_factory=lambda: SourceResult(()))
    not_modified: bool = False
    unchanged: int = 0  # article pages that answered 304
    problems: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # pages that are not articles, and why
    # conditional-GET validators to store once the posts are in: (url, etag, last_modified)
    validators: list[tuple[str, str, str]] = field(default_factory=list)


def content_hash(post: Post) -> str:
    """What counts as an edit: title, text, author, tags, image (not dates or counters)."""
    parts = [post.title, post.text, post.author, "\x1f".join(post.tags), post.image or "", post.url]
    return hashlib.sha256("\x1e".join(parts).encode()).hexdigest()


def replayed(posts: tuple[Post, ...], shift: timedelta) -> list[Post]:
    return [
        replace(
            p,
            published=p.published + shift,
            updated=p.updated + shift if p.updated else None,
        )
        for p in posts
    ]


def one_line(message: str) -> str:
    """`message` as one printable line: no line breaks or controls, no lone surrogates, cut."""
    line = _LINE_BREAKS.sub(" ", scrub(message)).strip()
    return line if len(line) <= MAX_MESSAGE else line[:MAX_MESSAGE] + "..."


def describe(source: SourceConfig, exc: BaseException) -> str:
    """A source's failure as one line: a DigestError says it already; any other exception is
    a defect its bytes found (in a parser, say) and is named by its type."""
    if isinstance(exc, DigestError):
        return one_line(str(exc))
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return one_line(f"source {source.name!r}: {detail}")


def scrubbed(post: Post) -> Post:
    """`post` with lone surrogates replaced in every text field: the store and the terminal
    take UTF-8 only, and a JSON `\\ud800` escape or an XML `&#xD800;` would fail both."""
    changes: dict[str, object] = {}
    for f in fields(post):
        value = getattr(post, f.name)
        if isinstance(value, str):
            clean: object = scrub(value)
        elif isinstance(value, tuple) and all(isinstance(v, str) for v in value):
            clean = tuple(scrub(v) for v in value)
        else:
            continue
        if clean != value:
            changes[f.name] = clean
    return replace(post, **changes) if changes else post  # type: ignore[arg-type]


def site_for(source: SourceConfig) -> Site:
    """Where `source` may fetch from: its own site, plus its `allow_hosts`."""
    return Site(source.url, tuple(getattr(source, "allow_hosts", ()) or ()))


def limits_for(source: SourceConfig) -> Limits:
    return Limits(
        timeout=source.timeout,
        connect_timeout=source.connect_timeout,
        max_bytes=source.max_bytes,
        retries=source.retries,
    )


async def ingest_source(
    source: SourceConfig,
    store: Store,
    now: datetime,
    fetcher: Fetcher,
    lookback: timedelta = timedelta(days=7),
) -> SourceReport:
    try:
        read = await read_source(source, store, now, fetcher)
    except Exception as exc:  # one source's failure, whatever it is
        error = describe(source, exc)
        store.record_source(source.name, ok=False, error=error)
        return SourceReport(source.name, error=error)
    problems = tuple(one_line(p) for p in (*read.result.problems, *read.problems))
    if read.not_modified:
        store.record_source(source.name, ok=True)
        return SourceReport(
            source.name, problems=problems, not_modified=True, skipped=tuple(read.skipped)
        )
    first_ingest = not store.source_ingested_before(source.name)
    posts = [scrubbed(p) for p in read.result.posts]
    undated = {scrub(key) for key in read.result.undated}
    replay_shift = None
    if source.replay and posts:
        # Sample content: the newest entry is treated as published at the first ingest, the
        # rest keep their spacing. The shift is stored so later ingests agree with the first.
        replay_shift = store.replay_shift(source.name)
        if replay_shift is None:
            newest = max(p.published for p in posts)
            replay_shift = (now - newest).total_seconds()
        posts = replayed(tuple(posts), timedelta(seconds=replay_shift))
    seen = store.seen_keys(source.name)
    already_seen = sum(1 for p in posts if p.key in seen)
    posts = [p for p in posts if p.key not in seen]
    marked = 0
    if source.mark_old_seen and first_ingest:
        # Undated posts count as old here: at a first ingest their stand-in date is "now",
        # which would put a site's whole archive into the next digest.
        cutoff = now - lookback
        old = [p for p in posts if p.published <= cutoff or p.key in undated]
        store.mark_seen(source.name, (p.key for p in old))
        marked = len(old)
        posts = [p for p in posts if p.published > cutoff and p.key not in undated]
    new, updated, unchanged = store.upsert_posts(((p, content_hash(p)) for p in posts), now)
    for url, etag, last_modified in read.validators:
        store.save_fetch_validators(scrub(url), scrub(etag), scrub(last_modified))
    store.record_source(source.name, ok=True, replay_shift=replay_shift)
    return SourceReport(
        source.name,
        new,
        updated,
        unchanged + already_seen + read.unchanged,
        problems=problems,
        seen=marked,
        skipped=tuple(read.skipped),
    )


async def read_source(source: SourceConfig, store: Store, now: datetime, fetcher: Fetcher) -> _Read:
    if source.kind == "folder":
        return _Read(result=await asyncio.to_thread(read_folder, source))
    if source.kind == "page":
        return await _read_page(source, store, now, fetcher)
    return await _read_feed(source, store, now, fetcher)


async def _get(
    source: SourceConfig, store: Store, fetcher: Fetcher, url: str, accept: str
) -> Response:
    """A conditional GET when `url` is remote and validators are stored for it."""
    etag, last_modified = store.fetch_validators(url) if is_remote(url) else ("", "")
    return await fetcher.get(
        source.name,
        url,
        limits_for(source),
        etag=etag,
        last_modified=last_modified,
        accept=accept,
        site=site_for(source),
    )


def _validators(response: Response, url: str) -> list[tuple[str, str, str]]:
    if not is_remote(url):
        return []
    return [(url, response.etag, response.last_modified)]


async def _read_feed(source: SourceConfig, store: Store, now: datetime, fetcher: Fetcher) -> _Read:
    response = await _get(source, store, fetcher, source.url, FEED_ACCEPT)
    if response.not_modified:
        return _Read(not_modified=True)
    feed_url = source.url
    notes: list[str] = []
    discovered = _announced_feed(source, response)
    if discovered is not None:
        # A web page given as the feed URL (a blog's home page): read the feed it announces.
        feed_url = discovered
        notes.append(
            f"{source.url} is a web page; read the feed it announces, {discovered} "
            "(set `url` to it to save a request)"
        )
        response = await _get(source, store, fetcher, feed_url, FEED_ACCEPT)
        if response.not_modified:
            return _Read(not_modified=True, problems=notes)
    result = read_feed(
        source, response.content, content_type=response.content_type, fallback_date=now
    )
    read = _Read(result=result)
    read.problems.extend(notes)
    posts, failures = await _complete_full_text(source, store, fetcher, result.posts)
    read.result = replace(result, posts=tuple(posts))
    read.problems.extend(failures)
    # Validators are kept only when every article page was read: otherwise the next run would
    # get a 304 and never retry the pages that failed.
    if not failures:
        read.validators = _validators(response, feed_url)
    return read


def _announced_feed(source: SourceConfig, response: Response) -> str | None:
    """The feed a web page announces, when `response` is a page and not a feed."""
    kind = response.content_type.lower()
    if "xml" in kind or "json" in kind:
        return None
    try:
        text = decode(response.content, response.content_type, source.encoding, source.url)
    except SourceError:
        return None
    if not looks_like_html(text):
        return None
    feeds = discover_feeds(text, response.url or source.url)
    if not feeds:
        raise SourceError(
            f"source {source.name!r}: {source.url}: a web page that announces no feed "
            '(no <link rel="alternate">); give the feed\'s own URL, or kind = "page"'
        )
    return feeds[0]


def _wants_full_text(source: SourceConfig, site: Site, post: Post) -> bool:
    if source.full_text == "never" or not is_remote(post.url):
        return False
    if source.full_text == "always":
        return True  # a link off the site is refused by the fetcher, and reported
    if site.refusal(post.url):
        # "auto": a link to another site (a link blog's) keeps the feed's text, quietly.
        return False
    # "auto" applies to feeds read over HTTP: a feed file on disk is a capture or a sample
    # whose links need not resolve (the bundled sample's do not), so it is taken as complete.
    teaser = len(post.text) < source.full_text_min_chars or looks_truncated(post.text)
    return is_remote(source.url) and teaser


async def _complete_full_text(
    source: SourceConfig, store: Store, fetcher: Fetcher, posts: tuple[Post, ...]
) -> tuple[list[Post], list[str]]:
    """Teasers completed by their article pages; problems for pages that could not be read."""
    out = list(posts)
    todo: list[int] = []
    site = site_for(source)
    for index, post in enumerate(posts):
        if not _wants_full_text(source, site, post):
            continue
        existing = store.get_post(post.key)
        if (
            existing is not None
            and existing.updated == post.updated
            and existing.description in (post.description, post.text)
            and len(existing.text) > len(post.text)
        ):
            # Completed by an earlier ingest and the feed entry has not changed since: reuse the
            # stored article instead of fetching the page again.
            out[index] = merge_into(post, _as_article(existing))
            continue
        todo.append(index)
    todo = todo[: source.max_articles]

    async def one(index: int) -> str:
        post = posts[index]
        try:
            article = await _fetch_article(source, fetcher, post.url)
        except Exception as exc:  # one page's failure keeps the feed's text
            return f"{describe(source, exc)}; kept the feed's text"
        if article is None:
            where = f"source {source.name!r}: {short(post.url)}"
            return f"{where}: no article text found; kept the feed's"
        out[index] = merge_into(post, article)
        return ""

    results = await asyncio.gather(*(one(i) for i in todo))
    return out, [r for r in results if r]


def _as_article(post: Post) -> Article:
    return Article(
        url=post.url,
        title=post.title,
        text=post.text,
        author=post.author,
        image=post.image,
        image_alt=post.image_alt,
        tags=post.tags,
        language=post.language or "",
    )


async def _fetch_article(source: SourceConfig, fetcher: Fetcher, url: str) -> Article | None:
    response = await fetcher.get(
        source.name, url, limits_for(source), accept=HTML_ACCEPT, site=site_for(source)
    )
    html = decode(
        response.content, response.content_type, source.encoding, f"source {source.name!r}: {url}"
    )
    return await asyncio.to_thread(extract_article, html, response.url)


async def _read_page(source: SourceConfig, store: Store, now: datetime, fetcher: Fetcher) -> _Read:
    where = f"source {source.name!r}: {source.url}"
    response = await _get(source, store, fetcher, source.url, HTML_ACCEPT)
    if response.not_modified:
        return _Read(not_modified=True)
    text = decode(response.content, response.content_type, source.encoding, where)
    listing = read_listing(text, response.url, source.link_pattern)
    articles = list(listing.articles)
    read = _Read()
    for sitemap_url in listing.sitemaps[:MAX_SITEMAPS]:
        try:
            child = await fetcher.get(
                source.name, sitemap_url, limits_for(source), site=site_for(source)
            )
            child_text = decode(child.content, child.content_type, source.encoding, where)
            articles.extend(read_listing(child_text, child.url, source.link_pattern).articles)
        except Exception as exc:  # one child sitemap's failure
            read.problems.append(describe(source, exc))
            continue
    articles = list(dict.fromkeys(articles))[: source.max_articles]
    if not articles:
        raise SourceError(f"{where}: no article links found")

    async def one(url: str) -> Article | Exception | None:
        try:
            got = await _get(source, store, fetcher, url, HTML_ACCEPT)
            if got.not_modified:
                return None
            page = f"{where}: {short(url)}"
            html = decode(got.content, got.content_type, source.encoding, page)
            article = await asyncio.to_thread(extract_article, html, got.url)
        except Exception as exc:  # one page's failure skips that page
            return SourceError(describe(source, exc))
        if article is None:  # a listing, a form, an empty page: no text worth a post
            return Article(url=url, title="", text="", not_article="no article text")
        read.validators.extend(_validators(got, url))
        return article

    posts: list[Post] = []
    undated: set[str] = set()
    errors: list[str] = []
    outcomes = await asyncio.gather(*(one(u) for u in articles))
    # The URL patterns of the pages that say they are articles: a page that only looks like
    # one (a date, some text) off those patterns is a profile or a section front.
    marked = [o.url for o in outcomes if isinstance(o, Article) and o.marked and not o.not_article]
    shapes = article_shapes(marked, articles)
    for outcome in outcomes:
        if isinstance(outcome, Article) and not outcome.marked and not outcome.not_article:
            outcome = replace(outcome, not_article=off_pattern(outcome.url, shapes))
        if outcome is None:
            read.unchanged += 1
        elif isinstance(outcome, Exception):
            errors.append(f"{outcome}; skipped")
        elif outcome.not_article:
            read.skipped.append(f"{short(outcome.url)}: not an article ({outcome.not_article})")
        else:
            post = _article_post(source, outcome, now)
            posts.append(post)
            if outcome.published is None and outcome.updated is None:
                undated.add(post.key)
    if errors and not posts and not read.unchanged:
        raise SourceError(f"{where}: no article could be read ({errors[0]})")
    if not posts and not read.unchanged and read.skipped:
        raise SourceError(
            f"{where}: none of its {len(read.skipped)} page(s) is an article "
            f"({read.skipped[0]}); `digest ingest -v` lists them"
        )
    read.problems.extend(errors)
    read.result = SourceResult(tuple(posts), (), frozenset(undated))
    if not errors:
        read.validators.extend(_validators(response, source.url))
    return read


def _article_post(source: SourceConfig, article: Article, now: datetime) -> Post:
    """A post from an article page: identity is its canonical link (pages carry no guid)."""
    return Post(
        source=source.name,
        guid=article.url,
        url=article.url,
        title=article.title or article.text[:60],
        text=article.text,
        published=article.published or article.updated or now,
        author=article.author,
        updated=article.updated,
        tags=merge_tags(source.tags, article.tags),
        description=article.description,
        image=article.image,
        image_alt=article.image_alt,
        language=source.language or article.language or None,
    )


async def ingest_all(
    config: Config, store: Store, now: datetime, *, fetcher: Fetcher | None = None
) -> list[SourceReport]:
    semaphore = asyncio.Semaphore(MAX_PARALLEL_SOURCES)
    lookback = timedelta(days=config.selection.lookback_days)

    async with fetcher or Fetcher() as client:

        async def one(source: SourceConfig) -> SourceReport:
            async with semaphore:
                try:
                    return await ingest_source(source, store, now, client, lookback)
                except DigestError as exc:
                    # A store error while saving one source (a locked database, say) is
                    # that source's failure; the others still go in.
                    error = one_line(f"source {source.name!r}: {exc}")
                    return SourceReport(source.name, error=error)
                except Exception as exc:  # never a traceback for one source
                    return SourceReport(source.name, error=describe(source, exc))

        return list(await asyncio.gather(*(one(s) for s in config.sources)))
