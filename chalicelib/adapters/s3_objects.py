"""Blobs in an S3 bucket (AWS, or any S3-compatible service through ``endpoint_url``: Garage,
MinIO, the French providers' object storage).

Clients PUT and GET through presigned URLs, so a file's bytes never pass through the Lambda; the
upload URL signs the exact length, so a longer or shorter body is refused by S3 itself.
"""

from __future__ import annotations

from typing import Any

from chalicelib.ports import Clock, SignedUrl

#: The object tag the bucket's lifecycle rules select on (one rule per ``LIFETIME_CLASSES`` value).
LIFETIME_TAG = "bocage-lifetime-days"


class S3ObjectStore:
    def __init__(
        self,
        bucket: str,
        clock: Clock,
        *,
        region: str,
        endpoint_url: str | None = None,
        client: Any | None = None,
    ) -> None:
        if client is None:
            import boto3  # the Lambda runtime provides it; imported only when files are used

            client = boto3.client("s3", region_name=region, endpoint_url=endpoint_url)
        self._client = client
        self._bucket = bucket
        self._clock = clock

    def upload_url(self, key: str, size: int, expires_in: int) -> SignedUrl:
        url = self._client.generate_presigned_url(
            "put_object",
            Params={"Bucket": self._bucket, "Key": key, "ContentLength": size},
            ExpiresIn=expires_in,
            HttpMethod="PUT",
        )
        return SignedUrl(url, "PUT", self._clock.now() + expires_in, {"Content-Length": str(size)})

    def download_url(self, key: str, expires_in: int) -> SignedUrl:
        url = self._client.generate_presigned_url(
            "get_object",
            # Opaque bytes, never rendered: a member could upload anything in place of a blob.
            Params={
                "Bucket": self._bucket,
                "Key": key,
                "ResponseContentType": "application/octet-stream",
                "ResponseContentDisposition": "attachment",
            },
            ExpiresIn=expires_in,
        )
        return SignedUrl(url, "GET", self._clock.now() + expires_in)

    def size_of(self, key: str) -> int | None:
        try:
            head = self._client.head_object(Bucket=self._bucket, Key=key)
        except self._client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise
        return int(head["ContentLength"])

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self._bucket, Key=key)

    def set_lifetime(self, key: str, days: int) -> None:
        """The tag the bucket's lifecycle rule of that class expires objects by (infra/aws)."""
        self._client.put_object_tagging(
            Bucket=self._bucket,
            Key=key,
            Tagging={"TagSet": [{"Key": LIFETIME_TAG, "Value": str(days)}]},
        )
