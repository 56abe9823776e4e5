"""DKIM: a message that arrived at a real SMTP server verifies with dkimpy."""

from __future__ import annotations

import base64
from pathlib import Path

import dkim
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from digest.cli import main
from digest.send.dkim import DKIMSigner
from tests.conftest import SMTPServer, write_config


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def dns_for(key: rsa.RSAPrivateKey, selector: str, domain: str):  # type: ignore[no-untyped-def]
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        return record if name == f"{selector}._domainkey.{domain}.".encode() else b""

    return dnsfunc


def test_sent_digest_verifies(
    tmp_path: Path, smtp_server: SMTPServer, key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_TEST_SECRET", "s")
    (tmp_path / "dkim.pem").write_bytes(pem(key))
    config = write_config(
        tmp_path,
        smtp=f'host = "127.0.0.1"\nport = {smtp_server.port}',
        extra='\n[delivery]\ndkim_selector = "mail2026"\ndkim_key_file = "dkim.pem"\n',
    )
    for command in ("ingest", "send"):
        result = CliRunner().invoke(main, ["--config", str(config), command])
        assert result.exit_code == 0, result.output
    messages = smtp_server.handler.messages
    assert len(messages) == 4
    dnsfunc = dns_for(key, "mail2026", "haebom.example")
    for received in messages:
        assert received.data.startswith(b"DKIM-Signature: ")
        verifier = dkim.DKIM(received.data)
        assert verifier.verify(dnsfunc=dnsfunc)
        signed = {h.strip().lower() for h in verifier.signature_fields[b"h"].split(b":")}
        assert {b"list-unsubscribe", b"list-unsubscribe-post", b"from", b"subject"} <= signed


def test_tampered_message_fails(key: rsa.RSAPrivateKey) -> None:
    message = (
        b"From: a@haebom.example\r\nTo: b@example.com\r\nSubject: x\r\n"
        b"List-Unsubscribe: <https://u>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        b"\r\nbody\r\n"
    )
    signed = DKIMSigner("s", "haebom.example", pem(key)).sign(message)
    dnsfunc = dns_for(key, "s", "haebom.example")
    assert dkim.verify(signed, dnsfunc=dnsfunc)
    assert not dkim.verify(signed.replace(b"body", b"evil"), dnsfunc=dnsfunc)
    assert not dkim.verify(signed.replace(b"<https://u>", b"<https://evil>"), dnsfunc=dnsfunc)
