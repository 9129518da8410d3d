"""The API resolver serves concurrent requests in the local front's and the StreamFunction's threads:
each request must see its own event (Powertools keeps the current event on a class shared by all)."""

from __future__ import annotations

import threading

from tests.conftest import http_event, lambda_context


def test_given_two_requests_at_once_in_two_threads_then_each_sees_its_own_headers_and_body():
    from switchyard.api.app import build_resolver

    both_routed = threading.Barrier(2, timeout=5)
    seen: dict[str, tuple[str, str]] = {}

    def serve(name: str) -> None:
        resolver = build_resolver()  # one per thread, as get_resolver() gives them

        @resolver.post("/test/echo", include_in_schema=False)
        def echo() -> dict:
            both_routed.wait()  # the other thread has started resolving its own event by now
            event = resolver.current_event
            return {"who": event.headers.get("x-who"), "body": event.body}

        event = http_event("POST", "/test/echo", body={"n": name}, headers={"x-who": name})
        result = resolver.resolve(event, lambda_context())
        seen[name] = result["body"]

    threads = [threading.Thread(target=serve, args=(name,)) for name in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert '"who":"first"' in seen["first"] and '\\"n\\": \\"first\\"' in seen["first"], seen
    assert '"who":"second"' in seen["second"] and '\\"n\\": \\"second\\"' in seen["second"], seen
