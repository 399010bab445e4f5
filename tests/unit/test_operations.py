"""Operations as template.yaml deploys them (docs/operations.md): every function, queue, state
machine and EventBridge rule has its alarms, alarms notify what the parameters name, and the
dashboard shows only metrics that the layer's code or AWS emits."""

from __future__ import annotations

import ast
import copy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_template import ROOT, references, template_source, translate, translated

LAYER = ROOT / "layers" / "twilio_messaging" / "twilio_messaging"
RUNBOOK = ROOT / "docs" / "operations.md"

# The metrics of AWS's namespaces that the alarms and the dashboard may name.
AWS_METRICS = {
    "AWS/Lambda": {"Errors", "Throttles", "Duration", "Invocations", "ConcurrentExecutions"},
    "AWS/ApiGateway": {"Count", "4XXError", "5XXError", "Latency", "IntegrationLatency"},
    "AWS/SQS": {
        "ApproximateNumberOfMessagesVisible",
        "ApproximateNumberOfMessagesDelayed",
        "ApproximateAgeOfOldestMessage",
        "NumberOfMessagesSent",
    },
    "AWS/States": {
        "ExecutionsStarted",
        "ExecutionsSucceeded",
        "ExecutionsFailed",
        "ExecutionsTimedOut",
        "ExecutionsAborted",
        "ExecutionThrottled",
    },
    "AWS/Events": {"Invocations", "FailedInvocations", "InvocationsSentToDlq", "InvocationsFailedToBeSentToDlq"},
}
# Functions that callers invoke directly (Step Functions, Lambda Invoke, EventBridge) as well as
# through the API: they raise their domain errors, a caller's ValidationError included, so Lambda's
# Errors counts callers' mistakes and they must have no Errors alarm. Every other function (the
# webhook today; scheduled and queue consumers later) must have one.
DIRECTLY_INVOKED = {
    "SendMessageFunction",
    "GetMessageFunction",
    "ListMessagesFunction",
    "RawRequestFunction",
    "OptOutsFunction",
    "CampaignsFunction",
    # The campaign state machine's steps: their errors are its retries' and catches' business.
    "CampaignPrepareFunction",
    "CampaignSendBatchFunction",
    "CampaignReportFunction",
}
# State machines whose failed executions are outcomes (a message that was not delivered), not
# incidents: no ExecutionsFailed alarm. Every other one (a campaign's) must have it.
FAILURES_ARE_OUTCOMES = {"SendAndWaitForDeliveryStateMachine"}
# Where a dead letter's queue is named: a rule target's DeadLetterConfig, an SQS RedrivePolicy,
# an asynchronous invocation's OnFailure destination.
DEAD_LETTER_KEYS = {"DeadLetterConfig", "RedrivePolicy", "OnFailure"}
DEFAULT_RETENTION_SECONDS = 345_600  # an SQS queue's when MessageRetentionPeriod is not set


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    """The default deployment (ApiAuth IAM, every parameter at its default). Read only."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        return translated("IAM", monkeypatch)


def globals_variables() -> dict[str, str]:
    variables: dict[str, str] = template_source()["Globals"]["Function"]["Environment"]["Variables"]
    return variables


NAMESPACE = globals_variables()["POWERTOOLS_METRICS_NAMESPACE"]
SERVICE = globals_variables()["POWERTOOLS_SERVICE_NAME"]


# --- What the code emits ----------------------------------------------------------------------

METRIC_CALLS = {"count", "count_by", "record_latency", "record_level"}  # observability's helpers: name first
NAMED_METRIC_CALLS = {"single_metric", "add_metric"}  # Powertools: name=


def code_metric_names() -> set[str]:
    """Every metric name a literal in the layer or a handler passes to observability's helpers
    (count, record_latency, record_level: count_failure and count_unexpected_failure use them or
    single_metric) or to Powertools (single_metric, add_metric with name=)."""
    names: set[str] = set()
    files = [*LAYER.glob("*.py"), *(ROOT / "functions").glob("*/app.py")]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            helper = isinstance(node.func, ast.Name) and called in METRIC_CALLS  # not str.count
            if helper and node.args and isinstance(node.args[0], ast.Constant):
                names.add(str(node.args[0].value))
            if called in NAMED_METRIC_CALLS:
                names |= {
                    str(k.value.value) for k in node.keywords if k.arg == "name" and isinstance(k.value, ast.Constant)
                }
    return names


def test_the_code_emits_the_metrics_operations_rely_on() -> None:
    assert {
        "MessagesSent",
        "SendFailures",
        "SendFailuresByCode",
        "TwilioRetries",
        "TwilioRateLimitRetries",
        "TwilioLatency",
        "TwilioConcurrentRequests",
        "WebhooksAccepted",
        "WebhooksRejected",
        "DuplicatesSuppressed",
        "UnexpectedFailures",
        "SecretReadFailures",
        "SendQueueRequeues",
        "SendQueueRetries",
        "SendQueueDeadLettered",
    } <= code_metric_names()


# --- Alarms -------------------------------------------------------------------------------------


def alarms(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def dimensions(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {entry["Name"]: entry["Value"] for entry in entries or []}


def alarm_metrics(alarm: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(namespace, metric, dimensions) of each metric the alarm reads, itself or in its math."""
    if "MetricName" in alarm:
        return [(alarm["Namespace"], alarm["MetricName"], dimensions(alarm.get("Dimensions", [])))]
    found = []
    for query in alarm["Metrics"]:
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            found.append((metric["Namespace"], metric["MetricName"], dimensions(metric.get("Dimensions", []))))
    return found


