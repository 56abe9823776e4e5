"""Connection security against real aiosmtpd servers: STARTTLS (required and opportunistic),
implicit TLS, and certificates that are verified, never skipped."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import ipaddress
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from digest.compose.message import Envelope
from digest.errors import SMTPConnectError
from digest.send.smtp import SMTPSender
from tests.conftest import RecordingHandler, free_port

DATA = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: tls\r\n\r\nbody\r\n"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file = folder / "cert.pem"
    key_file = folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def server_context(cert: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*cert)
    return context


@pytest.fixture
def serve() -> Iterator:  # type: ignore[type-arg]
    controllers: list[Controller] = []

    def start(**kwargs: object) -> tuple[RecordingHandler, int]:
        handler = RecordingHandler()
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        controllers.append(controller)
        return handler, port

    yield start
    for controller in controllers:
        controller.stop()


def send(port: int, security: str, ca_file: Path | None) -> str:
    async def run() -> str:
        async with SMTPSender(
            "127.0.0.1", port, security=security, ca_file=ca_file, timeout=5
        ) as sender:
            outcome = await sender.send(Envelope("a@example.com", "b@example.com", "<m>", DATA))
            return outcome.status

    return asyncio.run(run())


def test_starttls_required(serve, cert) -> None:  # type: ignore[no-untyped-def]
    handler, port = serve(tls_context=server_context(cert), require_starttls=True)
    assert send(port, "starttls", cert[0]) == "sent"
    assert len(handler.messages) == 1


def test_starttls_required_but_not_offered(serve, cert) -> None:  # type: ignore[no-untyped-def]
    _handler, port = serve()
    with pytest.raises(SMTPConnectError, match=f"127.0.0.1:{port}"):
        send(port, "starttls", cert[0])


def test_starttls_optional_on_a_plain_server(serve, cert) -> None:  # type: ignore[no-untyped-def]
    handler, port = serve()
    assert send(port, "starttls-optional", cert[0]) == "sent"
    assert len(handler.messages) == 1


def test_implicit_tls(serve, cert) -> None:  # type: ignore[no-untyped-def]
    handler, port = serve(ssl_context=server_context(cert))
    assert send(port, "tls", cert[0]) == "sent"
    assert len(handler.messages) == 1


def test_untrusted_certificate_is_refused(serve, cert) -> None:  # type: ignore[no-untyped-def]
    handler, port = serve(tls_context=server_context(cert), require_starttls=True)
    with pytest.raises(SMTPConnectError, match="cannot connect"):
        send(port, "starttls", None)
    assert handler.messages == []


class _SlowToClose(SMTP):
    async def smtp_QUIT(self, arg: str) -> None:
        await self.push("221 Bye")
        time.sleep(0.5)  # the server's loop is busy: the client's TLS close_notify waits
        assert self.transport is not None
        self.transport.close()


class _SlowToCloseController(Controller):
    def factory(self) -> SMTP:
        return _SlowToClose(self.handler, **self.SMTP_kwargs)


def test_tls_socket_is_closed_when_the_loop_ends(cert) -> None:  # type: ignore[no-untyped-def]
    """A TLS close waits for the server's close_notify; asyncio.run ending first used to leave
    the socket open for the garbage collector to find (a ResourceWarning, an error here)."""
    handler = RecordingHandler()
    port = free_port()
    controller = _SlowToCloseController(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_context(cert),
        require_starttls=True,
    )
    controller.start()
    try:
        assert send(port, "starttls", cert[0]) == "sent"
    finally:
        controller.stop()
    gc.collect()
