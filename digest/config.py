"""`config.toml`, parsed once into frozen, typed objects.

Every section is a dataclass; `load_config` checks each key against the dataclass fields, so an
unknown key or a wrong type is a `ConfigError` naming the file and the key (`sources[1].url`).
Relative paths are resolved against the config file's folder. Secrets are never read from the
file: the config names the environment variable that holds them.
"""

from __future__ import annotations

import os
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.cronexpr import parse_cron
from digest.errors import ConfigError

LANGUAGES = ("ko", "en")
ALGORITHMS = ("lead", "lexrank", "textrank", "lsa", "luhn", "edmundson", "kl", "sumbasic", "hybrid")


@dataclass(frozen=True)
class SiteConfig:
    name: str
    url: str
    sender: str  # "Display Name <address>"
    timezone: str = "UTC"
    language: str = "ko"
    description: str = ""
    postal_address: str = ""
    reply_to: str = ""


@dataclass(frozen=True)
class StoreConfig:
    path: Path = Path("var/digest.sqlite3")  # SQLite, the embedded default
    # A SQLAlchemy URL instead of `path`: postgresql+psycopg://user@host/db (the password
    # from `password_env`, never in the file).
    url: str = ""
    password_env: str = ""
    # PostgreSQL: a session idle inside a transaction this long is ended by the server, so a
    # frozen sender (stopped, swapped out, paused VM) cannot hold its row locks, the
    # digest's counters or the rate-limit lock for ever; its leased rows are then reclaimed
    # by others. 0 (the default): as long as a delivery lease, at least 10 s.
    idle_transaction_timeout_seconds: float = 0.0

    def display(self) -> str:
        """The store as messages name it (a URL without its password)."""
        if not self.url:
            return str(self.path)
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)


@dataclass(frozen=True)
class SMTPConfig:
    host: str = "embedded"  # "embedded" starts the built-in mail catcher on 127.0.0.1
    port: int = 0  # 0 with the embedded catcher: any free port
    maildir: Path = Path("var/mail")  # where the embedded catcher stores what it receives
    security: str = "none"  # none | starttls | starttls-optional | tls
    username: str = ""
    password_env: str = ""  # name of the environment variable holding the password
    timeout: float = 30.0
    concurrency: int = 2
    ca_file: Path | None = None  # extra CA bundle to trust (a private relay's certificate)

    @property
    def embedded(self) -> bool:
        return self.host == "embedded"

    def password(self) -> str | None:
        if not self.password_env:
            return None
        return os.environ.get(self.password_env)


@dataclass(frozen=True)
class DeliveryConfig:
    max_attempts: int = 5  # a deferred message is failed after this many tries...
    max_age_hours: float = 48.0  # ...or once its digest is this old
    retry_base_seconds: float = 60.0  # backoff: base * 2^(attempt-1), with +-25% jitter
    retry_max_seconds: float = 3600.0
    wait_for_retries_seconds: float = 300.0  # a run waits this long for due retries, no more
    rate_per_second: float = 0.0  # 0 = unlimited
    rate_per_hour: int = 0
    rate_per_day: int = 0  # reached mid-send: the rest stays pending for the next run
    # How long a sender holds the rows it claims; 0: max(60, 4 x smtp.timeout). A sender that
    # dies (or freezes) gives its rows back to the others after this long.
    lease_seconds: float = 0.0
    processes: int = 1  # worker processes that send; smtp.concurrency is shared among them
    verp: bool = False  # envelope sender local+user=domain@sender-domain, for bounce matching
    dkim_selector: str = ""
    dkim_domain: str = ""
    dkim_key_file: Path | None = None


