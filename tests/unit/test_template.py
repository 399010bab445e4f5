"""template.yaml as CloudFormation will see it after the SAM transform, for both ApiAuth modes:
who may call which route, and what each function may do (least privilege)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
NO_VALUE = {"Ref": "AWS::NoValue"}
ROUTES = {
    ("/messages", "post"),
    ("/messages", "get"),
    ("/messages/{sid}", "get"),
    ("/messages/{sid}", "delete"),
    ("/phone-numbers", "get"),
    ("/caller-ids", "get"),
    ("/twilio-requests", "post"),
    ("/messages/{sid}/events", "get"),
    ("/opt-outs/{number}", "get"),
    ("/opt-outs/{number}", "put"),
    ("/opt-outs/{number}", "delete"),
    ("/campaigns", "post"),
    ("/campaigns/{id}", "get"),
    ("/campaigns/{id}", "delete"),
}
# The example state machine's ARN, as the functions' policies build it from its fixed name.
EXAMPLE_STATE_MACHINE_ARN = (
    "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}-send-and-wait"
)
TASK_COMPLETION = ["states:SendTaskSuccess", "states:SendTaskFailure"]
# The dedicated send bus's ARN, as its own policy builds it from its name.
SEND_BUS_ARN = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${AWS::StackName}-send-message"


def resolve_conditions(node: Any, conditions: dict[str, bool]) -> Any:
    """What AWS::LanguageExtensions does before SAM reads the template: Fn::If on known conditions."""
    if isinstance(node, dict):
        if set(node) == {"Fn::If"} and node["Fn::If"][0] in conditions:
            name, when_true, when_false = node["Fn::If"]
            return resolve_conditions(when_true if conditions[name] else when_false, conditions)
        resolved = {k: resolve_conditions(v, conditions) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v != NO_VALUE}
    if isinstance(node, list):
        return [resolve_conditions(v, conditions) for v in node if resolve_conditions(v, conditions) != NO_VALUE]
    return node


# Every condition of the template but the ApiAuth ones, as the parameters' defaults make them.
DEFAULT_CONDITIONS = {
    "TracingOn": False,
    "AnyEventSource": True,
    "UsePublicBaseUrl": False,
    "UseDedicatedSendBus": False,
    "RestrictSendBusPrincipals": False,
    "HasTaskTokenStateMachines": False,
    "CreateLoggingRole": False,
    "HasAlarmTopicArn": False,
    "HasAlarmEmail": False,
}


def template_source() -> dict[str, Any]:
    source: dict[str, Any] = yaml_parse((ROOT / "template.yaml").read_text())
    return source


def translated(api_auth: str, monkeypatch: pytest.MonkeyPatch, **overrides: bool) -> dict[str, Any]:
    """The resources CloudFormation would create, for the ApiAuth mode and the conditions given
    (the others as the parameters' defaults make them)."""
    return translate(template_source(), api_auth, monkeypatch, **overrides)


def translate(
    template: dict[str, Any], api_auth: str, monkeypatch: pytest.MonkeyPatch, **overrides: bool
) -> dict[str, Any]:
    """`translated` for a template as `template_source` reads it, which a test may change first
    (a resource added to see that a rule catches it)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    template["Transform"] = "AWS::Serverless-2016-10-31"
    for resource in template["Resources"].values():  # as `sam package` leaves them
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if key in properties:
                properties[key] = "s3://bucket/code.zip"
    assert set(overrides) <= set(DEFAULT_CONDITIONS), overrides
    conditions = {
        "UseIamAuth": api_auth == "IAM",
        "UseApiKeyAuth": api_auth == "API_KEY",
        **DEFAULT_CONDITIONS,
        **overrides,
    }
    assert set(template["Conditions"]) == set(conditions), "a condition this test does not resolve"
    template = resolve_conditions(template, conditions)
    # Resources of a false condition are not created.
    template["Resources"] = {
        name: resource
        for name, resource in template["Resources"].items()
        if conditions.get(resource.get("Condition", ""), True)
    }

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    resources: dict[str, Any] = transform(template, {}, NoManagedPolicies())["Resources"]
    return resources


def security_by_route(resources: dict[str, Any]) -> dict[tuple[str, str], Any]:
    paths = resources["TwilioApi"]["Properties"]["Body"]["paths"]
    return {(path, method): spec.get("security") for path, methods in paths.items() for method, spec in methods.items()}


WEBHOOK = ("/webhooks/twilio", "post")


def test_every_route_needs_sigv4_by_default_but_the_webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    security = security_by_route(translated("IAM", monkeypatch))
    assert set(security) == ROUTES | {WEBHOOK}
    webhook = security.pop(WEBHOOK)
    assert all(value == [{"AWS_IAM": []}] for value in security.values()), security
    # SAM's marker for "no authorizer" (AWS_IAM would be {"AWS_IAM": []}).
    assert webhook == [{"NONE": []}], "Twilio cannot sign with SigV4: the webhook checks X-Twilio-Signature"


def test_api_key_mode_needs_a_key_on_every_route_and_creates_a_usage_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    resources = translated("API_KEY", monkeypatch)
    security = security_by_route(resources)
    assert set(security) == ROUTES | {WEBHOOK}
    webhook = security.pop(WEBHOOK)
    assert all(value == [{"api_key": []}] for value in security.values()), security
    assert webhook == [], "Twilio cannot send an API key"
    types = {resource["Type"] for resource in resources.values()}
    assert {"AWS::ApiGateway::UsagePlan", "AWS::ApiGateway::ApiKey", "AWS::ApiGateway::UsagePlanKey"} <= types


def statements(resources: dict[str, Any], role: str) -> list[dict[str, Any]]:
    policies = resources[role]["Properties"].get("Policies", [])
    return [statement for policy in policies for statement in policy["PolicyDocument"]["Statement"]]


@pytest.mark.parametrize("function", ["ListMessagesFunction", "RawRequestFunction"])
def test_readers_may_read_the_twilio_secret_and_nothing_else(monkeypatch: pytest.MonkeyPatch, function: str) -> None:
    resources = translated("IAM", monkeypatch)
    assert statements(resources, f"{function}Role") == [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": {"Ref": "TwilioSecretArn"}}
    ]
    managed = resources[f"{function}Role"]["Properties"]["ManagedPolicyArns"]
    assert managed == ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]


def test_send_may_also_read_its_url_parameter_poll_its_queue_and_dead_letter_failures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resources = translated("IAM", monkeypatch)
    found = statements(resources, "SendMessageFunctionRole")
    actions = sorted(str(statement["Action"]) for statement in found)
    assert actions == [
        "['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', "
        "'dynamodb:DeleteItem']",
        "['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes']",
        "['states:SendTaskSuccess', 'states:SendTaskFailure']",
        "secretsmanager:GetSecretValue",
        "sqs:SendMessage",  # SAM's, for the asynchronous invocations' OnFailure destination
        "sqs:SendMessage",  # the send queue's delayed copies and dead letters
        "ssm:GetParameter",
    ]
    queue, dead_letters = ({"Fn::GetAtt": [name, "Arn"]} for name in ("SendMessageQueue", "SendMessageDeadLetterQueue"))
    sqs = [statement["Resource"] for statement in found if "sqs:" in str(statement["Action"])]
    assert sorted(map(str, sqs)) == sorted(map(str, [dead_letters, queue, [queue, dead_letters]])), "these queues only"
    # No SAM SQS event: its managed policy (AWSLambdaSQSQueueExecutionRole) allows every queue.
    managed = resources["SendMessageFunctionRole"]["Properties"]["ManagedPolicyArns"]
    assert managed == ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]


def test_get_may_read_the_secret_and_the_delivery_records_only(monkeypatch: pytest.MonkeyPatch) -> None:
    resources = translated("IAM", monkeypatch)
    assert statements(resources, "GetMessageFunctionRole") == [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": {"Ref": "TwilioSecretArn"}},
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": {"Fn::GetAtt": ["StateTable", "Arn"]}},
    ]


def test_opt_outs_may_change_the_state_table_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No secret: it never calls Twilio."""
    resources = translated("IAM", monkeypatch)
    assert statements(resources, "OptOutsFunctionRole") == [
        {
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            "Resource": {"Fn::GetAtt": ["StateTable", "Arn"]},
        }
    ]


def test_the_reconciler_runs_on_its_schedule_with_the_webhooks_rights_and_the_pending_index(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resources = translated("IAM", monkeypatch)
    by_action = {str(s["Action"]): s["Resource"] for s in statements(resources, "ReconcileStatusesFunctionRole")}
    assert by_action["dynamodb:Query"] == {"Fn::Sub": "${StateTable.Arn}/index/pending-index"}
    assert set(by_action) == {
        "secretsmanager:GetSecretValue",
        "['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem']",
        "dynamodb:Query",
        "events:PutEvents",
        "['states:SendTaskSuccess', 'states:SendTaskFailure']",
    }
    [schedule] = [
        r for r in resources.values() if r["Type"] == "AWS::Events::Rule" and "ScheduleExpression" in r["Properties"]
    ]
    assert schedule["Properties"]["ScheduleExpression"] == {"Ref": "ReconcileSchedule"}


def test_the_state_table_keeps_consent_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opt-outs are consent records: point-in-time recovery, kept when the stack goes or replaces it."""
    table = translated("IAM", monkeypatch)["StateTable"]
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    [index] = table["Properties"]["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "pending-index"
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["pending", "next_check_at"]


def test_webhook_may_use_the_table_the_bus_and_task_completion_only(monkeypatch: pytest.MonkeyPatch) -> None:
    resources = translated("IAM", monkeypatch)
    by_action = {str(s["Action"]): s["Resource"] for s in statements(resources, "WebhookFunctionRole")}
    table = {"Fn::GetAtt": ["StateTable", "Arn"]}
    assert by_action == {
        "secretsmanager:GetSecretValue": {"Ref": "TwilioSecretArn"},
        "['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem']": table,
        "events:PutEvents": {
            "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}"
        },
        "['states:SendTaskSuccess', 'states:SendTaskFailure']": {"Fn::Sub": EXAMPLE_STATE_MACHINE_ARN},
    }
    variables = resources["WebhookFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["STATE_TABLE_NAME"] == {"Ref": "StateTable"}
    assert variables["EVENT_BUS_NAME"] == {"Ref": "EventBusName"}


def test_state_table_has_the_key_and_ttl_powertools_expects(monkeypatch: pytest.MonkeyPatch) -> None:
    table = translated("IAM", monkeypatch)["StateTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"


def test_example_state_machine_waits_for_the_task_token_and_handles_the_error_types(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    resources = translated("IAM", monkeypatch)
    machine = resources["SendAndWaitForDeliveryStateMachine"]["Properties"]
    assert machine["DefinitionSubstitutions"] == {
        "SendMessageFunctionArn": {"Fn::GetAtt": ["SendMessageFunction", "Arn"]}
    }
    definition = json.loads((ROOT / "statemachines/send_and_wait_for_delivery.asl.json").read_text())
    task = definition["States"][definition["StartAt"]]
    assert task["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert "$states.context.Task.Token" in task["Arguments"]["Payload"]
    assert task["TimeoutSeconds"] > 0
    retried = {error for retry in task["Retry"] for error in retry["ErrorEquals"]}
    assert {"TwilioRateLimited", "TwilioUnavailable"} <= retried
    caught = {error: catch["Next"] for catch in task["Catch"] for error in catch["ErrorEquals"]}
    assert definition["States"][caught["MessageDeliveryFailed"]]["Type"] == "Fail"


def test_send_message_rule_targets_the_send_queue_retries_then_dead_letters(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rule's target is the queue, not the function: a burst of events waits there. Its
    retries and dead-letter queue are for delivering to the queue."""
    resources = translated("IAM", monkeypatch)
    rule = resources["SendMessageFunctionSendMessageRule"]["Properties"]
    assert rule["EventPattern"] == {"account": [{"Ref": "AWS::AccountId"}], "detail-type": ["Send Message"]}
    [target] = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["SendMessageQueue", "Arn"]}
    assert "InputTransformer" not in target and "InputPath" not in target, "each message is the whole event"
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["SendMessageDeadLetterQueue", "Arn"]}
    permissions = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"]
    invokers = [p["SourceArn"] for p in permissions if p["FunctionName"] == {"Ref": "SendMessageFunction"}]
    assert "SendMessageFunctionSendMessageRule" not in references(invokers), "the rule invokes no function"


