"""The AWS template we deploy: `chalice package --merge-template infra/aws/resources.json`.

Packaged offline (no credentials, a region only) for each stage; these tests read the SAM
template CloudFormation receives and check the table, the queues, the settings every
function gets, the IAM policy against what the adapters call, the alarms and the log groups.
cfn-lint runs on the same output in `make infra-check`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bocage.local.serve_settings import ServeSettings
from chalicelib.adapters.s3_objects import LIFETIME_TAG
from chalicelib.domain.files import LIFETIME_CLASSES

ROOT = Path(__file__).resolve().parents[2]
CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())
STAGES = sorted(CONFIG["stages"])
Template = dict[str, Any]


def package(stage: str, out: Path) -> Template:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_DEFAULT_REGION="eu-west-3",  # all `chalice package` needs: no credentials, no call to AWS
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    chalice = Path(sys.executable).with_name("chalice")
    command = [str(chalice), "package", "--stage", stage, "--merge-template", "infra/aws/resources.json"]
    subprocess.run([*command, str(out)], cwd=ROOT, env=env, check=True, capture_output=True)
    template: Template = json.loads((out / "sam.json").read_text())
    return template


@pytest.fixture(scope="module", params=STAGES)
def template(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Template:
    return package(request.param, tmp_path_factory.mktemp(f"sam-{request.param}"))


def resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def functions(template: Template) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in resources(template, "AWS::Serverless::Function").items()}


def stage_of(template: Template) -> str:
    tags = next(iter(functions(template).values()))["Tags"]["aws-chalice"]
    match = re.search(r"stage=(\w+)", tags)
    assert match, tags
    return match.group(1)


def sub(value: Any, stage: str) -> str:
    """A literal or a Fn::Sub string with ${Stage} replaced (other references are left as they are)."""
    text = value["Fn::Sub"] if isinstance(value, dict) else value
    assert isinstance(text, str), value
    return text.replace("${Stage}", stage)


def strings(value: Any) -> list[str]:
    """Every string inside a template value (Sub strings, GetAtt names, Refs)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    return []


# -- the table ----------------------------------------------------------------------------


def test_the_table_is_on_demand_with_ttl_pitr_encryption_and_deletion_protection(template: Template) -> None:
    (table,) = resources(template, "AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert {(k["AttributeName"], k["KeyType"]) for k in props["KeySchema"]} == {
        ("pk", "HASH"),
        ("sk", "RANGE"),
    }
    assert {(a["AttributeName"], a["AttributeType"]) for a in props["AttributeDefinitions"]} == {
        ("pk", "S"),
        ("sk", "S"),
    }
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"


def test_the_ttl_attribute_is_the_one_the_adapters_write() -> None:
    from chalicelib.adapters.store_items import EXPIRES_AT

    assert EXPIRES_AT == "expires_at"


# -- WebSocket API, schedules, fan-out queue ------------------------------------------------


def test_the_websocket_api_routes_each_event_to_its_function(template: Template) -> None:
    (api,) = resources(template, "AWS::ApiGatewayV2::Api").values()
    assert api["Properties"]["ProtocolType"] == "WEBSOCKET"
    integrations = resources(template, "AWS::ApiGatewayV2::Integration")
    routed = {}
    for route in resources(template, "AWS::ApiGatewayV2::Route").values():
        integration = integrations[route["Properties"]["Target"]["Fn::Join"][1][1]["Ref"]]["Properties"]
        if integration["IntegrationType"] == "MOCK":
            routed[route["Properties"]["RouteKey"]] = "MOCK"
            continue
        uri = integration["IntegrationUri"]["Fn::Sub"][1]
        routed[route["Properties"]["RouteKey"]] = uri["WebsocketHandler"]["Ref"]
    assert routed == {
        "$connect": "WebsocketConnect",
        "$default": "WebsocketMessage",
        "$disconnect": "WebsocketDisconnect",
        "ping": "MOCK",
    }


def test_a_keepalive_ping_runs_no_function_and_gets_no_answer(template: Template) -> None:
    """`{"action": "ping"}` (the clients' keepalive) ends in API Gateway: one inbound message billed,
    no Lambda invocation, no pong pushed back (a route without a route response is one-way)."""
    routes = resources(template, "AWS::ApiGatewayV2::Route")
    (name,) = [n for n, r in routes.items() if r["Properties"]["RouteKey"] == "ping"]
    assert not resources(template, "AWS::ApiGatewayV2::RouteResponse")
    integrations = resources(template, "AWS::ApiGatewayV2::Integration")
    integration = integrations["WebsocketPingIntegration"]["Properties"]
    selected = integration["TemplateSelectionExpression"].replace("\\", "")
    assert json.loads(integration["RequestTemplates"][selected]) == {"statusCode": 200}
    # the deployment must come after every route, or the ping route would not be in it
    (deployment,) = resources(template, "AWS::ApiGatewayV2::Deployment").values()
    assert set(deployment["DependsOn"]) == set(routes) and name in routes


