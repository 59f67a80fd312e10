"""Who is calling an approval route, and whether they may decide a release.

On Azure the caller is who App Service authentication ("Easy Auth") says: its module validates the token, then sets
``X-MS-CLIENT-PRINCIPAL-NAME``, ``X-MS-CLIENT-PRINCIPAL-ID`` and ``X-MS-CLIENT-PRINCIPAL`` (base64 JSON of the
claims: ``{"auth_typ", "claims": [{"typ", "val"}], "name_typ", "role_typ"}``), and a client cannot set them itself.
That holds only while the module runs: with authentication off a client's own ``X-MS-*`` headers reach the app
untouched. So they are trusted only when the platform says authentication is on (``WEBSITE_AUTH_ENABLED``, set by
App Service); otherwise approvals are refused, never decided by a header anyone can send.

Offline (``APPROVAL_IDENTITY=header``, local backend only: the settings refuse it on Azure) the caller names
themself in ``X-Approver``, beside the function key that every route needs.

The pipeline's own identity never approves its own release: the reserved name ``mlops-pipeline``, and on Azure the
app's user-assigned managed identity (``AZURE_CLIENT_ID``, the ``appid``/``azp`` claim of the tokens it gets).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass

from backends.settings import Settings
from messages.runs import PIPELINE_APPROVER, ApprovalPolicy

#: the local header naming the approver (with ``APPROVAL_IDENTITY=header``)
APPROVER_HEADER = "X-Approver"
PRINCIPAL_NAME = "X-MS-CLIENT-PRINCIPAL-NAME"
PRINCIPAL_ID = "X-MS-CLIENT-PRINCIPAL-ID"
PRINCIPAL = "X-MS-CLIENT-PRINCIPAL"
#: claims that identify a caller (what an approvers list may name besides the principal's name and id)
IDENTITY_CLAIMS = frozenset(
    {
        "http://schemas.microsoft.com/identity/claims/objectidentifier",
        "oid",
        "appid",
        "azp",
        "preferred_username",
        "upn",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        "email",
    }
)
#: claims that say the caller is an application (a managed identity or a service principal)
APP_CLAIMS = frozenset({"appid", "azp"})
MAX_NAME = 256
#: the largest principal header decoded (Easy Auth's holds the token's claims: a few KiB)
MAX_PRINCIPAL_BYTES = 32 * 1024


class IdentityRefused(ValueError):
    """A caller the approval routes cannot identify or may not let decide: ``status`` 401 or 403."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Caller:
    """The caller as identified: a display name, the provider's id, and every identifier an approvers list may
    name (casefolded)."""

    name: str
    principal_id: str
    ids: frozenset[str]


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name) or headers.get(name.lower()) or ""
    return value.strip()


def _checked(value: str, what: str) -> str:
    if len(value) > MAX_NAME or not value.isprintable():
        raise IdentityRefused(401, f"{what} must be 1-{MAX_NAME} printable characters")
    return value


def principal_claims(encoded: str) -> dict[str, list[str]]:
    """The claims of an ``X-MS-CLIENT-PRINCIPAL`` header, by type; ``IdentityRefused`` when it does not decode."""
    if len(encoded) > MAX_PRINCIPAL_BYTES:
        raise IdentityRefused(401, f"{PRINCIPAL} is larger than {MAX_PRINCIPAL_BYTES} bytes")
    try:
        doc = json.loads(base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=False))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise IdentityRefused(401, f"{PRINCIPAL} is not base64 of a JSON document") from None
    claims = doc.get("claims") if isinstance(doc, dict) else None
    if not isinstance(claims, list):
        raise IdentityRefused(401, f'{PRINCIPAL} holds no "claims" list')
    out: dict[str, list[str]] = {}
    for claim in claims:
        if isinstance(claim, dict) and isinstance(claim.get("typ"), str) and isinstance(claim.get("val"), str):
            out.setdefault(claim["typ"], []).append(claim["val"])
    return out


def caller_of(headers: Mapping[str, str], settings: Settings) -> Caller:
    """The caller of an approval route under the app's ``APPROVAL_IDENTITY``; ``IdentityRefused`` when there is none
    to trust."""
    if settings.APPROVAL_IDENTITY == "header":
        name = _header(headers, APPROVER_HEADER)
        if not name:
            raise IdentityRefused(401, f"name the approver in the {APPROVER_HEADER} header (APPROVAL_IDENTITY=header)")
        name = _checked(name, APPROVER_HEADER)
        return Caller(name, "", frozenset({name.casefold()}))
    if not settings.auth_enabled:
        raise IdentityRefused(
            403,
            "approvals need App Service authentication: turn it on for the function app (WEBSITE_AUTH_ENABLED is "
            f"not true, so {PRINCIPAL_NAME} and {PRINCIPAL} could come from anyone); offline, set "
            "APPROVAL_IDENTITY=header",
        )
    name, principal_id = _header(headers, PRINCIPAL_NAME), _header(headers, PRINCIPAL_ID)
    encoded = _header(headers, PRINCIPAL)
    claims = principal_claims(encoded) if encoded else {}
    if not name and not principal_id:
        raise IdentityRefused(
            401, "no authenticated caller: App Service authentication passed the request without a principal"
        )
    ids = {_checked(v, "the principal").casefold() for v in (name, principal_id) if v}
    ids |= {v.strip().casefold() for typ in IDENTITY_CLAIMS for v in claims.get(typ, []) if v.strip()}
    apps = {v.strip().casefold() for typ in APP_CLAIMS for v in claims.get(typ, [])}
    return Caller(name or principal_id, principal_id, frozenset(ids | {f"app:{a}" for a in apps}))


def pipeline_ids(settings: Settings) -> frozenset[str]:
    """The identifiers the pipeline itself goes by."""
    ids = {PIPELINE_APPROVER}
    if settings.AZURE_CLIENT_ID:
        client = settings.AZURE_CLIENT_ID.strip().casefold()
        ids |= {client, f"app:{client}"}
    return frozenset(ids)


def approver_for(caller: Caller, policy: ApprovalPolicy, settings: Settings) -> str:
    """The entry of the policy's approvers the caller is (as the policy spells it); ``IdentityRefused`` (403) for the
    pipeline's own identity or someone not on the list."""
    if caller.ids & pipeline_ids(settings):
        raise IdentityRefused(403, "the pipeline's own identity never approves or rejects its own release")
    for approver in policy.approvers:
        if approver.strip().casefold() in caller.ids:
            return approver
    listed = ", ".join(policy.approvers) or "none"
    raise IdentityRefused(403, f"{caller.name} is not an approver of this release (approvers: {listed})")