def test_only_the_rule_may_send_to_the_send_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    resources = translated("IAM", monkeypatch)
    [policy] = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::SQS::QueuePolicy" and r["Properties"]["Queues"] == [{"Ref": "SendMessageQueue"}]
    ]
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Sid": "SendMessageRuleEvents",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": {"Fn::GetAtt": ["SendMessageQueue", "Arn"]},
            "Condition": {
                "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["SendMessageFunctionSendMessageRule", "Arn"]}}
            },
        }
    ]


def test_the_send_queue_keeps_events_encrypted_and_dead_letters_them_after_5_receives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queue = translated("IAM", monkeypatch)["SendMessageQueue"]
    assert queue["Type"] == "AWS::SQS::Queue"
    properties = queue["Properties"]
    assert properties["SqsManagedSseEnabled"] is True, "EventBridge can send to SSE-SQS, not to the AWS managed key"
    assert properties["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert properties["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["SendMessageDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }
    assert "FifoQueue" not in properties, "a standard queue"


def test_the_send_queue_hides_a_message_six_times_the_functions_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lambda's advice for a queue it polls: a visibility timeout of at least six times the
    function's timeout, plus the batching window, so that a batch in progress (or retried by
    Lambda after a throttle) is not delivered a second time meanwhile."""
    resources = translated("IAM", monkeypatch)
    timeout = resources["SendMessageFunction"]["Properties"]["Timeout"]
    [mapping] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    window = mapping.get("MaximumBatchingWindowInSeconds", 0)
    visibility = resources["SendMessageQueue"]["Properties"]["VisibilityTimeout"]
    assert visibility >= 6 * timeout + window, (visibility, timeout, window)


def test_the_queue_feeds_the_function_within_the_twilio_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most MaximumConcurrency invocations, each with send_queue_concurrency sends in flight:
    together never more than TwilioConcurrencyLimit, from its smallest value to its largest."""
    from twilio_messaging.settings import SEND_QUEUE_MAXIMUM_CONCURRENCY, Settings

    resources = translated("IAM", monkeypatch)
    [mapping] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["SendMessageQueue", "Arn"]}
    assert mapping["FunctionName"] == {"Ref": "SendMessageFunction"}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert (mapping["BatchSize"], mapping["MaximumBatchingWindowInSeconds"]) == (10, 0)
    consumers = mapping["ScalingConfig"]["MaximumConcurrency"]
    assert consumers == SEND_QUEUE_MAXIMUM_CONCURRENCY == 2, "Lambda's minimum, and what the settings divide by"
    parameter = template_source()["Parameters"]["TwilioConcurrencyLimit"]
    for limit in range(parameter["MinValue"], parameter["MaxValue"] + 1):
        per_invocation = Settings("secret", twilio_concurrency_limit=limit).send_queue_concurrency
        assert per_invocation >= 1 and consumers * per_invocation <= limit, limit
    variables = resources["SendMessageFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["SEND_QUEUE_URL"] == {"Ref": "SendMessageQueue"}
    assert variables["SEND_DEAD_LETTER_QUEUE_URL"] == {"Ref": "SendMessageDeadLetterQueue"}
    assert template_source()["Outputs"]["SendMessageQueueUrl"]["Value"] == {"Ref": "SendMessageQueue"}


def test_send_retries_asynchronous_events_safely_and_takes_its_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    """Asynchronous invocations (no longer EventBridge's, which go through the send queue, but a
    manual `--invocation-type Event` and what Lambda held at an upgrade): an EventBridge event's
    id is the idempotency key, so Lambda may retry it; what still fails goes to the dead-letter
    queue."""
    resources = translated("IAM", monkeypatch)
    config = next(r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig")
    assert config["MaximumRetryAttempts"] == 2
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["SendMessageDeadLetterQueue", "Arn"]
    }
    variables = resources["SendMessageFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["TWILIO_CONCURRENCY_LIMIT"] == {"Ref": "TwilioConcurrencyLimit"}
    assert variables["STATE_TABLE_NAME"] == {"Ref": "StateTable"}


def test_every_function_has_a_log_group_with_retention(monkeypatch: pytest.MonkeyPatch) -> None:
    resources = translated("IAM", monkeypatch)
    functions = {name for name, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    log_groups = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert all(group["RetentionInDays"] == {"Ref": "LogRetentionDays"} for group in log_groups)
    lambda_groups = {
        group["LogGroupName"]["Fn::Sub"].removeprefix("/aws/lambda/${").removesuffix("}")
        for group in log_groups
        if group["LogGroupName"]["Fn::Sub"].startswith("/aws/lambda/")
    }
    assert functions == lambda_groups


# --- Dependencies between resources, as CloudFormation derives them -------------------------------


def references(node: Any) -> set[str]:
    """Names that Ref, Fn::GetAtt and Fn::Sub in `node` refer to (resources, parameters, pseudo
    parameters)."""
    found: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("Ref"), str):
            found.add(node["Ref"])
        if "Fn::GetAtt" in node:
            target = node["Fn::GetAtt"]
            found.add(target[0] if isinstance(target, list) else target.split(".")[0])
        if "Fn::Sub" in node:
            text = node["Fn::Sub"] if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"][0]
            found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!][^}]*)\}", text)}
        for value in node.values():
            found |= references(value)
    elif isinstance(node, list):
        for value in node:
            found |= references(value)
    return found