def _budget(job: str) -> int:
    """The seconds of work app.py gives a scheduled job (its ``budget_seconds=``)."""
    match = re.search(rf"jobs\.{job}\(budget_seconds=(\d+)\)", (ROOT / "app.py").read_text())
    assert match, f"app.py no longer calls jobs.{job}(budget_seconds=N): update this test"
    return int(match.group(1))


def test_monthly_billing_and_retention_schedules_have_time_for_their_budget(template: Template) -> None:
    fns = functions(template)
    billing, retention = fns["BillingMonthly"], fns["RetentionJobs"]
    assert billing["Events"]["BillingMonthlyEvent"]["Properties"]["Schedule"] == "cron(0 2 1 * ? *)"
    assert retention["Events"]["RetentionJobsEvent"]["Properties"]["Schedule"] == "rate(5 minutes)"
    # A Lambda killed at its timeout would stop a job mid-budget, every time.
    assert billing["Timeout"] >= _budget("run_billing") + 60
    assert retention["Timeout"] >= _budget("run_retention") + 30
    assert retention["Timeout"] < 5 * 60 + 1  # never two retention runs at once


def test_the_fan_out_consumer_reads_this_stacks_queue_which_has_a_dead_letter_queue(
    template: Template,
) -> None:
    stage = stage_of(template)
    fanout = functions(template)["Fanout"]
    (source,) = fanout["Events"].values()
    assert source["Type"] == "SQS"
    assert source["Properties"]["Queue"] == {"Fn::Sub": "${FanoutQueue.Arn}"}  # a reference: created first
    queues = resources(template, "AWS::SQS::Queue")
    queue = queues["FanoutQueue"]["Properties"]
    # The name app.py's @app.on_sqs_message was packaged with (BOCAGE_FANOUT_QUEUE) is this queue's.
    assert (
        sub(queue["QueueName"], stage)
        == CONFIG["stages"][stage]["environment_variables"]["BOCAGE_FANOUT_QUEUE"]
    )
    assert queue["VisibilityTimeout"] >= 6 * fanout["Timeout"]  # AWS's advice for Lambda consumers
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["FanoutDeadLetterQueue", "Arn"]}
    assert 1 < queue["RedrivePolicy"]["maxReceiveCount"] <= 10
    dlq = queues["FanoutDeadLetterQueue"]["Properties"]
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert all(q["Properties"]["SqsManagedSseEnabled"] for q in queues.values())


# -- settings -------------------------------------------------------------------------------


def _known_settings() -> set[str]:
    sources = (ROOT / "chalicelib" / "settings.py").read_text() + (ROOT / "app.py").read_text()
    return set(re.findall(r"\"(BOCAGE_[A-Z_]+)\"", sources)) | {
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_LOG_LEVEL",
    }


def test_every_function_gets_the_settings_of_this_stack(template: Template) -> None:
    stage = stage_of(template)
    wired = template["Globals"]["Function"]["Environment"]["Variables"]
    api_stage = CONFIG["stages"][stage]["api_gateway_stage"]
    assert wired["BOCAGE_TABLE"] == {"Ref": "Table"}
    assert wired["BOCAGE_FANOUT_QUEUE_URL"] == {"Ref": "FanoutQueue"}
    host = "${WebsocketAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
    assert wired["BOCAGE_WS_ENDPOINT"] == {"Fn::Sub": f"https://{host}/{api_stage}"}
    assert wired["BOCAGE_WS_URL"] == {"Fn::Sub": f"wss://{host}/{api_stage}"}
    assert wired["BOCAGE_OPERATOR_KEYS"] == {"Ref": "OperatorKeys"}
    assert wired["BOCAGE_MAIL_FROM"] == {"Fn::Sub": "${MailFromName} <${MailFromAddress}>"}
    assert wired["BOCAGE_PUBLIC_URL"] == {"Ref": "PublicUrl"}
    # Calls: the TURN server's URLs, and its shared secret only by the name of its SSM parameter.
    assert wired["BOCAGE_TURN_URLS"] == {"Ref": "TurnUrls"}
    assert wired["BOCAGE_TURN_SECRET_PARAMETER"] == {"Ref": "TurnSecretParameter"}
    assert "BOCAGE_TURN_SECRET" not in wired
    assert template["Parameters"]["TurnSecretParameter"]["AllowedPattern"].startswith("^(/bocage/")
    for name, fn in functions(template).items():
        own = fn["Environment"]["Variables"]
        # SAM merges Globals under each function's own variables: a same-named one would win.
        assert not set(own) & set(wired), f"{name} shadows {set(own) & set(wired)} (.chalice/config.json)"
        assert {**wired, **own}["BOCAGE_STORE"] == "dynamodb"
        assert {**wired, **own}["BOCAGE_MAILER"] == "ses"
        unknown = (set(wired) | set(own)) - _known_settings()
        assert not unknown, f"{name}: no such setting {unknown}"


def test_the_websocket_stage_in_the_settings_is_the_deployed_one(template: Template) -> None:
    (ws_stage,) = resources(template, "AWS::ApiGatewayV2::Stage").values()
    assert ws_stage["Properties"]["StageName"] == CONFIG["stages"][stage_of(template)]["api_gateway_stage"]


