"""Pure rules: body validation messages, the provider endpoint policy, multipart parsing, job envelopes."""

from __future__ import annotations

import base64
import json

import pytest
from switchyard.endpoint_policy import check_endpoint_url
from switchyard.errors import InvalidRequest, MalformedJson
from switchyard.job_model import Job, JobStatus
from switchyard.job_results import extract_assets
from switchyard.multipart import form_fields
from switchyard.validation import parse_json_object, provider_body, validate_inference_body


def test_async_is_stripped_and_everything_else_kept():
    data = {"model": "m", "messages": [], "async": True, "vendor_x": {"a": 1}}
    assert provider_body(data) == {"model": "m", "messages": [], "vendor_x": {"a": 1}}


@pytest.mark.parametrize("raw", [b"", b"{", b"[1,", "not json"])
def test_malformed_json_is_a_detail_error(raw):
    with pytest.raises(MalformedJson) as error:
        parse_json_object(raw)
    assert error.value.to_body()["detail"].startswith("JSON parse error")


def test_a_json_array_body_is_invalid_request():
    with pytest.raises(InvalidRequest):
        parse_json_object(b"[1, 2]")


def test_validation_names_field_and_reason():
    with pytest.raises(InvalidRequest) as error:
        validate_inference_body("/v1/images/generations", {"model": "m", "prompt": "x", "n": 50})
    assert error.value.param == "n"
    assert error.value.message.startswith("n: ")


def test_mesh_needs_a_prompt_or_an_image():
    with pytest.raises(InvalidRequest) as error:
        validate_inference_body("/v1/3d/generations", {"model": "m"})
    assert "either 'prompt' or 'image'" in error.value.message
    validate_inference_body("/v1/3d/generations", {"model": "m", "image": "data:image/png;base64,AAAA"})


@pytest.mark.parametrize(
    "url,policy,allowed",
    [
        ("http://127.0.0.1:9100", "public", False),
        ("http://127.0.0.1:9100", "loopback", True),
        ("http://localhost:9100", "loopback", True),
        ("http://[::1]:9100", "loopback", True),
        ("http://169.254.169.254", "loopback", False),
        ("http://169.254.169.254", "any", True),
        ("http://10.1.2.3", "loopback", False),
        ("http://100.64.0.1", "public", False),
        ("http://[fd00:ec2::254]", "public", False),
        ("http://[::ffff:10.0.0.1]", "public", False),
        ("http://8.8.8.8:8000", "public", True),
        ("https://1.1.1.1", "public", True),
        ("file:///etc/passwd", "any", False),
        ("http://8.8.8.8/?q=1", "public", False),
    ],
)
def test_endpoint_policy(url, policy, allowed):
    if allowed:
        assert check_endpoint_url(url, policy) == url.rstrip("/")
    else:
        with pytest.raises(InvalidRequest):
            check_endpoint_url(url, policy)


def test_multipart_fields_keep_binary_files_intact():
    payload = bytes(range(256))
    body = (
        b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
        + payload
        + b"\r\n--b--\r\n"
    )
    fields = form_fields("multipart/form-data; boundary=b", body)
    assert fields["model"] == b"whisper"
    assert fields["file"] == payload


def test_multipart_without_boundary_is_refused():
    with pytest.raises(InvalidRequest):
        form_fields("application/json", b"{}")


def test_image_json_answer_is_stored_as_the_decoded_image():
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
    answer = json.dumps({"created": 1, "data": [{"b64_json": base64.b64encode(png).decode()}]}).encode()
    outputs, metadata = extract_assets(answer, "application/json")
    assert outputs == [(png, "image/png")]
    assert "stored asset" in metadata["data"][0]["b64_json"]


def test_binary_answers_are_stored_as_they_are():
    outputs, metadata = extract_assets(b"RIFF....WAVE", "audio/wav")
    assert (outputs, metadata) == ([(b"RIFF....WAVE", "audio/wav")], None)


def _job(**overrides) -> Job:
    values = dict(
        job_id="job_1",
        account_id="a",
        status=JobStatus.QUEUED,
        endpoint="/v1/images/generations",
        inference_type="IMAGE",
        service_type="image",
        model="flux",
        created_ms=1718312400000,
        queued_ms=1718312400000,
    )
    values.update(overrides)
    return Job(**values)


def test_envelope_matches_the_seed_shape():
    assert _job().envelope("https://gw") == {
        "id": "job_1",
        "object": "inference.job",
        "status": "QUEUED",
        "inference_type": "IMAGE",
        "model": "flux",
        "created": 1718312400,
        "queued_at": "2024-06-13T21:00:00Z",
        "attempts": 0,
    }


def test_processed_media_envelope_has_a_result_url_and_llm_has_result():
    media = _job(status=JobStatus.PROCESSED, result_key="assets/a/job_1", finished_ms=1718312401000)
    assert media.envelope("https://gw")["result_url"] == "https://gw/api/inference/assets/job_1/"
    # An item written before `assets` existed still lists its one asset.
    assert media.envelope("https://gw")["assets"] == [
        {
            "url": "https://gw/api/inference/assets/job_1/",
            "content_type": "application/octet-stream",
            "bytes": 0,
        }
    ]
    llm = _job(
        status=JobStatus.PROCESSED, inference_type="LLM", result=json.dumps({"choices": [{"index": 0}]})
    )
    assert llm.envelope("https://gw")["result"]["choices"] == [{"index": 0}]


def test_item_round_trip_keeps_the_active_index_in_step():
    job = _job()
    item = job.to_item()
    assert item["active_account"] == "a"
    assert "active_account" not in _job(status=JobStatus.FAILED).to_item()
    assert Job.from_item(item).envelope(None) == job.envelope(None)
