"""GET /api/dashboard: one HTML page over the JSON API (runs with stage timelines, models, auto-refresh).

The page is static: its script reads the key from its own ``?code=`` and calls ``/api/runs``,
``/api/runs/{id}`` and ``/api/models``; every value it renders goes through its ``esc()``. Nothing
from the request is written into the page by the server.
"""

import functools
import logging
from pathlib import Path

import azure.durable_functions as df
import azure.functions as func

from triggers.names import DASHBOARD

log = logging.getLogger(__name__)
bp = df.Blueprint()

PAGE = Path(__file__).with_name("dashboard.html")
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
}


@functools.cache
def page() -> str:
    return PAGE.read_text(encoding="utf-8")


@bp.function_name(DASHBOARD)
@bp.route(route="dashboard", methods=["GET"])
def dashboard(req: func.HttpRequest) -> func.HttpResponse:
    log.info("dashboard served")
    return func.HttpResponse(page(), status_code=200, mimetype="text/html", charset="utf-8",
                             headers=SECURITY_HEADERS)