def test_both_apis_are_throttled_by_stage_and_device_making_routes_more_strictly(template: Template) -> None:
    """API Gateway's throttles (per stage and route, for all clients together: docs/deploy-aws.md)
    bound what a flood costs; ``bocage serve`` limits per source address instead. The two routes
    that make a device from nothing, ``POST /activate`` and a poster's ``POST /join`` (the cost
    of each follower a script would add to stuff a poll, protocol 16.2), have their own."""
    settings = template["Resources"]["RestAPI"]["Properties"]["MethodSettings"]
    by_route = {(s["ResourcePath"], s["HttpMethod"]): s for s in settings}
    stage_wide = by_route[("/*", "*")]
    assert 0 < stage_wide["ThrottlingRateLimit"] <= stage_wide["ThrottlingBurstLimit"]
    paths = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    for path in ("/activate", "/join"):
        strict = by_route[(path, "POST")]
        assert "post" in paths[path]  # a throttle on a route that does not exist throttles nothing
        assert 0 < strict["ThrottlingRateLimit"] <= strict["ThrottlingBurstLimit"]
        assert strict["ThrottlingRateLimit"] < stage_wide["ThrottlingRateLimit"] / 10, path
        assert strict["ThrottlingBurstLimit"] < stage_wide["ThrottlingBurstLimit"] / 10, path
    (ws_stage,) = resources(template, "AWS::ApiGatewayV2::Stage").values()
    frames = ws_stage["Properties"]["DefaultRouteSettings"]
    connects = ws_stage["Properties"]["RouteSettings"]["$connect"]
    assert 0 < frames["ThrottlingRateLimit"] <= frames["ThrottlingBurstLimit"]
    assert 0 < connects["ThrottlingRateLimit"] < frames["ThrottlingRateLimit"]


# -- IAM ------------------------------------------------------------------------------------

# What each boto3 call the Lambda's adapters make needs, and nothing more. Calls only the
# one-machine or sovereign runtime makes (BOCAGE_CREATE_TABLE) map to None.
IAM_ACTION_OF_CALL = {
    "get_item": "dynamodb:GetItem",
    "put_item": "dynamodb:PutItem",
    "update_item": "dynamodb:UpdateItem",
    "delete_item": "dynamodb:DeleteItem",
    "query": "dynamodb:Query",
    "batch_write_item": "dynamodb:BatchWriteItem",
    "describe_table": "dynamodb:DescribeTable",
    "create_table": None,
    "update_time_to_live": None,
    "get_waiter": None,
    "send_message_batch": "sqs:SendMessage",
    "send_message": "sqs:SendMessage",
    "post_to_connection": "execute-api:ManageConnections",
    "delete_connection": "execute-api:ManageConnections",
    "get_connection": "execute-api:ManageConnections",
    "send_raw_email": "ses:SendRawEmail",
    "get_parameter": "ssm:GetParameter",  # the VAPID key and the TURN secret (adapters/ssm_secret.py)
    # Files (s3_objects): a presigned PUT is used with the signer's rights (a presigned GET is
    # covered by head_object's action); the HEAD that checks an upload; the deletion.
    "generate_presigned_url": "s3:PutObject",
    "head_object": "s3:GetObject",
    "delete_object": "s3:DeleteObject",
    "put_object_tagging": "s3:PutObjectTagging",  # a blob's lifetime class, once referenced
}
# What the Lambda service does with the function's role: poll the queue, write the logs.
SERVICE_ACTIONS = {
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
}


def _adapter_calls() -> set[str]:
    calls = set()
    for source in (ROOT / "chalicelib" / "adapters").glob("*.py"):
        calls |= set(re.findall(r"\b_?client\.([a-z_]+)\(", source.read_text()))
    return calls


