"""One error hierarchy; `digest.cli` turns each into a one-line message and an exit code.

DigestError
├── ConfigError          config file missing, unparsable, unknown key, wrong type
├── StoreError           the database cannot be opened or written
├── SourceError          a source cannot be read or parsed (per source; others go on)
├── SummaryError         a text cannot be summarized
├── TemplateError        a template fails to load, compile or render (names file:line)
├── SubscriberError      a subscriber list or address is invalid (names file:line)
└── DeliveryError        sending failed as a whole
    ├── SMTPConnectError the SMTP server cannot be reached (also a ConnectionError)
    └── DeliveryIncomplete  stopped with messages left to send (exit code 75)
"""

from __future__ import annotations


class DigestError(Exception):
    """Base of every expected failure. The message is shown to the user as is."""

    exit_code = 1

    def __init__(self, message: str = "", *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(DigestError):
    exit_code = 2


class StoreError(DigestError):
    pass


class SourceError(DigestError):
    pass


class SummaryError(DigestError):
    pass


class TemplateError(DigestError):
    pass


class SubscriberError(DigestError):
    pass


class DeliveryError(DigestError):
    pass


class SMTPConnectError(DeliveryError, ConnectionError):
    transient = False  # a busy server (a 4xx greeting, a timeout), not a wrong address


class DeliveryIncomplete(DeliveryError):
    """The send stopped with messages left pending or deferred (the server was down, the
    process was asked to stop, the send lock was lost): `digest send --resume` finishes it."""

    exit_code = 75  # EX_TEMPFAIL: try again later