Expected = Any | Callable[[Any], bool]


def alarmed(resources: dict[str, Any], namespace: str, metric: str, **expected: Expected) -> list[dict[str, Any]]:
    """The alarms on `metric` whose dimensions have the values expected (or pass the checks)."""

    def matches(dims: dict[str, Any]) -> bool:
        return all(
            name in dims and (check(dims[name]) if callable(check) else dims[name] == check)
            for name, check in expected.items()
        )

    return [
        alarm
        for alarm in alarms(resources).values()
        if any(ns == namespace and name == metric and matches(dims) for ns, name, dims in alarm_metrics(alarm))
    ]


def dead_letter_queues(resources: dict[str, Any]) -> set[str]:
    """Queues that some resource names as where its failures go."""

    def walk(node: Any, inside: bool) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, inside or key in DEAD_LETTER_KEYS)
            target = node.get("Fn::GetAtt")
            if inside and isinstance(target, list) and target[1] == "Arn":
                yield target[0]
        elif isinstance(node, list):
            for value in node:
                yield from walk(value, inside)

    queues = {name for name, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}
    return {name for r in resources.values() for name in walk(r.get("Properties", {}), False)} & queues


def refers_to(name: str) -> Callable[[Any], bool]:
    return lambda value: name in references(value)


def missing_alarms(resources: dict[str, Any]) -> list[str]:
    """What each function, queue, state machine and rule lacks of the alarms docs/operations.md
    promises; empty when nothing is missing."""
    missing = []
    dead_letters = dead_letter_queues(resources)
    for name, resource in sorted(resources.items()):
        kind = resource["Type"]
        needed: list[tuple[str, str, dict[str, Any]]] = []
        if kind == "AWS::Lambda::Function":
            function = {"FunctionName": {"Ref": name}}
            needed += [("AWS/Lambda", "Throttles", function), ("AWS/Lambda", "Duration", function)]
            needed.append((NAMESPACE, "UnexpectedFailures", {**function, "service": SERVICE}))
            if name not in DIRECTLY_INVOKED:
                needed.append(("AWS/Lambda", "Errors", function))
        elif kind == "AWS::SQS::Queue":
            queue = {"QueueName": {"Fn::GetAtt": [name, "QueueName"]}}
            needed.append(("AWS/SQS", "ApproximateAgeOfOldestMessage", queue))
            if name in dead_letters:
                needed.append(("AWS/SQS", "ApproximateNumberOfMessagesVisible", queue))
        elif kind == "AWS::StepFunctions::StateMachine":
            machine = {"StateMachineArn": {"Ref": name}}
            needed += [("AWS/States", "ExecutionsTimedOut", machine), ("AWS/States", "ExecutionThrottled", machine)]
            if name not in FAILURES_ARE_OUTCOMES:
                needed.append(("AWS/States", "ExecutionsFailed", machine))
        elif kind == "AWS::Events::Rule":
            needed.append(("AWS/Events", "FailedInvocations", {"RuleName": refers_to(name)}))
        missing += [
            f"{name}: {metric}"
            for namespace, metric, dims in needed
            if not alarmed(resources, namespace, metric, **dims)
        ]
    return missing


