"""The outbox: hand composed digests to a sender. Light by design: it imports nothing of the
NLP stack, so delivery workers start in a second and stay small (see digest.send.workers).

`record_editions` writes every variant of one or more editions and one pending row per
recipient, in one transaction, before anything is sent; `deliver_recorded` sends what is
still pending or due, from the stored digests, so a
first send and a resume are the same code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime

from digest.compose.message import Envelope, MessageTemplate, parse_sender
from digest.compose.render import RenderedDigest
from digest.config import Config
from digest.edition import Edition, Variant
from digest.models import Recipient
from digest.send import Sender
from digest.send.delivery import Clock, DeliveryReport, run_deliveries
from digest.send.dkim import DKIMSigner
from digest.store import DigestRecord, Store, StoredSubscriber
from digest.tokens import load_secret, make_token


class MessageFactory:
    """Per-recipient values for one config: links signed with the store's secret."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.secret = load_secret(config)
        self.base = config.web.base_url.rstrip("/")
        self.domain = parse_sender(config.site.sender)[1].rpartition("@")[2]
        self._templates: dict[str, MessageTemplate] = {}
        d = config.delivery
        self.signer = (
            DKIMSigner.from_file(d.dkim_selector, d.dkim_domain or self.domain, d.dkim_key_file)
            if d.dkim_selector and d.dkim_key_file
            else None
        )

    def recipient(self, email: str, name: str = "") -> Recipient:
        return Recipient(
            email=email,
            name=name,
            unsubscribe_url=f"{self.base}/u/{make_token(self.secret, 'unsubscribe', email)}",
            preferences_url=f"{self.base}/p/{make_token(self.secret, 'preferences', email)}",
        )

    def template(self, digest_id: str, rendered: RenderedDigest, date: datetime) -> MessageTemplate:
        """The encoded message of one digest variant, made once and kept."""
        if digest_id not in self._templates:
            self._templates[digest_id] = MessageTemplate(
                rendered,
                digest_id=digest_id,
                sender=self.config.site.sender,
                list_id=self.config.site.name,
                date=date,
                reply_to=self.config.site.reply_to,
            )
        return self._templates[digest_id]

    def message_id(self, variant: Variant, email: str) -> str:
        """The Message-ID the message will carry: from the very template that builds it."""
        template = self.template(variant.digest.id, variant.rendered, variant.digest.created)
        return template.message_id(email)

    def envelope(self, variant: Variant, sub: StoredSubscriber) -> Envelope:
        template = self.template(variant.digest.id, variant.rendered, variant.digest.created)
        return template.build(self.recipient(sub.email, sub.name))


def record_editions(
    editions: Sequence[Edition],
    factory: MessageFactory,
    store: Store,
    *,
    run: tuple[str, str, str, Sequence[str]] | None = None,
    drafts: Sequence[dict[str, object]] = (),
) -> None:
    """Write every variant of `editions` and one pending row per recipient, in one
    transaction, before anything is sent: a crash leaves all of it or none of it. `run`:
    the schedule's run key, written in the same transaction (see `Store.record_editions`);
    `drafts`: their editions are recorded held (digest.approval)."""
    records = [
        DigestRecord(
            digest_id=variant.digest.id,
            edition=edition.id,
            issue_number=edition.issue_number,
            variant=variant.key,
            theme=edition.theme,
            subject=variant.rendered.subject,
            sections=variant.sections,
            html=variant.rendered.html,
            text=variant.rendered.text,
            recipients=_rows(factory, variant),
            created=variant.digest.created,
        )
        for edition in editions
        for variant in edition.variants
    ]
    store.record_editions(records, run=run, drafts=drafts)


def _rows(factory: MessageFactory, variant: Variant) -> Iterator[tuple[str, str]]:
    """(email, Message-ID) of each recipient of `variant`, made as they are written."""
    for sub in variant.recipients:
        yield sub.email, factory.message_id(variant, sub.email)


def record_edition(edition: Edition, factory: MessageFactory, store: Store) -> None:
    """Write one edition whole (see `record_editions`)."""
    record_editions([edition], factory, store)


async def deliver_recorded(
    edition_id: str,
    factory: MessageFactory,
    sender: Sender,
    store: Store,
    *,
    clock: Clock | None = None,
    on_progress: Callable[[DeliveryReport], None] | None = None,
    stop: asyncio.Event | None = None,
    shard: tuple[int, int] | None = None,
) -> DeliveryReport:
    """Send what is still pending or due in a recorded edition: a first send or a resume.

    The messages are rebuilt from the stored digests, so a resumed message is byte for byte
    the one the first attempt would have sent (same Message-ID, same Date).
    """
    stored = store.edition_digests(edition_id)
    templates = {
        d.id: factory.template(d.id, RenderedDigest(d.subject, d.html, d.text, ""), d.created)
        for d in stored
    }
    return await run_deliveries(
        store,
        templates,
        {d.id: d.created for d in stored},
        factory.recipient,
        sender,
        config=factory.config.delivery,
        concurrency=factory.config.smtp.concurrency,
        clock=clock,
        on_progress=on_progress,
        stop=stop,
        signer=factory.signer,
        shard=shard,
        lease_seconds=lease_seconds(factory.config),
    )


def lease_seconds(config: Config) -> float:
    """How long a sender holds the rows it claims: long enough for its queue to drain at a
    slow server's pace, short enough that a dead sender's rows come back soon."""
    return config.delivery.lease_seconds or max(60.0, 4 * config.smtp.timeout)


async def send_test_copies(
    edition: Edition, factory: MessageFactory, sender: Sender, *, subject_mark: str = ""
) -> DeliveryReport:
    """Send without recording anything (test copies): one message per listed recipient,
    the subject after `subject_mark`."""
    report = DeliveryReport()
    for variant in edition.variants:
        if subject_mark:
            marked = replace(variant.rendered, subject=subject_mark + variant.rendered.subject)
            variant = replace(variant, rendered=marked)
        for sub in variant.recipients:
            try:
                envelope = factory.envelope(variant, sub)
            except ValueError as exc:
                report.add(sub.email, "failed", f"not sent: {exc}")
                continue
            if factory.signer is not None:
                envelope = replace(envelope, data=factory.signer.sign(envelope.data))
            outcome = await sender.send(envelope)
            report.add(sub.email, outcome.status, outcome.reply)
    return report
