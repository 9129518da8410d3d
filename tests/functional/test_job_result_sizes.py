"""Results of every size on moto (which refuses items over 400 KB, as DynamoDB does): large prompts and
answers, several media outputs, non-ASCII text, bounded reads, and a result that cannot be stored."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import heartbeat_body
from tests.functional.test_jobs_lifecycle import job, submit

JOB_SETTINGS = {"NO_PROVIDER_GRACE_SECONDS": "0.3", "JOB_UPSTREAM_TIMEOUT_SECONDS": "10"}


def png(size: int, seed: int = 0) -> bytes:
    """`size` bytes that sniff as PNG (random after the magic, so nothing compresses them)."""
    return b"\x89PNG\r\n\x1a\n" + os.urandom(size - 8)


class ScriptedProvider:
    """A provider whose answer to every inference call is what the test sets, and that counts calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.answer: Callable[[dict], Response] = lambda body: JSONResponse({"ok": True})

    def app(self) -> Starlette:
        async def any_call(request: Request) -> Response:
            self.calls += 1
            return self.answer(json.loads(await request.body()))

        return Starlette(routes=[Route("/v1/{path:path}", any_call, methods=["POST"])])


@pytest.fixture
def scripted(api, caller):
    from switchyard_agent.serving import serve_in_thread

    provider = ScriptedProvider()
    context = serve_in_thread(provider.app())
    url = context.__enter__()
    response = api(
        "POST", "/api/inference/agent/heartbeat/", body=heartbeat_body(url), headers=caller.headers
    )
    assert response.status == 200, response.content
    yield provider
    context.__exit__(None, None, None)


def drain_until_done(harness, api, caller, job_id: str) -> dict:
    harness.drain(lambda: job(api, caller, job_id)["status"] in ("PROCESSED", "FAILED"), timeout=30)
    return job(api, caller, job_id)


def path_of(url: str) -> str:
    return url.removeprefix("https://gateway.test")


# ---------------------------------------------------------------- what the issue measured


def test_a_chat_job_with_a_250_kb_prompt_and_a_250_kb_answer_is_processed_once(
    api, caller, harness, online_provider
):
    prompt = "word " * 50_000  # 250 KB; the fake model server echoes it back
    body = {"model": "fake-llm", "messages": [{"role": "user", "content": prompt}], "async": True}

    job_id = submit(api, caller, body=body).json()["id"]
    done = drain_until_done(harness, api, caller, job_id)

    assert done["status"] == "PROCESSED", done
    assert done["result"]["choices"][0]["message"]["content"] == f"Fake reply from fake-llm: {prompt}"
    calls = [c for c in online_provider.server.history.all() if c["path"] == "/v1/chat/completions"]
    assert len(calls) == 1
    assert harness.sweep()["requeued_expired"] == []


def test_an_image_job_with_three_300_kb_images_exposes_each_as_an_asset(
    api, caller, new_caller, harness, scripted
):
    images = [png(300_000, i) for i in range(3)]
    scripted.answer = lambda body: JSONResponse(
        {
            "created": 1,
            "data": [{"b64_json": base64.b64encode(i).decode(), "revised_prompt": "p"} for i in images],
        }
    )
    body = {"model": "fake-image", "prompt": "lamp", "n": 3, "async": True}

    job_id = submit(api, caller, "/v1/images/generations", body).json()["id"]
    done = drain_until_done(harness, api, caller, job_id)

    assert done["status"] == "PROCESSED", done
    assets = done["assets"]
    assert [(a["content_type"], a["bytes"]) for a in assets] == [("image/png", 300_000)] * 3
    assert done["result_url"] == assets[0]["url"] == f"https://gateway.test/api/inference/assets/{job_id}/"
    assert assets[1]["url"] == f"https://gateway.test/api/inference/assets/{job_id}/1/"
    for asset, image in zip(assets, images, strict=True):
        served = api("GET", path_of(asset["url"]), headers=caller.headers)
        assert served.status == 200
        assert served.headers["content-type"] == "image/png"
        assert served.content == image
    # The metadata keeps everything but the payloads.
    assert [item["revised_prompt"] for item in done["result"]["data"]] == ["p"] * 3
    assert all("stored asset" in item["b64_json"] for item in done["result"]["data"])
    assert scripted.calls == 1
    # Tenant-safe, and no asset past the last.
    intruder = new_caller("intruder")
    for url in (assets[0]["url"], assets[2]["url"]):
        assert api("GET", path_of(url), headers=intruder.headers).status == 404
    assert api("GET", f"/api/inference/assets/{job_id}/3/", headers=caller.headers).status == 404
    assert api("GET", f"/api/inference/assets/{job_id}/x/", headers=caller.headers).status == 404