def test_every_function_queue_state_machine_and_rule_has_its_alarms(resources: dict[str, Any]) -> None:
    assert missing_alarms(resources) == []
    kinds = {r["Type"] for r in resources.values()}
    assert {
        "AWS::Lambda::Function",
        "AWS::SQS::Queue",
        "AWS::StepFunctions::StateMachine",
        "AWS::Events::Rule",
    } <= kinds
    assert dead_letter_queues(resources) == {"SendMessageDeadLetterQueue"}


def test_a_new_resource_without_alarms_fails_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a change that adds a function, a queue, a workflow or a rule must add too."""
    source = template_source()
    resources = source["Resources"]
    resources["ScheduledSendFunction"] = copy.deepcopy(resources["GetMessageFunction"])
    resources["ScheduledSendFunction"]["Properties"]["Events"] = {
        "Every5Minutes": {"Type": "Schedule", "Properties": {"Schedule": "rate(5 minutes)"}}
    }
    resources["SurveyQueue"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    resources["SurveyDeadLetterQueue"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    resources["SurveyQueue"]["Properties"]["RedrivePolicy"] = {
        "deadLetterTargetArn": {"Fn::GetAtt": ["SurveyDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }
    machine = copy.deepcopy(resources["SendAndWaitForDeliveryStateMachine"])
    machine["Properties"]["Name"] = {"Fn::Sub": "${AWS::StackName}-survey"}
    resources["SurveyStateMachine"] = machine
    missing = missing_alarms(translate(source, "IAM", monkeypatch))
    assert sorted(missing) == sorted(
        [
            "SurveyDeadLetterQueue: ApproximateAgeOfOldestMessage",
            "SurveyDeadLetterQueue: ApproximateNumberOfMessagesVisible",
            "SurveyQueue: ApproximateAgeOfOldestMessage",
            "SurveyStateMachine: ExecutionThrottled",
            "SurveyStateMachine: ExecutionsFailed",
            "SurveyStateMachine: ExecutionsTimedOut",
            "ScheduledSendFunction: Duration",
            "ScheduledSendFunction: Errors",
            "ScheduledSendFunction: Throttles",
            "ScheduledSendFunction: UnexpectedFailures",
            "ScheduledSendFunctionEvery5Minutes: FailedInvocations",
        ]
    )


def test_the_directly_invoked_functions_are_those_with_direct_sample_events() -> None:
    """events/<function>/ holds a sample of each way a function is invoked: a direct invocation
    (direct*.json, step_functions.json, eventbridge.json) means domain errors are raised."""
    code_dirs = {
        name: Path(resource["Properties"]["CodeUri"]).name
        for name, resource in template_source()["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    direct = {"direct*.json", "step_functions.json", "eventbridge.json"}
    invoked_directly = {
        name
        for name, folder in code_dirs.items()
        for pattern in direct
        if list((ROOT / "events" / folder).glob(pattern))
    }
    assert invoked_directly == DIRECTLY_INVOKED
    # The webhook is invoked through the API only, the reconciler by its schedule.
    assert set(code_dirs) - DIRECTLY_INVOKED == {"WebhookFunction", "ReconcileStatusesFunction"}


def test_directly_invoked_functions_have_no_errors_alarm(resources: dict[str, Any]) -> None:
    """A caller's ValidationError from a Step Functions task is a Lambda error too: alarming on
    Errors would page for callers' mistakes. UnexpectedFailures covers these functions."""
    for function in DIRECTLY_INVOKED:
        assert not alarmed(resources, "AWS/Lambda", "Errors", FunctionName={"Ref": function}), function


def test_duration_alarms_are_at_90_percent_of_each_functions_timeout(resources: dict[str, Any]) -> None:
    functions = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    for name, function in functions.items():
        [alarm] = alarmed(resources, "AWS/Lambda", "Duration", FunctionName={"Ref": name})
        assert alarm["Statistic"] == "Maximum"
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["Threshold"] == 0.9 * function["Timeout"] * 1000, name


