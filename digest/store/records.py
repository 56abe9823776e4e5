"""Typed rows the store hands out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ScheduleRun:
    schedule: str
    period: str
    scheduled: datetime
    status: str
    owner: str
    editions: tuple[str, ...]
    detail: str
    counts: dict[str, int]
    started: datetime
    finished: datetime | None


@dataclass(frozen=True)
class SchedulerLock:
    owner: str
    pid: int
    host: str
    started: datetime
    heartbeat: datetime


@dataclass(frozen=True)
class DueDelivery:
    digest_id: str
    email: str
    message_id: str
    attempts: int
    name: str
    suppressed: str | None
    status: str = "pending"  # when it was claimed: pending or deferred


@dataclass(frozen=True)
class StoredDigest:
    id: str
    edition: str
    issue_number: int
    variant: str
    theme: str | None
    subject: str
    created: datetime
    html: str
    text: str


@dataclass(frozen=True)
class StoredSubscriber:
    email: str
    name: str
    themes: tuple[str, ...]
    language: str
    status: str


@dataclass(frozen=True)
class ArchivedDigest:
    """A sent digest as the archive lists it."""

    id: str
    edition: str
    issue_number: int
    variant: str  # sorted theme keys, "" = everything
    theme: str | None
    subject: str
    sent: datetime
    sections: tuple[str, ...]  # the section keys it carried, e.g. ("ai",) or ("all",)


@dataclass(frozen=True)
class DigestHistory:
    """A digest as the next plan sees it: when it was composed, what it stood for, its posts."""

    id: str
    created: datetime
    sections: tuple[str, ...]  # the sections it covered (see `covered_sections`)
    post_keys: frozenset[str]
