"""The fake ARM (``ArmSimulator``) as a real HTTPS server on 127.0.0.1, for black-box runs of the app.

Bearer tokens need TLS (azure-core refuses to send one over http), so the server presents a certificate issued by
a throw-away CA that the test makes; clients trust it through ``REQUESTS_CA_BUNDLE``. Requests without a bearer
token get 401, as ARM answers them. ``stand_in_az`` writes an ``az`` that prints a token, so
``AZURE_TOKEN_CREDENTIALS=AzureCliCredential`` authenticates a child process without any real credential.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.unit.backends.azure.fake_arm import ArmSimulator


@dataclass(frozen=True)
class Tls:
    ca_bundle: Path
    cert: Path
    key: Path


def make_tls(folder: Path) -> Tls:
    """A CA and a server certificate for 127.0.0.1 and localhost, valid for a day."""
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mlops test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    tls = Tls(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    tls.ca_bundle.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return tls


@dataclass
class RunningArm:
    url: str
    simulator: ArmSimulator


@contextmanager
def arm_server(simulator: ArmSimulator, tls: Tls) -> Iterator[RunningArm]:
    """Serve ``simulator`` over HTTPS on a free 127.0.0.1 port until the block ends."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not self.headers.get("Authorization", "").startswith("Bearer "):
                self._reply(401, {"error": {"code": "AuthenticationFailed", "message": "no bearer token"}}, {})
                return
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                self._reply(400, {"error": {"code": "InvalidRequestContent", "message": "not JSON"}}, {})
                return
            url = f"https://{self.headers.get('Host')}{self.path}"
            status, answer, headers = simulator.handle(self.command, url, body, dict(self.headers))
            self._reply(status, answer, headers)

        def _reply(self, status: int, answer: Any, headers: dict[str, str]) -> None:
            payload = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.cert, tls.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, name="fake-arm", daemon=True)
    thread.start()
    try:
        yield RunningArm(f"https://127.0.0.1:{server.server_address[1]}", simulator)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def stand_in_az(folder: Path, token: str = "fake-arm-token") -> Path:
    """A folder holding an ``az`` that answers ``az account get-access-token`` as the Azure CLI does."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "az"
    answer = {
        "accessToken": token,
        "expiresOn": "2099-01-01 00:00:00.000000",
        "expires_on": 4070908800,
        "subscription": "sub",
        "tenant": "tenant",
        "tokenType": "Bearer",
    }
    script.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        f"  *get-access-token*) printf '%s\\n' '{json.dumps(answer)}' ;;\n"
        '  *) echo "stand-in az: unsupported: $*" >&2; exit 2 ;;\n'
        "esac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder
