"""Hostile feed text and personalization (issue 19): a post that spells digest's placeholders
(`%%DIGEST_EMAIL%%` in an image URL, a link, a title...) must never get a subscriber's address,
name or signed links filled in. Only the template's own placeholders are personalized."""

from __future__ import annotations

import email
import html
import re
import textwrap
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote

import pytest
from click.testing import CliRunner

from digest.cli import main
from digest.compose import PLACEHOLDERS, Renderer, personalize
from digest.compose.render import GREETING_ELSE, GREETING_END, GREETING_IF_NAME, RenderedDigest
from digest.config import load_config
from digest.models import Digest, DigestItem, Post, Recipient, Section, SiteInfo, Summary
from digest.outbox import MessageFactory
from tests.conftest import SMTPServer, write_config

TOKENS = (*PLACEHOLDERS.values(), GREETING_IF_NAME, GREETING_ELSE, GREETING_END)
ALL = " ".join(TOKENS)
QUERY = "&".join(f"t{i}={t}" for i, t in enumerate(TOKENS))
EVIL = "https://evil.example"
READER = "kim.reader@example.com"
NAME = "Kimberly Reader"

SITE = SiteInfo(
    name="Hostile Test",
    url="https://news.example",
    language="en",
    timezone="UTC",
    archive_url="https://news.example/archive",
)


def _hostile_post(n: int) -> Post:
    return Post(
        source="evil",
        guid=f"g{n}",
        url=f"{EVIL}/post/{n}?{QUERY}",
        title=f"Title {ALL}",
        text=f"Body {ALL}",
        published=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        author=f"Author {ALL}",
        description=f"Description {ALL}",
        image=f"{EVIL}/pixel.gif?{QUERY}",
        image_alt=f"Alt {ALL}",
        language="en",
    )


def _item(post: Post) -> DigestItem:
    return DigestItem(post, Summary("en", (f"Summary {ALL}.", "Second sentence.")), 3)


def _digest(*, hostile: bool) -> Digest:
    if hostile:
        items = (_item(_hostile_post(1)), _item(_hostile_post(2)))
        overflow: tuple[DigestItem, ...] = (_item(_hostile_post(3)),)
    else:
        benign = Post(
            "ok", "g1", f"{EVIL}/post/1", "Title", "Body", datetime(2026, 3, 2, tzinfo=UTC)
        )
        items = (_item(benign), _item(benign))
        overflow = (_item(benign),)
    return Digest(
        id="d-hostile" if hostile else "d-benign",
        site=SITE,
        created=datetime(2026, 3, 2, 12, 0, tzinfo=UTC),
        issue_number=7,
        subject=f"Issue 7 {ALL}" if hostile else "Issue 7",
        sections=(Section("all", "Everything", items),),
        intro=f"Intro {ALL}" if hostile else "",
        overflow=overflow,
    )


def _parts(data: bytes) -> tuple[EmailMessage, str, str]:
    msg = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    text = msg.get_body(("plain",))
    page = msg.get_body(("html",))
    assert text is not None and page is not None
    return msg, str(text.get_content()), str(page.get_content())


def _secrets(recipient: Recipient) -> dict[str, str]:
    """What must never leave except where the template put it."""
    unsubscribe = recipient.unsubscribe_url.rsplit("/", 1)[1]
    preferences = recipient.preferences_url.rsplit("/", 1)[1]
    return {
        "email": recipient.email,
        "local part": recipient.email.split("@")[0],
        "name": recipient.name,
        "unsubscribe token": unsubscribe,
        "preferences token": preferences,
        # Each token carries the address base64url-encoded before its MAC.
        "token mac": unsubscribe.split(".")[1],
    }


def _counts(text: str, recipient: Recipient) -> dict[str, int]:
    return {what: text.count(value) for what, value in _secrets(recipient).items()}


def _evil_urls(text: str) -> list[str]:
    return [
        unquote(html.unescape(u)) for u in re.findall(r"https://evil\.example[^\s\"'<>]*", text)
    ]


