"""What a PROCESSED job keeps of its provider's answer: inline JSON, or objects for S3 (the one size
rule, measured as DynamoDB measures an item), and every media output as an asset."""

from __future__ import annotations

import base64
import json

from switchyard.item_size import item_size
from switchyard.job_model import Job, JobStatus, StoredAsset
from switchyard.job_results import body_fits, result_of

BIG = 1_000_000


def _job(inference_type: str, **values) -> Job:
    fields = {
        "job_id": "job_1",
        "account_id": "acct_1",
        "status": JobStatus.PROCESSING,
        "endpoint": "/v1/chat/completions",
        "inference_type": inference_type,
        "service_type": "llm",
        "model": "m",
        "created_ms": 1,
        "queued_ms": 1,
        "claim_id": "c1",
    }
    return Job(**{**fields, **values})


def _png(tail: bytes = b"\0" * 32) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + tail


# -- the item's size, as DynamoDB counts it


def test_given_text_then_its_size_is_its_utf8_bytes_plus_the_attribute_name():
    assert item_size({"a": "abc"}) == 4
    assert item_size({"a": "é"}) == 3
    assert item_size({"a": "🚂"}) == 5


def test_given_numbers_lists_and_maps_then_each_counts_its_overhead_and_none_counts_nothing():
    assert item_size({"n": 5}) == 1 + 21
    assert item_size({"l": ["ab", 1]}) == 1 + 3 + (1 + 2) + (1 + 21)
    assert item_size({"m": {"k": "v"}}) == 1 + 3 + (1 + 1 + 1)
    assert item_size({"gone": None}) == 0


# -- LLM answers


def test_given_a_json_llm_answer_then_it_is_kept_inline_as_sent():
    stored = result_of(
        _job("LLM"), b'{"choices": []}', "application/json; charset=utf-8", item_limit_bytes=BIG
    )
    assert stored.result == '{"choices": []}'
    assert stored.blobs == () and stored.result_key is None


def test_given_a_plain_text_llm_answer_then_it_is_wrapped_as_json_text_once_without_ascii_escapes():
    stored = result_of(_job("LLM"), "grüße 🚂".encode(), "text/plain", item_limit_bytes=BIG)
    assert stored.result == '{"text":"grüße 🚂"}'
    assert json.loads(stored.result) == {"text": "grüße 🚂"}


def test_given_an_answer_that_would_overfill_the_item_then_it_goes_to_s3_under_the_runs_claim():
    answer = b'{"x": "' + b"a" * 500 + b'"}'
    stored = result_of(_job("LLM"), answer, "application/json", item_limit_bytes=400)
    assert stored.result is None
    assert stored.result_key == "results/acct_1/job_1/c1.json"
    assert (stored.result_content_type, stored.result_bytes) == ("application/json", len(answer))
    assert [(b.key, b.content) for b in stored.blobs] == [(stored.result_key, answer)]


def test_given_the_size_rule_then_it_counts_the_whole_item_body_included_not_the_answer_alone():
    answer = b'{"x": "' + b"a" * 100 + b'"}'
    small_body = _job("LLM", body="{}")
    big_body = _job("LLM", body='{"p": "' + "b" * 900 + '"}')
    assert result_of(small_body, answer, "application/json", item_limit_bytes=1000).result is not None
    assert result_of(big_body, answer, "application/json", item_limit_bytes=1000).result is None


def test_given_non_ascii_text_then_the_rule_measures_the_encoded_bytes_not_the_characters():
    text = "🚂" * 200  # 200 characters, 800 bytes
    limit = item_size(_job("LLM").to_item()) + 600
    stored = result_of(_job("LLM"), text.encode(), "text/plain", item_limit_bytes=limit)
    assert (
        stored.result is None
        and stored.blobs[0].content
        == json.dumps({"text": text}, ensure_ascii=False, separators=(",", ":")).encode()
    )


def test_given_a_new_job_then_its_body_fits_by_the_same_rule():
    job = _job("LLM", body='{"p": "' + "b" * 900 + '"}')
    assert body_fits(job, 2000) and not body_fits(job, 1000)


# -- media answers


def test_given_a_media_answer_with_base64_then_the_decoded_asset_is_stored_and_the_json_kept_as_metadata():
    png = _png()
    answer = json.dumps({"data": [{"b64_json": base64.b64encode(png).decode()}]}).encode()
    stored = result_of(_job("IMAGE"), answer, "application/json", item_limit_bytes=BIG)
    assert stored.assets == (StoredAsset("assets/acct_1/job_1/c1/0", "image/png", len(png)),)
    assert (stored.result_key, stored.result_content_type) == ("assets/acct_1/job_1/c1/0", "image/png")
    assert [(b.key, b.content) for b in stored.blobs] == [("assets/acct_1/job_1/c1/0", png)]
    assert json.loads(stored.result)["data"][0]["b64_json"] == f"<stored asset 0, {len(png)} bytes>"


def test_given_several_outputs_then_every_payload_is_an_asset_in_order_not_only_the_first():
    images = [_png(bytes([i]) * 40) for i in range(3)]
    document = {"data": [{"b64_json": base64.b64encode(i).decode(), "seed": n} for n, i in enumerate(images)]}
    document["audio"] = base64.b64encode(b"ID3" + b"\1" * 40).decode()
    stored = result_of(_job("IMAGE"), json.dumps(document).encode(), "application/json", item_limit_bytes=BIG)
    assert [(a.key, a.content_type, a.size) for a in stored.assets] == [
        ("assets/acct_1/job_1/c1/0", "image/png", 48),
        ("assets/acct_1/job_1/c1/1", "image/png", 48),
        ("assets/acct_1/job_1/c1/2", "image/png", 48),
        ("assets/acct_1/job_1/c1/3", "audio/mpeg", 43),
    ]
    assert [b.content for b in stored.blobs] == [*images, b"ID3" + b"\1" * 40]
    metadata = json.loads(stored.result)
    assert [item["seed"] for item in metadata["data"]] == [0, 1, 2]
    assert len(stored.result) < 400  # no payload is left inline


def test_given_media_metadata_that_would_overfill_the_item_then_it_goes_to_s3_too():
    answer = json.dumps({"data": [{"b64_json": base64.b64encode(_png()).decode(), "notes": "n" * 2000}]})
    stored = result_of(_job("IMAGE"), answer.encode(), "application/json", item_limit_bytes=1500)
    assert stored.result is None
    assert stored.metadata_key == "results/acct_1/job_1/c1.metadata.json"
    assert [b.key for b in stored.blobs] == ["assets/acct_1/job_1/c1/0", stored.metadata_key]


def test_given_a_binary_media_answer_then_it_is_the_asset_and_there_is_no_metadata():
    stored = result_of(_job("AUDIO"), b"ID3\x03rest", "audio/mpeg", item_limit_bytes=BIG)
    assert stored.assets == (StoredAsset("assets/acct_1/job_1/c1/0", "audio/mpeg", 8),)
    assert stored.result is None


def test_given_an_item_with_assets_then_it_round_trips_and_lists_them():
    job = _job(
        "IMAGE",
        status=JobStatus.PROCESSED,
        assets=(StoredAsset("k0", "image/png", 3), StoredAsset("k1", "image/jpeg", 4)),
    )
    again = Job.from_item(job.to_item())
    assert again.assets == job.assets
    assert again.envelope("https://gw")["assets"] == [
        {"url": "https://gw/api/inference/assets/job_1/", "content_type": "image/png", "bytes": 3},
        {"url": "https://gw/api/inference/assets/job_1/1/", "content_type": "image/jpeg", "bytes": 4},
    ]
