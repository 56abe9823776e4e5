"""Approval: a schedule with `approval = "draft"` composes and records its edition whole, but
held; the editor is told, and the edition goes out when approved (`digest approve`, the
preview's button) or when its deadline passes.

- `draft_rows` are written with the edition (`record_editions(drafts=...)`), in its
  transaction: a crash leaves a whole draft or nothing. Its delivery rows are `held`, which no
  sender claims.
- `editor_notice` is the editor's email: the issue, its posts, how to approve. A draft whose
  notice was not accepted (a crash right after composing, a server down) is told again by
  the scheduler's next check, so it is never left approvable but unknown.
- `approve` renders every variant again from the draft's snapshot with the note on top, then
  releases it: bodies, note and rows change in one transaction, and only if it is still held,
  so the editor and the deadline never both send it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from zoneinfo import ZoneInfo

from digest.compose.message import Envelope, message_id, parse_sender
from digest.compose.note import NOTE_MAX_CHARS
from digest.compose.render import Renderer
from digest.config import Config, ScheduleConfig
from digest.edition import Edition
from digest.errors import DeliveryError
from digest.pipeline import render_for_edition
from digest.snapshot import digest_from_json, digest_to_json
from digest.store import Store, StoredDraft, draft_row
from digest.tokens import load_secret


@dataclass(frozen=True)
class DraftInfo:
    """A draft as the CLI, the preview and the notice show it."""

    draft: StoredDraft
    issue_number: int
    theme: str | None
    subjects: tuple[str, ...]
    recipients: int
    titles: tuple[tuple[str, str], ...]  # (title, url) of every post, each once

    @property
    def edition(self) -> str:
        return self.draft.edition


def draft_rows(
    config: Config,
    editions: Sequence[Edition],
    sched: ScheduleConfig,
    period: str,
    now: datetime,
) -> list[dict[str, object]]:
    """The `drafts` rows of a run's editions, written in their recording transaction."""
    deadline = sched.deadline()
    return [
        draft_row(
            edition.id,
            snapshot={v.digest.id: digest_to_json(v.digest) for v in edition.variants},
            created=now,
            deadline=None if deadline is None else now + deadline,
            notify=sched.notify or config.editor.email,
            schedule=sched.name,
            period=period,
        )
        for edition in editions
    ]


def find_draft(store: Store, ref: str = "latest", *, held_only: bool = True) -> StoredDraft:
    """The draft `ref` names: "latest" (the newest held one), an issue number or an edition
    id; DeliveryError naming what there is when there is no such held draft."""
    held = store.drafts()
    if ref == "latest":
        if not held:
            raise DeliveryError("no draft waits for approval (`digest drafts` lists them)")
        return held[-1]
    edition = store.find_edition(ref) if ref.isdigit() else ref
    if ref.isdigit():
        # An issue number: the held draft with that number first (a sent issue may share it
        # with a theme's series).
        for d in held:
            digests = store.edition_digests(d.edition)
            if digests and digests[0].issue_number == int(ref):
                return d
    found = store.draft(edition or ref)
    if found is None:
        raise DeliveryError(f"no draft {ref!r} (an issue number, an edition id or latest)")
    if held_only and found.status != "held":
        raise DeliveryError(
            f"draft {found.edition} is already {found.status}"
            + (f" (by {found.decided_by})" if found.decided_by else "")
        )
    return found


def draft_info(store: Store, draft: StoredDraft) -> DraftInfo:
    digests = store.edition_digests(draft.edition)
    counts = store.delivery_counts(draft.edition)
    titles: dict[str, str] = {}
    for data in store.draft_snapshot(draft.edition).values():
        for item in digest_from_json(data).items:
            titles.setdefault(item.post.url, item.post.title)
    return DraftInfo(
        draft,
        digests[0].issue_number if digests else 0,
        digests[0].theme if digests else None,
        tuple(dict.fromkeys(d.subject for d in digests)),
        sum(counts.values()),
        tuple((title, url) for url, title in titles.items()),
    )


def list_lines(config: Config, store: Store) -> list[str]:
    """`digest drafts` (`digest approve --list`): one line per held draft."""
    zone = ZoneInfo(config.site.timezone)
    lines = []
    for draft in store.drafts():
        info = draft_info(store, draft)
        deadline = (
            f"sent anyway at {draft.deadline.astimezone(zone):%Y-%m-%d %H:%M %Z}"
            if draft.deadline
            else "no deadline"
        )
        told = "editor told" if draft.notified else "editor not told yet"
        lines.append(
            f"issue #{info.issue_number}  edition {draft.edition}  {info.recipients} "
            f"recipient(s), {len(info.titles)} post(s)  {deadline}  {told}"
        )
    return lines


