"""`/subscribe`: the public sign-up form, with double opt-in (on when `signup.enabled`).

- `GET /subscribe`: the form (address, optional name, themes).
- `POST /subscribe`: always the same "check your inbox" page, whatever the address: the page
  never tells whether an address is on the list, suppressed or rate limited. A confirmation
  mail goes out (after the response, so its timing tells nothing either) unless the honeypot
  field is filled, the address got `signup.per_address` confirmations in the window, or it is
  suppressed for a bounce or complaint. Nothing is stored: the pending sign-up is the signed,
  expiring link (digest.tokens.SignupClaim).
- `GET /subscribe/confirm?t=...`: a page with a button; `POST` (with this site's CSRF token)
  subscribes. A GET never does: mail scanners open links, and a scanner must not be able to
  confirm for the reader. A second confirmation is harmless. The welcome mail goes to a reader
  who was not active before.

The form post takes no CSRF token, so the HTML snippet (`digest signup-snippet`) can post from
any other site. That is safe because the post changes nothing: at most it sends one
confirmation mail, which only the owner of the inbox can act on (double opt-in), bounded per
address and per IP (in this process's memory, `RateLimiter`), and refused for suppressed
addresses.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from urllib.parse import quote

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest.compose.message import Envelope, clean_header
from digest.config import Config
from digest.errors import DigestError, SubscriberError
from digest.send import Outcome
from digest.send.maildir import MaildirSender
from digest.send.smtp import SMTPSender
from digest.signup import HONEYPOT, Notice, confirmation, notice_envelope, welcome
from digest.store import WebStore, address_key
from digest.subscribers import normalize_address
from digest.tokens import (
    SignupClaim,
    make_signup_token,
    make_token,
    read_signup_token,
)
from digest.web.common import Csrf, PageError, Pages

log = logging.getLogger("digest.web.signup")

MAX_NAME = 100
MAX_KEYS = 10_000  # addresses or IPs whose counts are kept; the least recently seen go first

Mail = Callable[[Envelope], Awaitable[Outcome]]


class RateLimiter:
    """At most `limit` hits per key within `window` seconds, in memory.

    Bounded: at most `max_keys` keys, each with at most `limit` times; past that the key seen
    least recently is forgotten. Per process: two `digest serve` processes count apart.
    """

    def __init__(self, limit: int, window: float, max_keys: int = MAX_KEYS) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def hit(self, key: str, now: float) -> bool:
        """Count one hit for `key`; False (and not counted) when it is over the limit."""
        times = self._hits.pop(key, None)
        if times is None:
            times = deque(maxlen=self.limit)
        while times and now - times[0] >= self.window:
            times.popleft()
        allowed = len(times) < self.limit
        if allowed:
            times.append(now)
        self._hits[key] = times  # most recently seen last
        while len(self._hits) > self.max_keys:
            self._hits.popitem(last=False)
        return allowed

    def __len__(self) -> int:
        return len(self._hits)


def configured_mail(config: Config) -> Mail:
    """Sends one message as `[smtp]` says: a fresh aiosmtplib connection to the server (TLS,
    login and timeout as configured), or with `host = "embedded"` straight into the catcher's
    Maildir, where the catcher would have put it."""
    smtp = config.smtp

    async def send(envelope: Envelope) -> Outcome:
        if smtp.embedded:
            async with MaildirSender(smtp.maildir) as box:
                return await box.send(envelope)
        async with SMTPSender.from_config(smtp, smtp.host, smtp.port) as sender:
            return await sender.send(envelope)

    return send


def signup_routes(
    config: Config,
    web: WebStore,
    secret: bytes,
    pages: Pages,
    csrf: Csrf,
    labels: dict[str, str],
    mail: Mail,
    *,
    clock: Callable[[], float] = time.time,
) -> list[Route]:
    t = labels
    base = config.web.base_url.rstrip("/")
    signup = config.signup
    window = signup.window_minutes * 60
    by_ip = RateLimiter(signup.per_ip, window)
    by_address = RateLimiter(signup.per_address, window)
    theme_keys = [th.key for th in config.themes]
    themes = [(th.key, th.title_for(config.site.language)) for th in config.themes]

    async def send(kind: str, envelope: Envelope) -> None:
        try:
            outcome = await mail(envelope)
        except (DigestError, OSError) as exc:
            log.warning("sign-up %s mail not sent: %s", kind, exc)
            return
        if outcome.status != "sent":
            log.warning("sign-up %s mail not sent: %s", kind, outcome.reply)

    def envelope_for(notice: Notice) -> Envelope:
        now = datetime.fromtimestamp(clock(), UTC)
        return notice_envelope(config, notice, date=now, nonce=secrets.token_hex(8))

    def form_page(status_code: int = 200, *, error: str = "", email: str = "") -> Response:
        return pages.render(
            "subscribe.html.j2",
            status_code,
            themes=themes,
            error=error,
            email=email,
            honeypot=HONEYPOT,
        )

    async def subscribe(request: Request) -> Response:
        if request.method == "GET":
            return form_page()
        try:
            data = await request.form(max_files=0, max_fields=50)
        except Exception:  # malformed body: the client's mistake
            raise PageError(400, t["error_400"]) from None
        now = clock()
        ip = request.client.host if request.client else ""
        if not by_ip.hit(ip, now):
            retry = {"Retry-After": str(int(window))}
            raise PageError(429, t["signup_too_many"], headers=retry)
        done = pages.render(
            "message.html.j2",
            title=t["signup_check_title"],
            message=t["signup_check_inbox"].format(hours=f"{signup.confirm_hours:g}"),
        )
        trap = data.get(HONEYPOT)
        if trap:  # a bot: the same answer, nothing sent
            log.info("sign-up: honeypot filled from %s; nothing sent", ip)
            return done
        raw = data.get("email")
        raw_name = data.get("name", "")
        chosen = [v for v in data.getlist("theme") if isinstance(v, str)]
        if not isinstance(raw, str) or not isinstance(raw_name, str):
            raise PageError(400, t["error_400"])
        if any(k not in theme_keys for k in chosen):
            raise PageError(400, t["bad_choice"])
        try:
            email = normalize_address(raw)
        except SubscriberError:
            return form_page(400, error=t["signup_bad_address"], email=raw[:254])
        name = clean_header(raw_name)[:MAX_NAME]  # no control character, not even NUL
        ordered = tuple(k for k in theme_keys if k in chosen)
        if not by_address.hit(address_key(email), now):
            log.info("sign-up: %s over its limit; nothing sent", email)
            return done
        reason = web.suppression(email)
        if reason is not None and reason != "unsubscribed":
            log.info("sign-up: %s is suppressed (%s); nothing sent", email, reason)
            return done
        token = make_signup_token(secret, SignupClaim(email, name, ordered, int(now)))
        link = f"{base}/subscribe/confirm?t={quote(token, safe='')}"
        envelope = envelope_for(confirmation(config, email, ordered, link))
        done.background = BackgroundTask(send, "confirmation", envelope)
        return done

    def claim_from(token: object) -> SignupClaim:
        claim = read_signup_token(secret, token) if isinstance(token, str) else None
        if claim is None or any(k not in theme_keys for k in claim.themes):
            raise PageError(404, t["bad_link"])
        if claim.expired(clock(), signup.confirm_hours * 3600):
            raise PageError(410, t["signup_expired"])
        return claim

    async def confirm(request: Request) -> Response:
        if request.method == "GET":
            claim = claim_from(request.query_params.get("t"))
            return pages.render(
                "subscribe_confirm.html.j2",
                state="confirm",
                email=claim.email,
                token=request.query_params["t"],
                csrf=csrf.token(request.url.path),
                themes=[title for key, title in themes if key in claim.themes],
            )
        try:
            data = await request.form(max_files=0, max_fields=10)
        except Exception:
            raise PageError(400, t["error_400"]) from None
        token = data.get("csrf")
        if not isinstance(token, str) or not csrf.check(request, token):
            raise PageError(403, t["stale_form"])
        claim = claim_from(data.get("t"))
        issued = datetime.fromtimestamp(claim.issued, UTC)
        result = web.confirm_signup(claim.email, claim.name, claim.themes, issued)
        if result == "refused":
            raise PageError(409, t["signup_refused"].format(email=claim.email))
        page = pages.render(
            "subscribe_confirm.html.j2",
            state=result,
            email=claim.email,
            token="",
            csrf="",
            themes=[],
        )
        if result in ("new", "back"):
            notice = welcome(
                config,
                claim.email,
                claim.name,
                claim.themes,
                preferences_url=f"{base}/p/{make_token(secret, 'preferences', claim.email)}",
                unsubscribe_url=f"{base}/u/{make_token(secret, 'unsubscribe', claim.email)}",
            )
            page.background = BackgroundTask(send, "welcome", envelope_for(notice))
        return page

    return [
        Route("/subscribe", subscribe, methods=["GET", "POST"]),
        Route("/subscribe/confirm", confirm, methods=["GET", "POST"]),
    ]