def test_a_non_ascii_text_answer_is_stored_as_sent_not_re_escaped_past_the_size_check(
    api, caller, harness, scripted
):
    # 260 KB of UTF-8, under the old 300 KB inline limit; json.dumps' ASCII escaping made it 740 KB.
    text = "Zürich 🚂🚃🚄 " * 13_000
    scripted.answer = lambda body: Response(text.encode(), media_type="text/plain; charset=utf-8")

    job_id = submit(api, caller).json()["id"]
    done = drain_until_done(harness, api, caller, job_id)

    assert done["status"] == "PROCESSED", done
    assert done["result"] == {"text": text}
    assert scripted.calls == 1


def test_a_large_prompt_of_a_media_job_and_its_metadata_fit_as_well(api, caller, harness, scripted):
    image = png(1_000, 0)
    notes = "n" * 200_000  # metadata that alone would fill half an item
    scripted.answer = lambda body: JSONResponse(
        {"data": [{"b64_json": base64.b64encode(image).decode(), "notes": notes}]}
    )
    body = {"model": "fake-image", "prompt": "x" * 250_000, "async": True}

    job_id = submit(api, caller, "/v1/images/generations", body).json()["id"]
    done = drain_until_done(harness, api, caller, job_id)

    assert done["status"] == "PROCESSED", done
    assert done["result"]["data"][0]["notes"] == notes
    assert api("GET", path_of(done["result_url"]), headers=caller.headers).content == image


# ---------------------------------------------------------------- reads stay bounded


def test_a_list_of_jobs_does_not_inline_large_results(api, caller, harness, scripted, monkeypatch):
    big = {"choices": [{"message": {"role": "assistant", "content": "y" * 200_000}}]}
    small = {"choices": [{"message": {"role": "assistant", "content": "short"}}]}
    answers = iter([big, small])
    scripted.answer = lambda body: JSONResponse(next(answers))
    big_id = submit(api, caller).json()["id"]
    drain_until_done(harness, api, caller, big_id)
    small_id = submit(api, caller).json()["id"]
    drain_until_done(harness, api, caller, small_id)

    listed = {j["id"]: j for j in api("GET", "/v1/jobs", headers=caller.headers).json()["data"]}

    assert listed[small_id]["result"] == small
    assert "result" not in listed[big_id]
    assert listed[big_id]["result_url"] == f"https://gateway.test/api/inference/assets/{big_id}/"
    assert listed[big_id]["result_bytes"] > 200_000
    # One job's read inlines it (it is well under the read bound) and its URL serves it.
    assert job(api, caller, big_id)["result"] == big
    served = api("GET", f"/api/inference/assets/{big_id}/", headers=caller.headers)
    assert served.headers["content-type"].startswith("application/json")
    assert json.loads(served.content) == big


def test_a_result_over_the_read_bound_is_given_by_url_only(api, caller, harness, scripted, monkeypatch):
    from tests.conftest import reset_switchyard_caches

    monkeypatch.setenv("READ_INLINE_RESULT_LIMIT_BYTES", "100000")
    reset_switchyard_caches()
    big = {"choices": [{"message": {"role": "assistant", "content": "z" * 150_000}}]}
    scripted.answer = lambda body: JSONResponse(big)
    job_id = submit(api, caller).json()["id"]

    done = drain_until_done(harness, api, caller, job_id)

    assert "result" not in done
    assert done["result_url"].endswith(f"/api/inference/assets/{job_id}/")
    assert json.loads(api("GET", path_of(done["result_url"]), headers=caller.headers).content) == big


# ---------------------------------------------------------------- a result that cannot be stored


def test_a_result_that_cannot_be_stored_fails_the_job_with_its_reason_and_is_never_run_again(
    api, caller, harness, scripted, monkeypatch, capsys
):
    from switchyard.adapters import media_store

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")  # the metric its alarm watches

    scripted.answer = lambda body: Response(png(50_000, 0), media_type="image/png")

    def refuse(self, key, content, content_type):
        raise RuntimeError("S3 said no")

    monkeypatch.setattr(media_store.MediaStore, "put", refuse)
    body = {"model": "fake-image", "prompt": "lamp", "async": True}
    job_id = submit(api, caller, "/v1/images/generations", body).json()["id"]

    done = drain_until_done(harness, api, caller, job_id)
    monkeypatch.undo()
    harness.sweep()
    harness.drain()

    assert done["status"] == "FAILED"
    assert done["error"]["type"] == "result_not_stored"
    assert "the provider answered, but its result could not be stored" in done["error"]["message"].lower()
    assert "S3 said no" in done["error"]["message"]
    assert job(api, caller, job_id)["status"] == "FAILED"
    assert scripted.calls == 1
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    # What JobResultsNotStoredAlarm watches: the stack's namespace, DispatchOutcomes, Outcome=not_stored.
    not_stored = [m for m in emitted if "DispatchOutcomes" in m and m.get("Outcome") == "not_stored"]
    assert len(not_stored) == 1, emitted
    directive = not_stored[0]["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"].startswith("Switchyard") and directive["Dimensions"] == [["Outcome"]]
