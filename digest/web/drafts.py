"""The preview's drafts: each edition a `approval = "draft"` schedule composed and holds, as
its readers will get it, with a note field and an "Approve and send" button.

The button is a POST with the preview's CSRF token; it approves through `digest.approval`
(the note rendered into every variant and the rows released in one transaction, once) and
then sends, as `digest approve` does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from digest.approval import DraftInfo, approve, draft_info, find_draft, preview_link
from digest.config import Config, load_config
from digest.errors import DigestError
from digest.outbox import MessageFactory
from digest.past import past_pages
from digest.send.delivery import DeliveryReport
from digest.stop import StopSignal
from digest.store import Store
from digest.web.common import CSP_EMAIL, Csrf, PageError, Pages
from digest.web.labels import preview_labels_for

DeliverFn = Callable[[Config, Store, str], str]


@dataclass
class _Lines:
    """A send's report as lines, for the result page (digest.sending.Reporter)."""

    lines: list[str] = field(default_factory=list)

    def info(self, line: str) -> None:
        self.lines.append(line)

    def warn(self, line: str) -> None:
        self.lines.append(f"warning: {line}")

    def progress(self, total: int) -> Callable[[DeliveryReport], None] | None:
        return None

    def progress_done(self) -> None:
        pass


def deliver_now(config: Config, store: Store, edition: str) -> str:
    """Send an approved edition from this process (as `digest approve` does)."""
    from digest.sending import deliver_editions

    report = _Lines()
    try:
        deliver_editions(config, store, [edition], report, stop=StopSignal())
    except DigestError as exc:
        report.lines.append(f"not finished: {exc}")
    return "; ".join(report.lines)


@dataclass
class DraftPages:
    """The drafts' routes of `digest preview`; the config is read again on every request."""

    config_path: Path
    store: Store
    deliver: DeliverFn = deliver_now

    def held(self) -> list[DraftInfo]:
        return [draft_info(self.store, d) for d in self.store.drafts()]

    def routes(self, pages: Pages, csrf: Csrf) -> list[Route]:
        def info(request: Request) -> DraftInfo:
            try:
                draft = find_draft(self.store, request.path_params["edition"], held_only=False)
            except DigestError:
                raise PageError(404, "No such draft.") from None
            return draft_info(self.store, draft)

        async def index(request: Request) -> Response:
            held = await run_in_threadpool(self.held)
            config = load_config(self.config_path)
            return pages.render(
                "preview_drafts.html.j2", drafts=held, site=config.site, **_words(config)
            )

        async def page(request: Request) -> Response:
            found = await run_in_threadpool(info, request)
            config = load_config(self.config_path)
            return self._page(pages, csrf, config, found)

        async def email_html(request: Request) -> Response:
            found = await run_in_threadpool(info, request)
            digest_id = request.path_params["digest"]
            stored = self.store.edition_digests(found.edition)
            digest = next((d for d in stored if d.id == digest_id), None)
            if digest is None:
                raise PageError(404, "No such variant in this draft.")
            factory = MessageFactory(load_config(self.config_path))
            sample = f"preview@{factory.domain}"
            return HTMLResponse(
                past_pages(factory, digest, sample, ""),
                headers={"Content-Security-Policy": CSP_EMAIL, "X-Frame-Options": "SAMEORIGIN"},
            )

        async def approve_send(request: Request) -> Response:
            form = await request.form(max_files=0, max_fields=10)
            token = form.get("csrf")
            if not isinstance(token, str) or not csrf.check(request, token):
                raise PageError(403, "The form expired or came from another site; reload the page.")
            found = await run_in_threadpool(info, request)
            note = form.get("note")
            config = load_config(self.config_path)
            try:
                await run_in_threadpool(
                    approve, config, self.store, found.draft,
                    note=note if isinstance(note, str) else None, by="editor (preview)",
                    now=datetime.now(UTC),
                )  # fmt: skip
            except DigestError as exc:
                return self._page(pages, csrf, config, found, problem=str(exc), status=409)
            outcome = await run_in_threadpool(self.deliver, config, self.store, found.edition)
            after = await run_in_threadpool(self.store.draft, found.edition)
            done = (
                found if after is None else await run_in_threadpool(draft_info, self.store, after)
            )
            return self._page(pages, csrf, config, done, result=outcome)

        return [
            Route("/drafts", index),
            Route("/drafts/{edition}", page),
            Route("/drafts/{edition}/{digest}/email.html", email_html),
            Route("/drafts/{edition}/approve", approve_send, methods=["POST"]),
        ]

    def _page(
        self,
        pages: Pages,
        csrf: Csrf,
        config: Config,
        found: DraftInfo,
        *,
        problem: str = "",
        result: str = "",
        status: int = 200,
    ) -> Response:
        return pages.render(
            "preview_draft.html.j2",
            status,
            draft=found,
            digests=self.store.edition_digests(found.edition),
            site=config.site,
            csrf=csrf.token(f"/drafts/{found.edition}/approve"),
            link=preview_link(config, found.edition),
            problem=problem,
            result=result,
            **_words(config),
        )


def _words(config: Config) -> dict[str, Any]:
    """The drafts pages speak the site's language, as the rest of the preview does."""
    language = config.site.language
    return {"t": preview_labels_for(language), "lang": language}
