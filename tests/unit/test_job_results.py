"""What a PROCESSED job keeps of its provider's answer: inline JSON, or a blob for S3."""

from __future__ import annotations

import base64
import json

from switchyard.job_model import Job, JobStatus
from switchyard.job_results import result_of


def _job(inference_type: str) -> Job:
    return Job(
        job_id="job_1",
        account_id="acct_1",
        status=JobStatus.PROCESSING,
        endpoint="/v1/chat/completions",
        inference_type=inference_type,
        service_type="llm",
        model="m",
        created_ms=1,
        queued_ms=1,
    )


def test_given_a_json_llm_answer_then_it_is_kept_inline_as_sent():
    stored = result_of(_job("LLM"), b'{"choices": []}', "application/json; charset=utf-8", 1000)
    assert stored.result == '{"choices": []}'
    assert stored.blob is None and stored.result_key is None


def test_given_a_plain_text_llm_answer_then_it_is_wrapped_as_json_text():
    stored = result_of(_job("LLM"), b"hello", "text/plain", 1000)
    assert json.loads(stored.result) == {"text": "hello"}


def test_given_an_llm_answer_over_the_inline_limit_then_it_goes_to_s3_with_its_type():
    stored = result_of(_job("LLM"), b'{"x": "' + b"a" * 50 + b'"}', "application/json", 10)
    assert stored.result is None
    assert stored.result_key == "results/acct_1/job_1.json"
    assert stored.result_content_type == "application/json"
    assert stored.blob.startswith(b'{"x"')


def test_given_a_media_answer_with_base64_then_the_decoded_asset_is_stored_and_the_json_kept_as_metadata():
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
    answer = json.dumps({"data": [{"b64_json": base64.b64encode(png).decode()}]}).encode()
    stored = result_of(_job("IMAGE"), answer, "application/json", 1_000_000)
    assert stored.blob == png
    assert stored.result_key == "assets/acct_1/job_1"
    assert stored.result_content_type == "image/png"
    assert "stored asset" in json.loads(stored.result)["data"][0]["b64_json"]


def test_given_a_binary_media_answer_then_it_is_the_asset_and_there_is_no_metadata():
    stored = result_of(_job("AUDIO"), b"ID3\x03rest", "audio/mpeg", 1_000_000)
    assert (stored.blob, stored.result_content_type, stored.result) == (b"ID3\x03rest", "audio/mpeg", None)
