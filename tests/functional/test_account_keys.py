"""Self-service API keys (/api/account/keys) on the ApiFunction handler and moto."""

from __future__ import annotations

import pytest

KEYS = "/api/account/keys"


def keys_of(api, caller) -> list[dict]:
    response = api("GET", KEYS, headers=caller.headers)
    assert response.status == 200, response.content
    return response.json()["data"]


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def test_given_a_caller_when_it_lists_keys_then_it_sees_its_own_without_secrets(api, caller):
    response = api("GET", KEYS, headers=caller.headers)

    assert response.status == 200
    body = response.json()
    assert body["object"] == "list"
    [key] = body["data"]
    assert key["object"] == "api_key" and key["id"] == key["key_id"] and key["key_id"].startswith("key_")
    assert key["name"] == "default" and key["status"] == "active" and key["current"] is True
    assert key["created_at"].endswith("Z") and key["revoked_at"] is None
    assert caller.api_key not in response.content.decode()
    assert "key_hash" not in key and "api_key" not in key


def test_given_a_new_key_then_its_secret_is_shown_once_and_it_works(api, caller):
    created = api("POST", KEYS, body={"name": "ci runner"}, headers=caller.headers)

    assert created.status == 201, created.content
    assert created.headers["cache-control"] == "no-store"
    new = created.json()
    assert new["name"] == "ci runner" and new["status"] == "active" and new["api_key"].startswith("sy-")
    assert new["current"] is False
    # The secret appears in no later answer, and the key authenticates at once.
    listing = api("GET", KEYS, headers=bearer(new["api_key"]))
    assert new["api_key"] not in listing.content.decode()
    listed = {k["key_id"]: k for k in listing.json()["data"]}
    assert set(listed) == {new["key_id"], keys_of(api, caller)[-1]["key_id"]}
    assert listed[new["key_id"]]["current"] is True
    assert [k["name"] for k in listing.json()["data"]] == ["ci runner", "default"]  # newest first


def test_given_no_body_then_the_key_gets_the_default_name(api, caller):
    created = api("POST", KEYS, headers=caller.headers)

    assert created.status == 201 and created.json()["name"] == "default"


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"name": ""}, 400, "name must be a string of 1 to 100 characters"),
        ({"name": "x" * 101}, 400, "name must be a string of 1 to 100 characters"),
        ({"name": 7}, 400, "name must be a string"),
        ({"name": "ok", "scopes": ["all"]}, 400, "unknown field(s) scopes"),
        ([1, 2], 400, "Request body must be a JSON object"),
    ],
)
def test_given_a_bad_create_body_then_it_is_refused_and_nothing_is_created(api, caller, body, status, says):
    response = api("POST", KEYS, body=body, headers=caller.headers)

    assert response.status == status
    assert says in response.json()["error"]["message"]
    assert len(keys_of(api, caller)) == 1


def test_given_malformed_json_then_the_answer_is_a_detail_400(api, caller):
    response = api(
        "POST", KEYS, body=b"{nope", headers={**caller.headers, "content-type": "application/json"}
    )

    assert response.status == 400 and response.json()["detail"].startswith("JSON parse error")


def test_given_a_revoked_key_then_it_is_listed_as_revoked_and_stops_working(api, caller):
    new = api("POST", KEYS, body={"name": "laptop"}, headers=caller.headers).json()
    assert api("GET", KEYS, headers=bearer(new["api_key"])).status == 200

    revoked = api("DELETE", f"{KEYS}/{new['key_id']}", headers=caller.headers)

    assert revoked.status == 200
    assert revoked.json()["status"] == "revoked" and revoked.json()["revoked_at"]
    assert api("GET", KEYS, headers=bearer(new["api_key"])).status == 401
    assert api("GET", "/v1/models", headers=bearer(new["api_key"])).status == 401
    assert {k["key_id"]: k["status"] for k in keys_of(api, caller)}[new["key_id"]] == "revoked"
    again = api("DELETE", f"{KEYS}/{new['key_id']}", headers=caller.headers)
    assert again.status == 200 and again.json()["revoked_at"] == revoked.json()["revoked_at"]


