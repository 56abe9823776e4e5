"""Where an MJML document goes wrong, by line: mjml-python (mrml) reports errors without a
position ("unexpected end of stream"), and passes unknown `mj-*` tags through silently.

`locate` walks the `mj-*` elements of a document (the HTML inside `mj-text` or `mj-raw` is
not checked) and names the first line where one is unknown, closed by the wrong end tag or
never closed. It runs only after mrml has failed, to say where.
"""

from __future__ import annotations

from html.parser import HTMLParser

# MJML 4's elements (mrml implements these).
KNOWN = frozenset(
    {
        "mjml",
        "mj-head",
        "mj-body",
        "mj-attributes",
        "mj-all",
        "mj-class",
        "mj-breakpoint",
        "mj-font",
        "mj-html-attributes",
        "mj-html-attribute",
        "mj-selector",
        "mj-preview",
        "mj-style",
        "mj-title",
        "mj-include",
        "mj-accordion",
        "mj-accordion-element",
        "mj-accordion-title",
        "mj-accordion-text",
        "mj-button",
        "mj-carousel",
        "mj-carousel-image",
        "mj-column",
        "mj-divider",
        "mj-group",
        "mj-hero",
        "mj-image",
        "mj-navbar",
        "mj-navbar-link",
        "mj-raw",
        "mj-section",
        "mj-social",
        "mj-social-element",
        "mj-spacer",
        "mj-table",
        "mj-text",
        "mj-wrapper",
    }
)


class _Walker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[tuple[str, int]] = []
        self.problem: tuple[int, str] | None = None

    def _report(self, message: str) -> None:
        if self.problem is None:
            self.problem = (self.getpos()[0], message)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "mjml" or tag.startswith("mj-"):
            if tag not in KNOWN:
                self._report(f"unknown element <{tag}>")
            self.open.append((tag, self.getpos()[0]))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in KNOWN and (tag == "mjml" or tag.startswith("mj-")):
            self._report(f"unknown element <{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if not (tag == "mjml" or tag.startswith("mj-")):
            return
        if not self.open:
            self._report(f"</{tag}> closes nothing")
            return
        opened, line = self.open.pop()
        if opened != tag:
            self._report(f"<{opened}> (opened on line {line}) is closed by </{tag}>")


def locate(source: str) -> tuple[int, str] | None:
    """(line, what is wrong) for the first structural problem in `source`, or None."""
    walker = _Walker()
    walker.feed(source)
    walker.close()
    if walker.problem is None and walker.open:
        tag, line = walker.open[-1]
        walker.problem = (line, f"<{tag}> is never closed")
    return walker.problem
