"""Identities for tests that never reach a token endpoint: a bearer token shaped like Entra ID's, a credential that
hands it out in process, and a stand-in ``az`` for processes that authenticate through ``AzureCliCredential``.

Azurite with ``--oauth basic`` checks a token's audience, issuer and lifetime, not its signature, so a token with the
claims Entra ID puts in a storage token is what it accepts; so would the Azure SDKs, which never look inside.
A child process gets the stand-in through ``AZURE_TOKEN_CREDENTIALS=AzureCliCredential`` (``DefaultAzureCredential``
then tries nothing else: no environment secrets, no managed-identity probe) and ``PATH`` leading to the stand-in.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo

TENANT = "72f988bf-0000-4000-8000-00000000c0de"
OBJECT_ID = "0b1e5c7a-0000-4000-8000-0000000000e2"
STORAGE_AUDIENCE = "https://storage.azure.com"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def bearer_token(audience: str = STORAGE_AUDIENCE, lifetime_s: int = 3600, tenant: str = TENANT) -> tuple[str, int]:
    """(a JWT with the claims of an Entra ID access token for ``audience``, its expiry in epoch seconds)."""
    now = int(time.time())
    claims = {
        "aud": audience.removesuffix("/.default"),
        "iss": f"https://sts.windows.net/{tenant}/",
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + lifetime_s,
        "oid": OBJECT_ID,
        "tid": tenant,
        "sub": OBJECT_ID,
        "appid": "mlops-functions-tests",
        "ver": "1.0",
    }
    header = {"typ": "JWT", "alg": "RS256", "kid": "test"}
    token = ".".join((_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(b"not-signed")))
    return token, now + lifetime_s


@dataclass
class StaticTokenCredential:
    """A ``TokenCredential`` (and ``SupportsTokenInfo``) handing out ``bearer_token``s; records the scopes asked."""

    scopes: list[str] = field(default_factory=list)
    #: a negative lifetime hands out tokens that expired that long ago (the SDK still sends them: ``expires_on`` lies)
    lifetime_s: int = 3600

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        token, expires = bearer_token(scopes[0] if scopes else STORAGE_AUDIENCE, self.lifetime_s)
        expires = max(expires, int(time.time()) + 3600)
        self.scopes.extend(scopes)
        return AccessToken(token, expires)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        token, expires = bearer_token(scopes[0] if scopes else STORAGE_AUDIENCE, self.lifetime_s)
        expires = max(expires, int(time.time()) + 3600)
        self.scopes.extend(scopes)
        return AccessTokenInfo(token, expires)

    def close(self) -> None:
        pass


_AZ = '''#!{python}
"""Stand-in Azure CLI for tests: `az account get-access-token --resource R [--tenant T]` prints a token for R."""
import json, sys
sys.path.insert(0, {support!r})
from identity import bearer_token, TENANT
args = sys.argv[1:]
with open({calls!r}, "a", encoding="utf-8") as log:
    log.write(json.dumps(args) + "\\n")
if args[:2] != ["account", "get-access-token"]:
    print("stand-in az: only 'account get-access-token' is supported", file=sys.stderr)
    sys.exit(2)
resource = args[args.index("--resource") + 1] if "--resource" in args else "https://management.azure.com"
token, expires = bearer_token(resource)
print(json.dumps({{"accessToken": token, "expires_on": expires, "tokenType": "Bearer", "tenant": TENANT,
                  "subscription": "00000000-0000-0000-0000-000000000000"}}))
'''


@dataclass(frozen=True)
class StandInAz:
    bin_dir: Path
    calls_file: Path

    def env(self) -> dict[str, str]:
        """What a child process needs to authenticate with the stand-in and nothing else."""
        return {
            "AZURE_TOKEN_CREDENTIALS": "AzureCliCredential",
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def calls(self) -> list[list[str]]:
        if not self.calls_file.exists():
            return []
        return [json.loads(line) for line in self.calls_file.read_text(encoding="utf-8").splitlines() if line]


def stand_in_az(folder: Path) -> StandInAz:
    """An executable ``az`` in ``folder/bin`` that prints tokens; each call is appended to ``az-calls.jsonl``."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    calls = folder / "az-calls.jsonl"
    script = bin_dir / "az"
    script.write_text(
        _AZ.format(python=sys.executable, support=str(Path(__file__).parent), calls=str(calls)), encoding="utf-8"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return StandInAz(bin_dir, calls)
