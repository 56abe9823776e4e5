"""The two mails of a sign-up (double opt-in): the confirmation and the welcome. Pure: the
caller passes the clock and the links; nothing here touches a socket.

Each is one text/plain part (UTF-8, quoted-printable) with RFC 2047-encoded headers, built
with the same header helpers as a digest (digest.compose.message), in the site's language.
The confirmation is `Auto-Submitted: auto-generated`: it answers a form, not a person. The
welcome carries the list's one-click unsubscribe headers (RFC 8058), like every digest.
"""

from __future__ import annotations

import binascii
import hashlib
import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from digest.compose.message import (
    Envelope,
    clean_header,
    encode_address_header,
    encode_header,
    parse_sender,
)
from digest.config import Config

TEXTS: dict[str, dict[str, str]] = {
    "ko": {
        "confirm_subject": "[{site}] 구독 확인: 아래 링크를 눌러 주세요",
        "confirm_body": (
            "안녕하세요.\n\n"
            "{email} 주소로 {site} 다이제스트 구독 신청이 들어왔습니다.\n"
            "받을 주제: {themes}\n\n"
            "구독하시려면 {hours}시간 안에 아래 링크를 열고 '구독 확인' 버튼을 눌러 주세요.\n\n"
            "{link}\n\n"
            "직접 신청하지 않으셨다면 이 메일을 무시하세요. "
            "확인하지 않으면 아무것도 보내지 않습니다.\n"
        ),
        "welcome_subject": "[{site}] 구독해 주셔서 감사합니다",
        "welcome_body": (
            "{greeting}\n\n"
            "{site} 다이제스트 구독이 시작되었습니다. 다음 다이제스트부터 {email} 주소로 "
            "보내 드립니다.\n"
            "받을 주제: {themes}\n\n"
            "주제 변경이나 잠시 멈추기: {preferences}\n"
            "구독 취소: {unsubscribe}\n"
        ),
        "greeting_named": "{name}님, 환영합니다.",
        "greeting": "환영합니다.",
        "everything": "전체 (모든 새 글)",
        "separator": ", ",
        "snippet_email": "메일 주소",
        "snippet_honeypot": "이 칸은 비워 두세요",
        "snippet_button": "구독 신청",
    },
    "en": {
        "confirm_subject": "[{site}] Please confirm your subscription",
        "confirm_body": (
            "Hello,\n\n"
            "Someone asked to subscribe {email} to the {site} digest.\n"
            "Themes: {themes}\n\n"
            "To subscribe, open this link within {hours} hours and press 'Confirm':\n\n"
            "{link}\n\n"
            "If this was not you, ignore this email: nothing is sent unless you confirm.\n"
        ),
        "welcome_subject": "[{site}] Welcome, you are subscribed",
        "welcome_body": (
            "{greeting}\n\n"
            "Your subscription to the {site} digest has started: the next digest goes to "
            "{email}.\n"
            "Themes: {themes}\n\n"
            "Change themes or pause: {preferences}\n"
            "Unsubscribe: {unsubscribe}\n"
        ),
        "greeting_named": "Welcome, {name}.",
        "greeting": "Welcome.",
        "everything": "everything (every new post)",
        "separator": ", ",
        "snippet_email": "Email address",
        "snippet_honeypot": "Leave this field empty",
        "snippet_button": "Subscribe",
    },
}


@dataclass(frozen=True)
class Notice:
    """One short mail to one reader: what `notice_envelope` encodes."""

    to: str
    name: str
    subject: str
    text: str
    unsubscribe_url: str = ""  # set: List-Unsubscribe headers (the welcome)
    auto_submitted: bool = False  # the confirmation


def texts_for(language: str) -> dict[str, str]:
    return TEXTS.get(language, TEXTS["en"])


def theme_list(config: Config, keys: Sequence[str]) -> str:
    t = texts_for(config.site.language)
    if not keys:
        return t["everything"]
    titles = [config.theme(k).title_for(config.site.language) for k in keys]
    return t["separator"].join(titles)


