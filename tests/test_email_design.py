"""The digest email as designed in issue 6, checked on the sample digest (the bundled feed).

Structure and typography of the HTML, the plain-text part as recipients get it (after
MessageTemplate fills in their values), contrast of every colour pair, the size budget that
keeps Gmail from clipping the footer, and the handling of untrusted post content.
"""

from __future__ import annotations

import email
import re
from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markupsafe import escape

from digest.compose.budget import HTML_BUDGET, demote, fit, trim_overflow, worst_case_size
from digest.compose.formatting import display_width, format_date
from digest.compose.render import (
    CONTRAST_PAIRS,
    PALETTE,
    PLACEHOLDERS,
    RenderedDigest,
    Renderer,
    check_html,
    personalize,
    sanitize_html,
)
from digest.errors import TemplateError
from digest.models import Digest, Recipient
from tests.golden.sample import (
    COVER_ALT,
    COVER_IMAGE,
    RECIPIENT,
    SITE,
    build_digest,
    largest_week_digest,
    message_template,
    sample_digest,
    sample_posts,
)

FONT_STACK = "'Apple SD Gothic Neo', 'Malgun Gothic', 'Noto Sans KR', sans-serif"


class Page(HTMLParser):
    """The parts of an HTML page the checks need: tags with attributes, headings, links."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.headings: list[tuple[str, str]] = []
        self.links: list[tuple[str, str]] = []  # (href, text)
        self._heading: tuple[str, list[str]] | None = None
        self._link: tuple[str, list[str]] | None = None
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("h1", "h2", "h3", "h4"):
            self._heading = (tag, [])
        if tag == "a":
            self._link = (dict(attrs).get("href") or "", [])

    def handle_endtag(self, tag: str) -> None:
        if self._heading and tag == self._heading[0]:
            self.headings.append((tag, " ".join("".join(self._heading[1]).split())))
            self._heading = None
        if self._link and tag == "a":
            self.links.append((self._link[0], " ".join("".join(self._link[1]).split())))
            self._link = None

    def handle_data(self, data: str) -> None:
        if self._heading:
            self._heading[1].append(data)
        if self._link:
            self._link[1].append(data)


@pytest.fixture(scope="module")
def sample() -> Digest:
    return sample_digest()


@pytest.fixture(scope="module")
def rendered(sample: Digest) -> RenderedDigest:
    return Renderer().render(sample)


@pytest.fixture(scope="module")
def largest() -> Digest:
    return largest_week_digest()


def _parts(data: bytes) -> tuple[EmailMessage, str, str]:
    msg = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    text = msg.get_body(("plain",))
    page = msg.get_body(("html",))
    assert text is not None and page is not None
    return msg, text.get_content().replace("\r\n", "\n"), page.get_content()


# --- the design -----------------------------------------------------------------------------


def test_header_intro_sections_and_cards(sample: Digest, rendered: RenderedDigest) -> None:
    page = Page(rendered.html)
    assert ("h1", SITE.name) in page.headings
    assert "2026년 11월 23일 (월) · 제42호" in rendered.html
    assert sample.intro and sample.intro in rendered.html
    levels = [level for level, _ in page.headings]
    assert levels.count("h1") == 1
    assert [t for lvl, t in page.headings if lvl == "h2"] == [s.title for s in sample.sections]
    for item in sample.items:
        post = item.post
        assert ("h3", post.title) in page.headings
        assert (post.url, post.title) in page.links  # the linked title
        # the read-more link says what it opens and where: the title and the host
        assert (post.url, f"더 읽기: {post.title} (haebom.example)") in page.links
        date = format_date(post.published, "ko", "Asia/Seoul", short=True)
        assert f"{post.author} · {date} · {item.reading_minutes}분" in rendered.html
        for sentence in item.summary.sentences:
            assert str(escape(" ".join(sentence.split()))) in rendered.html


def test_card_dates_in_site_timezone() -> None:
    # 16:00 UTC on the 22nd is already the 23rd in Seoul
    post = replace(sample_posts()[0], published=datetime(2026, 11, 22, 16, 0, tzinfo=UTC))
    card = Renderer().render(build_digest([post]))
    assert "2026년 11월 23일 · " in card.html and "2026년 11월 22일" not in card.html


def test_footer_why_address_archive_preferences_unsubscribe(rendered: RenderedDigest) -> None:
    page, _ = personalize(rendered, RECIPIENT)
    assert "minji.kim@example.com 주소로 구독 신청하신 해봄의 아카이브 메일입니다." in page
    assert SITE.postal_address in page
    links = Page(page).links
    assert (SITE.archive_url, "아카이브") in links
    assert (RECIPIENT.preferences_url, "구독 설정") in links
    assert (RECIPIENT.unsubscribe_url, "구독 취소") in links
    # the footer comes last: nothing after the unsubscribe link but closing markup
    tail = page[page.index(RECIPIENT.unsubscribe_url) :]
    assert not re.sub(r"<[^>]+>|\s", "", tail.split("구독 취소", 1)[1])


def test_korean_typography_lang_and_dark_mode(rendered: RenderedDigest) -> None:
    html_out = rendered.html
    assert re.match(r'(?is)<!doctype html>\s*<html[^>]*\blang="ko"', html_out)
    assert 'lang="und"' not in html_out
    assert FONT_STACK in html_out
    assert "word-break:keep-all" in html_out and "line-height:1.7" in html_out
    head = html_out[: html_out.index("</head>")]
    assert '<meta name="color-scheme" content="light dark"' in head
    assert '<meta name="supported-color-schemes" content="light dark"' in head
    assert "@media (prefers-color-scheme:dark)" in head
    for colour in PALETTE["dark"].values():
        assert colour in head
    for colour in ("text", "muted", "link", "card", "page"):
        assert PALETTE["light"][colour] in html_out


def test_every_image_has_alt(rendered: RenderedDigest) -> None:
    images = [attrs for tag, attrs in Page(rendered.html).tags if tag == "img"]
    assert images, "the sample digest has a cover image"
    for attrs in images:
        assert "alt" in attrs and attrs["alt"] is not None
        assert attrs.get("width")
    assert {"src": COVER_IMAGE, "alt": COVER_ALT}.items() <= images[0].items()


def _luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(fg: str, bg: str) -> float:
    hi, lo = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize(("scheme", "fg", "bg"), CONTRAST_PAIRS)
def test_contrast_wcag_aa(scheme: str, fg: str, bg: str) -> None:
    colours = PALETTE[scheme]
    assert contrast(colours[fg], colours[bg]) >= 4.5, (scheme, fg, bg)


def test_english_site(sample: Digest) -> None:
    site = replace(SITE, language="en", timezone="America/New_York", name="Haebom Weekly")
    out = Renderer().render(replace(sample, site=site))
    assert re.match(r'(?is)<!doctype html>\s*<html[^>]*\blang="en"', out.html)
    assert "Sunday, November 22, 2026" in out.html  # 23:00 UTC is still the 22nd in New York
    assert " min read" in out.html and "분" not in out.text.split("--")[0].split("\n")[2]
    assert "In this issue: " in out.html
    assert "Unsubscribe" in out.html and "Manage preferences" in out.html


# --- the plain-text part, as received -------------------------------------------------------

LONG_EMAIL = "firstname.middlename.lastname.department@subdomain.example-university.ac.kr"


def _lines_fit(text: str) -> list[str]:
    """Lines of 78 columns or more, except a lone unbreakable token (a URL or an address)."""
    bad = []
    for line in text.splitlines():
        if display_width(line) < 78:
            continue
        tokens = line.split()
        if len(tokens) == 1 and re.match(r"(https?://|mailto:)\S+$|\S+@\S+$", tokens[0]):
            continue
        bad.append(line)
    return bad


@pytest.mark.parametrize(
    "recipient",
    [
        RECIPIENT,
        Recipient(
            email=LONG_EMAIL,
            name="남궁민수",
            unsubscribe_url="https://haebom.example/digest/u/" + "A" * 90,
            preferences_url="https://haebom.example/digest/p/" + "B" * 90,
        ),
        Recipient(email="a@b.kr"),
    ],
    ids=["sample", "long-address", "no-name"],
)
def test_text_part_under_78_columns_after_personalizing(
    sample: Digest, rendered: RenderedDigest, recipient: Recipient
) -> None:
    envelope = message_template(rendered, sample).build(recipient)
    _, text, _ = _parts(envelope.data)
    assert "%%DIGEST_" not in text
    assert _lines_fit(text) == []
    assert f"\n  {recipient.email}\n" in text  # the "why" line's address, on its own line
    flat = " ".join(text.split())
    for item in sample.items:
        assert item.post.title in flat and item.post.url in flat
        for sentence in item.summary.sentences:
            assert " ".join(sentence.split()) in flat


def test_text_part_of_largest_week(largest: Digest) -> None:
    rendered = Renderer().render(largest)
    _, text, _ = _parts(message_template(rendered, largest).build(RECIPIENT).data)
    assert _lines_fit(text) == []
    assert text.count("* ") >= len(largest.items)


def test_message_lines_and_encodings(sample: Digest, rendered: RenderedDigest) -> None:
    data = message_template(rendered, sample).build(RECIPIENT).data
    head, _, body = data.partition(b"\r\n\r\n")
    assert max(len(line) for line in head.split(b"\r\n")) <= 998
    assert max(len(line) for line in body.split(b"\r\n")) <= 76  # quoted-printable
    assert data.isascii()
    msg, _, page = _parts(data)
    assert msg["Subject"] == sample.subject
    for part in msg.walk():
        if not part.is_multipart():
            assert part["Content-Transfer-Encoding"] == "quoted-printable"
    assert max(len(line.encode()) for line in page.splitlines()) <= 998


# --- the size budget (Gmail clips at ~102 KB) -----------------------------------------------


def test_largest_sample_week_fits_gmail(largest: Digest) -> None:
    assert len(largest.items) == 35
    rendered = Renderer().render(largest)
    size = worst_case_size(rendered.html, PLACEHOLDERS)
    assert size < HTML_BUDGET <= 100_000
    _, _, page = _parts(message_template(rendered, largest).build(RECIPIENT).data)
    assert len(page.encode()) < 100_000  # as received: personalized and decoded
    assert rendered.demoted == 0  # the whole sample week fits as full cards
    for item in largest.items:
        assert str(escape(item.post.title)) in rendered.html


def test_past_the_budget_later_posts_become_lines(largest: Digest) -> None:
    budget = 40_000
    rendered = Renderer(budget=budget).render(largest)
    assert worst_case_size(rendered.html, PLACEHOLDERS) <= budget
    assert 0 < rendered.demoted < 35
    page = Page(rendered.html)
    cards = [t for lvl, t in page.headings if lvl == "h3"]
    items = largest.items
    assert cards == [i.post.title for i in items[: len(items) - rendered.demoted]]
    assert ("h2", "더 볼 만한 글") in page.headings
    for item in items[len(cards) :]:  # the later posts, as title-and-link lines
        assert (item.post.url, item.post.title) in page.links
    assert (SITE.archive_url, "지난 글 전체 보기 (아카이브)") in page.links
    assert PLACEHOLDERS["unsubscribe_url"] in rendered.html  # the footer is still there
    assert "더 볼 만한 글" in rendered.text and "지난 글 전체 보기 (아카이브): " in rendered.text
    # one more card would not have fitted
    more = demote(largest, len(cards) + 1)
    assert worst_case_size(Renderer().render(more).html, PLACEHOLDERS) > budget


def test_a_week_three_times_larger_fits_by_demoting(largest: Digest) -> None:
    items = [
        replace(item, post=replace(item.post, guid=f"{item.post.guid}-{n}"))
        for n in range(3)
        for item in largest.items
    ]
    big = replace(largest, sections=(replace(largest.sections[0], items=tuple(items)),))
    rendered = Renderer().render(big)
    assert rendered.demoted > 0
    assert worst_case_size(rendered.html, PLACEHOLDERS) <= HTML_BUDGET


def test_budget_helpers(largest: Digest) -> None:
    assert demote(largest, 999) is largest
    none = demote(largest, 0)
    assert none.sections == () and len(none.overflow) == 35
    assert [i.post.key for i in none.overflow] == [i.post.key for i in largest.items]
    assert len(trim_overflow(none, 5).overflow) == 5
    # nothing fits: the smallest form comes back, with the archive link still there
    chosen, out = fit(largest, lambda d: len(d.items) + len(d.overflow), lambda n: n, 3)
    assert (len(chosen.items), len(chosen.overflow), out) == (0, 3, 3)
    chosen, out = fit(largest, lambda d: len(d.items) * 10 + 1, lambda n: n, 101)
    assert len(chosen.items) == 10 and len(chosen.overflow) == 25


# --- untrusted content ----------------------------------------------------------------------

EVIL = '<img src=x onerror="alert(1)"><script>alert(2)</script><a href="javascript:x()">y</a>'
# What an override template that wrongly marks post HTML `safe` would let into the MJML.
EVIL_MJML = '<a href="javascript:x()" onclick="y()">y</a><b onmouseover="z()">b</b>'


def test_post_fields_escaped_and_control_characters_dropped(sample: Digest) -> None:
    post = replace(
        sample.items[0].post,
        title=f"제목 {EVIL}\x1b[31m빨강\x1b[0m",
        author="<b>Eve</b>\x07",
        image_alt='" onload="alert(3)',
        image="javascript:alert(4)",
    )
    section = replace(sample.sections[0], items=(replace(sample.items[0], post=post),))
    out = Renderer().render(replace(sample, sections=(section,)))
    assert check_html(out.html) is None
    assert "<script>" not in out.html and "&lt;script&gt;" in out.html
    assert "\x1b" not in out.text and "\x07" not in out.text and "\x1b" not in out.html
    assert "[31m빨강" in out.text  # the text stays, the escape character goes
    assert "javascript:alert(4)" not in out.html


def test_sanitize_filter_keeps_structure_drops_active_content() -> None:
    cleaned = str(
        sanitize_html(
            EVIL + '<p style="background:url(https://t.example/x)">문단 <b>굵게</b></p>'
            '<style>@import "https://evil.example/x.css";</style><a href="https://ok.example">ok</a>'
        )
    )
    assert "<script" not in cleaned and "alert(2)" not in cleaned
    assert "onerror" not in cleaned and "javascript:" not in cleaned
    assert "style" not in cleaned and "@import" not in cleaned
    assert "<p>문단 <b>굵게</b></p>" in cleaned
    assert '<a href="https://ok.example" rel="noopener noreferrer">ok</a>' in cleaned
    assert check_html(cleaned) is None


def _override(tmp_path: Path, body: str) -> Renderer:
    (tmp_path / "digest.mjml.j2").write_text(
        "<mjml><mj-body><mj-section><mj-column><mj-text>\n"
        f"{body}\n"
        "</mj-text></mj-column></mj-section></mj-body></mjml>\n",
        encoding="utf-8",
    )
    return Renderer(override_dir=tmp_path)


def test_override_with_sanitize_is_safe(tmp_path: Path, sample: Digest) -> None:
    post = replace(sample.items[0].post, description=EVIL + "<p>요약 <em>강조</em></p>")
    digest = replace(
        sample,
        sections=(replace(sample.sections[0], items=(replace(sample.items[0], post=post),)),),
    )
    renderer = _override(
        tmp_path,
        "{% for s in sections %}{% for c in s['items'] %}"
        "{{ c.post.description|sanitize }}{% endfor %}{% endfor %}",
    )
    out = renderer.render(digest)
    assert "<em>강조</em>" in out.html and "onerror" not in out.html


def test_override_that_lets_html_through_is_refused(tmp_path: Path, sample: Digest) -> None:
    post = replace(sample.items[0].post, description=EVIL_MJML)
    digest = replace(
        sample,
        sections=(replace(sample.sections[0], items=(replace(sample.items[0], post=post),)),),
    )
    renderer = _override(
        tmp_path,
        "{% for s in sections %}{% for c in s['items'] %}"
        "{{ c.post.description|safe }}{% endfor %}{% endfor %}",
    )
    with pytest.raises(
        TemplateError, match=rf"{re.escape(str(tmp_path))}/digest\.mjml\.j2: unsafe"
    ):
        renderer.render(digest)


# --- template override folder ---------------------------------------------------------------


def test_override_error_names_file_and_line(tmp_path: Path, sample: Digest) -> None:
    (tmp_path / "card.txt.j2").write_text("ok\n{{ post.nope.deeper }}\n", encoding="utf-8")
    (tmp_path / "digest.txt.j2").write_text(
        "{{ site.name }}\n{% for s in sections %}{% for c in s['items'] %}"
        "{% set post = c.post %}{% include 'card.txt.j2' %}{% endfor %}{% endfor %}\n",
        encoding="utf-8",
    )
    with pytest.raises(TemplateError, match=rf"{re.escape(str(tmp_path))}/card\.txt\.j2:2: "):
        Renderer(override_dir=tmp_path).render(sample)
    (tmp_path / "digest.mjml.j2").write_text("<mjml>\n<mj-body>\n{% endfor %}\n", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"digest\.mjml\.j2:3: "):
        Renderer(override_dir=tmp_path).render(sample)


def test_override_only_replaces_what_it_names(tmp_path: Path, sample: Digest) -> None:
    (tmp_path / "digest.txt.j2").write_text("{{ site.name }} · {{ date }}\n", encoding="utf-8")
    out = Renderer(override_dir=tmp_path).render(sample)
    assert out.text == "해봄의 아카이브 · 2026년 11월 23일 (월)\n"
    assert FONT_STACK in out.html


ROOT = Path(__file__).resolve().parent.parent


def test_mjml_errors_name_the_template_line(tmp_path: Path, sample: Digest) -> None:
    """mrml reports no position; the error still names the template's file and line."""
    shipped = (ROOT / "templates" / "digest.mjml.j2").read_text(encoding="utf-8")
    lines = shipped.split("\n")
    column = next(i for i, line in enumerate(lines) if "<mj-column" in line)
    cases = {
        # a typo in an element's name: mrml would pass it through silently
        "typo": (lines[column].replace("<mj-column", "<mj-colum", 1), "unknown element <mj-colum>"),
        # an element closed by the wrong end tag
        "mismatch": (lines[column] + "<mj-text>", "is closed by"),
    }
    errors = {}
    for name, (replacement, message) in cases.items():
        broken = [*lines]
        broken[column] = replacement
        folder = tmp_path / name
        folder.mkdir()
        (folder / "digest.mjml.j2").write_text("\n".join(broken), encoding="utf-8")
        with pytest.raises(TemplateError) as info:
            Renderer(override_dir=folder).render(sample)
        errors[name] = str(info.value)
        assert message in errors[name], name
    # A comment that names the same tag is not what mrml saw: the typo's line still wins.
    folder = tmp_path / "commented"
    folder.mkdir()
    broken = [*lines]
    broken[column] = cases["typo"][0]
    broken[0] = broken[0] + "{# do not write <mj-colum> #}"
    (folder / "digest.mjml.j2").write_text("\n".join(broken), encoding="utf-8")
    with pytest.raises(TemplateError, match=rf"/commented/digest\.mjml\.j2:{column + 1}: MJML"):
        Renderer(override_dir=folder).render(sample)
    # The typo on the template line that spells it; the wrong end tag by the rendered MJML's
    # line and text (an element's end tag may come from a Jinja branch or an include).
    assert f"/typo/digest.mjml.j2:{column + 1}: MJML: unknown element" in errors["typo"]
    assert re.search(
        r"/mismatch/digest\.mjml\.j2: MJML: line \d+ of the rendered MJML: <mj-text> "
        r"\(opened on line \d+\) is closed by </mj-column> .*: '.*</mj-column>",
        errors["mismatch"],
    ), errors["mismatch"]


def test_the_mjml_walk(sample: Digest) -> None:
    from digest.compose.mjml_lint import locate

    # HTML inside mj-text is not MJML's business; the innermost unclosed element is named.
    doc = "<mjml><mj-body>\n<mj-section><mj-column>\n<mj-text>a<br>b<p>c</mj-text>"
    assert locate(doc) == (2, "<mj-column> is never closed")
    assert locate(doc + "</mj-column></mj-section></mj-body></mjml>") is None
    assert locate("<mjml>\n<mj-colum/></mjml>") == (2, "unknown element <mj-colum>")
