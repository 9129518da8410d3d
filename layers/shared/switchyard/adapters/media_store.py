"""S3 storage of job results and media assets."""

from __future__ import annotations

from dataclasses import dataclass

from switchyard.adapters import aws


@dataclass(frozen=True)
class StoredObject:
    content: bytes
    content_type: str


class MediaStore:
    def __init__(self, bucket: str):
        self.bucket = bucket

    def put(self, key: str, content: bytes, content_type: str) -> None:
        aws.client("s3").put_object(Bucket=self.bucket, Key=key, Body=content, ContentType=content_type)

    def head_size(self, key: str) -> int:
        return int(aws.client("s3").head_object(Bucket=self.bucket, Key=key)["ContentLength"])

    def get(self, key: str) -> StoredObject:
        response = aws.client("s3").get_object(Bucket=self.bucket, Key=key)
        return StoredObject(response["Body"].read(), response.get("ContentType", "application/octet-stream"))

    def presigned_url(self, key: str, expires_seconds: int = 300) -> str:
        return aws.client("s3").generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_seconds
        )
