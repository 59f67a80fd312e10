"""The Functions app: settings checked at start-up, then the blueprints of triggers, orchestrators and activities."""

import importlib
import importlib.util
import logging

import azure.durable_functions as df
import azure.functions as func

from activities.blueprint import bp as activities
from backends import settings
from orchestrators.blueprint import bp as orchestrators
from services.catalog import catalog
from triggers import blueprints

settings.current()  # a missing or malformed setting stops start-up here, naming it
catalog()  # the model specs: a bad one disables that model (its problems logged), never the app
# the storage SDK logs every request and response at INFO: keep the app's log about runs, not HTTP headers
logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)

if importlib.util.find_spec("backends.telemetry") is not None:  # optional: silent without a connection string
    importlib.import_module("backends.telemetry").configure_telemetry("mlops-functions")

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in (*blueprints(), orchestrators, activities):
    app.register_functions(blueprint)
