"""The embedded AWS keeps connections open between requests without mixing requests up."""

from __future__ import annotations

import http.client
import json

import pytest
from switchyard_local.embedded_aws import EmbeddedAws

LIST_TABLES = {
    "Content-Type": "application/x-amz-json-1.0",
    "X-Amz-Target": "DynamoDB_20120810.ListTables",
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261122/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=host, Signature=x",
}


@pytest.fixture(scope="module")
def embedded_aws():
    aws = EmbeddedAws()
    aws.start()
    yield aws
    aws.stop()


def test_binds_loopback_only(embedded_aws):
    assert embedded_aws.server_address[0] == "127.0.0.1"


def test_requests_share_one_connection(embedded_aws):
    connection = http.client.HTTPConnection("127.0.0.1", embedded_aws.port, timeout=10)
    peers = set()
    for _ in range(3):
        connection.request("POST", "/", body=b"{}", headers=LIST_TABLES)
        response = connection.getresponse()
        assert response.status == 200
        assert json.loads(response.read()) == {"TableNames": []}
        assert response.getheader("Connection", "").lower() != "close"
        peers.add(connection.sock.getsockname())
    assert len(peers) == 1
    connection.close()


def test_a_body_the_app_does_not_read_does_not_leak_into_the_next_request(embedded_aws):
    connection = http.client.HTTPConnection("127.0.0.1", embedded_aws.port, timeout=10)
    # moto's dashboard answers without reading the body; the body must not be parsed as the next request.
    connection.request("GET", "/moto-api/", body=b"GET /moto-api/ HTTP/1.1\r\n\r\n" * 50)
    connection.getresponse().read()
    connection.request("POST", "/", body=b"{}", headers=LIST_TABLES)
    response = connection.getresponse()
    assert response.status == 200
    assert json.loads(response.read()) == {"TableNames": []}
    connection.close()


def test_a_chunked_request_body_closes_the_connection(embedded_aws):
    connection = http.client.HTTPConnection("127.0.0.1", embedded_aws.port, timeout=10)
    connection.request("POST", "/", body=iter([b"{}"]), headers=LIST_TABLES, encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 200
    response.read()
    assert response.getheader("Connection", "").lower() == "close"
    connection.close()
