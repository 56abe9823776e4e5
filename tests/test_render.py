"""The compose stage: Jinja2 -> MJML -> HTML, the plain-text part, and personalization."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from markupsafe import escape

from digest.compose import PLACEHOLDERS, Renderer, personalize
from digest.compose.formatting import (
    display_width,
    format_date,
    format_reading_time,
    reading_minutes,
    wrap,
)
from digest.compose.render import RenderedDigest, builtin_template_dirs
from digest.errors import TemplateError
from digest.models import Digest, DigestItem, Post, Recipient, Section, SiteInfo, Summary

FONT_STACK = "'Apple SD Gothic Neo', 'Malgun Gothic', 'Noto Sans KR', sans-serif"
NASTY_TITLE = 'Rust & Go <script>alert("x")</script> 비교'
URL_RE = re.compile(r"(https?://|mailto:)\S+")


def _post(n: int, title: str, *, lang: str = "ko", **kw: object) -> Post:
    defaults: dict[str, object] = {
        "source": "blog",
        "guid": f"g{n}",
        "url": f"https://blog.example.kr/posts/{n}",
        "title": title,
        "text": "본문",
        "published": datetime(2026, 11, 22, 3, 0, tzinfo=UTC),
        "author": "김민지" if lang == "ko" else "Jane Doe",
        "language": lang,
    }
    defaults.update(kw)
    return Post(**defaults)  # type: ignore[arg-type]


def _item(post: Post, *sentences: str, lang: str = "ko") -> DigestItem:
    return DigestItem(post=post, summary=Summary(lang, tuple(sentences)), reading_minutes=3)


KO_SENTENCES = (
    "서울시는 23일 새로운 대중교통 정책을 발표하고 "
    "버스 노선 개편과 지하철 배차 간격 단축을 핵심 과제로 꼽았다.",
    "시는 이번 개편으로 출퇴근 시간대 평균 이동 시간이 "
    "약 12분 줄어들 것으로 기대하며 시민 의견을 더 듣기로 했다.",
    "전문가들은 노선 조정 과정에서 소외되는 지역이 없도록 세심한 설계가 필요하다고 지적했다.",
)
EN_SENTENCES = (
    "The new release compiles templates ahead of time & caches them per process.",
    "Benchmarks show a 3x speed-up for large digests with many sections.",
)
SITE = SiteInfo(
    name="한빛 기술 소식",
    url="https://news.example.kr",
    language="ko",
    timezone="Asia/Seoul",
    postal_address="서울특별시 중구 세종대로 110\n04524",
    archive_url="https://news.example.kr/archive",
)


@pytest.fixture
def digest_ko() -> Digest:
    ko = _item(
        _post(1, "서울시, 대중교통 개편안 발표", image="https://img.example.kr/1.jpg"),
        *KO_SENTENCES,
    )
    en = _item(
        _post(2, "Template engines in 2026", lang="en", image="data:image/png;base64,AAAA"),
        *EN_SENTENCES,
        lang="en",
    )
    nasty = _item(
        _post(3, NASTY_TITLE, url="javascript:alert(1)", author="<b>Eve</b> & Co"),
        "제목에 <태그>와 & 기호가 들어 있어도 안전하게 보여야 한다.",
    )
    overflow = (
        _item(_post(4, "더 볼 만한 글 하나"), "요약."),
        _item(_post(5, "Another & more"), "Summary.", lang="en"),
    )
    return Digest(
        id="d42",
        site=SITE,
        created=datetime(2026, 11, 23, 0, 0, tzinfo=UTC),
        issue_number=42,
        subject="한빛 기술 소식 제42호",
        sections=(
            Section("transit", "교통", (ko,)),
            Section("dev", "개발 & 도구", (en, nasty)),
        ),
        intro="이번 주에는 교통과 개발 소식을 모았습니다.",
        overflow=overflow,
    )


@pytest.fixture
def rendered(digest_ko: Digest) -> RenderedDigest:
    return Renderer().render(digest_ko)


# --- formatting ----------------------------------------------------------------------------


def test_format_date_and_reading_time() -> None:
    dt = datetime(2026, 11, 22, 16, 0, tzinfo=UTC)  # Monday 01:00 in Seoul
    assert format_date(dt, "ko", "Asia/Seoul") == "2026년 11월 23일 (월)"
    assert format_date(dt, "en", "Asia/Seoul") == "Monday, November 23, 2026"
    assert format_date(dt, "en", "Asia/Seoul", short=True) == "23 Nov 2026"
    assert format_date(dt, "en", "UTC", short=True) == "22 Nov 2026"
    assert reading_minutes("가" * 2500, "ko") == 5
    assert reading_minutes("word " * 460, "en") == 2
    assert reading_minutes("", "en") == 1
    assert format_reading_time(5, "ko") == "5분"
    assert format_reading_time(5, "en") == "5 min read"


def test_wrap_korean_and_urls() -> None:
    url = "https://example.com/" + "a" * 90
    text = "가나다라 마바사 " * 20 + url + " 끝."
    lines = wrap(text, 40, "* ", "  ").splitlines()
    assert url in [line.strip() for line in lines]  # the URL is whole, on its own line
    for line in lines:
        assert display_width(line) <= 40 or URL_RE.search(line)
    assert " ".join(w for line in lines for w in line.split() if w != "*") == " ".join(text.split())
    assert wrap("가" * 30, 20).splitlines() == ["가" * 10, "가" * 10, "가" * 10]


# --- HTML ----------------------------------------------------------------------------------


def test_html_language_typography_and_dark_mode(rendered: RenderedDigest) -> None:
    page = rendered.html
    assert re.match(r'(?is)<!doctype html>\s*<html[^>]*\blang="ko"', page)
    assert 'lang="und"' not in page
    assert FONT_STACK in page
    assert "word-break:keep-all" in page
    assert "line-height:1.7" in page
    assert '<meta name="color-scheme" content="light dark"' in page
    assert '<meta name="supported-color-schemes" content="light dark"' in page
    assert "<mj-" not in page
    assert "fonts.googleapis.com" not in page
    assert "2026년 11월 23일 (월)" in page and "제42호" in page


def test_html_contains_every_title_and_sentence_escaped(
    rendered: RenderedDigest, digest_ko: Digest
) -> None:
    page = rendered.html
    for item in (*digest_ko.items, *digest_ko.overflow):
        assert str(escape(item.post.title)) in page
    for item in digest_ko.items:
        for sentence in item.summary.sentences:
            assert str(escape(sentence)) in page
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "<b>Eve</b>" not in page and "&lt;b&gt;Eve&lt;/b&gt; &amp; Co" in page
    assert "<h2" in page and "개발 &amp; 도구" in page


def test_html_links_are_http_only(rendered: RenderedDigest) -> None:
    page = rendered.html
    assert "javascript:" not in page
    assert "data:image" not in page
    for url in re.findall(r'(?:href|src)="([^"]*)"', page):
        assert url.startswith(("https://", "http://", "%%DIGEST_")), url
    # the title of the post with a javascript: URL is shown, unlinked, without "read more"
    assert "더 읽기: Rust &amp; Go" not in page


def test_html_cards_images_read_more_footer(rendered: RenderedDigest) -> None:
    page = rendered.html
    assert re.search(r'<img src="https://img\.example\.kr/1\.jpg" alt="" ', page)
    assert "더 읽기: 서울시, 대중교통 개편안 발표 (blog.example.kr)</a>" in page
    assert 'href="https://blog.example.kr/posts/4"' in page  # overflow line
    assert "지난 글 전체 보기" in page and 'href="https://news.example.kr/archive"' in page
    assert re.search(r"서울특별시 중구 세종대로 110<br\s*/?>04524", page)
    assert "구독 취소" in page and "구독 설정" in page
    assert f'href="{PLACEHOLDERS["unsubscribe_url"]}"' in page
    assert f'href="{PLACEHOLDERS["preferences_url"]}"' in page


def test_preheader_from_first_titles(rendered: RenderedDigest) -> None:
    assert rendered.preheader.startswith("서울시, 대중교통 개편안 발표 · Template engines in 2026")
    # visible, first text of the body: no hidden, tiny or same-colour-as-background text
    body = rendered.html[rendered.html.index("<body") :]
    first_text = re.sub(r"<[^>]+>", " ", body).split("이번 호:")[0]
    assert not first_text.strip()
    assert f"이번 호: {escape(rendered.preheader)}" in body
    assert "display:none" not in body and "opacity:0" not in body
    assert "font-size:1px" not in body
    assert not re.search(r"(?<![-\w])color:#fff", body)
    assert rendered.subject == "한빛 기술 소식 제42호"


def test_html_lines_fit_smtp_limit(rendered: RenderedDigest) -> None:
    assert max(len(line.encode()) for line in rendered.html.splitlines()) <= 998


def test_english_site_labels(digest_ko: Digest) -> None:
    site = SiteInfo(name="Dev Weekly", url="https://dev.example.com", language="en", timezone="UTC")
    digest_en = Digest(**{**digest_ko.__dict__, "site": site})
    out = Renderer().render(digest_en)
    assert re.match(r'(?is)<!doctype html>\s*<html[^>]*\blang="en"', out.html)
    assert "Read more: Template engines in 2026 (blog.example.kr)</a>" in out.html
    assert "Unsubscribe" in out.html and "Manage preferences" in out.html
    assert "Monday, November 23, 2026" in out.html
    assert "Read more: https://blog.example.kr/posts/2" in out.text


# --- text ----------------------------------------------------------------------------------


def test_text_part(rendered: RenderedDigest, digest_ko: Digest) -> None:
    recipient = Recipient(email="minji@example.com", name="김민지")
    text = personalize(rendered, recipient)[1]
    flat = " ".join(text.split())
    for item in (*digest_ko.items, *digest_ko.overflow):
        assert " ".join(item.post.title.split()) in flat  # raw, not HTML-escaped
    for item in digest_ko.items:
        for sentence in item.summary.sentences:
            assert sentence in flat
    assert "&amp;" not in text and "&lt;" not in text
    assert "더 읽기: https://blog.example.kr/posts/1" in text
    assert "javascript:" not in text
    for line in text.splitlines():
        assert display_width(line) < 78 or URL_RE.search(line), line


# --- personalization -----------------------------------------------------------------------


def test_personalize_replaces_placeholders(rendered: RenderedDigest) -> None:
    recipient = Recipient(
        email="minji@example.com",
        name="김<민지>",
        unsubscribe_url="https://news.example.kr/u?t=abc&s=1",
        preferences_url="https://news.example.kr/p?t=abc",
    )
    page, text = personalize(rendered, recipient)
    for out in (page, text):
        assert "%%DIGEST_" not in out
    assert "김&lt;민지&gt;님, 안녕하세요." in page
    assert 'href="https://news.example.kr/u?t=abc&amp;s=1"' in page
    assert "minji@example.com" in page
    assert "김<민지>님, 안녕하세요." in text
    assert "구독 취소:\n  https://news.example.kr/u?t=abc&s=1\n" in text


def test_personalize_without_name_and_bad_url(rendered: RenderedDigest) -> None:
    recipient = Recipient(email="a@b.kr", unsubscribe_url="javascript:alert(1)")
    page, text = personalize(rendered, recipient)
    assert "%%DIGEST_" not in page and "%%DIGEST_" not in text
    assert ">안녕하세요.</p>" in page
    assert "님," not in text
    assert "javascript:" not in page


# --- templates: override and errors --------------------------------------------------------


def test_builtin_templates_found() -> None:
    assert any((d / "digest.mjml.j2").is_file() for d in builtin_template_dirs())


def test_override_dir_wins(tmp_path: Path, digest_ko: Digest) -> None:
    (tmp_path / "digest.txt.j2").write_text("CUSTOM {{ site.name }}\n", encoding="utf-8")
    out = Renderer(override_dir=tmp_path).render(digest_ko)
    assert out.text == "CUSTOM 한빛 기술 소식\n"
    assert FONT_STACK in out.html  # the built-in HTML template is still used


def test_syntax_error_names_file_and_line(tmp_path: Path, digest_ko: Digest) -> None:
    (tmp_path / "digest.txt.j2").write_text("ok\nok\n{% if %}\n", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"digest\.txt\.j2:3: "):
        Renderer(override_dir=tmp_path).render(digest_ko)


def test_undefined_variable_names_file_and_line(tmp_path: Path, digest_ko: Digest) -> None:
    (tmp_path / "digest.txt.j2").write_text("a\n{{ site.name }}\n{{ nope.x }}\n", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"digest\.txt\.j2:3: .*nope"):
        Renderer(override_dir=tmp_path).render(digest_ko)


def test_autoescape_in_override_mjml(tmp_path: Path, digest_ko: Digest) -> None:
    (tmp_path / "digest.mjml.j2").write_text(
        "<mjml><mj-body><mj-section><mj-column><mj-text>"
        "{% for s in sections %}{{ s.title }}{% endfor %}"
        "</mj-text></mj-column></mj-section></mj-body></mjml>\n",
        encoding="utf-8",
    )
    out = Renderer(override_dir=tmp_path).render(digest_ko)
    assert "개발 &amp; 도구" in out.html
    assert 'lang="ko"' in out.html  # fixed up even though <mjml> has no lang


def test_mjml_errors_raise(tmp_path: Path, digest_ko: Digest) -> None:
    (tmp_path / "digest.mjml.j2").write_text(
        "<mjml><mj-body><mj-section><mj-column><mj-text>x</mj-column></mj-section></mj-body>",
        encoding="utf-8",
    )
    with pytest.raises(TemplateError, match=r"digest\.mjml\.j2"):
        Renderer(override_dir=tmp_path).render(digest_ko)
    (tmp_path / "digest.mjml.j2").write_text(
        "<mjml><mj-body><mj-nonsense /></mj-body></mjml>", encoding="utf-8"
    )
    with pytest.raises(TemplateError, match="mj-nonsense"):
        Renderer(override_dir=tmp_path).render(digest_ko)
