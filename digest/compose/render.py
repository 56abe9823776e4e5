"""Render a Digest to email HTML (Jinja2 -> MJML -> HTML) and plain text.

MJML is compiled once per digest; per-recipient values stay in the output as fixed ASCII
placeholders (see PLACEHOLDERS) and are filled in by `personalize`, which is cheap.

Only the template puts placeholders in the output. Feed text is a stranger's, and it may spell
a placeholder (`%%DIGEST_EMAIL%%` in an image URL would send each subscriber's address to the
feed's server): while a digest renders, the template's placeholders are written as marks with
a random part no feed can guess (`Renderer.marks`), every placeholder-looking text left in the
output is made inert (`_inert`), and only then do the marks become the real placeholders. So the
stored digest keeps the fixed placeholders (a resumed send personalizes it as before), and
every placeholder in it is one the template wrote.
"""

from __future__ import annotations

import html
import re
import secrets
import traceback
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
import nh3
from markupsafe import Markup
from mjml import mjml2html

import digest as _digest_pkg
from digest.compose.budget import HTML_BUDGET, fit, worst_case_size
from digest.compose.formatting import display_width, format_date, format_reading_time, wrap
from digest.compose.mjml_lint import locate
from digest.compose.note import note_html, note_text
from digest.compose.strings import EMAIL, NAME_TOKEN, language_tag
from digest.errors import TemplateError
from digest.models import Digest, DigestItem, Recipient

__all__ = [
    "GREETING_ELSE",
    "GREETING_END",
    "GREETING_IF_NAME",
    "HTML_BUDGET",
    "HTML_TEMPLATE",
    "LABELS",
    "PALETTE",
    "PLACEHOLDERS",
    "TEXT_TEMPLATE",
    "RenderedDigest",
    "Renderer",
    "builtin_template_dirs",
    "check_html",
    "personalize",
    "safe_url",
    "sanitize_html",
]

HTML_TEMPLATE = "digest.mjml.j2"
TEXT_TEMPLATE = "digest.txt.j2"

# Fixed ASCII tokens: no characters that HTML escaping or MJML would touch.
PLACEHOLDERS: dict[str, str] = {
    "name": NAME_TOKEN,
    "email": "%%DIGEST_EMAIL%%",
    "unsubscribe_url": "%%DIGEST_UNSUBSCRIBE_URL%%",
    "preferences_url": "%%DIGEST_PREFERENCES_URL%%",
}
# A greeting is written as IF_NAME <greeting with %%DIGEST_NAME%%> ELSE <greeting> END;
# `personalize` keeps the first branch when the recipient has a name, else the second.
GREETING_IF_NAME = "%%DIGEST_IF_NAME%%"
GREETING_ELSE = "%%DIGEST_ELSE%%"
GREETING_END = "%%DIGEST_END%%"
_GREETING_RE = re.compile(
    re.escape(GREETING_IF_NAME)
    + r"(.*?)"
    + re.escape(GREETING_ELSE)
    + r"(.*?)"
    + re.escape(GREETING_END),
    re.DOTALL,
)
# Every per-recipient token the output may carry; each starts with "%%DIGEST_".
TOKENS: tuple[str, ...] = (*PLACEHOLDERS.values(), GREETING_IF_NAME, GREETING_ELSE, GREETING_END)
_TOKEN_RE = re.compile("|".join(re.escape(t) for t in TOKENS))
_PLACEHOLDER_RE = re.compile("|".join(re.escape(t) for t in PLACEHOLDERS.values()))
_KEY_BY_TOKEN = {token: key for key, token in PLACEHOLDERS.items()}
# "DIGEST_" right after a "%": how every token goes on after its first "%". In rendered output
# (where the template's own tokens are still marks without "DIGEST_"), each such spot is feed
# text, or feed text right after a mark; `_inert` breaks it, so no token can be formed there.
_TOKEN_TAIL_RE = re.compile(r"(?<=%)DIGEST_")
# The broken form: in HTML a character reference, which a browser shows (and, in a URL
# attribute, requests) as the very same text; in the text part a WORD JOINER (U+2060), which
# is invisible and keeps a line unbroken.
_INERT = {True: "&#68;IGEST_", False: "\u2060DIGEST_"}


