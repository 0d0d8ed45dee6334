"""The Offergrid client verifies the server's certificate on an https base URL (issue 12: whatever a
cold-start change does to the TLS context, it must stay verified): a certificate no trusted CA
signed is refused, and the same server is reached once its CA is trusted (`SSL_CERT_FILE`, which
httpx reads), so the refusal is the verification, not a broken server. Local server on 127.0.0.1."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from offergrid_integration.offergrid.client import OffergridClient
from offergrid_integration.offergrid.errors import APIConnectionError


@dataclass(frozen=True)
class TlsServer:
    base_url: str
    ca_file: Path


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, signing_key = issuer if issuer is not None else (name, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    # What Python's strict verification (VERIFY_X509_STRICT) asks of a CA and of a server certificate
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
    )
    if issuer is None:  # the CA
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False
        )
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    return builder.sign(signing_key, hashes.SHA256())


class _Offers(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"[]"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """No access log on the test's output."""


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[TlsServer]:
    """An https server on 127.0.0.1 whose certificate a throwaway CA signed (no system store has it)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("offergrid-test-ca", ca_key, None)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _certificate("127.0.0.1", server_key, (ca.subject, ca_key))
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Offers)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield TlsServer(base_url=f"https://127.0.0.1:{server.server_address[1]}", ca_file=ca_file)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _client(base_url: str) -> OffergridClient:
    return OffergridClient(
        base_url=base_url, api_key=lambda *, force_refresh=False: "test-api-key", max_retries=0, timeout=5.0
    )


def test_a_certificate_no_trusted_ca_signed_is_refused(
    tls_server: TlsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with _client(tls_server.base_url) as client, pytest.raises(APIConnectionError) as refused:
        list(client.list_offers())
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)


def test_the_same_server_is_reached_once_its_ca_is_trusted(
    tls_server: TlsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_server.ca_file))
    with _client(tls_server.base_url) as client:
        assert list(client.list_offers()) == []
