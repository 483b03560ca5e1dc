"""Queue over Amazon SQS: the fan-out of large tribes runs in parallel Lambda invocations."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

logger = logging.getLogger(__name__)

BATCH = 10  # SendMessageBatch's limit on entries per call
ATTEMPTS = 3


class SqsQueue:
    """Send in batches; a batch call can succeed while some of its entries fail, so retry those."""

    def __init__(self, client: SQSClient, queue_url: str, *, backoff: float = 0.1) -> None:
        self._client = client
        self._queue_url = queue_url
        self._backoff = backoff

    def send_batch(self, bodies: Sequence[str]) -> None:
        failed = 0
        for start in range(0, len(bodies), BATCH):
            failed += self._send_chunk(bodies[start : start + BATCH])
        if failed:
            raise RuntimeError(f"{failed} of {len(bodies)} queue messages could not be sent")

    def _send_chunk(self, bodies: Sequence[str]) -> int:
        """Send up to ten bodies; return how many still failed after the retries."""
        pending: dict[str, str] = {str(i): body for i, body in enumerate(bodies)}
        permanent = 0
        for attempt in range(ATTEMPTS):
            if not pending:
                break
            if attempt:
                time.sleep(self._backoff * attempt)
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {"Id": entry_id, "MessageBody": body} for entry_id, body in pending.items()
            ]
            response = self._client.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
            for entry in response.get("Successful", []):
                pending.pop(entry["Id"], None)
            for failure in response.get("Failed", []):
                logger.warning(
                    "queue entry failed",
                    extra={"sqs_code": failure.get("Code"), "sender_fault": failure.get("SenderFault")},
                )
                # A sender fault (malformed, too large) fails the same way every time: no retry.
                if failure.get("SenderFault") and pending.pop(failure["Id"], None) is not None:
                    permanent += 1
        return permanent + len(pending)