def rendered_bodies(
    config: Config, store: Store, draft: StoredDraft, note: str
) -> dict[str, tuple[str, str]]:
    """Every variant of `draft` rendered again with `note` (digest id -> (html, text)).
    The snapshot is what was composed, so only the note differs from the recorded body."""
    renderer = Renderer(config.templates.folder)
    secret = functools.cache(lambda: load_secret(config))
    bodies = {}
    for digest_id, data in store.draft_snapshot(draft.edition).items():
        try:
            composed = digest_from_json(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise DeliveryError(
                f"draft {draft.edition}: its snapshot cannot be read ({exc!r}); approve it "
                "without a note, or reject it and compose again"
            ) from None
        # As the draft was composed: its counted links and pixel when tracking is on.
        noted = replace(composed, note=note)
        rendered = render_for_edition(config, renderer, draft.edition, noted, secret)
        bodies[digest_id] = (rendered.html, rendered.text)
    return bodies


def approve(
    config: Config, store: Store, draft: StoredDraft, *, note: str | None, by: str, now: datetime
) -> StoredDraft:
    """Release `draft` (see the module docstring); `note` None keeps the recorded bodies.
    DeliveryError when it is no longer held (approved, sent by its deadline, rejected)."""
    bodies: dict[str, tuple[str, str]] = {}
    text = (note or "").strip()
    if len(text) > NOTE_MAX_CHARS:
        raise DeliveryError(f"the note is {len(text)} characters; at most {NOTE_MAX_CHARS}")
    if text:
        bodies = rendered_bodies(config, store, draft, text)
    if not store.release_draft(draft.edition, note=text, bodies=bodies, by=by, now=now):
        now_is = store.draft(draft.edition)
        status = now_is.status if now_is else "gone"
        raise DeliveryError(f"draft {draft.edition} is no longer held: {status}")
    released = store.draft(draft.edition)
    assert released is not None
    return released


def reject(store: Store, draft: StoredDraft, now: datetime) -> None:
    if not store.reject_draft(draft.edition, now):
        raise DeliveryError(f"draft {draft.edition} is no longer held")


def preview_link(config: Config, edition: str) -> str:
    base = config.editor.preview_url.rstrip("/")
    if not base:
        port = config.web.preview_port
        base = f"http://127.0.0.1:{port}" if port else ""
    return f"{base}/drafts/{edition}" if base else ""


NOTICE = {
    "ko": {
        "subject": "[검토 요청] {site} #{issue} 초안이 발송을 기다립니다",
        "intro": "{site} 제{issue}호가 작성되어 승인을 기다리고 있습니다.",
        "recipients": "받는 사람: {n}명",
        "deadline": "승인이 없으면 {when}에 그대로 발송됩니다.",
        "no_deadline": "승인하기 전에는 발송되지 않습니다.",
        "posts": "실린 글 ({n}편):",
        "approve": "승인하고 발송하기:",
        "note": "머리말을 붙여 승인하기:",
        "preview": "미리보기에서 보고 승인하기:",
        "preview_cli": "미리보기에서 보고 승인하기: `digest preview`를 실행한 뒤 {path}",
        "reject": "폐기하기:",
    },
    "en": {
        "subject": "[Draft] {site} #{issue} is waiting for your approval",
        "intro": "Issue #{issue} of {site} is composed and waits for your approval.",
        "recipients": "Recipients: {n}",
        "deadline": "Without approval it is sent as it is at {when}.",
        "no_deadline": "It is not sent until you approve it.",
        "posts": "Posts ({n}):",
        "approve": "Approve and send:",
        "note": "Approve with an intro note:",
        "preview": "Look at it and approve it in the preview:",
        "preview_cli": "Look at it and approve it in the preview: `digest preview`, then {path}",
        "reject": "Discard it:",
    },
}


def editor_notice(config: Config, info: DraftInfo, to: str, now: datetime) -> Envelope:
    """The editor's email about a draft (UTF-8 body, RFC 2047 subject)."""
    lang = config.site.language if config.site.language in NOTICE else "en"
    t = NOTICE[lang]
    draft = info.draft
    values = {"site": config.site.name, "issue": info.issue_number}
    zone = ZoneInfo(config.site.timezone)
    lines = [t["intro"].format(**values), ""]
    lines += [*info.subjects, t["recipients"].format(n=info.recipients)]
    if draft.deadline is not None:
        when = f"{draft.deadline.astimezone(zone):%Y-%m-%d %H:%M %Z}"
        lines.append(t["deadline"].format(when=when))
    else:
        lines.append(t["no_deadline"])
    lines += ["", t["posts"].format(n=len(info.titles))]
    lines += [f"- {title}\n  {url}" for title, url in info.titles]
    config_arg = f" --config {config.path}"
    lines += ["", t["approve"], f"  digest{config_arg} approve --edition {draft.edition}"]
    lines += [
        t["note"],
        f'  digest{config_arg} approve --edition {draft.edition} --note "..."',
    ]
    link = preview_link(config, draft.edition)
    if link:
        lines += [t["preview"], f"  {link}"]
    else:
        lines.append(t["preview_cli"].format(path=f"/drafts/{draft.edition}"))
    lines += [t["reject"], f"  digest{config_arg} reject --edition {draft.edition}", ""]
    msg = EmailMessage(policy=SMTP)
    address = parse_sender(config.site.sender)[1]
    msg["From"] = config.site.sender
    msg["To"] = to
    msg["Subject"] = t["subject"].format(**values)
    msg["Date"] = format_datetime(now)
    domain = address.rpartition("@")[2]
    mid = message_id(f"draft:{draft.edition}", to, domain)
    msg["Message-ID"] = mid
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content("\n".join(lines), charset="utf-8")
    return Envelope(sender=address, recipient=to, message_id=mid, data=msg.as_bytes())


def notices_due(store: Store) -> list[StoredDraft]:
    """Held drafts whose editor was not told yet (a crash after composing, a server down)."""
    return [d for d in store.drafts() if d.notified is None and d.notify]