@dataclass(frozen=True)
class SourceConfig:
    name: str
    url: str  # http(s) URL, or a path to a file
    kind: str = "feed"
    language: str = ""  # "" = detect per post
    tags: tuple[str, ...] = ()  # tags added to every post of this source
    replay: bool = False  # sample content: shift dates so the newest entry is "now"
    poll_minutes: int = 0  # `digest schedule` also polls it this often (0: only before a send)
    timeout: float = 20.0  # seconds: read timeout per request (and connect, capped at 10)
    connect_timeout: float = 10.0
    max_bytes: int = 10_000_000  # larger responses fail instead of filling memory
    retries: int = 2  # extra tries after a 5xx, 429 or timeout, with exponential backoff
    encoding: str = ""  # force a charset (e.g. "euc-kr") for sites that declare a wrong one
    full_text: str = "auto"  # auto: fetch the article when the item is short | always | never
    full_text_min_chars: int = 500  # "auto": items with less text than this are teasers
    max_articles: int = 30  # article pages fetched per ingest (full text, page sources)
    # More hosts this source may fetch from (each with its subdomains); by default a source's
    # fetches stay on its own site (digest.sources.fetch).
    allow_hosts: tuple[str, ...] = ()
    link_pattern: str = ""  # page sources: regex an article link must match ("" = heuristic)
    # The publisher's deck or description as the summary: auto | prefer | never ("" = the
    # [summary] setting); and what kind of text the source publishes: auto | news | essay | list.
    deck: str = ""
    text_kind: str = "auto"
    mark_old_seen: bool = False  # first ingest: posts older than the lookback are "seen"


@dataclass(frozen=True)
class ThemeConfig:
    key: str
    title: dict[str, str]  # per language: {ko = "인공지능", en = "AI"}
    keywords: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()  # source tags or categories that map onto this theme
    exclude: tuple[str, ...] = ()
    threshold: float = 1.0

    def title_for(self, language: str) -> str:
        return self.title.get(language) or next(iter(self.title.values()), self.key)


@dataclass(frozen=True)
class ScheduleConfig:
    name: str
    cron: str  # "M H DOM MON DOW", or a friendly form: "weekly on monday at 08:00"
    timezone: str = ""  # "" = the site's
    themes: tuple[str, ...] = ()  # () = every subscriber, by their own preferences
    on_empty: str = "skip"  # nothing new: "skip", or "quiet-note" (a short plain message)
    min_posts: int = 1  # a digest with fewer new posts than this counts as nothing new
    misfire_grace_minutes: int = 360  # a missed run is made up this late at most, then skipped
    # A failed run (the mail server was down) is tried again this often within the grace time,
    # and deferred recipients are retried as they come due; 0 = only when the scheduler starts.
    retry_minutes: int = 10
    # "send": the run sends (default). "draft": it composes and records the edition, tells the
    # editor and holds it until `digest approve` (or the preview's button) or the deadline.
    approval: str = "send"
    approve_deadline: str = ""  # "" = wait for the editor; "6h", "90m", "2d": then send anyway
    notify: str = ""  # who is told of a draft; "" = `[editor] email`

    def deadline(self) -> timedelta | None:
        """How long after composing a draft is sent without approval (None: never)."""
        return parse_duration(self.approve_deadline)


def parse_duration(text: str) -> timedelta | None:
    """ "90m", "6h", "2d" (None for ""); ValueError for anything else."""
    if not text:
        return None
    number, unit = text[:-1], text[-1:]
    if not number.isascii() or not number.isdigit() or unit not in "mhd" or int(number) < 1:
        raise ValueError(text)
    unit_name = {"m": "minutes", "h": "hours", "d": "days"}[unit]
    return timedelta(**{unit_name: int(number)})


@dataclass(frozen=True)
class EditorConfig:
    email: str = ""  # who approves drafts: told of each one (a schedule's `notify` wins)
    preview_url: str = ""  # where the editor's `digest preview` is reached; "" = 127.0.0.1


@dataclass(frozen=True)
class SummaryConfig:
    algorithm: str = "hybrid"
    sentences: int = 3
    max_chars: int = 400
    language: str = "auto"
    # The publisher's deck (og:description, a feed's summary) instead of an extract: "auto"
    # when it is a real summary (not a teaser or the text's first lines), "prefer" whenever
    # there is one, "never".
    deck: str = "auto"
    prefer_description: bool = False  # no longer read: what it did is now deck = "auto"


@dataclass(frozen=True)
class SelectionConfig:
    lookback_days: int = 7
    max_posts: int = 10


