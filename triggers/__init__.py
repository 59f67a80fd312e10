"""The app's edge: blob, timer, HTTP and Event Grid triggers, each module a blueprint."""

from __future__ import annotations

import azure.durable_functions as df


def blueprints() -> tuple[df.Blueprint, ...]:
    """Every trigger blueprint, for ``function_app.py`` to register."""
    from backends.settings import current
    from triggers import batch, blob, dashboard, events, http_api, supervisor, timer, warmup

    local = (supervisor.bp,) if current().MLOPS_BACKEND == "local" else ()
    return (blob.bp, batch.bp, timer.bp, http_api.bp, events.bp, dashboard.bp, warmup.bp, *local)