def _inert(text: str, *, html_out: bool) -> str:
    """`text` with no "%DIGEST_" left: no placeholder-looking text can be filled in."""
    return _TOKEN_TAIL_RE.sub(_INERT[html_out], text)


FONT_STACKS = {
    "ko": "'Apple SD Gothic Neo', 'Malgun Gothic', 'Noto Sans KR', sans-serif",
    "en": "-apple-system, 'Segoe UI', Roboto, Helvetica, Arial, "
    "'Apple SD Gothic Neo', 'Malgun Gothic', 'Noto Sans KR', sans-serif",
}

# The template's fixed words per language (digest.compose.strings, one catalog for the email).
LABELS: dict[str, dict[str, str]] = EMAIL

# Colours of the built-in template. Every text colour keeps a WCAG contrast of at least 4.5:1
# on the backgrounds it is used on (tests/test_email_design.py checks each pair), light and
# dark. Mid-tone links and greys also survive clients that invert colours on their own.
PALETTE: dict[str, dict[str, str]] = {
    "light": {
        "page": "#f3f4f6",
        "card": "#ffffff",
        "text": "#1f2937",
        "muted": "#4b5563",
        "muted_on_page": "#4b5563",
        "link": "#1d4ed8",
        "rule": "#d1d5db",
    },
    "dark": {
        "page": "#111827",
        "card": "#1f2937",
        "text": "#e5e7eb",
        "muted": "#cbd5e1",
        "muted_on_page": "#cbd5e1",
        "link": "#93c5fd",
        "rule": "#4b5563",
    },
}
# (text colour, background) pairs as the template uses them.
CONTRAST_PAIRS: tuple[tuple[str, str, str], ...] = tuple(
    (scheme, fg, bg)
    for scheme in ("light", "dark")
    for fg, bg in (
        ("text", "card"),
        ("muted", "card"),
        ("link", "card"),
        ("muted_on_page", "page"),
        ("link", "page"),
    )
)

MAX_LINE_OCTETS = 900
PREHEADER_TITLES = 3
PREHEADER_MAX_CHARS = 140


def _lang(language: str | None) -> str:
    base = language_tag(language)
    return base if base in LABELS else "en"


_CONTROL = {chr(c) for c in (*range(32), *range(127, 160))}


def _plain(text: str) -> str:
    """One line of untrusted text: control characters (terminal escapes) dropped, spaces
    collapsed. Escaping for HTML is left to autoescape."""
    text = "".join(" " if ch in _CONTROL else ch for ch in unicodedata.normalize("NFC", text))
    return " ".join(text.split())


# What post HTML may keep when a template shows it (`|sanitize`): structure and links only;
# no script, no style (no remote CSS), no event handlers, only http(s)/mailto links.
SANITIZE_TAGS = frozenset(
    {"a", "b", "blockquote", "br", "code", "em", "i", "li", "ol", "p", "pre", "strong", "ul"}
    | {"img"}
)
SANITIZE_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "width", "height"}}


