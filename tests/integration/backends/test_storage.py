"""BlobStorage against a real Azurite, through the storage contract."""

from __future__ import annotations

import uuid

import pytest
from azure.storage.blob import BlobServiceClient

from backends.errors import InvalidMetadataError, NotFoundError, TransientBackendError
from backends.ports import Storage
from backends.storage import API_VERSION, BlobStorage, decode_metadata_value, encode_metadata_value
from tests.support.azurite import Azurite, free_port
from tests.unit.backends import contracts


@pytest.fixture
def storage(azurite: Azurite) -> BlobStorage:
    return BlobStorage(azurite.connection_string)


@pytest.fixture
def container() -> str:
    return f"c-{uuid.uuid4().hex[:12]}"


def test_round_trip(storage: Storage, container: str) -> None:
    contracts.storage_round_trip(storage, container)


def test_create_only(storage: Storage, container: str) -> None:
    contracts.storage_create_only(storage, container)


def test_conditional_write(storage: Storage, container: str) -> None:
    contracts.storage_conditional_write(storage, container)


def test_list_and_delete(storage: Storage, container: str) -> None:
    contracts.storage_list_and_delete(storage, container)


def test_etag_is_the_service_etag_without_quotes(storage: BlobStorage, container: str, azurite: Azurite) -> None:
    storage.ensure_containers((container,))
    written = storage.write(container, "e.txt", b"e")
    with BlobServiceClient.from_connection_string(azurite.connection_string, api_version=API_VERSION) as service:
        raw = service.get_blob_client(container, "e.txt").get_blob_properties().etag
    assert raw == f'"{written.etag}"'
    assert [b.etag for b in storage.list(container)] == [written.etag]


def test_missing_container_is_not_found(storage: Storage) -> None:
    with pytest.raises(NotFoundError):
        storage.read("never-made", "x.csv")
    with pytest.raises(NotFoundError):
        storage.list("never-made")
    storage.delete("never-made", "x.csv")


def test_metadata_keys_must_be_identifiers(storage: Storage, container: str) -> None:
    storage.ensure_containers((container,))
    with pytest.raises(InvalidMetadataError, match="bad-key"):
        storage.write(container, "m.csv", b"", metadata={"bad-key": "v"})


def test_metadata_too_large_is_named(storage: Storage, container: str) -> None:
    storage.ensure_containers((container,))
    with pytest.raises(InvalidMetadataError, match=r"\d+ bytes once encoded.*keys: reason"):
        storage.write(container, "big.csv", b"", metadata={"reason": "x" * 9000})


def test_metadata_encoding_round_trips() -> None:
    for value in ("plain", "tést", "=?utf-8?b?aGk=?=", "☃ snow", "two\nlines"):
        encoded = encode_metadata_value(value)
        assert encoded.isascii()
        assert decode_metadata_value(encoded) == value
    assert encode_metadata_value("plain") == "plain"


def test_unreachable_service_is_transient() -> None:
    port = free_port()
    storage = BlobStorage(
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;",
        retry_total=0,
        timeout=2,
    )
    with pytest.raises(TransientBackendError, match=r"read c/x\.csv"):
        storage.read("c", "x.csv")


def test_development_storage_resolves_to_azurite() -> None:
    storage = BlobStorage("UseDevelopmentStorage=true")
    assert storage.account_url == "http://127.0.0.1:10000/devstoreaccount1"
    assert storage.url("incoming", "a.csv") == "http://127.0.0.1:10000/devstoreaccount1/incoming/a.csv"