def dependency_graph(resources: dict[str, Any]) -> dict[str, set[str]]:
    graph = {}
    for name, resource in resources.items():
        depends_on = resource.get("DependsOn", [])
        explicit = {depends_on} if isinstance(depends_on, str) else set(depends_on)
        graph[name] = (references(resource.get("Properties", {})) | explicit) & set(resources)
    return graph


def created_before(resources: dict[str, Any], name: str) -> set[str]:
    """Every resource CloudFormation creates before `name` (what it depends on, transitively)."""
    graph = dependency_graph(resources)
    seen: set[str] = set()
    pending = list(graph[name])
    while pending:
        current = pending.pop()
        if current not in seen:
            seen.add(current)
            pending.extend(graph[current])
    return seen


ALL_CONDITIONS_TRUE = {name: True for name in DEFAULT_CONDITIONS}


@pytest.mark.parametrize("conditions", [{}, ALL_CONDITIONS_TRUE], ids=["defaults", "every-option-on"])
@pytest.mark.parametrize("api_auth", ["IAM", "API_KEY"])
def test_no_resource_depends_on_itself(
    monkeypatch: pytest.MonkeyPatch, api_auth: str, conditions: dict[str, bool]
) -> None:
    """CloudFormation refuses a template with a circular dependency."""
    resources = translated(api_auth, monkeypatch, **conditions)
    assert all(name not in created_before(resources, name) for name in resources)


