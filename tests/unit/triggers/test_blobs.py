from __future__ import annotations

import pytest

from triggers.blobs import BadReference, blob_name, canonical_etag, etag_from_properties, parse_reference


def test_etag_spellings_meet() -> None:
    assert canonical_etag("0x8D") == canonical_etag('"0x8D"') == "0x8D"
    with pytest.raises(ValueError):
        canonical_etag('""')


@pytest.mark.parametrize("key", ["ETag", "Etag", "etag"])
def test_etag_from_trigger_properties(key: str) -> None:
    assert etag_from_properties({key: "0x1", "Length": 3}) == "0x1"


def test_no_etag_among_properties() -> None:
    assert etag_from_properties(None) is None
    assert etag_from_properties({"Length": 3}) is None


def test_blob_name_strips_the_container() -> None:
    assert blob_name("incoming/a/b.csv", "incoming") == "a/b.csv"
    assert blob_name("b.csv", "incoming") == "b.csv"


def test_reference_must_name_an_incoming_blob() -> None:
    assert parse_reference("incoming/2026/a.csv", "incoming") == "2026/a.csv"
    for bad, says in [
        ("quarantine/a.csv", "'incoming' container"),
        ("incoming/", "must name a blob"),
        ("incoming", "must name a blob"),
        (3, "must be a string"),
        ("", "must be a string"),
        ("incoming/a\nb", "control character"),
        ("incoming/../quarantine/x", "normalised"),
        ("incoming/a/./b.csv", "normalised"),
        ("incoming/a//b.csv", "normalised"),
        ("incoming/a\\..\\b", "backslash"),
        ("incoming/" + "x" * 1025, "at most 1024"),
    ]:
        with pytest.raises(BadReference, match=says):
            parse_reference(bad, "incoming")


def test_a_rejected_reference_is_echoed_truncated() -> None:
    with pytest.raises(BadReference) as info:
        parse_reference("elsewhere" + "x" * 100_000, "incoming")
    assert len(str(info.value)) < 400
