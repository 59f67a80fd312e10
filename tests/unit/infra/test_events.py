"""Event Grid in the Bicep: the subscriptions reach the app's functions with the system keys, filter as the trigger
path says (the rule devhost's stand-in follows), retry, and dead-letter by identity."""

from __future__ import annotations

import re

from devhost.blobevents import subject_filter
from tests.unit.infra.bicep import app_settings, config, resources, role_assignments, template, text, variable
from triggers.blob import on_blob_drop
from triggers.events import on_model_registered


def _subscriptions() -> dict[str, dict]:
    return {
        k: config(v)
        for k, v in resources("events.bicep", "Microsoft.EventGrid/systemTopics/eventSubscriptions").items()
    }


def _variables() -> dict:
    return template("events.bicep")["variables"]


def _url(subscription: dict) -> str:
    url = subscription["properties"]["destination"]["properties"]["endpointUrl"]
    return re.sub(r"\$\{webhooks\}", text(_variables()["webhooks"]["value"]), url)


def _expected_subject(path: str, settings: dict[str, str]) -> str:
    """The subject prefix devhost's system-topic stand-in derives from the trigger path (one rule offline and on
    Azure), with the path's %SETTING% resolved as Bicep sets it."""
    containers = variable("main.bicep", "containers")
    resolved = re.sub(r"%(\w+)%", lambda m: containers[settings[m.group(1)].removeprefix("containers.")], path)
    return subject_filter(resolved)


def test_blob_created_goes_to_the_blob_extension_webhook_of_on_blob_drop() -> None:
    blob = _subscriptions()["blobCreated"]
    assert text(_variables()["webhooks"]["value"]) == "https://${app.properties.defaultHostName}/runtime/webhooks"
    name = on_blob_drop.build().get_function_name()
    assert _url(blob) == (
        "https://${app.properties.defaultHostName}/runtime/webhooks/blobs"
        f"?functionName=Host.Functions.{name}&code=${{hostKeys.systemKeys.blobs_extension}}"
    )
    assert text(_variables()["hostKeys"]["value"]) == "list_func(listKeys, ${app.id}/host/default, 2023-12-01)"
    assert blob["properties"]["filter"]["includedEventTypes"] == ["Microsoft.Storage.BlobCreated"]
    assert blob["properties"]["eventDeliverySchema"] == "EventGridSchema"


def test_the_subject_filter_is_the_literal_prefix_of_the_trigger_path() -> None:
    path = on_blob_drop.build().get_trigger().get_dict_repr()["path"]
    assert path == "%INCOMING_CONTAINER%/{name}"
    expected = _expected_subject(path, app_settings())
    assert expected == "/blobServices/default/containers/incoming/blobs/"
    subject = _subscriptions()["blobCreated"]["properties"]["filter"]["subjectBeginsWith"]
    params = config(template("main.bicep")["modules"]["events"])["params"]
    assert text(params["incomingContainer"]) == "containers.incoming"
    assert subject.replace("${incomingContainer}", variable("main.bicep", "containers")["incoming"]) == expected


def test_model_registered_goes_to_the_event_grid_webhook_of_on_model_registered() -> None:
    sub = _subscriptions()["modelRegistered"]
    name = on_model_registered.build().get_function_name()
    assert _url(sub) == (
        "https://${app.properties.defaultHostName}/runtime/webhooks/eventgrid"
        f"?functionName={name}&code=${{hostKeys.systemKeys.eventgrid_extension}}"
    )
    assert sub["properties"]["filter"]["includedEventTypes"] == ["Microsoft.MachineLearningServices.ModelRegistered"]
    assert sub["properties"]["filter"]["subjectBeginsWith"] == "models/${modelName}:"


def test_deliveries_retry_then_dead_letter_by_the_topics_identity() -> None:
    retry = _variables()["retryPolicy"]["value"]
    assert retry == {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440}
    dead = _variables()["deadLetters"]["value"]
    assert dead["identity"] == {"type": "SystemAssigned"}
    assert text(dead["deadLetterDestination"]["properties"]["blobContainerName"]) == "deadLetterContainer"
    for sub in _subscriptions().values():
        assert text(sub["properties"]["retryPolicy"]) == "retryPolicy"
        assert text(sub["properties"]["deadLetterWithResourceIdentity"]) == "deadLetters"
    topics = resources("main.bicep", "Microsoft.EventGrid/systemTopics")
    assert {config(t)["identity"]["type"] for t in topics.values()} == {"SystemAssigned"}
    writers = {
        a.identity
        for a in role_assignments()
        if a.scope == "deadLetterContainer" and a.role == "storageBlobDataContributor"
    }
    assert writers == set(topics)
    assert variable("main.bicep", "containers")["deadLetters"] in variable("main.bicep", "containers").values()


def test_subscriptions_come_only_with_the_second_deployment() -> None:
    module = template("main.bicep")["modules"]["events"]
    assert module["detail"]["path"] == "events.bicep"
    assert text(module["config"]["condition"]) == "createEventSubscriptions"
    assert template("main.bicep")["parameters"]["createEventSubscriptions"]["default"] is False