# --- Completing .waitForTaskToken tasks: only this stack's state machine, and those listed -------


def task_completion_resources(resources: dict[str, Any], role: str) -> list[Any]:
    """The Resource of each statement of `role` that allows a states: action."""
    found = [s for s in statements(resources, role) if "states:" in str(s["Action"])]
    assert all(s["Action"] == TASK_COMPLETION for s in found)
    return [s["Resource"] for s in found]


@pytest.mark.parametrize("role", ["SendMessageFunctionRole", "WebhookFunctionRole"])
def test_tasks_of_other_state_machines_cannot_be_completed(monkeypatch: pytest.MonkeyPatch, role: str) -> None:
    """The confused deputy: whoever calls the send chooses the task token it carries. Allowed on
    stateMachine:*, the functions would complete, for that caller, a task of any workflow of the
    account."""
    resources = translated("IAM", monkeypatch)
    assert task_completion_resources(resources, role) == [{"Fn::Sub": EXAMPLE_STATE_MACHINE_ARN}]
    machine = resources["SendAndWaitForDeliveryStateMachine"]["Properties"]
    # The ARN the policies name is the example machine's: its fixed name, within 80 characters
    # for every stack name up to 66.
    name = machine["StateMachineName"]["Fn::Sub"]
    assert EXAMPLE_STATE_MACHINE_ARN.endswith(":stateMachine:" + name)
    assert len(name.replace("${AWS::StackName}", "s" * 66)) <= 80
    assert re.fullmatch(r"\$\{AWS::StackName\}[A-Za-z0-9_-]+", name), "CloudWatch-safe characters only"