def confirmation(config: Config, email: str, themes: Sequence[str], link: str) -> Notice:
    t = texts_for(config.site.language)
    site = config.site.name
    hours = f"{config.signup.confirm_hours:g}"
    body = t["confirm_body"].format(
        email=email, site=site, themes=theme_list(config, themes), hours=hours, link=link
    )
    subject = t["confirm_subject"].format(site=site)
    return Notice(email, "", subject, body, auto_submitted=True)


def welcome(
    config: Config,
    email: str,
    name: str,
    themes: Sequence[str],
    *,
    preferences_url: str,
    unsubscribe_url: str,
) -> Notice:
    t = texts_for(config.site.language)
    site = config.site.name
    greeting = t["greeting_named"].format(name=name) if name else t["greeting"]
    body = t["welcome_body"].format(
        greeting=greeting,
        site=site,
        email=email,
        themes=theme_list(config, themes),
        preferences=preferences_url,
        unsubscribe=unsubscribe_url,
    )
    subject = t["welcome_subject"].format(site=site)
    return Notice(email, name, subject, body, unsubscribe_url=unsubscribe_url)


def _qp(text: str) -> bytes:
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")


def notice_envelope(config: Config, notice: Notice, *, date: datetime, nonce: str) -> Envelope:
    """The message for `notice`, from `site.sender`; `nonce` (random, from the caller) makes
    its Message-ID unique."""
    sender_name, sender_addr = parse_sender(config.site.sender)
    domain = sender_addr.rpartition("@")[2]
    token = hashlib.sha256(f"signup\x00{notice.to}\x00{nonce}".encode()).hexdigest()[:32]
    mid = f"<{token}@{domain}>"
    headers = [
        encode_address_header("From", sender_name, sender_addr),
        encode_address_header("To", clean_header(notice.name), notice.to),
        encode_header("Subject", notice.subject),
        f"Date: {format_datetime(date)}\r\n".encode("ascii"),
        f"Message-ID: {mid}\r\n".encode("ascii"),
    ]
    if config.site.reply_to:
        reply_name, reply_addr = parse_sender(config.site.reply_to)
        headers.append(encode_address_header("Reply-To", reply_name, reply_addr))
    if notice.auto_submitted:
        headers.append(b"Auto-Submitted: auto-generated\r\n")
    if notice.unsubscribe_url:
        mailto = f"mailto:{sender_addr}?subject=unsubscribe"
        headers.append(f"List-Unsubscribe: <{notice.unsubscribe_url}>,\r\n <{mailto}>\r\n".encode())
        headers.append(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
    headers.append(
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: text/plain; charset="utf-8"\r\n'
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    body = _qp(notice.text)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return Envelope(sender_addr, notice.to, mid, b"".join(headers) + body, crlf=True)


HONEYPOT = "website"  # the field people never see; a post that fills it sends nothing


def snippet(config: Config, themes: Sequence[str] | None = None) -> str:
    """A small HTML form for another site's page, posting to `<web.base_url>/subscribe`:
    an address field, a checkbox per theme in `themes` (None: every theme; none: no choice,
    so every new post), the hidden honeypot and a button. No script, no style sheet."""
    t = texts_for(config.site.language)
    action = config.web.base_url.rstrip("/") + "/subscribe"
    esc = html.escape
    lines = [
        f'<form method="post" action="{esc(action)}" accept-charset="utf-8" class="digest-signup">',
        f"<label>{esc(t['snippet_email'])} "
        '<input type="email" name="email" required maxlength="254" autocomplete="email">'
        "</label>",
    ]
    keys = [th.key for th in config.themes] if themes is None else list(themes)
    for key in keys:
        title = config.theme(key).title_for(config.site.language)
        lines.append(
            f'<label><input type="checkbox" name="theme" value="{esc(key)}"> {esc(title)}</label>'
        )
    lines += [
        f'<label hidden>{esc(t["snippet_honeypot"])} <input type="text" name="{HONEYPOT}" '
        'tabindex="-1" autocomplete="off"></label>',
        f'<button type="submit">{esc(t["snippet_button"])}</button>',
        "</form>",
    ]
    return "\n".join(lines) + "\n"