def _check_no_leak(data: bytes, recipient: Recipient, expected: dict[str, dict[str, int]]) -> None:
    msg, text, page = _parts(data)
    # No URL pointing at the feed's server carries anything of the reader's.
    urls = _evil_urls(page) + _evil_urls(text)
    assert urls, "the hostile links and images are shown"
    for url in urls:
        for what, value in _secrets(recipient).items():
            assert value not in url, f"{what} leaked into {url}"
    # Every address, name and link appears exactly as often as in a digest of harmless posts:
    # only in the template's own places.
    assert _counts(page, recipient) == expected["html"]
    assert _counts(text, recipient) == expected["text"]
    # The placeholders a post spelled are shown as text, never filled in.
    assert "%%DIGEST_EMAIL%%" in html.unescape(page).replace("\u2060", "")
    assert "%%DIGEST_EMAIL%%" in text.replace("\u2060", "")
    # The headers: the unsubscribe link is the reader's own, once.
    assert msg["List-Unsubscribe"].count(recipient.unsubscribe_url) == 1
    assert str(msg["To"]).count(recipient.email) == 1


@pytest.fixture
def factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MessageFactory:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    return MessageFactory(load_config(write_config(tmp_path)))


def _build(factory: MessageFactory, rendered: RenderedDigest, digest_id: str) -> bytes:
    """The message exactly as a send builds it: from the stored html and text (a first send
    and a resume both rebuild from them), through the factory's template."""
    stored = RenderedDigest(rendered.subject, rendered.html, rendered.text, "")
    template = factory.template(digest_id, stored, datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
    return template.build(factory.recipient(READER, NAME)).data


def test_placeholders_in_feed_text_are_never_personalized(factory: MessageFactory) -> None:
    renderer = Renderer()
    benign = renderer.render(_digest(hostile=False))
    hostile = renderer.render(_digest(hostile=True))
    recipient = factory.recipient(READER, NAME)
    _msg, text, page = _parts(_build(factory, benign, "d-benign"))
    expected = {"html": _counts(page, recipient), "text": _counts(text, recipient)}
    assert expected["html"]["email"] == 1 and expected["html"]["unsubscribe token"] == 1
    assert expected["text"]["email"] == 1 and expected["text"]["preferences token"] == 1

    _check_no_leak(_build(factory, hostile, "d-hostile"), recipient, expected)

    # The stored digest holds each placeholder only where the template wrote it.
    for token, spots in ((PLACEHOLDERS["email"], 1), (PLACEHOLDERS["unsubscribe_url"], 1)):
        assert hostile.html.count(token) == spots, token
        assert hostile.text.count(token) == spots, token
    for marker in (GREETING_IF_NAME, GREETING_ELSE, GREETING_END):
        assert hostile.html.count(marker) == 1 and hostile.text.count(marker) == 1


def test_archive_copy_fills_nothing_from_feed_text(factory: MessageFactory) -> None:
    hostile = Renderer().render(_digest(hostile=True))
    recipient = factory.recipient(READER, NAME)
    page, text = personalize(hostile, recipient)
    for out in (page, text):
        for url in _evil_urls(out):
            for what, value in _secrets(recipient).items():
                assert value not in url, f"{what} leaked into {url}"
    assert page.count(READER) == 1 and text.count(READER) == 1


def test_placeholder_split_across_fields_and_next_to_template_tokens(
    factory: MessageFactory, tmp_path: Path
) -> None:
    """A placeholder cut in two across adjacent fields, or finishing a template placeholder's
    trailing %%, is not formed either; a template may still spell a placeholder literally."""
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "digest.txt.j2").write_text(
        "%%DIGEST_EMAIL%%{% for s in sections %}{% for c in s['items'] %}"
        "{{ c.title }}{{ c.author }}{{ placeholders.name }}{{ c.image_alt }}\n"
        "{% endfor %}{% endfor %}{{ placeholders.unsubscribe_url }}\n",
        encoding="utf-8",
    )
    post = Post(
        "evil",
        "g",
        f"{EVIL}/p",
        "x%%DIGEST_EM",  # + author "AIL%%" = %%DIGEST_EMAIL%%
        "body",
        datetime(2026, 3, 2, tzinfo=UTC),
        author="AIL%%",
        image_alt="DIGEST_EMAIL%% %DIGEST_EMAIL%%",  # after the template's "%%DIGEST_NAME%%"
    )
    digest = Digest(
        "d-split",
        SITE,
        datetime(2026, 3, 2, tzinfo=UTC),
        1,
        "s",
        (Section("all", "All", (_item(post),)),),
    )
    rendered = Renderer(folder).render(digest)
    _msg, text, _page = _parts(_build(factory, rendered, "d-split"))
    # The template's literal placeholder at the start, and its unsubscribe link at the end.
    assert text.startswith(READER)
    recipient = factory.recipient(READER, NAME)
    assert text.count(READER) == 1
    assert text.count(recipient.unsubscribe_url) == 1
    assert text.count(NAME) == 1  # the template's placeholders.name, nothing more


