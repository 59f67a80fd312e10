"""An Azurite that accepts only bearer tokens, over HTTPS with a certificate made here, plus what a client needs
to reach it: a CA bundle, a token credential, and a stand-in ``az`` that prints such a token.

Azurite (``--oauth basic``) checks a token's ``aud``, ``iss``, ``nbf``, ``exp`` and ``iat`` but not its signature,
so the tokens are unsigned JWTs with the claims Microsoft Entra ID puts in a storage token.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.core.credentials import AccessToken
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devhost.azurite import AzuriteHandle
from tests.support.azurite import ROOT, free_port, wait_for_port

TENANT = "72f988bf-0000-0000-0000-000000000001"
ACCOUNT = "devstoreaccount1"


def _b64(doc: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


def storage_token(lifetime: int = 3600) -> tuple[str, int]:
    now = int(time.time())
    claims = {"aud": "https://storage.azure.com", "iss": f"https://sts.windows.net/{TENANT}/", "iat": now - 60,
              "nbf": now - 60, "exp": now + lifetime, "oid": "00000000-0000-0000-0000-00000000abcd", "tid": TENANT}
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.", now + lifetime


class TokenCredential:
    """A credential handing out storage tokens (for the test's own clients)."""

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        token, expires = storage_token()
        return AccessToken(token, expires)


def make_certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def write_az(folder: Path) -> Path:
    """A stand-in ``az`` on PATH: ``az account get-access-token ...`` prints a storage token as the CLI does."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    script = bin_dir / "az"
    script.write_text(f"""#!{sys.executable}
import sys
sys.path.insert(0, {str(ROOT)!r})
from tests.integration.devhost_identity.oauth_azurite import az_main
sys.exit(az_main(sys.argv[1:]))
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def az_main(args: list[str]) -> int:
    if args[:2] != ["account", "get-access-token"]:
        print(f"stand-in az: unsupported command {' '.join(args)}", file=sys.stderr)
        return 2
    with open(os.environ.get("FAKE_AZ_LOG", os.devnull), "a", encoding="utf-8") as log:
        log.write(" ".join(args) + "\n")
    token, expires = storage_token()
    print(json.dumps({"accessToken": token, "expires_on": expires, "tenant": TENANT, "tokenType": "Bearer",
                      "expiresOn": dt.datetime.fromtimestamp(expires).strftime("%Y-%m-%d %H:%M:%S.%f")}))
    return 0


@dataclass
class OAuthAzurite(AzuriteHandle):
    cert: Path

    @property
    def blob_uri(self) -> str:
        return f"https://127.0.0.1:{self.port}/{ACCOUNT}"


def start_oauth_azurite(folder: Path) -> OAuthAzurite:
    cert, key = make_certificate(folder)
    port = free_port()
    proc = subprocess.Popen(
        [str(ROOT / "node_modules" / ".bin" / "azurite-blob"), "--blobHost", "127.0.0.1", "--blobPort", str(port),
         "--oauth", "basic", "--cert", str(cert), "--key", str(key), "--inMemoryPersistence",
         "--skipApiVersionCheck", "--disableTelemetry", "--silent", "--loose"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
    except TimeoutError:
        proc.kill()
        raise
    return OAuthAzurite(proc, port, cert)