def test_given_another_container_cached_the_key_then_revoking_stops_it_within_the_cache_ttl(api, caller):
    """A revoke invalidates the cache of the container that served it; every other container's cache
    keeps the key for at most auth_cache_seconds."""
    from switchyard.adapters.accounts_table import get_accounts_table, get_api_keys_table
    from switchyard.services.accounts import AccountsService
    from switchyard.settings import get_settings

    new = api("POST", KEYS, body={"name": "other"}, headers=caller.headers).json()
    elsewhere = AccountsService(get_settings(), get_accounts_table(), get_api_keys_table())
    clock = [1000.0]
    elsewhere._auth_cache._clock = lambda: clock[0]
    assert elsewhere.authenticate(f"Bearer {new['api_key']}") == caller.account_id

    assert api("DELETE", f"{KEYS}/{new['key_id']}", headers=caller.headers).status == 200

    assert elsewhere.authenticate(f"Bearer {new['api_key']}") == caller.account_id  # still cached
    clock[0] += get_settings().auth_cache_seconds + 0.01
    from switchyard.errors import AuthenticationFailed

    with pytest.raises(AuthenticationFailed):
        elsewhere.authenticate(f"Bearer {new['api_key']}")


def test_given_another_account_then_it_can_neither_see_nor_revoke_the_callers_keys(api, caller, new_caller):
    intruder = new_caller("intruder")
    victim_key = keys_of(api, caller)[0]["key_id"]

    assert [k["key_id"] for k in keys_of(api, intruder)] != [victim_key]
    assert victim_key not in {k["key_id"] for k in keys_of(api, intruder)}
    refused = api("DELETE", f"{KEYS}/{victim_key}", headers=intruder.headers)
    assert refused.status == 404 and refused.json()["error"]["type"] == "not_found"
    assert api("GET", KEYS, headers=caller.headers).status == 200  # the victim's key still works
    assert keys_of(api, caller)[0]["status"] == "active"


@pytest.mark.parametrize(("method", "path"), [("GET", KEYS), ("POST", KEYS), ("DELETE", f"{KEYS}/key_x")])
def test_given_no_key_then_every_keys_route_answers_401(api, method, path):
    response = api(method, path, body={"name": "x"} if method == "POST" else None)

    assert response.status == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}
    assert api(method, path, headers=bearer("sy-not-a-key")).status == 401


def test_given_a_key_was_used_then_the_list_says_when_and_a_fresh_one_says_never(api, caller):
    unused = api("POST", KEYS, body={"name": "spare"}, headers=caller.headers).json()

    listed = {k["key_id"]: k for k in keys_of(api, caller)}

    assert listed[unused["key_id"]]["last_used_at"] is None
    mine = next(k for k in listed.values() if k["current"])
    assert mine["last_used_at"] and mine["last_used_at"].endswith("Z")


def test_given_the_active_key_limit_then_creating_another_is_a_conflict(api, caller, monkeypatch):
    from switchyard.services import accounts

    monkeypatch.setattr(accounts, "MAX_ACTIVE_KEYS", 2)
    assert api("POST", KEYS, body={"name": "second"}, headers=caller.headers).status == 201

    refused = api("POST", KEYS, body={"name": "third"}, headers=caller.headers)

    assert refused.status == 409 and "revoke one first" in refused.json()["error"]["message"]
    assert len(keys_of(api, caller)) == 2


def test_given_the_openapi_document_then_the_key_routes_are_in_it(api):
    spec = api("GET", "/openapi.json").json()

    assert set(spec["paths"][KEYS]) == {"get", "post"}
    assert "delete" in spec["paths"][f"{KEYS}/{{key_id}}"]
    assert "201" in spec["paths"][KEYS]["post"]["responses"]
    assert spec["paths"][KEYS]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
