"""The Push and Queue adapters of AWS: API Gateway and SQS through botocore."""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws
from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
from moto.core.models import DEFAULT_ACCOUNT_ID as ACCOUNT

from chalicelib.adapters.apigw_push import PARALLEL_PUSHES, ApiGatewayPush
from chalicelib.adapters.sqs_queue import SqsQueue
from chalicelib.ports import ConnectionGone, Target

REGION = "eu-west-3"
ENDPOINT = "https://abc123.execute-api.eu-west-3.amazonaws.com/api"


@pytest.fixture
def management(aws_env: None) -> Any:
    return boto3.session.Session().client(
        "apigatewaymanagementapi", endpoint_url=ENDPOINT, region_name=REGION
    )


# -- ApiGatewayPush ------------------------------------------------------------------------


def test_send_posts_the_frame(management: Any) -> None:
    with Stubber(management) as stub:
        stub.add_response("post_to_connection", {}, {"ConnectionId": "cid1=", "Data": b"frame"})
        ApiGatewayPush(management).send("cid1=", b"frame")
        stub.assert_no_pending_responses()


def test_gone_maps_to_connection_gone_with_that_id(management: Any) -> None:
    with Stubber(management) as stub:
        stub.add_client_error(
            "post_to_connection",
            service_error_code="GoneException",
            http_status_code=410,
            expected_params={"ConnectionId": "stale+id=", "Data": b"x"},
        )
        with pytest.raises(ConnectionGone) as gone:
            ApiGatewayPush(management).send("stale+id=", b"x")
    assert gone.value.connection_id == "stale+id="
    assert gone.value.__cause__ is None and gone.value.__suppress_context__


def test_a_bare_410_is_gone_too(management: Any) -> None:
    with Stubber(management) as stub:
        stub.add_client_error("post_to_connection", service_error_code="410", http_status_code=410)
        with pytest.raises(ConnectionGone):
            ApiGatewayPush(management).send("cid=", b"x")


def test_other_errors_propagate(management: Any) -> None:
    with Stubber(management) as stub:
        stub.add_client_error(
            "post_to_connection", service_error_code="LimitExceededException", http_status_code=429
        )
        stub.add_client_error(
            "delete_connection", service_error_code="ForbiddenException", http_status_code=403
        )
        push = ApiGatewayPush(management)
        with pytest.raises(ClientError) as limited:
            push.send("cid=", b"x")
        assert not isinstance(limited.value, ConnectionGone)
        with pytest.raises(ClientError):
            push.close("cid=")


def test_close_deletes_and_ignores_gone(management: Any) -> None:
    with Stubber(management) as stub:
        stub.add_response("delete_connection", {}, {"ConnectionId": "live="})
        stub.add_client_error(
            "delete_connection",
            service_error_code="GoneException",
            http_status_code=410,
            expected_params={"ConnectionId": "gone="},
        )
        push = ApiGatewayPush(management)
        push.close("live=")
        push.close("gone=")
        stub.assert_no_pending_responses()