@dataclass(frozen=True)
class SubscribersConfig:
    files: tuple[Path, ...] = ()  # CSV lists whose new addresses are added before every send


@dataclass(frozen=True)
class WebConfig:
    base_url: str = "http://127.0.0.1:8025"  # public address of `digest serve` (unsubscribe links)
    secret_env: str = "DIGEST_SECRET"  # HMAC secret for links; unset: a local file next to the DB
    preview_port: int = 0
    listen_host: str = "127.0.0.1"  # where `digest serve` listens (behind a proxy: loopback)
    listen_port: int = 8025
    max_body_bytes: int = 16384  # larger request bodies get 413: the forms are tiny


@dataclass(frozen=True)
class SignupConfig:
    """The public subscribe form of `digest serve` (`/subscribe`), with double opt-in."""

    enabled: bool = False  # off: /subscribe is a 404
    confirm_hours: float = 48.0  # a confirmation link works this long after the form was sent
    # Per web process, counted over `window_minutes`: form posts from one IP address, and
    # confirmation mails to one address (past it, the form answers as usual and sends nothing).
    per_ip: int = 20
    per_address: int = 3
    window_minutes: float = 60.0


@dataclass(frozen=True)
class TrackingConfig:
    # Post links through `digest serve` (`/c/TOKEN`), counted per edition and post, never
    # per reader. Off by default: links go straight to the posts.
    clicks: bool = False
    # An open pixel (`/o/TOKEN.gif`), counted per edition only. Off unless asked for.
    opens: bool = False


@dataclass(frozen=True)
class TemplatesConfig:
    folder: Path | None = None  # templates here override the built-in ones


