"""The X-Request-ID providers get: a UUID for any id of ours, stable, and UUIDs unchanged."""

from __future__ import annotations

import uuid

from switchyard.adapters.upstream import provider_request_headers
from switchyard.ids import provider_request_id


def test_a_uuid_passes_unchanged_in_canonical_form():
    value = "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert provider_request_id(value) == value
    assert provider_request_id(value.replace("-", "").upper()) == value  # the local front's hex form


def test_any_other_id_becomes_the_same_uuid_every_time():
    for ours in ("job_0190aa11bb22cc33dd44", "Jm3ZSiTDIAMEb2Q=", "x"):
        derived = provider_request_id(ours)
        assert str(uuid.UUID(derived)) == derived and derived == provider_request_id(ours)
    assert provider_request_id("job_a") != provider_request_id("job_b")


def test_every_provider_call_carries_it():
    headers = provider_request_headers("s" * 32, "application/json", "job_0190aa11bb22cc33dd44")
    assert headers["x-request-id"] == provider_request_id("job_0190aa11bb22cc33dd44")
    assert "x-request-id" not in provider_request_headers("s" * 32, "application/json")