def _statements(template: Template) -> dict[str, list[dict[str, Any]]]:
    return {
        name: [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
        for name, role in resources(template, "AWS::IAM::Role").items()
    }


def test_each_function_has_its_own_role_with_the_policy_in_infra(template: Template) -> None:
    policy = json.loads((ROOT / "infra" / "aws" / "lambda-policy.json").read_text())
    statements = _statements(template)
    for name, fn in functions(template).items():
        role = fn["Role"]["Fn::GetAtt"][0]
        assert statements[role] == policy["Statement"], name
    assert "DefaultRole" not in template["Resources"]  # Chalice's generated policy is not used


def test_the_policy_allows_exactly_what_the_adapters_call(template: Template) -> None:
    unmapped = _adapter_calls() - set(IAM_ACTION_OF_CALL)
    assert not unmapped, f"adapters call {unmapped}: add the IAM action to lambda-policy.json and here"
    needed = {IAM_ACTION_OF_CALL[c] for c in _adapter_calls()} - {None} | SERVICE_ACTIONS
    for role, statements in _statements(template).items():
        allowed = {a for s in statements for a in s["Action"]}
        assert allowed == needed, (role, allowed ^ needed)


def test_every_statement_is_scoped_to_this_stacks_resources(template: Template) -> None:
    scope = {
        "dynamodb": "Table",
        "sqs": "FanoutQueue",
        "execute-api": "${WebsocketAPI}/",
        "ses": ":identity/",
        "logs": ":log-group:/aws/lambda/bocage-${Stage}-",
        "ssm": ":parameter/bocage/${Stage}/",
        "s3": "${FilesBucket.Arn}/",
    }
    for role, statements in _statements(template).items():
        for s in statements:
            assert s["Effect"] == "Allow"
            assert isinstance(s["Action"], list) and isinstance(s["Resource"], list)
            assert all("*" not in action for action in s["Action"]), (role, s["Action"])
            services = {action.split(":")[0] for action in s["Action"]}
            assert len(services) == 1, f"one service per statement: {s['Action']}"
            (service,) = services
            for resource in s["Resource"]:
                assert resource != "*", (role, s)
                text = " ".join(strings(resource))
                assert scope[service] in text, (role, service, resource)
                if text.startswith("arn:"):  # no other account, region or partition
                    assert text.startswith(
                        f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:"
                    )
    policy = (ROOT / "infra" / "aws" / "lambda-policy.json").read_text()
    assert "dynamodb:*" not in policy and "dynamodb:Scan" not in policy
    assert "/api/POST/@connections/*" in policy  # pushes to this API's own stage only


# -- alarms and logs ------------------------------------------------------------------------


def test_alarms_watch_the_dead_letter_queue_every_function_and_both_apis(template: Template) -> None:
    stage = stage_of(template)
    alarms = {name: r["Properties"] for name, r in resources(template, "AWS::CloudWatch::Alarm").items()}
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    dlq = alarms["FanoutDeadLetterAlarm"]
    assert dlq["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["FanoutDeadLetterQueue", "QueueName"]}}
    ]
    assert (dlq["MetricName"], dlq["Threshold"]) == ("ApproximateNumberOfMessagesVisible", 1)
    names = {sub(fn["FunctionName"], stage) for fn in functions(template).values()}
    for alarm, metric in (("LambdaErrorsAlarm", "Errors"), ("LambdaThrottlesAlarm", "Throttles")):
        watched = {
            sub(m["MetricStat"]["Metric"]["Dimensions"][0]["Value"], stage)
            for m in alarms[alarm]["Metrics"]
            if "MetricStat" in m and m["MetricStat"]["Metric"]["MetricName"] == metric
        }
        assert watched == names, alarm
    rest = alarms["RestApi5xxAlarm"]
    rest_name = template["Resources"]["RestAPI"]["Properties"]["Name"]
    assert rest["MetricName"] == "5XXError"
    assert {d["Name"]: d["Value"] for d in rest["Dimensions"]} == {
        "ApiName": rest_name,
        "Stage": CONFIG["stages"][stage]["api_gateway_stage"],
    }
    ws = alarms["WebsocketApiErrorsAlarm"]
    assert ws["MetricName"] == "ExecutionError"
    assert {d["Name"]: d["Value"] for d in ws["Dimensions"]}["ApiId"] == {"Ref": "WebsocketAPI"}
    subscription = template["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"


def test_every_function_logs_to_a_group_with_a_retention(template: Template) -> None:
    stage = stage_of(template)
    groups = resources(template, "AWS::Logs::LogGroup")
    for name, fn in functions(template).items():
        group = f"{name}LogGroup"
        assert groups[group]["Properties"]["LogGroupName"] == {
            "Fn::Sub": f"/aws/lambda/bocage-${{Stage}}-{name}"
        }
        assert sub(fn["FunctionName"], stage) == f"bocage-{stage}-{name}"
        assert groups[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert group in template["Resources"][name]["DependsOn"]  # exists before the function logs
    assert template["Parameters"]["LogRetentionDays"]["Default"] == 30


# -- the sovereign target: container recipe, Compose and Kubernetes manifests ----------------

SOVEREIGN = ROOT / "infra" / "sovereign"
AWS_SDK_SETTINGS = {"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
SERVE = ["serve", "--host", "0.0.0.0", "--port", "8000"]


def _settings_read_by_the_code() -> set[str]:
    """Every BOCAGE_ variable the server side reads (settings, billing, `bocage serve`'s timers)."""
    sources = [
        ROOT / "app.py",
        *(ROOT / "chalicelib").rglob("*.py"),
        *(ROOT / "bocage" / "local").rglob("*.py"),
    ]
    names = set()
    for source in sources:
        names |= set(re.findall(r"[\"'](BOCAGE_[A-Z0-9_]+)[\"']", source.read_text()))
    return names | AWS_SDK_SETTINGS | {"POWERTOOLS_LOG_LEVEL", "POWERTOOLS_SERVICE_NAME"}


def _yaml(path: Path) -> list[dict[str, Any]]:
    import yaml  # type: ignore[import-untyped]  # no stubs pinned; PyYAML comes with moto[server]

    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _k8s() -> dict[str, dict[str, Any]]:
    kustomization = _yaml(SOVEREIGN / "k8s" / "kustomization.yaml")[0]
    docs = [doc for name in kustomization["resources"] for doc in _yaml(SOVEREIGN / "k8s" / name)]
    by_kind_name = {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}
    assert len(by_kind_name) == len(docs)
    return by_kind_name


def test_the_container_serves_on_every_interface_as_an_unprivileged_user() -> None:
    recipe = (SOVEREIGN / "Containerfile").read_text()
    assert 'ENTRYPOINT ["bocage"]' in recipe
    assert f"CMD {json.dumps(SERVE)}" in recipe
    assert re.search(r"^USER 10001", recipe, re.MULTILINE)
    assert "pip install -c requirements-dev.txt ." in recipe  # the pins CI tests
    for name in re.findall(r"^\s+(\w+)=", recipe, re.MULTILINE):
        assert name in _settings_read_by_the_code() | {
            "PYTHONUNBUFFERED",
            "PIP_NO_CACHE_DIR",
            "PIP_DISABLE_PIP_VERSION_CHECK",
        }
    copied = set(re.findall(r"^COPY (?!--from=)(.+) \S+$", recipe, re.MULTILINE))
    kept = {
        line[1:].rstrip("/")
        for line in (SOVEREIGN / "Containerfile.dockerignore").read_text().split()
        if line.startswith("!")
    }
    assert {p.rstrip("/") for entry in copied for p in entry.split()} <= kept


def test_the_container_serves_the_web_app_where_the_installed_gateway_looks() -> None:
    recipe = (SOVEREIGN / "Containerfile").read_text()
    # A node stage installs the libraries package-lock.json pins; the runtime gets them and web/.
    assert re.search(r"^FROM \S+/node:\S+ AS web$", recipe, re.MULTILINE)
    assert "COPY package.json package-lock.json ./" in recipe
    assert "RUN npm ci --omit=dev" in recipe
    # `pip install .` puts chalicelib in site-packages: BOCAGE_WEB_DIR's default is site-packages/web.
    assert re.search(r"^FROM \S+/python:3\.11-", recipe, re.MULTILINE)
    assert re.search(r"^ARG SITE=/usr/local/lib/python3\.11/site-packages$", recipe, re.MULTILINE)
    assert "COPY web/ ${SITE}/web/" in recipe
    assert "COPY --from=web /build/node_modules/ ${SITE}/node_modules/" in recipe
    assert "static_file" in recipe and "VENDOR_FILES" in recipe  # the build checks every /app/ file
    assert recipe.index("${SITE}/node_modules/") < recipe.index("USER 10001")


def test_compose_runs_two_replicas_behind_a_proxy_on_alternator_and_an_smtp_relay() -> None:
    (compose,) = _yaml(SOVEREIGN / "compose.yaml")
    services = compose["services"]
    replicas = [services["bocage-a"], services["bocage-b"]]
    scylla, proxy = services["scylla"], services["proxy"]
    assert replicas[0] == replicas[1]  # one definition, two replicas
    bocage = replicas[0]
    assert bocage["command"] == SERVE
    assert bocage["build"] == {"context": "../..", "dockerfile": "infra/sovereign/Containerfile"}
    env = bocage["environment"]
    assert not set(env) - _settings_read_by_the_code(), set(env) - _settings_read_by_the_code()
    assert env["BOCAGE_STORE"] == "dynamodb" and env["BOCAGE_MAILER"] == "smtp"
    assert env["BOCAGE_DYNAMODB_ENDPOINT"] == "http://scylla:8000" and env["BOCAGE_SMTP_HOST"] == "smtp"
    assert "BOCAGE_WS_ENDPOINT" not in env  # bocage serve pushes to its own connections
    assert env["BOCAGE_WS_URL"].endswith(":8000/ws}")  # through the proxy, on the one port
    assert env["BOCAGE_CLUSTER_SECRET"].startswith("${BOCAGE_CLUSTER_SECRET:?")  # required, never a default
    assert "/health" in " ".join(bocage["healthcheck"]["test"])
    assert bocage["read_only"] is True and "ports" not in bocage  # reached through the proxy only
    assert bocage["depends_on"]["scylla"]["condition"] == "service_healthy"
    assert "--alternator-port=8000" in scylla["command"]
    assert any(a.startswith("--alternator-write-isolation=") for a in scylla["command"])
    assert "smtp" in services
    assert all(p.startswith("127.0.0.1:") for s in services.values() for p in s.get("ports", []))
    nginx = (SOVEREIGN / "nginx.conf").read_text()
    assert "server bocage-a:8000" in nginx and "server bocage-b:8000" in nginx
    assert "proxy_set_header Upgrade $http_upgrade" in nginx
    # Activations, joins and votes are limited per client: the proxy sets the address it saw (never
    # what the client wrote: one on a private range the replicas trust could pick its own), and
    # the replicas believe it.
    assert nginx.count("proxy_set_header X-Forwarded-For $remote_addr;") == 2
    assert "$proxy_add_x_forwarded_for;" not in nginx
    assert ServeSettings.from_env(env).trusted_proxies
    assert proxy["volumes"] == ["./nginx.conf:/etc/nginx/conf.d/default.conf:ro"]
    # Calls: coturn on demand (profile), configured by the file Kubernetes uses, sharing the
    # secret the replicas sign credentials with, never a default.
    turn = services["turn"]
    assert turn["profiles"] == ["calls"] and turn["network_mode"] == "host"
    assert turn["volumes"] == ["./k8s/turnserver.conf:/etc/coturn/turnserver.conf:ro"]
    assert env["BOCAGE_TURN_SECRET"] == turn["environment"]["BOCAGE_TURN_SECRET"] == "${BOCAGE_TURN_SECRET:-}"
    script = turn["command"][0]  # the secret in a 0600 file on tmpfs, never on a command line
    assert "static-auth-secret" not in script.split("printf")[0] and "--static-auth-secret" not in script
    assert "umask 077" in script and "exec turnserver -c /var/tmp/turnserver.conf" in script
    assert "/var/tmp" in turn["tmpfs"] and "BOCAGE_TURN_DENY_SELF" in turn["environment"]


def _denied_peers(text: str) -> list[str]:
    return re.findall(r"^denied-peer-ip=(\S+)", text, re.MULTILINE)


def test_the_shipped_turn_configuration_is_the_documented_one() -> None:
    """coturn's settings that matter for safety: the shared-secret mode, and relays kept off the
    host, private networks and the metadata service, exactly as docs/calls.md lists them."""
    shipped = (SOVEREIGN / "k8s" / "turnserver.conf").read_text()
    documented = (ROOT / "docs" / "calls.md").read_text()
    assert "use-auth-secret" in shipped.splitlines() and "static-auth-secret" not in shipped
    assert _denied_peers(shipped) == _denied_peers(documented)
    assert "169.254.0.0-169.254.255.255" in _denied_peers(shipped)
    assert "allow-loopback-peers" not in shipped


def test_kubernetes_runs_replicas_with_probes_a_budget_an_autoscaler_and_settings_the_code_reads() -> None:
    k8s = _k8s()
    deployment = k8s["Deployment/bocage"]["spec"]
    assert deployment["replicas"] >= 2 and deployment["strategy"]["type"] == "RollingUpdate"
    assert deployment["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    (container,) = deployment["template"]["spec"]["containers"]
    assert [container["command"][0], *container["args"]] == ["bocage", *SERVE]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}, probe
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000, "internal": 8081}
    (advertise,) = container["env"]
    assert advertise == {
        "name": "BOCAGE_INTERNAL_ADVERTISE",
        "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
    }
    service = k8s["Service/bocage"]["spec"]
    assert {p["name"]: p["targetPort"] for p in service["ports"]} == {"http": "http"}  # never 8081
    budget = k8s["PodDisruptionBudget/bocage"]["spec"]
    assert 1 <= budget["minAvailable"] < deployment["replicas"]
    assert budget["selector"]["matchLabels"] == deployment["selector"]["matchLabels"]
    hpa = k8s["HorizontalPodAutoscaler/bocage"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "bocage"}
    assert budget["minAvailable"] <= hpa["minReplicas"] <= deployment["replicas"] <= hpa["maxReplicas"]
    ((metric,),) = [hpa["metrics"]]
    assert metric["resource"]["name"] == "cpu" and "cpu" in container["resources"]["requests"]
    policy = k8s["NetworkPolicy/bocage-internal"]["spec"]
    internal = next(rule for rule in policy["ingress"] if rule["ports"] == [{"port": 8081}])
    assert internal["from"] == [{"podSelector": deployment["selector"]}]
    config = k8s["ConfigMap/bocage-config"]["data"]
    assert not set(config) - _settings_read_by_the_code(), set(config) - _settings_read_by_the_code()
    assert "BOCAGE_WS_ENDPOINT" not in config
    assert config["BOCAGE_INTERNAL_PORT"] == "8081" and config["BOCAGE_WS_URL"].endswith("/ws")
    assert ServeSettings.from_env(config).trusted_proxies  # the ingress forwards each client's address
    secret = _yaml(SOVEREIGN / "k8s" / "secret.example.yaml")[0]["stringData"]
    assert not set(secret) - _settings_read_by_the_code()
    assert not set(secret) & set(config)
    for name in ("BOCAGE_SMTP_PASSWORD", "AWS_SECRET_ACCESS_KEY", "BOCAGE_CLUSTER_SECRET"):
        assert name in secret and name not in config  # secrets stay out of the ConfigMap
    assert "BOCAGE_TURN_SECRET" in secret and "BOCAGE_TURN_URLS" in config
    turn = k8s["Deployment/bocage-turn"]["spec"]["template"]["spec"]
    assert turn["hostNetwork"] is True  # clients reach its UDP ports directly
    (coturn,) = turn["containers"]
    (script,) = coturn["args"]  # the secret in a 0600 file, never on turnserver's command line
    assert coturn["command"] == ["sh", "-c"] and "--static-auth-secret" not in script
    assert "umask 077" in script and script.endswith("exec turnserver -c /var/lib/coturn/turnserver.conf")
    secret_ref, deny_self = coturn["env"]
    assert secret_ref["valueFrom"]["secretKeyRef"] == {"name": "bocage-secrets", "key": "BOCAGE_TURN_SECRET"}
    assert deny_self["valueFrom"]["fieldRef"] == {"fieldPath": "status.hostIP"}  # the node itself
    assert {"name": "config", "configMap": {"name": "bocage-turn"}} in turn["volumes"]
    kustomization = _yaml(SOVEREIGN / "k8s" / "kustomization.yaml")[0]
    assert {"name": "bocage-turn", "files": ["turnserver.conf"]} in kustomization["configMapGenerator"]
    image = container["image"]
    for cron in ("CronJob/bocage-billing", "CronJob/bocage-retention"):
        (job,) = k8s[cron]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        assert job["image"] == image
        assert job["envFrom"] == container["envFrom"]


def test_cronjobs_run_billing_daily_and_retention_every_five_minutes() -> None:
    k8s = _k8s()
    billing, retention = k8s["CronJob/bocage-billing"]["spec"], k8s["CronJob/bocage-retention"]["spec"]
    assert (billing["schedule"], billing["timeZone"]) == ("0 2 * * *", "Etc/UTC")  # AWS: 02:00 UTC on the 1st
    assert (retention["schedule"], retention["timeZone"]) == (
        "*/5 * * * *",
        "Etc/UTC",
    )  # AWS: rate(5 minutes)
    for spec in (billing, retention):
        assert spec["concurrencyPolicy"] == "Forbid"
    # The serve process leaves these jobs to the CronJobs.
    config = k8s["ConfigMap/bocage-config"]["data"]
    assert config["BOCAGE_JOBS_INTERVAL"] == config["BOCAGE_BILLING_INTERVAL"] == "0"
    command = _job_command("retention")
    budget = float(command[command.index("--budget") + 1])
    assert budget < retention["jobTemplate"]["spec"]["activeDeadlineSeconds"] < 300


def _job_command(job: str) -> list[str]:
    (container,) = _k8s()[f"CronJob/bocage-{job}"]["spec"]["jobTemplate"]["spec"]["template"]["spec"][
        "containers"
    ]
    command: list[str] = container["command"]
    return command


@pytest.mark.parametrize("job", ["billing", "retention"])
def test_the_cronjob_commands_run_the_jobs_on_a_dynamodb_api_server(moto_endpoint: str, job: str) -> None:
    """The CronJobs' own command lines, with the ConfigMap's settings, against a real server."""
    config = _k8s()["ConfigMap/bocage-config"]["data"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOCAGE_", "AWS_"))}
    env.update(config)
    env.update(
        BOCAGE_DYNAMODB_ENDPOINT=moto_endpoint,
        BOCAGE_TABLE=f"bocage-cron-{job}",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        PYTHONPATH=str(ROOT),
    )
    command = _job_command(job)
    assert command[:4] == ["bocage", "jobs", "run", job]
    done = subprocess.run(
        [sys.executable, "-m", "bocage", *command[1:]], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert isinstance(summary, dict)


# -- the web app: static files on S3 behind CloudFront --------------------------------------


def test_the_app_bucket_is_private_and_encrypted(template: Template) -> None:
    bucket = template["Resources"]["AppBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert "WebsiteConfiguration" not in bucket and "AccessControl" not in bucket


def test_the_files_bucket_is_private_encrypted_tls_only_with_cors_for_the_app_only(
    template: Template,
) -> None:
    """Encrypted file blobs (docs/protocol.md, section 18): presigned URLs only, from the web app."""
    bucket = template["Resources"]["FilesBucket"]["Properties"]
    assert (
        bucket["PublicAccessBlockConfiguration"]
        == template["Resources"]["AppBucket"]["Properties"]["PublicAccessBlockConfiguration"]
    )
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    (cors,) = bucket["CorsConfiguration"]["CorsRules"]
    # The web app's origin (AppUrl, set to the distribution's once deployed: docs/deploy-aws.md).
    assert cors["AllowedOrigins"] == [{"Fn::If": ["HasAppUrl", {"Ref": "AppUrl"}, {"Ref": "PublicUrl"}]}]
    assert sorted(cors["AllowedMethods"]) == ["GET", "PUT"]
    *classes, backstop = bucket["LifecycleConfiguration"]["Rules"]
    assert backstop["Status"] == "Enabled" and 5 * 365 < backstop["ExpirationInDays"] <= 5 * 366 + 1
    assert "TagFilters" not in backstop and "Prefix" not in backstop  # every object, tagged or not
    # One rule per lifetime class the service tags blobs with, expiring exactly that class.
    assert [(r["ExpirationInDays"], r["TagFilters"]) for r in classes] == [
        (days, [{"Key": LIFETIME_TAG, "Value": str(days)}]) for days in LIFETIME_CLASSES[:-1]
    ]
    assert backstop["ExpirationInDays"] == LIFETIME_CLASSES[-1]
    (policy,) = [
        p
        for p in resources(template, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": "FilesBucket"}
    ]
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert (deny["Effect"], deny["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})
    assert template["Globals"]["Function"]["Environment"]["Variables"]["BOCAGE_BUCKET"] == {
        "Ref": "FilesBucket"
    }


def test_cloudfront_reads_the_bucket_through_origin_access_control_over_https(template: Template) -> None:
    (distribution,) = resources(template, "AWS::CloudFront::Distribution").values()
    config = distribution["Properties"]["DistributionConfig"]
    (origin,) = config["Origins"]
    assert origin["DomainName"] == {"Fn::GetAtt": ["AppBucket", "RegionalDomainName"]}
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["AppOriginAccessControl", "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # no legacy OAI
    assert not resources(template, "AWS::CloudFront::CloudFrontOriginAccessIdentity")
    oac = template["Resources"]["AppOriginAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"], oac["SigningProtocol"]) == (
        "s3",
        "always",
        "sigv4",
    )
    for behaviour in [config["DefaultCacheBehavior"], *config.get("CacheBehaviors", [])]:
        assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
        assert behaviour["AllowedMethods"] == ["GET", "HEAD"]
        assert behaviour["ResponseHeadersPolicyId"] == {"Ref": "AppHeadersPolicy"}
    assert config["DefaultRootObject"] == "index.html"  # the app is at the distribution's root
    assert template["Outputs"]["AppUrl"]["Value"] == {"Fn::Sub": "https://${AppDistribution.DomainName}/"}


def test_only_this_distribution_may_read_the_bucket(template: Template) -> None:
    (policy,) = [
        p
        for p in resources(template, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": "AppBucket"}
    ]
    assert policy["Properties"]["Bucket"] == {"Ref": "AppBucket"}
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    assert allow["Resource"] == {"Fn::Sub": "${AppBucket.Arn}/*"}
    distribution = "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${AppDistribution}"
    assert allow["Condition"] == {"StringEquals": {"AWS:SourceArn": {"Fn::Sub": distribution}}}
    for deny in (s for s in statements if s["Effect"] == "Deny"):
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def _directives(policy: str) -> dict[str, str]:
    return dict(d.split(" ", 1) for d in policy.split("; "))


def test_the_app_gets_the_gateways_headers_with_this_stacks_api_origins(
    template: Template, aws_env: None
) -> None:
    from bocage.local.static_files import app_security_headers

    local = app_security_headers()
    config = template["Resources"]["AppHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]
    security = config["SecurityHeadersConfig"]
    assert security["ContentSecurityPolicy"]["Override"] is True
    directives = _directives(security["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Fn::Sub"])
    host = "execute-api.${AWS::Region}.${AWS::URLSuffix}"
    assert directives.pop("connect-src").split() == [
        "'self'",
        f"https://${{RestAPI}}.{host}",
        f"wss://${{WebsocketAPI}}.{host}",
        "https://${FilesBucket}.s3.${AWS::URLSuffix}",  # files go up and down by presigned URLs
    ]
    # ... at the host the functions' presigned URLs name.
    from chalicelib.adapters.clocks import SystemClock
    from chalicelib.adapters.s3_objects import S3ObjectStore

    presigned = S3ObjectStore("bocage-files-x", SystemClock(), region="eu-west-3").upload_url("o/c/b", 9, 60)
    assert presigned.url.startswith("https://bocage-files-x.s3.amazonaws.com/")
    expected = _directives(local["Content-Security-Policy"])
    expected.pop("connect-src")
    assert directives == expected  # every other directive is the gateway's
    assert security["ContentTypeOptions"] == {"Override": True}  # X-Content-Type-Options: nosniff
    assert security["FrameOptions"]["FrameOption"] == local["X-Frame-Options"]
    assert security["ReferrerPolicy"]["ReferrerPolicy"] == local["Referrer-Policy"]
    custom = {h["Header"]: h["Value"] for h in config["CustomHeadersConfig"]["Items"]}
    for name in ("Cross-Origin-Opener-Policy", "Cross-Origin-Resource-Policy", "Permissions-Policy"):
        assert custom[name] == local[name]


def test_web_dist_has_the_layout_the_gateway_serves_under_app(tmp_path: Path) -> None:
    import importlib.util

    from bocage.local.static_files import VENDOR_FILES, StaticFiles

    static_file = StaticFiles.from_env().file

    spec = importlib.util.spec_from_file_location("web_dist", ROOT / "infra" / "web_dist.py")
    assert spec and spec.loader
    web_dist = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(web_dist)
    out = tmp_path / "web"
    written = web_dist.build(out)
    assert (out / "index.html").read_bytes() == (ROOT / "web" / "index.html").read_bytes()
    for name in VENDOR_FILES:
        source = static_file(f"/app/vendor/{name}")
        assert source is not None and (out / "vendor" / name).read_bytes() == source.read_bytes(), name
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == written
    for relative in written:  # every file is one the gateway serves at the same path under /app/
        assert static_file(f"/app/{relative}") is not None, relative
    served_worker = StaticFiles.from_env().answer("GET", "/app/sw.js", None).body
    assert (out / "sw.js").read_bytes() == served_worker  # the same shell list and version stamp
    assert b'const BUILD = {"version":' in served_worker
    assert web_dist.build(out) == written  # a second build replaces the first
