"""The warmup trigger: the platform calls it when it adds an instance, before the instance takes traffic.

Building the backends imports MLflow or azure-ai-ml (seconds): done here, a new instance's first API call or activity
does not pay for it. Offline devhost calls it as it starts, as the platform does.
"""

import asyncio
import logging

import azure.durable_functions as df
from azure.functions.warmup import WarmUpContext  # in azure.functions' __all__ but not imported there

from triggers.names import WARMUP
from triggers.services import backends

log = logging.getLogger(__name__)
bp = df.Blueprint()


@bp.function_name(WARMUP)
@bp.warm_up_trigger(arg_name="warmup")
async def warmup(warmup: WarmUpContext) -> None:
    built = await asyncio.to_thread(backends)
    log.info("warm: %s backends built", type(built.registry).__name__)
