"""The dashboard in a real headless chromium against the running local stack, agent and model server."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.browser.conftest import dashboard_url, sign_in
from tests.e2e.conftest import _stop, start_provider

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

MODELS = {"text_model": "fake-llm", "image_model": "fake-image", "speech_model": "fake-tts"}


def submit(http: httpx.Client, headers: dict, path: str, body: dict) -> dict:
    response = http.post(path, json={**body, "async": True}, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()


def job_row(page, job_id: str):
    return page.locator(f'#jobs-body tr[data-job-id="{job_id}"]')


# ---------------------------------------------------------------- signing in and out


def test_sign_in_refuses_a_wrong_key_and_sign_out_forgets_the_key(page, stack, provider):
    page.goto(f"{stack.base_url}/dashboard")  # the bare path redirects to /dashboard/

    page.fill("#api-key", "sy-not-a-real-key")
    page.click("form.signin-card button[type=submit]")
    page.wait_for_selector("#signin-message:has-text('invalid key')")
    assert page.evaluate("sessionStorage.length") == 0

    page.fill("#api-key", stack.api_key)
    page.click("form.signin-card button[type=submit]")
    page.wait_for_selector("#summary-badge .badge-count")
    assert page.url.endswith("/dashboard/#/queue")
    assert page.evaluate("Object.values(sessionStorage)") == [stack.api_key]
    assert page.evaluate("document.cookie") == ""

    page.click("text=Sign out")
    page.wait_for_selector("#api-key")
    assert page.evaluate("sessionStorage.length") == 0
    assert "signed out" in page.inner_text("#signin-message")


# ---------------------------------------------------------------- the queue


def test_an_async_job_goes_from_queued_to_processed_while_the_page_watches(
    page, stack, http, new_account, tmp_path, snapshot
):
    """A fresh account without a provider: its job waits, QUEUED, until an agent comes online; the
    page shows both states (and the image and audio results) without a reload."""
    account = new_account("watcher")
    sign_in(page, stack, account.api_key)
    page.wait_for_selector(".empty-title:has-text('No jobs yet')")

    chat = submit(
        http,
        account.headers(),
        "/v1/chat/completions",
        {"model": "fake-llm", "messages": [{"role": "user", "content": "Say hi"}]},
    )
    image = submit(
        http,
        account.headers(),
        "/v1/images/generations",
        {"model": "fake-image", "prompt": "a lighthouse", "response_format": "b64_json"},
    )
    speech = submit(
        http,
        account.headers(),
        "/v1/audio/speech",
        {"model": "fake-tts", "input": "Hello there", "voice": "alloy"},
    )

    job_row(page, chat["id"]).locator(".pill:has-text('Queued')").wait_for()
    page.wait_for_selector("#summary-badge[data-active='3']")
    assert page.inner_text("#summary-badge").startswith("3 active")
    snapshot(page, "queued")

    running = start_provider(stack, tmp_path, account.api_key)
    try:
        job_row(page, chat["id"]).locator(".pill:has-text('Processed')").wait_for(timeout=30_000)
        assert "Fake reply from fake-llm" in job_row(page, chat["id"]).inner_text()
        job_row(page, image["id"]).locator(".media-image img").wait_for(timeout=30_000)
        assert (
            page.evaluate(f"document.querySelector('tr[data-job-id=\"{image['id']}\"] img').naturalWidth") > 0
        )
        job_row(page, speech["id"]).locator(".media-audio audio").wait_for(timeout=30_000)
        audio = f"document.querySelector('tr[data-job-id=\"{speech['id']}\"] audio')"
        assert page.evaluate(f"{audio}.src").startswith("blob:")
        page.wait_for_function(f"{audio}.duration > 0")  # decodable: the player can play it
        page.wait_for_selector("#summary-badge[data-active='0']")
    finally:
        for process in running.processes:
            _stop(process)


def test_the_status_filter_survives_refreshes_and_a_reload(page, stack, http, provider):
    sign_in(page, stack, stack.api_key)
    failed = submit(
        http,
        stack.headers(),
        "/v1/chat/completions",
        {"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]},
    )
    http.post(f"/v1/jobs/{failed['id']}/cancel", headers=stack.headers())

    page.click(".segment[data-filter='CANCELED']")
    job_row(page, failed["id"]).wait_for()
    time.sleep(7)  # two refreshes

    assert page.get_attribute(".segment[data-filter='CANCELED']", "aria-selected") == "true"
    statuses = page.eval_on_selector_all("#jobs-body tr", "rows => rows.map(r => r.dataset.status)")
    assert statuses and set(statuses) == {"CANCELED"}
    page.reload()
    page.wait_for_selector(f'#jobs-body tr[data-job-id="{failed["id"]}"]')
    assert "status=CANCELED" in page.url
    assert page.get_attribute(".segment[data-filter='CANCELED']", "aria-selected") == "true"

    page.click(f'#jobs-body tr[data-job-id="{failed["id"]}"] button[data-action="retry"]')
    page.wait_for_selector(f'#jobs-body tr[data-job-id="{failed["id"]}"]', state="detached")


# ---------------------------------------------------------------- a workflow run


def test_a_gate_is_approved_from_the_dag_and_the_run_finishes(page, stack, http, provider, snapshot):
    started = http.post(
        "/v1/workflows/runs",
        json={"template": "illustrated-narration", "inputs": {"topic": "a lighthouse at dusk", **MODELS}},
        headers=stack.headers(),
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    sign_in(page, stack, stack.api_key)

    page.click(f'#runs-list a[data-run-id="{run_id}"]')
    gate = page.locator('#run-graph g.step[data-step-id="review"][data-status="waiting"]')
    gate.wait_for(timeout=30_000)
    gate.click()
    page.wait_for_selector("#step-panel .gate-box")
    assert "Approve the image" in page.inner_text("#step-panel .gate-prompt")
    assert "in " in page.inner_text("#step-panel .gate-box")  # the expiry, as a time to come
    page.fill("#gate-comment", "Looks right, ship it")
    snapshot(page, "waiting")
    page.click("#gate-approve")

    page.wait_for_selector("#run-graph svg[data-run-status='SUCCEEDED']", timeout=45_000)
    statuses = page.eval_on_selector_all("#run-graph g.step", "steps => steps.map(s => s.dataset.status)")
    assert statuses == ["succeeded"] * 5
    page.click('#run-graph g.step[data-step-id="review"]')
    assert "Looks right, ship it" in page.inner_text("#step-panel .resolution")
    # The header comes from the run's JSON and the drawing from graph.svg, fetched side by side: the
    # JSON may have been read a moment before the run ended, and the next refresh (2 s) brings it level.
    page.locator(".run-status", has_text="Succeeded").wait_for(timeout=15_000)


# ---------------------------------------------------------------- providers


def test_the_providers_page_shows_the_agent_online_with_its_models(page, stack, provider):
    sign_in(page, stack, stack.api_key, "/providers")

    card = page.locator("article.provider[data-status='online']").first
    card.wait_for()
    text = card.inner_text()
    assert "127.0.0.1:" in text and "fake-llm" in text and "0 / 8 in use" in text
    assert "llm" in text and "image" in text


# ---------------------------------------------------------------- keys


def test_a_key_is_created_once_and_revoking_it_signs_its_session_out(page, second_tab, stack, http):
    sign_in(page, stack, stack.api_key, "/settings/token")
    page.wait_for_selector("#keys-body tr")

    page.fill("#key-name", "laptop")
    page.click("#create-key")
    secret = page.input_value("#new-key-secret")
    assert secret.startswith("sy-")
    page.wait_for_selector("#keys-body tr:has-text('laptop')")
    assert http.get("/v1/models", headers={"Authorization": f"Bearer {secret}"}).status_code == 200

    sign_in(second_tab, stack, secret)  # someone using the new key, elsewhere
    second_tab.wait_for_selector("#summary-badge .badge-count")

    page.click("text=Done")
    assert secret not in page.content()  # shown once: gone from the page
    row = page.locator("#keys-body tr:has-text('laptop')")
    row.locator("button[data-action='revoke']").click()
    row.locator("button[data-action='confirm-revoke']").click()
    row.locator(".pill:has-text('Revoked')").wait_for()

    assert http.get("/v1/models", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    # The other session's next refresh gets a 401 and returns it to sign-in.
    second_tab.wait_for_selector("#api-key", timeout=20_000)
    assert "no longer valid" in second_tab.inner_text("#signin-message")
    assert second_tab.evaluate("sessionStorage.length") == 0


# ---------------------------------------------------------------- escaping


ATTACK = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold?</b>'


def test_markup_in_a_prompt_renders_as_text(page, stack, http, provider, snapshot):
    job = submit(
        http,
        stack.headers(),
        "/v1/chat/completions",
        {"model": "fake-llm", "messages": [{"role": "user", "content": ATTACK}]},
    )
    run = http.post(
        "/v1/workflows/runs",
        json={"spec": {"steps": [{"id": "check", "type": "gate", "prompt": ATTACK, "depends_on": []}]}},
        headers=stack.headers(),
    ).json()
    sign_in(page, stack, stack.api_key)

    row = job_row(page, job["id"])
    row.locator(".pill:has-text('Processed')").wait_for(timeout=30_000)
    assert ATTACK in row.inner_text()  # the echoed prompt, as the text it is
    row.locator("details.answer summary").click()
    snapshot(page, "queue")

    page.goto(dashboard_url(stack, f"/runs/{run['id']}"))
    page.locator('#run-graph g.step[data-step-id="check"][data-status="waiting"]').wait_for(timeout=30_000)
    page.wait_for_selector("#step-panel .gate-prompt")
    assert page.inner_text("#step-panel .gate-prompt") == ATTACK
    assert ATTACK in page.eval_on_selector(
        '#run-graph g.step[data-step-id="check"] title', "t => t.textContent"
    )

    assert page.evaluate("window.__pwned") is None
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("main b").count() == 0 and page.locator("main script").count() == 0
    http.post(f"/v1/workflows/runs/{run['id']}/cancel", headers=stack.headers())


# ---------------------------------------------------------------- worker health


def test_a_stalled_worker_and_disabled_async_are_shown_as_banners(page, stack):
    """The summary's flags drive the banners (the flags themselves are tested on the API)."""

    def stalled_summary(route):
        route.fulfill(
            status=200,
            content_type="application/json",
            body=(
                '{"object": "queue.summary", "async_enabled": false, "worker_stalled": true, "active": 4,'
                ' "queued": 4, "processing": 0, "dispatcher_last_tick_at": "2026-01-01T00:00:00Z",'
                ' "sweeper_last_tick_at": null}'
            ),
        )

    page.route("**/api/inference/queue/summary", stalled_summary)
    sign_in(page, stack, stack.api_key)

    page.wait_for_selector("#worker-stalled")
    assert "4 queued jobs are waiting" in page.inner_text("#worker-stalled")
    assert "Async processing is disabled" in page.inner_text("#async-disabled")
    assert page.inner_text("#summary-badge").startswith("4 active")


