"""The batch container's Event Grid subscription: on_batch_file's blob webhook, filtered to the container's
``<model>/in/`` files as the trigger path says, with the container created and named in the app's settings."""

from __future__ import annotations

from tests.unit.infra.bicep import app_settings, config, resources, template, text, variable
from tests.unit.infra.test_events import _expected_subject, _url
from triggers.batch import on_batch_file


def test_batch_files_go_to_the_blob_extension_webhook_of_on_batch_file() -> None:
    subscriptions = resources("events.bicep", "Microsoft.EventGrid/systemTopics/eventSubscriptions")
    sub = config(subscriptions["batchCreated"])
    name = on_batch_file.build().get_function_name()
    assert _url(sub) == (
        "https://${app.properties.defaultHostName}/runtime/webhooks/blobs"
        f"?functionName=Host.Functions.{name}&code=${{hostKeys.systemKeys.blobs_extension}}"
    )
    path = on_batch_file.build().get_trigger().get_dict_repr()["path"]
    assert path == "%BATCH_CONTAINER%/{name}"
    expected = _expected_subject(path, app_settings())
    assert expected == "/blobServices/default/containers/batch/blobs/"
    subject = sub["properties"]["filter"]["subjectBeginsWith"]
    assert subject.replace("${batchContainer}", variable("main.bicep", "containers")["batch"]) == expected
    filters = {f["key"]: f for f in sub["properties"]["filter"]["advancedFilters"]}
    assert filters["subject"] == {"operatorType": "StringContains", "key": "subject", "values": ["/in/"]}
    assert sub["properties"]["filter"]["includedEventTypes"] == ["Microsoft.Storage.BlobCreated"]
    params = config(template("main.bicep")["modules"]["events"])["params"]
    assert text(params["batchContainer"]) == "containers.batch"
    assert app_settings()["BATCH_CONTAINER"] == "containers.batch"
