"""Retention on moto: jobs, batches, runs and providers carry the TTL RETENTION_DAYS gives them, the
tables expire on it, and an item past it is gone for every reader before DynamoDB gets round to it."""

from __future__ import annotations

import time

import boto3
import pytest

from tests.conftest import heartbeat_body, reset_switchyard_caches
from tests.functional.test_jobs_lifecycle import CHAT, submit

DAY = 86_400
JOB_SETTINGS = {"RETENTION_DAYS": "2"}


@pytest.fixture
def tables(jobs_env):
    dynamodb = boto3.resource("dynamodb")
    environment = jobs_env.environment
    return {name: dynamodb.Table(environment[variable]) for name, variable in _TABLES.items()}


_TABLES = {
    "jobs": "JOBS_TABLE",
    "batches": "BATCHES_TABLE",
    "runs": "RUNS_TABLE",
    "providers": "PROVIDERS_TABLE",
}


def test_every_table_holding_user_data_expires_items_on_expires_at(tables):
    client = boto3.client("dynamodb")
    for table in tables.values():
        ttl = client.describe_time_to_live(TableName=table.name)["TimeToLiveDescription"]
        assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at"), table.name


def test_a_job_a_batch_and_a_provider_are_kept_retention_days_from_their_creation_or_last_heartbeat(
    api, caller, tables
):
    before = time.time()
    job_id = submit(api, caller).json()["id"]
    body = {
        "requests": [
            {"endpoint": "/v1/chat/completions", "body": {k: v for k, v in CHAT.items() if k != "async"}}
        ]
    }
    batch = api("POST", "/v1/batches", body=body, headers=caller.headers).json()
    api(
        "POST",
        "/api/inference/agent/heartbeat/",
        body=heartbeat_body("http://127.0.0.1:9"),
        headers=caller.headers,
    )
    after = time.time()

    job = tables["jobs"].get_item(Key={"job_id": job_id})["Item"]
    batch_item = tables["batches"].get_item(Key={"batch_id": batch["id"]})["Item"]
    batch_job = tables["jobs"].get_item(Key={"job_id": batch["jobs"][0]["id"]})["Item"]
    provider = tables["providers"].get_item(Key={"account_id": caller.account_id, "provider_id": "box-1"})[
        "Item"
    ]

    assert int(job["expires_at"]) == int(job["created_ms"]) // 1000 + 2 * DAY
    assert (
        int(batch_item["expires_at"])
        == int(batch_job["expires_at"])
        == int(batch_item["created_ms"]) // 1000 + 2 * DAY
    )
    assert before + 2 * DAY - 1 <= int(provider["expires_at"]) <= after + 2 * DAY


def test_a_workflow_run_is_kept_retention_days_from_the_latest_moment_it_could_end(api, caller, tables):
    steps = [
        {
            "id": "a",
            "endpoint": "/v1/chat/completions",
            "body": {"model": "fake-llm", "messages": [{"role": "user", "content": "x"}]},
        },
        {"id": "g", "type": "gate", "depends_on": ["a"], "timeout_seconds": 3 * DAY},
    ]
    response = api("POST", "/v1/workflows/runs", body={"spec": {"steps": steps}}, headers=caller.headers)
    assert response.status == 202, response.content
    run_id = response.json()["id"]

    items = tables["runs"].query(
        KeyConditionExpression="run_id = :r", ExpressionAttributeValues={":r": run_id}
    )
    expiries = {item["sk"]: int(item["expires_at"]) for item in items["Items"]}
    run = next(item for item in items["Items"] if item["sk"] == "run")

    # Steps wait up to 30 days for their dependencies, then the gate up to 3 days: 33 days, then 2 more.
    assert set(expiries.values()) == {int(run["created_ms"]) // 1000 + (30 + 3 + 2) * DAY}
    assert set(expiries) == {"run", "step#a", "step#g"}


def test_an_item_past_its_retention_is_gone_for_every_reader_before_dynamodb_deletes_it(api, caller, tables):
    job_id = submit(api, caller).json()["id"]
    body = {
        "requests": [
            {"endpoint": "/v1/chat/completions", "body": {k: v for k, v in CHAT.items() if k != "async"}}
        ]
    }
    batch_id = api("POST", "/v1/batches", body=body, headers=caller.headers).json()["id"]
    steps = [{"id": "g", "type": "gate"}]
    run_id = api(
        "POST", "/v1/workflows/runs", body={"spec": {"steps": steps}}, headers=caller.headers
    ).json()["id"]
    past = int(time.time()) - 1
    tables["jobs"].update_item(
        Key={"job_id": job_id}, UpdateExpression="SET expires_at = :p", ExpressionAttributeValues={":p": past}
    )
    tables["batches"].update_item(
        Key={"batch_id": batch_id},
        UpdateExpression="SET expires_at = :p",
        ExpressionAttributeValues={":p": past},
    )
    tables["runs"].update_item(
        Key={"run_id": run_id, "sk": "run"},
        UpdateExpression="SET expires_at = :p",
        ExpressionAttributeValues={":p": past},
    )
    reset_switchyard_caches()  # (the batches table remembers committed batches)

    assert api("GET", f"/v1/jobs/{job_id}", headers=caller.headers).status == 404
    assert job_id not in [j["id"] for j in api("GET", "/v1/jobs", headers=caller.headers).json()["data"]]
    assert api("GET", f"/v1/batches/{batch_id}", headers=caller.headers).status == 404
    assert api("GET", "/v1/batches", headers=caller.headers).json()["data"] == []
    assert api("GET", f"/v1/workflows/runs/{run_id}", headers=caller.headers).status == 404
    assert api("GET", "/v1/workflows/runs", headers=caller.headers).json()["data"] == []
