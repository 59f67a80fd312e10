"""GET /api/dashboard: one HTML page over the JSON API (runs with stage timelines, models, auto-refresh).

The page is static: its script reads the key from its own ``?code=`` and calls ``/api/runs``,
``/api/runs/{id}`` and ``/api/models``; every value it renders goes through its ``esc()``. Nothing
from the request is written into the page by the server; the app's enums (``messages.enums.for_page``: which
outcomes and statuses are good, bad or under way) are, once, as a constant.
"""

import functools
import json
import logging
from pathlib import Path

import azure.durable_functions as df
import azure.functions as func

from messages.enums import for_page
from triggers.names import DASHBOARD

log = logging.getLogger(__name__)
bp = df.Blueprint()

PAGE = Path(__file__).with_name("dashboard.html")
ENUMS_MARK = "/*ENUMS*/null"
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
}


@functools.cache
def page() -> str:
    # ``<`` escaped: no value can close the script element
    enums = json.dumps(for_page(), sort_keys=True).replace("<", "\\u003c")
    return PAGE.read_text(encoding="utf-8").replace(ENUMS_MARK, enums, 1)


@bp.function_name(DASHBOARD)
@bp.route(route="dashboard", methods=["GET"])
def dashboard(req: func.HttpRequest) -> func.HttpResponse:
    log.info("dashboard served")
    return func.HttpResponse(page(), status_code=200, mimetype="text/html", charset="utf-8", headers=SECURITY_HEADERS)