def test_send_many_posts_in_parallel_and_returns_only_the_gone(aws_env: None) -> None:
    """A fan-out waits for a few round trips, not one per member; a failing post costs only its copy."""
    targets = [Target(f"c{i}=") for i in range(40)]
    gone, failing = {"c3=", "c17="}, {"c5="}
    in_flight, peak, lock = [0], [0], threading.Lock()

    def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["connection_id"] = params["ConnectionId"]

    def round_trip(context: dict[str, Any], **_: Any) -> Any:
        connection_id = context["connection_id"]
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.02)  # the network: overlapping posts show as several in flight
        with lock:
            in_flight[0] -= 1
        if connection_id in gone | failing:
            status, code = (410, "GoneException") if connection_id in gone else (429, "TooManyRequests")
            answer = AWSResponse(ENDPOINT, status, HTTPHeaders(), None)
            return answer, {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return None

    with mock_aws():
        client = boto3.session.Session().client(
            "apigatewaymanagementapi", endpoint_url=ENDPOINT, region_name=REGION
        )
        events = client.meta.events
        events.register("before-parameter-build.apigatewaymanagementapi.PostToConnection", remember)
        events.register("before-call.apigatewaymanagementapi.PostToConnection", round_trip)
        returned = ApiGatewayPush(client).send_many(targets, b"frame")
        backend = apigatewaymanagementapi_backends[ACCOUNT][REGION]
        delivered = {unquote(c) for c, held in backend.connections.items() if held.data == b"frame"}
    assert sorted(returned) == sorted(gone)
    assert delivered == {t.connection_id for t in targets} - gone - failing
    assert 1 < peak[0] <= PARALLEL_PUSHES


def test_for_endpoint_builds_a_fail_fast_client(aws_env: None) -> None:
    push = ApiGatewayPush.for_endpoint(ENDPOINT, REGION)
    client = push._client
    assert client.meta.endpoint_url == ENDPOINT
    assert client.meta.region_name == REGION
    config: Any = client.meta.config  # the stubs do not declare Config's attributes
    assert config.connect_timeout <= 5
    assert config.read_timeout <= 10
    assert config.retries["total_max_attempts"] == 2


# -- SqsQueue ------------------------------------------------------------------------------


def test_sqs_queue_sends_23_bodies_in_batches_of_at_most_10(aws_env: None) -> None:
    from moto import mock_aws

    with mock_aws():
        sqs = boto3.session.Session().client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="bocage-fanout")["QueueUrl"]
        batch_sizes: list[int] = []

        def record(params: dict[str, Any], **_: Any) -> None:
            batch_sizes.append(len(params["Entries"]))

        sqs.meta.events.register("provide-client-params.sqs.SendMessageBatch", record)
        bodies = [f'{{"n": {i}}}' for i in range(23)]
        SqsQueue(sqs, url).send_batch(bodies)

        received: list[str] = []
        while True:
            page = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = page.get("Messages", [])
            if not messages:
                break
            received += [m["Body"] for m in messages]
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
    assert batch_sizes == [10, 10, 3]
    assert sorted(received) == sorted(bodies)


def test_sqs_queue_retries_failed_entries_then_reports_the_rest(aws_env: None) -> None:
    sqs = boto3.session.Session().client("sqs", region_name=REGION)
    url = "https://sqs.eu-west-3.amazonaws.com/000000000000/bocage-fanout"

    def entries(*ids_and_bodies: tuple[str, str]) -> dict[str, Any]:
        return {"QueueUrl": url, "Entries": [{"Id": i, "MessageBody": b} for i, b in ids_and_bodies]}

    def failed(entry_id: str, sender_fault: bool) -> dict[str, Any]:
        return {
            "Id": entry_id,
            "SenderFault": sender_fault,
            "Code": "InternalError" if not sender_fault else "X",
        }

    with Stubber(sqs) as stub:
        # Three bodies: "a" succeeds, "b" fails once (server side), "c" is the sender's fault.
        stub.add_response(
            "send_message_batch",
            {
                "Successful": [{"Id": "0", "MessageId": "m0", "MD5OfMessageBody": "x"}],
                "Failed": [failed("1", False), failed("2", True)],
            },
            entries(("0", "a"), ("1", "b"), ("2", "c")),
        )
        stub.add_response(
            "send_message_batch",
            {"Successful": [{"Id": "1", "MessageId": "m1", "MD5OfMessageBody": "x"}], "Failed": []},
            entries(("1", "b")),
        )
        with pytest.raises(RuntimeError, match=r"^1 of 3 "):
            SqsQueue(sqs, url, backoff=0).send_batch(["a", "b", "c"])
        stub.assert_no_pending_responses()

    with Stubber(sqs) as stub:
        for _ in range(3):  # a server-side failure that never clears: three attempts, then an error
            stub.add_response(
                "send_message_batch", {"Successful": [], "Failed": [failed("0", False)]}, entries(("0", "z"))
            )
        with pytest.raises(RuntimeError, match=r"^1 of 1 "):
            SqsQueue(sqs, url, backoff=0).send_batch(["z"])
        stub.assert_no_pending_responses()