# -- end to end: a hostile feed, ingested and sent by the CLI to a real SMTP server ----------

FEED = """\
<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/">
  <title>Evil blog</title>
  <id>urn:evil</id>
  <updated>{when}</updated>
  <link href="{evil}/"/>
  {entries}
</feed>
"""
ENTRY = """\
<entry>
  <title>Post {n} {all}</title>
  <id>urn:evil:{n}</id>
  <link rel="alternate" href="{evil}/post/{n}?{query}"/>
  <updated>{when}</updated>
  <author><name>Author {all}</name></author>
  <media:content url="{evil}/pixel{n}.gif?{query}" medium="image" type="image/gif"/>
  <summary>Description {all}</summary>
  <content type="html">{content}</content>
</entry>
"""


def _feed(folder: Path) -> Path:
    now = datetime.now(UTC).replace(microsecond=0)
    paragraph = (
        f"<p>Readers of this post learn about {ALL} in some detail. "
        f"The second sentence mentions {ALL} again, with more words around it. "
        f"A third sentence repeats the point, so there is something to summarize.</p>"
        f'<p><img src="{EVIL}/inline.png?{QUERY}" alt="Alt {ALL}"></p>' * 2
    )
    entries = "".join(
        ENTRY.format(
            n=n,
            all=html.escape(ALL),
            evil=EVIL,
            query=html.escape(QUERY),
            when=(now - timedelta(hours=n)).isoformat(),
            content=html.escape(paragraph),
        )
        for n in range(1, 4)
    )
    path = folder / "evil.atom"
    path.write_text(FEED.format(when=now.isoformat(), evil=EVIL, entries=entries), "utf-8")
    return path


def test_cli_send_of_a_hostile_feed_leaks_nothing(
    tmp_path: Path, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "test-secret")
    feed = _feed(tmp_path)
    path = write_config(
        tmp_path,
        feed=feed,
        smtp=f'host = "127.0.0.1"\nport = {smtp_server.port}',
    )
    # Subscribers that take everything, with and without a name.
    (tmp_path / "subscribers.csv").write_text(
        textwrap.dedent(
            f"""\
            email,name,themes,language,status
            {READER},{NAME},,en,active
            anon.reader@example.org,,,en,active
            """
        ),
        encoding="utf-8",
    )
    runner = CliRunner()
    result = runner.invoke(main, ["--config", str(path), "ingest"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["--config", str(path), "send"])
    assert result.exit_code == 0, result.output
    factory = MessageFactory(load_config(path))
    received = {m.rcpt_tos[0]: m.data for m in smtp_server.handler.messages}
    assert set(received) == {READER, "anon.reader@example.org"}
    for address, data in received.items():
        name = NAME if address == READER else ""
        recipient = factory.recipient(address, name)
        _msg, text, page = _parts(data)
        urls = _evil_urls(page) + _evil_urls(text)
        assert any("pixel" in u or "inline" in u for u in urls), "the images are in the mail"
        for url in urls:
            for what, value in _secrets(recipient).items():
                if value:
                    assert value not in url, f"{what} leaked into {url}"
        for out in (page, text):
            assert out.count(address) == 1, out
            assert out.count(recipient.unsubscribe_url) == 1
            assert out.count(recipient.preferences_url) == 1
