"""A composed `Digest` as JSON and back: what a draft keeps of each variant, so that approving
it with a note renders the very same digest again with the note on top (digest.approval)."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

from digest.models import Digest, DigestItem, Post, Section, SiteInfo, Summary


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _date(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value["$dt"])


def digest_to_json(digest: Digest) -> dict[str, Any]:
    data: dict[str, Any] = _plain(asdict(digest))
    return data


def _post(data: dict[str, Any]) -> Post:
    values = dict(data)
    for key in ("published", "updated", "first_seen"):
        values[key] = _date(values.get(key))
    values["tags"] = tuple(values.get("tags", ()))
    return Post(**{f.name: values[f.name] for f in fields(Post) if f.name in values})


def _item(data: dict[str, Any]) -> DigestItem:
    summary = data["summary"]
    return DigestItem(
        post=_post(data["post"]),
        summary=Summary(summary["language"], tuple(summary["sentences"]), summary["algorithm"]),
        reading_minutes=data["reading_minutes"],
        themes=tuple(data["themes"]),
        score=data["score"],
    )


def digest_from_json(data: dict[str, Any]) -> Digest:
    """The `Digest` that `digest_to_json` wrote; KeyError/TypeError/ValueError when `data`
    is not one (a draft composed by an incompatible version)."""
    sections = tuple(
        Section(s["key"], s["title"], tuple(_item(i) for i in s["items"])) for s in data["sections"]
    )
    created = _date(data["created"])
    assert created is not None
    return Digest(
        id=data["id"],
        site=SiteInfo(**data["site"]),
        created=created,
        issue_number=data["issue_number"],
        subject=data["subject"],
        sections=sections,
        themes=tuple(data["themes"]),
        intro=data["intro"],
        note=data.get("note", ""),
        overflow=tuple(_item(i) for i in data["overflow"]),
        language=data.get("language", ""),
    )