@dataclass(frozen=True)
class Config:
    path: Path
    site: SiteConfig
    store: StoreConfig = field(default_factory=StoreConfig)
    smtp: SMTPConfig = field(default_factory=SMTPConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    sources: tuple[SourceConfig, ...] = ()
    themes: tuple[ThemeConfig, ...] = ()
    schedules: tuple[ScheduleConfig, ...] = ()
    summary: SummaryConfig = field(default_factory=SummaryConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    subscribers: SubscribersConfig = field(default_factory=SubscribersConfig)
    web: WebConfig = field(default_factory=WebConfig)
    signup: SignupConfig = field(default_factory=SignupConfig)
    templates: TemplatesConfig = field(default_factory=TemplatesConfig)
    editor: EditorConfig = field(default_factory=EditorConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def theme(self, key: str) -> ThemeConfig:
        for theme in self.themes:
            if theme.key == key:
                return theme
        known = ", ".join(t.key for t in self.themes) or "none defined"
        raise ConfigError(f"{self.path}: unknown theme {key!r} (themes: {known})")


T = TypeVar("T")


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (use --config PATH)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: config is not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return parse_config(data, path)


def parse_config(data: dict[str, Any], path: Path) -> Config:
    if "path" in data:  # filled in here, never read from the file
        raise ConfigError(f"{path}: unknown key 'path'")
    data = {**data, "path": str(path)}
    if "site" not in data:
        raise ConfigError(f"{path}: missing [site] section")
    config = _build(Config, data, "", path)
    base = path.resolve().parent
    config = _resolve_paths(config, base)
    _validate(config)
    return _derived(config)


def _derived(config: Config) -> Config:
    """Settings whose default depends on others, filled in once here."""
    store = config.store
    if store.idle_transaction_timeout_seconds == 0:
        # As long as a lease (at least 10 s): a sender frozen inside a transaction loses its
        # session, and the locks it holds (its rows, the digest's counters), about when its
        # leases run out and another sender takes its rows over.
        lease = config.delivery.lease_seconds or max(60.0, 4 * config.smtp.timeout)
        store = replace(store, idle_transaction_timeout_seconds=max(10.0, lease))
        config = replace(config, store=store)
    return config


def _build(cls: type[T], data: Any, where: str, path: Path) -> T:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: {where or 'top level'}: expected a table")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    for key in data:
        if key not in known:
            raise ConfigError(f"{path}: unknown key {_join(where, key)!r}")
    kwargs: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        name = _join(where, f.name)
        if f.name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                raise ConfigError(f"{path}: missing key {name!r}")
            continue
        kwargs[f.name] = _convert(hints[f.name], data[f.name], name, path)
    return cls(**kwargs)


def _convert(tp: Any, value: Any, where: str, path: Path) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, where, path)
    if isinstance(tp, type) and is_dataclass(tp):
        return _build(tp, value, where, path)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: {where!r} must be a list")
        return tuple(_convert(args[0], v, f"{where}[{i}]", path) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            if isinstance(value, str):
                return {"": value}
            raise ConfigError(f"{path}: {where!r} must be a string or a table of strings")
        return dict(value)
    if tp is Path:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: {where!r} must be a path string")
        return Path(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (str, int, bool, float):
        if type(value) is not tp:
            raise ConfigError(
                f"{path}: {where!r} must be {_type_name(tp)}, not {_type_name(type(value))}"
            )
        return value
    raise ConfigError(f"{path}: {where!r}: unsupported type")  # pragma: no cover


def _type_name(tp: Any) -> str:
    return {str: "a string", int: "an integer", bool: "true or false", float: "a number"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _resolve_paths(config: Config, base: Path) -> Config:
    from dataclasses import replace

    def resolve(p: Path) -> Path:
        return p if p.is_absolute() else base / p

    sources = tuple(
        replace(s, url=str(resolve(Path(s.url)))) if "://" not in s.url else s
        for s in config.sources
    )
    return replace(
        config,
        store=replace(config.store, path=resolve(config.store.path)),
        smtp=replace(
            config.smtp,
            maildir=resolve(config.smtp.maildir),
            ca_file=resolve(config.smtp.ca_file) if config.smtp.ca_file else None,
        ),
        delivery=replace(
            config.delivery,
            dkim_key_file=(
                resolve(config.delivery.dkim_key_file) if config.delivery.dkim_key_file else None
            ),
        ),
        sources=sources,
        subscribers=replace(
            config.subscribers, files=tuple(resolve(p) for p in config.subscribers.files)
        ),
        templates=replace(
            config.templates,
            folder=resolve(config.templates.folder) if config.templates.folder else None,
        ),
    )


def _check_zone(name: str, where: str, path: Path) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{path}: {where!r}: unknown timezone {name!r}") from None


# The sane range of every number in the config: (low, high), both included. A value outside
# it (a typo, `inf`, `1e9`, `10**12`) is refused at load with the key, never a run that hangs
# or a traceback later. Timeouts are finite; a number not listed here only has to be finite
# and within +-1e9.
MAX_TIMEOUT = 600.0  # seconds: any one network wait
MAX_PORT = 65535
NUMBER_RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("SMTPConfig", "port"): (0, MAX_PORT),
    ("SMTPConfig", "timeout"): (0.001, MAX_TIMEOUT),
    ("SMTPConfig", "concurrency"): (1, 100),
    ("DeliveryConfig", "max_attempts"): (1, 100),
    ("DeliveryConfig", "max_age_hours"): (0.001, 24 * 366),
    ("DeliveryConfig", "retry_base_seconds"): (0, 86400),
    ("DeliveryConfig", "retry_max_seconds"): (0, 7 * 86400),
    ("DeliveryConfig", "wait_for_retries_seconds"): (0, 86400),
    ("DeliveryConfig", "rate_per_second"): (0, 100_000),
    ("DeliveryConfig", "rate_per_hour"): (0, 1_000_000_000),
    ("DeliveryConfig", "rate_per_day"): (0, 1_000_000_000),
    ("DeliveryConfig", "processes"): (1, 64),
    ("DeliveryConfig", "lease_seconds"): (0, 86400),  # 0: derived from smtp.timeout
    ("SourceConfig", "poll_minutes"): (0, 366 * 24 * 60),
    ("SourceConfig", "timeout"): (0.001, MAX_TIMEOUT),
    ("SourceConfig", "connect_timeout"): (0.001, MAX_TIMEOUT),
    ("SourceConfig", "max_bytes"): (1024, 1 << 30),
    ("SourceConfig", "retries"): (0, 10),
    ("SourceConfig", "full_text_min_chars"): (0, 1_000_000),
    ("SourceConfig", "max_articles"): (0, 10_000),
    ("ThemeConfig", "threshold"): (0, 1_000_000),
    ("ScheduleConfig", "min_posts"): (1, 10_000),
    ("ScheduleConfig", "misfire_grace_minutes"): (1, 366 * 24 * 60),
    ("ScheduleConfig", "retry_minutes"): (0, 366 * 24 * 60),
    ("SummaryConfig", "sentences"): (1, 100),
    ("SummaryConfig", "max_chars"): (20, 1_000_000),
    ("SelectionConfig", "lookback_days"): (1, 3650),
    ("SelectionConfig", "max_posts"): (1, 10_000),
    ("WebConfig", "preview_port"): (0, MAX_PORT),
    ("WebConfig", "listen_port"): (0, MAX_PORT),
    ("WebConfig", "max_body_bytes"): (0, 16 << 20),
    ("SignupConfig", "confirm_hours"): (0.1, 24 * 366),
    ("SignupConfig", "per_ip"): (1, 1_000_000),
    ("SignupConfig", "per_address"): (1, 1000),
    ("SignupConfig", "window_minutes"): (1, 366 * 24 * 60),
}
OTHER_NUMBERS = (-1e9, 1e9)


def _number_text(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _check_numbers(obj: Any, where: str, p: Path) -> None:
    """Every int and float in `obj` (a config dataclass, its nested sections and lists)
    within its range (NUMBER_RANGES), finite; else a ConfigError naming the key."""
    import math

    for f in fields(obj):
        value = getattr(obj, f.name)
        name = _join(where, f.name)
        if isinstance(value, tuple):
            for i, item in enumerate(value):
                if is_dataclass(item):
                    _check_numbers(item, f"{name}[{i}]", p)
            continue
        if is_dataclass(value):
            _check_numbers(value, name, p)
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        low, high = NUMBER_RANGES.get((type(obj).__name__, f.name), OTHER_NUMBERS)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{p}: {name!r} must be a finite number, not {value}")
        if not low <= value <= high:
            raise ConfigError(
                f"{p}: {name!r} must be between {_number_text(low)} and {_number_text(high)}, "
                f"not {_number_text(value)}"
            )


def _check_base_url(url: str, p: Path) -> None:
    """`web.base_url` starts every unsubscribe and preferences link: an absolute http(s) URL
    with a host, or no email could carry List-Unsubscribe."""
    from urllib.parse import urlsplit

    bad = f"{p}: 'web.base_url' must be an absolute http:// or https:// URL with a host"
    if not url.strip() or url != url.strip() or any(c.isspace() or ord(c) < 32 for c in url):
        raise ConfigError(f"{bad}, not {url!r}")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(f"{bad}, not {url!r}") from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise ConfigError(f"{bad}, not {url!r}")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ConfigError(f"{bad} (no user, query or fragment), not {url!r}")


def base_url_problem(web: WebConfig) -> str | None:
    """Why readers could not open links under `web.base_url` (unsubscribe, preferences), or
    None: a loopback, private or local-only host, or plain http. Fine for trying digest on
    one machine; a real send says it once."""
    import ipaddress
    from urllib.parse import urlsplit

    parts = urlsplit(web.base_url)
    host = (parts.hostname or "").lower()
    local = host == "localhost" or host.endswith((".localhost", ".local", ".internal"))
    try:
        address = ipaddress.ip_address(host)
        local = local or not address.is_global
    except ValueError:
        local = local or "." not in host
    if local:
        return (
            f"web.base_url is {web.base_url}, an address only this machine or network can "
            "reach: readers' unsubscribe and preferences links will not open; set it to "
            "the public https:// address of `digest serve`"
        )
    if parts.scheme.lower() != "https":
        return (
            f"web.base_url is {web.base_url}: plain http, so readers' unsubscribe links are "
            "sent in the clear and many mail programs warn about them; use https://"
        )
    return None


def _check_list_files(config: Config, p: Path) -> None:
    for i, file in enumerate(config.subscribers.files):
        if file.is_dir():
            raise ConfigError(f"{p}: 'subscribers.files[{i}]': {file} is a folder, not a CSV file")


def _validate(config: Config) -> None:
    p = config.path
    _check_base_url(config.web.base_url, p)
    _check_list_files(config, p)
    if config.site.language not in LANGUAGES:
        raise ConfigError(f"{p}: 'site.language' must be one of {', '.join(LANGUAGES)}")
    _check_zone(config.site.timezone, "site.timezone", p)
    if config.smtp.security not in ("none", "starttls", "starttls-optional", "tls"):
        raise ConfigError(f"{p}: 'smtp.security' must be none, starttls, starttls-optional or tls")
    if any(ord(c) < 32 or ord(c) == 127 for c in config.site.name + config.site.sender):
        raise ConfigError(f"{p}: 'site.name' and 'site.sender' must not hold control characters")
    if config.smtp.concurrency < 1:
        raise ConfigError(f"{p}: 'smtp.concurrency' must be at least 1")
    if not config.smtp.embedded and config.smtp.port <= 0:
        raise ConfigError(f"{p}: 'smtp.port' must be set for host {config.smtp.host!r}")
    d = config.delivery
    if d.max_attempts < 1 or d.retry_base_seconds < 0 or d.wait_for_retries_seconds < 0:
        raise ConfigError(f"{p}: 'delivery.max_attempts' >= 1, retry times >= 0")
    if not 1 <= d.processes <= 64:
        raise ConfigError(f"{p}: 'delivery.processes' must be between 1 and 64")
    if min(d.rate_per_second, d.rate_per_hour, d.rate_per_day) < 0:
        raise ConfigError(f"{p}: 'delivery.rate_*' must be >= 0 (0 = unlimited)")
    if bool(d.dkim_selector) != bool(d.dkim_key_file):
        raise ConfigError(f"{p}: 'delivery.dkim_selector' and 'delivery.dkim_key_file' go together")
    if config.summary.algorithm not in ALGORITHMS:
        raise ConfigError(f"{p}: 'summary.algorithm' must be one of {', '.join(ALGORITHMS)}")
    if config.summary.deck not in DECK_MODES:
        raise ConfigError(f"{p}: 'summary.deck' must be auto, prefer or never")
    if config.summary.language not in ("auto", *LANGUAGES):
        raise ConfigError(f"{p}: 'summary.language' must be auto, ko or en")
    if config.summary.sentences < 1 or config.summary.max_chars < 20:
        raise ConfigError(f"{p}: 'summary.sentences' >= 1 and 'summary.max_chars' >= 20")
    if config.selection.lookback_days < 1 or config.selection.max_posts < 1:
        raise ConfigError(f"{p}: 'selection.lookback_days' and 'selection.max_posts' must be >= 1")
    names = [s.name for s in config.sources]
    for i, source in enumerate(config.sources):
        if source.poll_minutes < 0:
            raise ConfigError(f"{p}: 'sources[{i}].poll_minutes' must be >= 0 (0: before sends)")
        if names.count(source.name) > 1:
            raise ConfigError(f"{p}: 'sources[{i}].name': duplicate source name {source.name!r}")
        _validate_source(source, f"sources[{i}]", p)
    keys = [t.key for t in config.themes]
    for i, theme in enumerate(config.themes):
        if keys.count(theme.key) > 1 or not theme.key.replace("-", "").isalnum():
            raise ConfigError(f"{p}: 'themes[{i}].key': duplicate or invalid key {theme.key!r}")
        if not theme.keywords and not theme.tags:
            raise ConfigError(f"{p}: 'themes[{i}]': needs keywords or tags")
    schedule_names = [s.name for s in config.schedules]
    for i, sched in enumerate(config.schedules):
        if not sched.name.strip() or schedule_names.count(sched.name) > 1:
            raise ConfigError(f"{p}: 'schedules[{i}].name': empty or duplicate {sched.name!r}")
        if sched.on_empty not in ("skip", "quiet-note"):
            raise ConfigError(f"{p}: 'schedules[{i}].on_empty' must be skip or quiet-note")
        if sched.min_posts < 1 or sched.misfire_grace_minutes < 1:
            raise ConfigError(
                f"{p}: 'schedules[{i}].min_posts' and '.misfire_grace_minutes' must be >= 1"
            )
        if sched.retry_minutes < 0:
            raise ConfigError(f"{p}: 'schedules[{i}].retry_minutes' must be >= 0 (0: no retries)")
        if sched.timezone:
            _check_zone(sched.timezone, f"schedules[{i}].timezone", p)
        for key in sched.themes:
            if key not in keys:
                raise ConfigError(f"{p}: 'schedules[{i}].themes': unknown theme {key!r}")
        parse_cron(sched.cron, f"{p}: 'schedules[{i}].cron'")
        _check_approval(config, sched, f"schedules[{i}]", p)
    # Last, so that the specific messages above (">= 1", "> 0") come first.
    _check_numbers(config, "", p)


def _check_approval(config: Config, sched: ScheduleConfig, where: str, p: Path) -> None:
    if sched.approval not in ("send", "draft"):
        raise ConfigError(f"{p}: '{where}.approval' must be send or draft")
    try:
        sched.deadline()
    except ValueError:
        raise ConfigError(
            f"{p}: '{where}.approve_deadline' must be like 90m, 6h or 2d (or \"\": no deadline)"
        ) from None
    for key, address in (("editor.email", config.editor.email), (f"{where}.notify", sched.notify)):
        if address and ("@" not in address or any(c.isspace() or c in "<>,;" for c in address)):
            raise ConfigError(f"{p}: '{key}' must be one email address, not {address!r}")
    if sched.approval == "draft" and not (sched.notify or config.editor.email):
        raise ConfigError(
            f"{p}: '{where}.approval' is draft: set '[editor] email' (or '{where}.notify') "
            "so that someone is told of each draft"
        )


SOURCE_KINDS = ("feed", "page", "folder")
FULL_TEXT = ("auto", "always", "never")
DECK_MODES = ("auto", "prefer", "never")
TEXT_KINDS = ("auto", "news", "essay", "list")


def _validate_source(source: SourceConfig, where: str, p: Path) -> None:
    import codecs
    import re

    for j, entry in enumerate(source.allow_hosts):
        name = entry.strip().lower().removeprefix("*.")
        if not name or any(c in name for c in "/@?#:[] \t"):
            raise ConfigError(
                f"{p}: '{where}.allow_hosts[{j}]': {entry!r} is not a host name "
                "(no scheme, port or path)"
            )

    if source.kind not in SOURCE_KINDS:
        kinds = ", ".join(SOURCE_KINDS)
        raise ConfigError(f"{p}: '{where}.kind': unknown kind {source.kind!r} ({kinds})")
    if source.full_text not in FULL_TEXT:
        raise ConfigError(f"{p}: '{where}.full_text' must be auto, always or never")
    if source.deck and source.deck not in DECK_MODES:
        raise ConfigError(f"{p}: '{where}.deck' must be auto, prefer or never")
    if source.text_kind not in TEXT_KINDS:
        raise ConfigError(f"{p}: '{where}.text_kind' must be auto, news, essay or list")
    if source.timeout <= 0 or source.connect_timeout <= 0:
        raise ConfigError(f"{p}: '{where}.timeout' and '{where}.connect_timeout' must be > 0")
    if source.max_bytes < 1024 or source.retries < 0 or source.max_articles < 0:
        raise ConfigError(
            f"{p}: '{where}': max_bytes >= 1024, retries >= 0 and max_articles >= 0 required"
        )
    if source.full_text_min_chars < 0:
        raise ConfigError(f"{p}: '{where}.full_text_min_chars' must be >= 0")
    if source.encoding:
        try:
            codecs.lookup(source.encoding)
        except LookupError:
            raise ConfigError(
                f"{p}: '{where}.encoding': unknown encoding {source.encoding!r}"
            ) from None
    if source.link_pattern:
        try:
            re.compile(source.link_pattern)
        except re.error as exc:
            raise ConfigError(f"{p}: '{where}.link_pattern': invalid regex: {exc}") from None
    if source.kind == "folder" and "://" in source.url:
        raise ConfigError(f"{p}: '{where}.url': a folder source needs a local path")
