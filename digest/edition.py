"""What planning hands to delivery: an edition and its composed digest variants.

Planning (`digest.pipeline`) builds these; the outbox records and sends them. Both import
this module, neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from digest.compose.render import RenderedDigest
from digest.models import Digest
from digest.store import StoredSubscriber


@dataclass(frozen=True)
class Variant:
    key: str  # sorted theme keys; "" = everything
    digest: Digest
    rendered: RenderedDigest
    sections: dict[str, list[str]]  # section key -> post keys, as recorded in the store
    recipients: tuple[StoredSubscriber, ...]


@dataclass(frozen=True)
class Edition:
    id: str
    issue_number: int
    theme: str | None
    variants: tuple[Variant, ...]
    quiet: tuple[StoredSubscriber, ...] = field(default=())  # nothing new for them

    @property
    def recipients(self) -> int:
        return sum(len(v.recipients) for v in self.variants)
