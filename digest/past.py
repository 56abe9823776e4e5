"""Past issues: find an edition that went out, and rebuild its message for one address.

A stored digest keeps its subject, HTML and text with the per-recipient placeholders, and
its Date; rebuilt for the same address, a message is the one that went out, byte for byte in
its body (`digest send --to ADDR --edition N`, `digest preview --edition N`).
"""

from __future__ import annotations

from dataclasses import replace

from digest.compose.message import Envelope
from digest.compose.render import RenderedDigest, personalize
from digest.errors import DeliveryError
from digest.outbox import MessageFactory
from digest.store import Store, StoredDigest, WebStore


def past_digest(store: Store, ref: str, email: str = "") -> StoredDigest:
    """The digest of the edition `ref` ("latest", an issue number, an edition id) that
    `email` got, or its first variant."""
    edition = store.find_edition(ref)
    if edition is None:
        if ref == "latest":
            raise DeliveryError("nothing to copy: no new posts, and no issue sent yet")
        raise DeliveryError(f"no edition {ref!r} (an issue number, an edition id or latest)")
    variants = store.edition_digests(edition)
    mine = store.digest_of(edition, email) if email else None
    return next((d for d in variants if d.id == mine), variants[0])


def subscriber_name(store: Store, email: str) -> str:
    """The stored name of `email` (a copy greets a subscriber as the issue did), or ""."""
    found = WebStore(store.engine).subscriber(email)
    return found.name if found is not None else ""


def past_message(
    factory: MessageFactory, digest: StoredDigest, email: str, name: str, *, mark: str = ""
) -> Envelope:
    """The message of `digest` for `email`, its subject after `mark`, signed if DKIM is on."""
    rendered = RenderedDigest(mark + digest.subject, digest.html, digest.text, "")
    envelope = factory.template(digest.id, rendered, digest.created).build(
        factory.recipient(email, name)
    )
    if factory.signer is not None:
        envelope = replace(envelope, data=factory.signer.sign(envelope.data))
    return envelope


def past_pages(factory: MessageFactory, digest: StoredDigest, email: str, name: str) -> str:
    """The HTML of `digest` as `email` read it."""
    rendered = RenderedDigest(digest.subject, digest.html, digest.text, "")
    return personalize(rendered, factory.recipient(email, name))[0]