def sanitize_html(markup: str) -> Markup:
    """Untrusted HTML made safe to embed in the email (nh3, a strict allow-list)."""
    cleaned = nh3.clean(
        str(markup),
        tags=set(SANITIZE_TAGS),
        clean_content_tags={"script", "style", "template", "iframe", "object", "svg", "math"},
        attributes={k: set(v) for k, v in SANITIZE_ATTRIBUTES.items()},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    return Markup(cleaned)


_TAG_RE = re.compile(r"<([a-zA-Z][a-zA-Z0-9:-]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>")
_ATTR_RE = re.compile(r"""([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?""")
_STYLE_RE = re.compile(r"(?is)<style\b[^>]*>(.*?)</style>")
_FORBIDDEN_ELEMENTS = {"script", "iframe", "frame", "object", "embed", "form", "base", "applet"}
_URL_ATTRS = {"href", "src", "action", "formaction", "background", "poster", "xlink:href"}
_REMOTE_CSS_RE = re.compile(r"@import|url\(\s*['\"]?\s*(?:https?:)?//|expression\s*\(", re.I)


def check_html(markup: str) -> str | None:
    """What makes compiled email HTML unsafe, or None: scripts and other active elements,
    event handlers, javascript:/vbscript:/data: links, remote CSS (a template that let post
    HTML through `safe` instead of `sanitize`). Text is escaped, so only real markup counts."""
    for css in _STYLE_RE.findall(markup):
        if _REMOTE_CSS_RE.search(css):
            return "remote CSS in a <style> element"
    for match in _TAG_RE.finditer(markup):
        name = match.group(1).lower()
        if name in _FORBIDDEN_ELEMENTS:
            return f"a <{name}> element"
        attrs = {
            a.group(1).lower(): html.unescape(a.group(2) or a.group(3) or a.group(4) or "")
            for a in _ATTR_RE.finditer(match.group(2))
        }
        for attr, value in attrs.items():
            squeezed = "".join(ch for ch in value if ch > " ").lower()
            if attr.startswith("on"):
                return f"an event handler ({attr}) on <{name}>"
            if attr in _URL_ATTRS and squeezed.startswith(("javascript:", "vbscript:", "data:")):
                return f"a {squeezed.split(':')[0]}: URL in <{name} {attr}>"
            if attr == "style" and _REMOTE_CSS_RE.search(value):
                return f"remote CSS in a style attribute of <{name}>"
        if name == "link" and "stylesheet" in attrs.get("rel", "").lower():
            return "a <link> to a stylesheet"
    return None


# Whitespace (any Unicode space) and control characters never belong in a URL we write.
_URL_SPACE = re.compile(r"[\s\x00-\x1f\x7f]")


_ONE_LINE_COMMENT = re.compile(r"\{#.*?#\}|<!--.*?-->")


def safe_url(url: str | None) -> str:
    """`url` if it is an absolute http(s) URL, else "" (drops javascript:, data:, etc.)."""
    if not url:
        return ""
    url = url.strip()
    if _URL_SPACE.search(url):
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return ""
    return url


def _safe_recipient_url(url: str) -> str:
    """Recipient links may also be mailto: (List-Unsubscribe style)."""
    if url.strip().lower().startswith("mailto:") and not any(c.isspace() for c in url.strip()):
        return url.strip()
    return safe_url(url)


def builtin_template_dirs() -> list[Path]:
    """The packaged templates (installed wheel), then the repo-level `templates/`."""
    pkg = Path(_digest_pkg.__file__).resolve().parent
    candidates = [pkg / "templates", pkg.parent / "templates"]
    return [p for p in candidates if p.is_dir()]


@dataclass(frozen=True)
class RenderedDigest:
    subject: str
    html: str
    text: str
    preheader: str
    demoted: int = 0  # posts shown as title-and-link lines to keep the HTML in budget


def _host(url: str) -> str:
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.")


def _preheader(digest: Digest) -> str:
    titles = [_plain(item.post.title) for item in digest.items[:PREHEADER_TITLES]]
    text = " · ".join(t for t in titles if t) or digest.intro or digest.subject
    text = _plain(text)
    if len(text) > PREHEADER_MAX_CHARS:
        text = text[: PREHEADER_MAX_CHARS - 1].rstrip() + "…"
    return text


def _underline(text: str, char: str = "=", limit: int = 76) -> str:
    return char * min(limit, max(1, display_width(str(text))))


def _autoescape(name: str | None) -> bool:
    return bool(name) and not str(name).endswith((".txt.j2", ".txt"))


class _MarkingLoader(jinja2.FileSystemLoader):
    """Templates as written, except that a placeholder spelled out in a template's own text
    (`%%DIGEST_EMAIL%%` rather than `{{ placeholders.email }}`) becomes the renderer's mark:
    the template is trusted, so it may still write placeholders either way."""

    def __init__(self, searchpath: list[str], mark: Callable[[str], str]) -> None:
        super().__init__(searchpath)
        self.mark = mark

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        return self.mark(source), filename, uptodate


class Renderer:
    """Renders digests with the user's templates (if any) in front of the built-in ones."""

    def __init__(self, override_dir: Path | None = None, *, budget: int = HTML_BUDGET) -> None:
        self.budget = budget
        dirs: list[Path] = []
        if override_dir is not None:
            dirs.append(Path(override_dir))
        dirs.extend(builtin_template_dirs())
        self.search_path = tuple(dirs)
        # The template's placeholders while it renders: random, so feed text cannot spell
        # them; each ends with "%" and holds no "DIGEST_" (see `_TOKEN_TAIL_RE`).
        nonce = secrets.token_hex(12)
        self.marks: dict[str, str] = {t: f"%%{nonce}x{i}%%" for i, t in enumerate(TOKENS)}
        self.env = jinja2.Environment(
            loader=_MarkingLoader([str(d) for d in dirs], self._mark),
            autoescape=_autoescape,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.env.filters["wrap"] = wrap
        self.env.filters["safe_url"] = safe_url
        self.env.filters["format_date"] = format_date
        self.env.filters["reading_time"] = format_reading_time
        self.env.filters["oneline"] = lambda s: " ".join(str(s).split())
        self.env.filters["underline"] = _underline
        self.env.filters["sanitize"] = sanitize_html

    # -- public -----------------------------------------------------------------------------

    def render(
        self, digest: Digest, *, links: Mapping[str, str] | None = None, pixel: str = ""
    ) -> RenderedDigest:
        """HTML and text of `digest`. When the HTML (personalized, worst case) would exceed
        the budget, later posts become title-and-link lines (see `digest.compose.budget`);
        the text part is rendered from the same, fitted digest. `links`: post key -> the URL
        that stands for the post's own in its links (counted clicks); `pixel`: the URL of an
        open pixel put last in the HTML body (digest.tracking; "" = none)."""
        # The reader's language when the digest was planned for one, else the site's.
        lang = _lang(digest.language or digest.site.language)
        preheader = _preheader(digest)
        links = links or {}

        def render_html(candidate: Digest) -> str:
            context = self._context(candidate, lang, preheader, links)
            out = self._compile(self._render_template(HTML_TEMPLATE, context), lang)
            return _with_pixel(out, safe_url(pixel))

        fitted, html_out = fit(
            digest, render_html, lambda out: worst_case_size(out, PLACEHOLDERS), self.budget
        )
        context = self._context(fitted, lang, preheader, links)
        text_out = self._seal(self._render_template(TEXT_TEMPLATE, context), html_out=False)
        text_out = (
            "\n".join(
                line if line == "-- " else line.rstrip() for line in text_out.splitlines()
            ).strip("\n")
            + "\n"
        )
        return RenderedDigest(
            subject=" ".join(digest.subject.split()),
            html=html_out,
            text=text_out,
            preheader=preheader,
            demoted=len(fitted.overflow) - len(digest.overflow),
        )

    # -- internals --------------------------------------------------------------------------

    def _mark(self, text: str) -> str:
        """The template's own placeholders in `text` as this renderer's marks."""
        return _TOKEN_RE.sub(lambda m: self.marks[m.group(0)], text)

    def _seal(self, out: str, *, html_out: bool) -> str:
        """Rendered output with every placeholder-looking text from the data made inert, then
        the template's marks turned into the real placeholders."""
        out = _inert(out, html_out=html_out)
        for token, mark in self.marks.items():
            out = out.replace(mark, token)
        return out

    def _context(
        self, digest: Digest, lang: str, preheader: str, links: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        site = digest.site
        labels = {key: self._mark(value) for key, value in LABELS[lang].items()}
        links = links or {}

        def item_view(item: DigestItem) -> dict[str, Any]:
            post = item.post
            item_lang = _lang(item.summary.language or post.language or site.language)
            url = safe_url(post.url)
            return {
                "item": item,
                "post": post,
                "title": _plain(post.title),
                # A counted link stands in only for a real one: a post without a safe URL
                # stays unlinked.
                "url": (safe_url(links.get(post.key)) or url) if url else "",
                "host": _host(url),
                "image": safe_url(post.image),
                "image_alt": _plain(post.image_alt),
                "author": _plain(post.author),
                "date": format_date(post.published, lang, site.timezone, short=True),
                "reading_time": format_reading_time(item.reading_minutes, lang),
                "sentences": [_plain(s) for s in item.summary.sentences if _plain(s)],
                "language": item_lang,
            }

        archive_url = safe_url(site.archive_url) or safe_url(site.url)
        return {
            "digest": digest,
            "site": site,
            "lang": lang,
            "labels": labels,
            "font_stack": FONT_STACKS[lang],
            "palette": PALETTE,
            "site_url": safe_url(site.url),
            "archive_url": archive_url,
            "issue_label": labels["issue"].format(n=digest.issue_number),
            "date": format_date(digest.created, lang, site.timezone),
            "preheader": preheader,
            "sections": [
                {"section": s, "title": s.title, "items": [item_view(i) for i in s.items]}
                for s in digest.sections
                if s.items
            ],
            "overflow": [item_view(i) for i in digest.overflow],
            "placeholders": {key: self.marks[token] for key, token in PLACEHOLDERS.items()},
            "greeting_if_name": self.marks[GREETING_IF_NAME],
            "greeting_else": self.marks[GREETING_ELSE],
            "greeting_end": self.marks[GREETING_END],
            "why": labels["why"],
            "note_html": note_html(digest.note),
            "note_text": note_text(digest.note),
            "postal_lines": [ln.strip() for ln in site.postal_address.splitlines() if ln.strip()],
        }

    def _render_template(self, name: str, context: dict[str, Any]) -> str:
        try:
            template = self.env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            where = self._where(exc.filename or exc.name or name, exc.lineno, exc)
            raise TemplateError(where) from exc
        except jinja2.TemplateNotFound as exc:
            dirs = ", ".join(str(d) for d in self.search_path) or "(none)"
            raise TemplateError(f"{name}: template not found (searched {dirs})") from exc
        filename = template.filename or name
        try:
            return template.render(context)
        except jinja2.TemplateSyntaxError as exc:  # e.g. a broken {% include %}d template
            where = self._where(exc.filename or exc.name or name, exc.lineno, exc)
            raise TemplateError(where) from exc
        except Exception as exc:  # undefined variables, filter errors, ...
            lineno = 0
            # Jinja rewrites tracebacks so template frames carry the template's file and line;
            # take the innermost one (an {% include %}d file, if that is where it failed).
            for frame in traceback.extract_tb(exc.__traceback__):
                if not frame.filename.endswith((".py", ".pyc")):
                    filename, lineno = frame.filename, frame.lineno or 0
            raise TemplateError(self._where(filename, lineno, exc)) from exc

    def _template_file(self, name: str) -> str:
        for folder in self.search_path:
            if (folder / name).is_file():
                return str(folder / name)
        return name

    @staticmethod
    def _where(filename: str, lineno: int | None, exc: BaseException) -> str:
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        return f"{filename}:{lineno or 0}: {message}"

    def _mjml_error(self, source: str, reason: str) -> TemplateError:
        """A compile error with a line. The problem is found in the rendered MJML (after
        Jinja, so conditionals and includes cannot mislead it); an unknown element is then
        traced to the one template line that spells it, anything else is shown with the
        rendered line's text."""
        path = self._template_file(HTML_TEMPLATE)
        found = locate(source)
        if found is None:
            return TemplateError(f"{path}: MJML compilation failed: {reason}")
        line, problem = found
        unknown = re.fullmatch(r"unknown element <([a-z0-9-]+)>", problem)
        if unknown:
            spelled = re.compile(rf"<{re.escape(unknown.group(1))}(?=[\s/>]|$)", re.IGNORECASE)
            try:
                raw = Path(path).read_text(encoding="utf-8").split("\n")
            except OSError:
                raw = []
            # Comments on one line do not count: they are not what mrml saw.
            hits = [
                i + 1
                for i, text in enumerate(raw)
                if spelled.search(_ONE_LINE_COMMENT.sub("", text))
            ]
            if len(hits) == 1:
                return TemplateError(f"{path}:{hits[0]}: MJML: {problem} ({reason})")
        text = source.split("\n")[line - 1].strip()[:80]
        return TemplateError(
            f"{path}: MJML: line {line} of the rendered MJML: {problem} ({reason}): {text!r}"
        )

    def _compile(self, source: str, lang: str) -> str:
        try:
            out = mjml2html(source, disable_comments=True, fonts={})
        except Exception as exc:  # mrml raises ValueError on malformed MJML, with no position
            raise self._mjml_error(source, str(exc)) from exc
        out = self._seal(out, html_out=True)
        leftover = re.search(r"<mj-[a-z-]+", out)
        if leftover:  # mrml passes unknown mj-* tags through silently
            raise self._mjml_error(source, f"unknown element {leftover.group(0)}>")
        unsafe = check_html(out)
        if unsafe:
            raise TemplateError(
                f"{self._template_file(HTML_TEMPLATE)}: unsafe HTML in the output: {unsafe}; "
                "show post HTML with the `sanitize` filter, never `safe`"
            )
        # mrml emits lang="und" when <mjml lang> is missing or ignored: fix the <html> tag.
        out = re.sub(
            r'<html\b([^>]*?)\blang="und"',
            lambda m: f'<html{m.group(1)}lang="{lang}"',
            out,
            count=1,
        )
        if not re.match(r"(?is)<!doctype html>\s*<html\b[^>]*\blang=", out):
            out = re.sub(r"(?i)<html\b", f'<html lang="{lang}"', out, count=1)
        return fold_html_lines(out)


def _with_pixel(markup: str, url: str) -> str:
    """`markup` with a 1x1 image from `url` last in its body (nothing when `url` is "")."""
    if not url:
        return markup
    tag = (
        f'<img src="{html.escape(url, quote=True)}" width="1" height="1" alt="" '
        'style="display:block;width:1px;height:1px;border:0">\n'
    )
    end = markup.rfind("</body>")
    return markup + tag if end < 0 else markup[:end] + tag + markup[end:]


_BLOCK_END_RE = re.compile(r"(</tr>|</p>|</h[1-6]>|</li>|</ul>)(?!\n)")


def fold_html_lines(markup: str, limit: int = MAX_LINE_OCTETS) -> str:
    """Keep lines under `limit` octets (RFC 5322 allows 998) without changing the rendering.

    mrml emits the whole body on one line. Newlines go after row and block ends (whitespace
    there is not rendered), then, for lines still too long, in place of a space in a text node.
    """
    markup = _BLOCK_END_RE.sub(r"\1\n", markup)
    out: list[str] = []
    for line in markup.split("\n"):
        while len(line.encode()) > limit:
            cut = _text_space_before(line, limit)
            if cut < 0:
                break  # nothing safe to break at: leave it to quoted-printable
            out.append(line[:cut])
            line = line[cut + 1 :]
        out.append(line)
    return "\n".join(out)


def _text_space_before(line: str, limit: int) -> int:
    """Index of the last space whose prefix fits in `limit` octets and where a newline renders
    the same: in a text node, or between attributes of a tag. Never inside quoted attribute
    values or `<!...>` markup. -1 if there is none."""
    best, size = -1, 0
    in_tag, quote, special = False, "", False
    for i, ch in enumerate(line):
        size += len(ch.encode())
        if size > limit:
            break
        if quote:
            if ch == quote:
                quote = ""
        elif in_tag:
            if ch in "\"'":
                quote = ch
            elif ch == ">":
                in_tag = False
            elif ch == " " and not special:
                best = i
        elif ch == "<":
            in_tag, special = True, line.startswith("<!", i)
        elif ch == " " and i > 0:
            best = i
    return best


def personalize(rendered: RenderedDigest, recipient: Recipient) -> tuple[str, str]:
    """Fill the per-recipient placeholders: returns (html, text).

    Values are HTML-escaped in the HTML part. Links that are not http(s)/mailto become "".
    Without a name, the greeting falls back to its nameless form.
    """
    name = " ".join(recipient.name.split())
    values = {
        "name": name,
        "email": recipient.email.strip(),
        "unsubscribe_url": _safe_recipient_url(recipient.unsubscribe_url),
        "preferences_url": _safe_recipient_url(recipient.preferences_url),
    }

    def fill(text: str, escape: bool) -> str:
        text = _GREETING_RE.sub(lambda m: m.group(1) if name else m.group(2), text)

        def value(match: re.Match[str]) -> str:
            found = values[_KEY_BY_TOKEN[match.group(0)]]
            return html.escape(found, quote=True) if escape else found

        # One pass, left to right, like MessageTemplate: a value is never scanned again.
        return _PLACEHOLDER_RE.sub(value, text)

    return fill(rendered.html, True), fill(rendered.text, False)