@pytest.mark.parametrize("role", ["SendMessageFunctionRole", "WebhookFunctionRole"])
def test_listed_state_machines_may_wait_on_sends_too(monkeypatch: pytest.MonkeyPatch, role: str) -> None:
    resources = translated("IAM", monkeypatch, HasTaskTokenStateMachines=True)
    assert task_completion_resources(resources, role) == [
        {"Fn::Sub": EXAMPLE_STATE_MACHINE_ARN},
        {"Ref": "TaskTokenStateMachineArns"},
    ]


def test_an_empty_state_machine_list_adds_no_statement(monkeypatch: pytest.MonkeyPatch) -> None:
    """TaskTokenStateMachineArns' default is [""]: an empty ARN must not reach a policy."""
    parameter = template_source()["Parameters"]["TaskTokenStateMachineArns"]
    assert parameter["Type"] == "CommaDelimitedList"
    assert parameter["Default"] == ""
    condition = template_source()["Conditions"]["HasTaskTokenStateMachines"]
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "TaskTokenStateMachineArns"}]}, ""]}]}
    resources = translated("IAM", monkeypatch, HasTaskTokenStateMachines=False)
    for role in ("SendMessageFunctionRole", "WebhookFunctionRole"):
        assert {"Ref": "TaskTokenStateMachineArns"} not in task_completion_resources(resources, role)
    pattern = re.compile(parameter["AllowedPattern"])
    assert pattern.fullmatch("arn:aws:states:us-east-1:123456789012:stateMachine:orders")
    assert pattern.fullmatch("")
    assert not pattern.fullmatch("*")
    assert not pattern.fullmatch("arn:aws:states:us-east-1:123456789012:activity:orders")


