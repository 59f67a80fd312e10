"""The ``durableClient`` binding payload (BindingHelper.DurableOrchestrationClientToString)."""

from __future__ import annotations

import json
from urllib.parse import quote

WEBHOOK_PATH = "/runtime/webhooks/durabletask"


def management_urls(base: str, hub: str, key: str, instance_id: str = "INSTANCEID") -> dict[str, str]:
    wh = f"{base}{WEBHOOK_PATH}"
    q = f"taskHub={quote(hub)}&connection=Storage&code={quote(key)}"
    inst = f"{wh}/instances/{instance_id}"
    return {
        "id": instance_id,
        "statusQueryGetUri": f"{inst}?{q}",
        "sendEventPostUri": f"{inst}/raiseEvent/{{eventName}}?{q}",
        "terminatePostUri": f"{inst}/terminate?reason={{text}}&{q}",
        "rewindPostUri": f"{inst}/rewind?reason={{text}}&{q}",
        "purgeHistoryDeleteUri": f"{inst}?{q}",
        "restartPostUri": f"{inst}/restart?{q}",
        "suspendPostUri": f"{inst}/suspend?reason={{text}}&{q}",
        "resumePostUri": f"{inst}/resume?reason={{text}}&{q}",
    }


def client_binding_json(base: str, hub: str, key: str, rpc_base: str) -> str:
    """``rpc_base`` is the worker-only channel (``devhost.rpc``); every other URL is the public API."""
    wh = f"{base}{WEBHOOK_PATH}"
    code = quote(key)
    doc = {
        "taskHubName": hub,
        "creationUrls": {
            "createNewInstancePostUri": f"{wh}/orchestrators/{{functionName}}[/{{instanceId}}]?code={code}",
            "createAndWaitOnNewInstancePostUri": (
                f"{wh}/orchestrators/{{functionName}}[/{{instanceId}}]"
                f"?timeout={{timeoutInSeconds}}&pollingInterval="
                f"{{intervalInSeconds}}&code={code}"
            ),
        },
        "managementUrls": management_urls(base, hub, key),
        "baseUrl": wh,
        "requiredQueryStringParameters": f"code={code}",
        "rpcBaseUrl": rpc_base,
    }
    return json.dumps(doc)