# ---------------------------------------------------------------- a large run


def test_a_40_step_run_is_drawn_readably_and_followed_to_the_end(page, stack, http, provider, snapshot):
    def chat(step_id: str, depends_on: list[str]) -> dict:
        body = {"model": "fake-llm", "messages": [{"role": "user", "content": f"step {step_id}"}]}
        return {"id": step_id, "endpoint": "/v1/chat/completions", "body": body, "depends_on": depends_on}

    shots = [f"shot_{i:02d}" for i in range(38)]
    steps = [chat("plan", []), *(chat(s, ["plan"]) for s in shots), chat("collage", shots)]
    started = http.post("/v1/workflows/runs", json={"spec": {"steps": steps}}, headers=stack.headers())
    assert started.status_code == 202, started.text
    sign_in(page, stack, stack.api_key, f"/runs/{started.json()['id']}")

    page.wait_for_selector("#run-graph svg[data-run-status='SUCCEEDED']", timeout=90_000)
    boxes = page.eval_on_selector_all(
        "#run-graph g.step rect",
        "rects => rects.map(r => { const b = r.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; })",
    )
    assert len(boxes) == 40
    for i, (left, top, right, bottom) in enumerate(boxes):
        assert right - left >= 150  # shown at a size where the step id can be read
        for other in boxes[i + 1 :]:
            assert right <= other[0] or other[2] <= left or bottom <= other[1] or other[3] <= top
    width = page.eval_on_selector("#run-graph svg", "svg => svg.viewBox.baseVal.width")
    assert width <= 1600
    snapshot(page, "actual-size")
    page.click("#fit-graph")  # the whole run at once, for the screenshot
    assert page.eval_on_selector("#run-graph svg", "svg => svg.getBoundingClientRect().width") < width