# --- Who can request a send through EventBridge -------------------------------------------------


def test_send_rule_matches_only_this_accounts_events_on_the_default_bus(monkeypatch: pytest.MonkeyPatch) -> None:
    resources = translated("IAM", monkeypatch)
    rule = resources["SendMessageFunctionSendMessageRule"]["Properties"]
    assert rule["EventPattern"]["account"] == [{"Ref": "AWS::AccountId"}]
    assert "EventBusName" not in rule, "the default bus"
    assert not [r for r in resources.values() if r["Type"] == "AWS::Events::EventBus"]
    description = template_source()["Parameters"]["SendMessageEventSources"]["Description"]
    assert "not an authorization" in description


def send_bus_policy(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    bus = resources["SendMessageEventBus"]
    assert bus["Type"] == "AWS::Events::EventBus"
    assert bus["Properties"]["Name"] == {"Fn::Sub": SEND_BUS_ARN.rsplit("/", 1)[1]}
    return {statement["Sid"]: statement for statement in bus["Properties"]["Policy"]["Statement"]}


def test_dedicated_send_bus_takes_the_rule_and_denies_other_accounts(monkeypatch: pytest.MonkeyPatch) -> None:
    resources = translated("IAM", monkeypatch, UseDedicatedSendBus=True)
    rule = resources["SendMessageFunctionSendMessageRule"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "SendMessageEventBus"}
    assert rule["EventPattern"]["account"] == [{"Ref": "AWS::AccountId"}]
    policy = send_bus_policy(resources)
    assert policy == {
        "DenyOtherAccounts": {
            "Sid": "DenyOtherAccounts",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "events:PutEvents",
            "Resource": {"Fn::Sub": SEND_BUS_ARN},
            "Condition": {"StringNotEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}}},
        }
    }, "no principal list: any principal of this account that IAM allows"
    # The send queue admits the rule's events, and the dead-letter queue its failures.
    rule_arn = {"Fn::GetAtt": ["SendMessageFunctionSendMessageRule", "Arn"]}
    for policy in ("SendMessageQueuePolicy", "SendMessageDeadLetterQueuePolicy"):
        [statement] = resources[policy]["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == rule_arn, policy
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["SendMessageQueue", "Arn"]}


def test_listed_principals_are_the_only_ones_that_can_put_on_the_send_bus(monkeypatch: pytest.MonkeyPatch) -> None:
    resources = translated("IAM", monkeypatch, UseDedicatedSendBus=True, RestrictSendBusPrincipals=True)
    policy = send_bus_policy(resources)
    assert set(policy) == {"DenyOtherAccounts", "DenyUnlistedPrincipals"}
    # A Deny binds this account's principals too, whatever their own policies allow; a request
    # without the key (no signed principal) is denied as well.
    assert policy["DenyUnlistedPrincipals"] == {
        "Sid": "DenyUnlistedPrincipals",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "events:PutEvents",
        "Resource": {"Fn::Sub": SEND_BUS_ARN},
        "Condition": {"ArnNotLike": {"aws:PrincipalArn": {"Ref": "SendMessageBusPrincipalArns"}}},
    }
    pattern = re.compile(template_source()["Parameters"]["SendMessageBusPrincipalArns"]["AllowedPattern"])
    assert pattern.fullmatch("arn:aws:iam::123456789012:role/orders-service")
    assert pattern.fullmatch("arn:aws:iam::123456789012:role/orders-*")
    assert pattern.fullmatch("")
    assert not pattern.fullmatch("*")
    assert not pattern.fullmatch("123456789012")
    conditions = template_source()["Conditions"]
    assert conditions["RestrictSendBusPrincipals"] == {
        "Fn::And": [
            {"Condition": "UseDedicatedSendBus"},
            {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "SendMessageBusPrincipalArns"}]}, ""]}]},
        ]
    }