def test_throttles_errors_and_unexpected_failures_alarm_on_any(resources: dict[str, Any]) -> None:
    for metric in ("Throttles", "Errors"):
        for alarm in alarmed(resources, "AWS/Lambda", metric):
            assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
                "Sum",
                0,
                "GreaterThanThreshold",
            )
    unexpected = alarmed(resources, NAMESPACE, "UnexpectedFailures", service=SERVICE)
    assert len(unexpected) == len([r for r in resources.values() if r["Type"] == "AWS::Lambda::Function"])
    for alarm in unexpected:
        assert (alarm["Statistic"], alarm["Threshold"], alarm["EvaluationPeriods"]) == ("Sum", 0, 1)


def test_queues_alarm_on_depth_and_age_before_messages_expire(resources: dict[str, Any]) -> None:
    for name in dead_letter_queues(resources):
        [depth] = alarmed(resources, "AWS/SQS", "ApproximateNumberOfMessagesVisible", QueueName=refers_to(name))
        assert depth["Threshold"] == 1 and depth["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert not alarmed(resources, "AWS/SQS", "NumberOfMessagesSent"), "a redrive is not counted as sent"
    for name, resource in resources.items():
        if resource["Type"] == "AWS::SQS::Queue":
            retention = resource["Properties"].get("MessageRetentionPeriod", DEFAULT_RETENTION_SECONDS)
            [age] = alarmed(resources, "AWS/SQS", "ApproximateAgeOfOldestMessage", QueueName=refers_to(name))
            assert age["Threshold"] < retention, "told of old messages before they are deleted"


def test_the_send_queue_is_watched_for_a_backlog_not_for_a_burst(resources: dict[str, Any]) -> None:
    """A burst waiting in the queue is what the queue is for: its age tells a backlog that lasts.
    A re-queued copy waits up to 15 minutes by design: the alarm is above that."""
    from twilio_messaging.send_queue import MAX_DELAY_SECONDS

    queue = refers_to("SendMessageQueue")
    [age] = alarmed(resources, "AWS/SQS", "ApproximateAgeOfOldestMessage", QueueName=queue)
    assert MAX_DELAY_SECONDS < age["Threshold"] < resources["SendMessageQueue"]["Properties"]["MessageRetentionPeriod"]
    assert age["DatapointsToAlarm"] < age["EvaluationPeriods"], "a condition that lasts"
    assert not alarmed(resources, "AWS/SQS", "ApproximateNumberOfMessagesVisible", QueueName=queue)
    body, _ = dashboard_body(resources)
    rows = graphed(body)
    product = {metric for namespace, metric, _ in rows if namespace == NAMESPACE}
    assert {"SendQueueRequeues", "SendQueueRetries", "SendQueueDeadLettered"} <= product
    queue_rows = {metric for _, metric, r in rows if r.get("dims") == ["QueueName", "<SendMessageQueue.QueueName>"]}
    assert {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"} <= queue_rows


def test_the_example_workflow_has_no_executions_failed_alarm(resources: dict[str, Any]) -> None:
    """Its failed executions are messages that were not delivered: a recipient's outcome."""
    machine = {"StateMachineArn": {"Ref": "SendAndWaitForDeliveryStateMachine"}}
    assert not alarmed(resources, "AWS/States", "ExecutionsFailed", **machine)
    assert alarmed(resources, "AWS/States", "ExecutionsTimedOut", **machine)
    assert alarmed(resources, "AWS/States", "ExecutionThrottled", **machine)


def test_api_alarms_name_the_rest_apis_name_and_stage(resources: dict[str, Any]) -> None:
    """A REST API's metrics have ApiName (its name, not its id) and Stage dimensions."""
    api = resources["TwilioApi"]["Properties"]
    api_name = api.get("Name", api["Body"]["info"]["title"])
    [stage] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::Stage"]
    where = {"ApiName": api_name, "Stage": stage["StageName"]}
    [errors] = alarmed(resources, "AWS/ApiGateway", "5XXError", **where)
    assert (errors["Statistic"], errors["Threshold"], errors["ComparisonOperator"]) == (
        "Sum",
        0,
        "GreaterThanThreshold",
    )
    [latency] = alarmed(resources, "AWS/ApiGateway", "Latency", **where)
    assert latency["ExtendedStatistic"] == "p99"
    assert latency["Threshold"] == {"Ref": "ApiLatencyP99ThresholdMs"}


def test_send_failure_rate_ignores_idle_periods(resources: dict[str, Any]) -> None:
    [alarm] = [a for a in alarms(resources).values() if "Metrics" in a]
    queries = {query["Id"]: query for query in alarm["Metrics"]}
    stats = {q["MetricStat"]["Metric"]["MetricName"]: q for q in queries.values() if "MetricStat" in q}
    assert set(stats) == {"MessagesSent", "SendFailures"}
    for query in stats.values():
        metric = query["MetricStat"]["Metric"]
        assert metric["Namespace"] == NAMESPACE and dimensions(metric["Dimensions"]) == {"service": SERVICE}
        assert query["MetricStat"]["Stat"] == "Sum" and query["ReturnData"] is False
    [returned] = [q for q in queries.values() if q.get("ReturnData")]
    assert returned["Expression"].startswith("IF(attempts >= 10, ")
    assert queries["attempts"]["Expression"] == "FILL(sent, 0) + FILL(failed, 0)"
    assert alarm["Threshold"] == {"Ref": "SendFailureRatePercent"}


@pytest.mark.parametrize(
    ("metric", "threshold"),
    [
        ("WebhooksRejected", {"Ref": "WebhookRejectionsThreshold"}),
        ("TwilioRateLimitRetries", {"Ref": "TwilioRateLimitRetriesThreshold"}),
        ("SecretReadFailures", 0),
    ],
)
def test_product_metric_alarms(resources: dict[str, Any], metric: str, threshold: Any) -> None:
    [alarm] = alarmed(resources, NAMESPACE, metric, service=SERVICE)
    assert alarm["Threshold"] == threshold and alarm["ComparisonOperator"] == "GreaterThanThreshold"


@pytest.mark.parametrize("dedicated", [False, True], ids=["default-bus", "dedicated-bus"])
def test_the_rule_alarm_names_the_rule_as_its_metrics_do(monkeypatch: pytest.MonkeyPatch, dedicated: bool) -> None:
    """On the default bus a rule's metrics have RuleName; on a bus of its own, EventBusName and
    RuleName, and Ref of the rule is "bus|name"."""
    resources = translated("IAM", monkeypatch, UseDedicatedSendBus=dedicated)
    rule = {"Ref": "SendMessageFunctionSendMessageRule"}
    [alarm] = [
        a for a in alarmed(resources, "AWS/Events", "FailedInvocations") if "send-message" in str(a["AlarmName"])
    ]
    if dedicated:
        assert dimensions(alarm["Dimensions"]) == {
            "EventBusName": {"Fn::Select": [0, {"Fn::Split": ["|", rule]}]},
            "RuleName": {"Fn::Select": [1, {"Fn::Split": ["|", rule]}]},
        }
    else:
        assert dimensions(alarm["Dimensions"]) == {"RuleName": rule}


def test_every_alarm_metric_is_emitted_by_the_code_or_aws(resources: dict[str, Any]) -> None:
    emitted = code_metric_names()
    for name, alarm in alarms(resources).items():
        for namespace, metric, dims in alarm_metrics(alarm):
            if namespace == NAMESPACE:
                assert metric in emitted, f"{name}: {metric} is emitted nowhere"
                assert dims.get("service") == SERVICE, f"{name}: Powertools adds service to every metric"
            else:
                assert metric in AWS_METRICS.get(namespace, set()), f"{name}: {namespace} {metric}"


def runbook_anchors() -> set[str]:
    """The anchors GitHub gives docs/operations.md's headings."""
    headings = re.findall(r"^#+ (.+)$", RUNBOOK.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_alarms_are_named_and_described_for_whoever_is_told(resources: dict[str, Any]) -> None:
    anchors = runbook_anchors()
    runbook = RUNBOOK.read_text()
    for name, alarm in alarms(resources).items():
        assert alarm["TreatMissingData"] == "notBreaching", name
        alarm_name = alarm["AlarmName"]["Fn::Sub"]
        assert alarm_name.startswith("${AWS::StackName}-"), name
        assert f"`<stack>-{alarm_name.removeprefix('${AWS::StackName}-')}`" in runbook, f"{name}: not in the runbook"
        description = alarm["AlarmDescription"]
        text = description if isinstance(description, str) else description["Fn::Sub"]
        assert len(text) <= 1024
        [anchor] = re.findall(r"docs/operations\.md#([\w-]+)", text)
        assert anchor in anchors, f"{name}: docs/operations.md has no section #{anchor}"
        assert alarm.get("DatapointsToAlarm", 1) <= alarm["EvaluationPeriods"]


# --- Notifications ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conditions", "actions"),
    [
        ({}, []),
        ({"HasAlarmTopicArn": True}, [{"Ref": "AlarmTopicArn"}]),
        ({"HasAlarmEmail": True}, [{"Ref": "AlarmNotificationTopic"}]),
        (
            {"HasAlarmTopicArn": True, "HasAlarmEmail": True},
            [{"Ref": "AlarmTopicArn"}, {"Ref": "AlarmNotificationTopic"}],
        ),
    ],
    ids=["neither", "topic-arn", "email", "both"],
)
def test_alarms_notify_the_topic_and_the_address_given(
    monkeypatch: pytest.MonkeyPatch, conditions: dict[str, bool], actions: list[Any]
) -> None:
    resources = translated("IAM", monkeypatch, **conditions)
    for name, alarm in alarms(resources).items():
        assert alarm["AlarmActions"] == actions, name
        assert alarm["OKActions"] == actions, name
    topics = {name: r for name, r in resources.items() if r["Type"] == "AWS::SNS::Topic"}
    subscriptions = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::SNS::Subscription"]
    if conditions.get("HasAlarmEmail"):
        assert set(topics) == {"AlarmNotificationTopic"}
        assert "KmsMasterKeyId" not in topics["AlarmNotificationTopic"]["Properties"], "CloudWatch could not publish"
        assert subscriptions == [
            {"TopicArn": {"Ref": "AlarmNotificationTopic"}, "Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}
        ]
    else:
        assert topics == {} and subscriptions == []
        assert "AlarmNotificationTopic" not in references(resources), "a reference to a topic that is not created"


def test_notification_parameters_accept_a_topic_arn_and_an_address() -> None:
    source = template_source()
    parameters = source["Parameters"]
    topic = re.compile(parameters["AlarmTopicArn"]["AllowedPattern"])
    assert topic.fullmatch("arn:aws:sns:us-east-1:123456789012:ops-alarms")
    assert topic.fullmatch("")
    assert not topic.fullmatch("ops-alarms") and not topic.fullmatch("arn:aws:sns:us-east-1:123456789012:x.fifo")
    email = re.compile(parameters["AlarmEmail"]["AllowedPattern"])
    assert email.fullmatch("ops@example.com") and email.fullmatch("")
    assert not email.fullmatch("ops") and not email.fullmatch("ops@example")
    assert parameters["AlarmTopicArn"]["Default"] == parameters["AlarmEmail"]["Default"] == ""
    assert source["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    assert source["Conditions"]["HasAlarmTopicArn"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}


# --- The dashboard ------------------------------------------------------------------------------


def dashboard_body(resources: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The dashboard's JSON with every ${…} of its Fn::Sub replaced by a stand-in (numbers for
    Number parameters), and the Fn::Sub text itself."""
    [dashboard] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    text: str = dashboard["DashboardBody"]["Fn::Sub"]
    parameters = template_source()["Parameters"]
    literal = "\x00"

    def stand_in(match: re.Match[str]) -> str:
        name = match.group(1)
        return "1" if parameters.get(name, {}).get("Type") == "Number" else f"<{name}>"

    body = re.sub(r"\$\{([^}!]+)\}", stand_in, text.replace("${!", literal)).replace(literal, "${")
    return json.loads(body), text


def graphed(body: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(namespace, metric, rendering) of each metric row of each metric widget, with the metrics
    that SEARCH expressions look for."""
    found = []
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        defaults = widget["properties"]
        for row in defaults["metrics"]:
            if isinstance(row[0], dict):
                expression = row[0]["expression"]
                for namespace, metric in re.findall(r"SEARCH\('\{([^,}]+)[^}]*\}[^']*MetricName=\"(\w+)\"", expression):
                    found.append((namespace, metric, {"search": expression}))
                continue
            options = row[-1] if isinstance(row[-1], dict) else {}
            names = row[: len(row) - (1 if options else 0)]
            found.append((names[0], names[1], {"stat": defaults.get("stat"), **options, "dims": names[2:]}))
    return found


def unknown_metrics(body: dict[str, Any]) -> list[str]:
    """The dashboard's metrics that nothing emits: a product metric no code of the layer names,
    one without Powertools' service dimension, or an AWS metric not in AWS_METRICS."""
    emitted = code_metric_names()
    unknown = []
    for namespace, metric, rendering in graphed(body):
        dims = rendering.get("dims")
        if namespace == NAMESPACE:
            if metric not in emitted or (dims is not None and dims[-2:] != ["service", SERVICE]):
                unknown.append(f"{namespace} {metric} {dims}")
        elif metric not in AWS_METRICS.get(namespace, set()):
            unknown.append(f"{namespace} {metric}")
    return unknown


def test_the_dashboard_names_only_metrics_the_code_or_aws_emits(resources: dict[str, Any]) -> None:
    body, text = dashboard_body(resources)
    assert unknown_metrics(body) == []
    known = set(resources) | set(template_source()["Parameters"]) | {"AWS::Region", "AWS::StackName"}
    assert references({"Fn::Sub": text}) <= known


def test_a_widget_of_a_metric_that_does_not_exist_yet_fails_the_check(resources: dict[str, Any]) -> None:
    """Campaign progress and opt-outs get widgets with the code that emits their metrics."""
    body, _ = dashboard_body(resources)
    body["widgets"].append(
        {
            "type": "metric",
            "properties": {
                "stat": "Sum",
                "metrics": [
                    [NAMESPACE, "CampaignSends", "service", SERVICE],
                    [NAMESPACE, "NotAMetric", "service", SERVICE],
                    [NAMESPACE, "MessagesSent"],
                    ["AWS/Lambda", "Invocation"],
                ],
            },
        }
    )
    assert unknown_metrics(body) == [
        f"{NAMESPACE} CampaignSends ['service', '{SERVICE}']",
        f"{NAMESPACE} NotAMetric ['service', '{SERVICE}']",
        f"{NAMESPACE} MessagesSent []",
        "AWS/Lambda Invocation",
    ]


def test_the_dashboard_shows_what_operators_watch(resources: dict[str, Any]) -> None:
    body, _ = dashboard_body(resources)
    rows = graphed(body)
    shown = {(namespace, metric) for namespace, metric, _ in rows}
    product = {metric for namespace, metric in shown if namespace == NAMESPACE}
    assert {
        "MessagesSent",
        "SendFailures",
        "SendFailuresByCode",
        "TwilioLatency",
        "WebhooksAccepted",
        "WebhooksRejected",
        "DuplicatesSuppressed",
        "TwilioRateLimitRetries",
        "TwilioConcurrentRequests",
        "UnexpectedFailures",
    } <= product
    [by_code] = [r for ns, m, r in rows if m == "SendFailuresByCode"]
    assert "{TwilioMessaging,ErrorCode,service}" in by_code["search"], "every error code, as SEARCH finds them"
    latency = {r.get("stat") for _, m, r in rows if m == "TwilioLatency"}
    assert {"p50", "p99"} <= latency
    functions = {name for name, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    for metric in ("Errors", "Duration"):
        graphed_functions = {r["dims"][1] for ns, m, r in rows if (ns, m) == ("AWS/Lambda", metric)}
        assert graphed_functions == {f"<{name}>" for name in functions}, metric
    for queue in dead_letter_queues(resources):
        assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in shown
        assert any(r.get("dims") == ["QueueName", f"<{queue}.QueueName>"] for _, _, r in rows)


def test_the_dashboard_lists_every_alarm_and_shows_campaigns(resources: dict[str, Any]) -> None:
    body, _ = dashboard_body(resources)
    [alarm_widget] = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(f"<{name}.Arn>" for name in alarms(resources))
    titles = [w["properties"].get("title", "") for w in body["widgets"]]
    assert "Campaign recipients" in titles and "Campaigns" in titles
    cells: set[tuple[int, int]] = set()
    for widget in body["widgets"]:
        area = {
            (x, y)
            for x in range(widget["x"], widget["x"] + widget["width"])
            for y in range(widget["y"], widget["y"] + widget["height"])
        }
        assert widget["x"] + widget["width"] <= 24 and not cells & area, "widgets overlap"
        cells |= area


def test_the_dashboard_is_an_output(resources: dict[str, Any]) -> None:
    outputs = template_source()["Outputs"]
    assert "${OperationsDashboard}" in outputs["DashboardUrl"]["Value"]["Fn::Sub"]
    assert outputs["AlarmNotificationTopicArn"]["Condition"] == "HasAlarmEmail"
