"""Azure Resource Manager calls for the online endpoints' long-running operations, on azure-core's pipeline.

azure-ai-ml's ``begin_create_or_update``/``begin_delete`` start a polling thread the moment they return (it polls
every 5 s until the operation ends, up to ARM's 30-minute operation timeout); a Functions worker would carry one
per deployment long after the activity returned. So the three writes that start long operations (endpoint PUT,
deployment PUT, deployment DELETE) and the reads of their status go through this client instead: the same
credential, transport and ARM endpoint as the ``MLClient``, no thread, one request per call.

ARM's long-running-operation contract (as the online endpoints answer it): a PUT answers 200/201 with the resource
(``provisioningState`` ``Creating``/``Updating``) and an ``Azure-AsyncOperation`` header; a DELETE answers 202 with
``Azure-AsyncOperation`` and ``Location``. GET on the async URL answers ``{"status": ..., "error": {...}}``, where
any status but ``Succeeded``, ``Failed`` and ``Canceled`` means still running (the online endpoints say
``Updating``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from azure.core import PipelineClient
from azure.core.credentials import TokenCredential
from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.core.pipeline.policies import (
    BearerTokenCredentialPolicy,
    HeadersPolicy,
    HttpLoggingPolicy,
    RetryPolicy,
    UserAgentPolicy,
)
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest import HttpRequest

from backends.errors import NotFoundError, TransientBackendError

#: the api-version azure-ai-ml uses for online endpoints and deployments (so both speak the same shapes)
ONLINE_API_VERSION = "2022-02-01-preview"
TERMINAL = ("Succeeded", "Failed", "Canceled")


class ArmRejected(ValueError):
    """ARM refused a request as invalid (a 4xx other than 404/408/409/429); retrying the same request cannot help."""


@dataclass(frozen=True)
class ArmAnswer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def async_operation(self) -> str:
        """Where to poll the operation this answer started ('' when it finished at once)."""
        return self.headers.get("azure-asyncoperation", "")

    @property
    def properties(self) -> dict[str, Any]:
        props = self.body.get("properties") if isinstance(self.body, dict) else None
        return props if isinstance(props, dict) else {}

    @property
    def provisioning_state(self) -> str:
        return str(self.properties.get("provisioningState") or "")


@dataclass(frozen=True)
class AsyncStatus:
    """The answer of an ``Azure-AsyncOperation`` URL."""

    status: str
    message: str = ""

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


class ArmClient:
    """Authenticated ARM requests; ``base_url`` is the Resource Manager endpoint (``AZUREML_ARM_ENDPOINT``)."""

    def __init__(
        self,
        base_url: str,
        credential: TokenCredential,
        *,
        transport: HttpTransport | None = None,
        retry_total: int = 3,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        policies = [
            HeadersPolicy(),
            UserAgentPolicy("mlops-functions"),
            RetryPolicy(retry_total=retry_total),
            BearerTokenCredentialPolicy(credential, self.base_url + "/.default"),
            HttpLoggingPolicy(),
        ]
        self._client: PipelineClient[HttpRequest, Any] = PipelineClient(
            self.base_url, policies=policies, transport=transport
        )

    def get(self, path: str, *, missing_ok: bool = False) -> ArmAnswer | None:
        try:
            return self._send("GET", path)
        except NotFoundError:
            if missing_ok:
                return None
            raise

    def put(self, path: str, body: dict[str, Any]) -> ArmAnswer:
        return self._send("PUT", path, body)

    def delete(self, path: str) -> ArmAnswer | None:
        try:
            return self._send("DELETE", path)
        except NotFoundError:
            return None

    def post(self, path: str) -> ArmAnswer:
        return self._send("POST", path)

    def async_status(self, url: str) -> AsyncStatus | None:
        """Read an operation's status; None for a URL that is not on this ARM endpoint (never send the token
        elsewhere) or that ARM no longer knows."""
        if not self.owns(url):
            return None
        try:
            answer = self._send("GET", url)
        except NotFoundError:
            return None
        body: dict[str, Any] = answer.body if isinstance(answer.body, dict) else {}
        error: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
        message = ": ".join(str(p) for p in (error.get("code"), error.get("message")) if p)
        return AsyncStatus(str(body.get("status") or ""), message)

    def owns(self, url: str) -> bool:
        return url.startswith(self.base_url + "/")

    def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> ArmAnswer:
        url = path if path.startswith("https://") else f"{self.base_url}{path}"
        params = {} if "api-version=" in url else {"api-version": ONLINE_API_VERSION}
        request = HttpRequest(method, url, params=params, json=body)
        what = f"{method} {url.split('?', 1)[0].removeprefix(self.base_url)}"
        try:
            response = self._client.send_request(request)
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise TransientBackendError(f"{what}: {exc}") from exc
        status = response.status_code
        try:
            parsed = response.json() if response.content else None
        except ValueError:
            parsed = None
        if status >= 400:
            raise _error(what, status, parsed)
        return ArmAnswer(status, parsed, {k.lower(): v for k, v in response.headers.items()})


def _error(what: str, status: int, body: Any) -> Exception:
    error: dict[str, Any] = body["error"] if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}
    detail = ": ".join(str(p) for p in (error.get("code"), error.get("message")) if p) or f"HTTP {status}"
    message = f"{what}: HTTP {status}: {detail}"
    if status == 404:
        return NotFoundError(message)
    if status in (408, 409, 429) or status >= 500:  # 409: another operation on the resource is under way
        return TransientBackendError(message)
    if status in (401, 403):
        return ArmRejected(message + " (the app's identity needs a role on the workspace: see docs/azure.md)")
    return ArmRejected(message)