def test_the_send_bus_is_an_output() -> None:
    outputs = template_source()["Outputs"]
    assert outputs["SendMessageEventBusName"]["Value"] == {
        "Fn::If": ["UseDedicatedSendBus", {"Ref": "SendMessageEventBus"}, "default"]
    }
    assert outputs["SendMessageEventBusArn"]["Value"]["Fn::If"][:2] == [
        "UseDedicatedSendBus",
        {"Fn::GetAtt": ["SendMessageEventBus", "Arn"]},
    ]


# --- API Gateway access logs ----------------------------------------------------------------------


def api_stage(resources: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (stage,) = [(name, r) for name, r in resources.items() if r["Type"] == "AWS::ApiGateway::Stage"]
    return stage


@pytest.mark.parametrize("api_auth", ["IAM", "API_KEY"])
def test_the_stage_writes_a_json_access_log_line_per_request(monkeypatch: pytest.MonkeyPatch, api_auth: str) -> None:
    resources = translated(api_auth, monkeypatch)
    _, stage = api_stage(resources)
    setting = stage["Properties"]["AccessLogSetting"]
    assert setting["DestinationArn"] == {"Fn::GetAtt": ["TwilioApiAccessLogGroup", "Arn"]}
    line = json.loads(setting["Format"])  # JSON, one object per request
    assert {
        "$context.requestId",
        "$context.identity.userArn",
        "$context.identity.caller",
        "$context.identity.apiKeyId",
        "$context.identity.sourceIp",
        "$context.resourcePath",
        "$context.httpMethod",
        "$context.status",
        "$context.responseLatency",
        "$context.integrationLatency",
    } <= set(line.values())
    assert all(value.startswith("$context.") for value in line.values()), "access logs take nothing else"
    group = resources["TwilioApiAccessLogGroup"]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_no_logging_role_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    resources = translated("IAM", monkeypatch)
    assert not {"ApiGatewayCloudWatchRole", "ApiGatewayAccount"} & set(resources)
    assert not [r for r in resources.values() if r["Type"] == "AWS::ApiGateway::Account"]
    assert "ApiGatewayAccount" not in references(resources), "a reference to a resource that is not created"
    parameter = template_source()["Parameters"]["CreateApiGatewayLoggingRole"]
    assert parameter["Default"] == "false"


@pytest.mark.parametrize("api_auth", ["IAM", "API_KEY"])
def test_the_logging_role_is_set_before_the_stage_is_created(monkeypatch: pytest.MonkeyPatch, api_auth: str) -> None:
    """A stage that writes access logs fails to create while the account settings name no
    CloudWatch role: the stage must wait for the ApiGateway::Account that names it."""
    resources = translated(api_auth, monkeypatch, CreateLoggingRole=True)
    role = resources["ApiGatewayCloudWatchRole"]
    assert role["Type"] == "AWS::IAM::Role"
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    assert role["Properties"]["ManagedPolicyArns"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"}
    ]
    assert role.get("Policies") is None
    assert role["DeletionPolicy"] == "Retain", "the region's setting keeps naming it after the stack is gone"
    account = resources["ApiGatewayAccount"]
    assert account["Type"] == "AWS::ApiGateway::Account"
    assert account["Properties"] == {"CloudWatchRoleArn": {"Fn::GetAtt": ["ApiGatewayCloudWatchRole", "Arn"]}}
    stage_name, _ = api_stage(resources)
    assert "ApiGatewayAccount" in created_before(resources, stage_name)


def actions_of(resources: dict[str, Any], role: str) -> set[str]:
    found: set[str] = set()
    for statement in statements(resources, role):
        action = statement["Action"]
        found |= set(action) if isinstance(action, list) else {action}
    return found


def test_the_campaign_bucket_is_private_encrypted_and_forgets_phone_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    resources = translated("IAM", monkeypatch)
    bucket = resources["CampaignBucket"]
    properties = bucket["Properties"]
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert (
        all(properties["PublicAccessBlockConfiguration"].values())
        and len(properties["PublicAccessBlockConfiguration"]) == 4
    )
    rules = {rule.get("Prefix"): rule for rule in properties["LifecycleConfiguration"]["Rules"]}
    for prefix in ("reports/", "campaigns/"):
        assert rules[prefix]["ExpirationInDays"] == {"Ref": "CampaignReportDays"}, prefix
    parameter = template_source()["Parameters"]["CampaignReportDays"]
    assert parameter["MinValue"] >= 15, "a failed campaign can be redriven for 14 days: its records must outlive that"
    [deny] = resources["CampaignBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_campaign_state_machine_runs_its_three_steps_over_its_items(monkeypatch: pytest.MonkeyPatch) -> None:
    source = template_source()["Resources"]["CampaignStateMachine"]["Properties"]
    definition = (ROOT / source["DefinitionUri"]).read_text()
    for name in source["DefinitionSubstitutions"]:
        assert "${" + name + "}" in definition, name
    machine = json.loads(definition)
    batches = machine["States"]["Send the batches"]
    assert batches["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert batches["MaxConcurrency"] == "{% $states.input.mapConcurrency %}"  # the plan's, within the limit
    assert "ItemBatcher" not in batches and "ToleratedFailurePercentage" not in batches  # moto cannot run them
    resources = translated("IAM", monkeypatch)
    role = resources["CampaignStateMachineRole"]
    assert {"s3:GetObject", "states:StartExecution", "lambda:InvokeFunction"} <= actions_of(
        resources, "CampaignStateMachineRole"
    )
    assert role["Type"] == "AWS::IAM::Role"


def test_campaign_functions_get_what_their_step_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    resources = translated("IAM", monkeypatch)
    assert "secretsmanager:GetSecretValue" not in actions_of(resources, "CampaignsFunctionRole")  # sends nothing
    assert {"states:StartExecution", "states:StopExecution"} <= actions_of(resources, "CampaignsFunctionRole")
    assert "secretsmanager:GetSecretValue" in actions_of(resources, "CampaignSendBatchFunctionRole")
    assert "events:PutEvents" in actions_of(resources, "CampaignReportFunctionRole")
    assert not actions_of(resources, "CampaignPrepareFunctionRole") & {
        "secretsmanager:GetSecretValue",
        "states:StartExecution",
    }
    for function in ("CampaignPrepareFunction", "CampaignSendBatchFunction", "CampaignReportFunction"):
        assert resources[function]["Properties"]["Timeout"] == 900, function
    variables = resources["CampaignsFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["CAMPAIGN_STATE_MACHINE_ARN"] == {"Ref": "CampaignStateMachine"}
    assert variables["CAMPAIGN_BUCKET"] == {"Ref": "CampaignBucket"}
