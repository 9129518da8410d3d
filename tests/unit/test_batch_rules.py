"""Batch rules without I/O: request validation and the aggregate status derived from job statuses."""

from __future__ import annotations

from collections import Counter

import pytest
from switchyard.batch_model import aggregate_status
from switchyard.errors import InvalidRequest, TooLarge
from switchyard.job_model import JobStatus
from switchyard.services.batches import parse_batch_request

Q, P, OK, F, C = (
    JobStatus.QUEUED,
    JobStatus.PROCESSING,
    JobStatus.PROCESSED,
    JobStatus.FAILED,
    JobStatus.CANCELED,
)


@pytest.mark.parametrize(
    "statuses,expected",
    [
        ([Q, Q, Q], "PENDING"),
        ([Q, P, Q], "PROCESSING"),
        ([OK, Q], "PROCESSING"),
        ([OK, P], "PROCESSING"),
        ([OK, F, C], "DONE"),
        ([C, C], "DONE"),  # a fully canceled batch has finished
        ([F], "DONE"),
    ],
)
def test_given_job_statuses_then_the_batch_status_is_derived_from_them(statuses, expected):
    assert aggregate_status(Counter(statuses), len(statuses)).value == expected


def test_given_an_item_body_with_async_then_it_is_dropped_and_the_rest_is_kept():
    request = parse_batch_request(
        {
            "label": "x",
            "requests": [
                {"endpoint": "/v1/images/generations/", "body": {"model": "m", "prompt": "p", "async": True}},
            ],
        }
    )

    [item] = request.items
    assert item.endpoint.path == "/v1/images/generations"
    assert item.body == {"model": "m", "prompt": "p"}
    assert request.fingerprint_payload()["label"] == "x"


def test_given_257_items_then_too_large_before_any_item_is_looked_at():
    with pytest.raises(TooLarge):
        parse_batch_request({"requests": ["not even an object"] * 257})


def test_given_many_malformed_items_then_the_message_names_the_first_ten_and_counts_the_rest():
    with pytest.raises(InvalidRequest) as raised:
        parse_batch_request({"requests": [{"endpoint": "/v1/completions", "body": {}}] * 15})

    message = raised.value.message
    assert message.count("Field required") == 20  # model and prompt, of each of the first ten
    assert "requests[9].body.prompt" in message and "requests[10]" not in message
    assert message.endswith("and 5 more malformed items")
    assert raised.value.param == "requests[0].body.model"
