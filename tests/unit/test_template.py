"""Invariants of template.yaml that matter in production, checked on the template itself.

These hold for every resource present now and every one added later: each check walks the template
instead of naming resources, so a new queue without a DLQ or a new function without tracing fails here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.cfn_yaml import load_template
from offergrid_integration.archive import ARCHIVE_PREFIX, CHECKS_PREFIX
from offergrid_integration.queueing import SQS_MAX_MESSAGE_BYTES
from offergrid_integration.sqs_queue import CLAIM_CHECK_PREFIX
from offergrid_integration.webhooks.ingress import MAX_STALE_TOLERANCE_SECONDS
from offergrid_integration.webhooks.results import DEFAULT_TOLERANCE_SECONDS, StaleMode

TEMPLATE = load_template()
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]
GLOBAL_FUNCTION: dict[str, Any] = TEMPLATE.get("Globals", {}).get("Function", {})


def resources_of(type_name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in RESOURCES.items():
        if resource["Type"] == type_name:
            yield logical_id, resource.get("Properties", {})


def function_property(props: dict[str, Any], name: str) -> Any:
    return props.get(name, GLOBAL_FUNCTION.get(name))


def ref_target(value: Any) -> str | None:
    """Logical id a Ref / GetAtt points at, if the value is one."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


FUNCTIONS = dict(resources_of("AWS::Serverless::Function"))
QUEUES = dict(resources_of("AWS::SQS::Queue"))
DLQ_IDS = {
    ref_target(props["RedrivePolicy"]["deadLetterTargetArn"])
    for props in QUEUES.values()
    if "RedrivePolicy" in props
}
# Queues that functions (failed async invocations) and schedules (undelivered events) use as their DLQ.
DLQ_IDS |= {
    ref_target(props["DeadLetterQueue"]["TargetArn"])
    for props in FUNCTIONS.values()
    if "DeadLetterQueue" in props
}
DLQ_IDS |= {
    ref_target(event["Properties"]["DeadLetterConfig"]["Arn"])
    for props in FUNCTIONS.values()
    for event in props.get("Events", {}).values()
    if "Arn" in event.get("Properties", {}).get("DeadLetterConfig", {})
}


def sqs_consumers(queue_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for function_id, props in FUNCTIONS.items():
        for event in props.get("Events", {}).values():
            if event["Type"] == "SQS" and ref_target(event["Properties"]["Queue"]) == queue_id:
                yield function_id, props


def test_runtime_is_python313_for_every_function() -> None:
    for function_id, props in FUNCTIONS.items():
        assert function_property(props, "Runtime") == "python3.13", function_id


@pytest.mark.parametrize("queue_id", sorted(QUEUES))
def test_every_queue_is_encrypted(queue_id: str) -> None:
    props = QUEUES[queue_id]
    assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props


@pytest.mark.parametrize("queue_id", sorted(QUEUES))
def test_every_queue_has_a_dead_letter_queue_or_is_one(queue_id: str) -> None:
    props = QUEUES[queue_id]
    if queue_id in DLQ_IDS:
        assert props.get("MessageRetentionPeriod") == 1209600, "DLQs keep messages the full 14 days"
    else:
        assert ref_target(props["RedrivePolicy"]["deadLetterTargetArn"]) in QUEUES


@pytest.mark.parametrize("queue_id", sorted(QUEUES))
def test_visibility_timeout_is_at_least_six_times_each_consumer_timeout(queue_id: str) -> None:
    visibility = QUEUES[queue_id].get("VisibilityTimeout", 30)
    for function_id, props in sqs_consumers(queue_id):
        timeout = function_property(props, "Timeout")
        assert visibility >= 6 * timeout, f"{queue_id} visibility {visibility}s vs {function_id} {timeout}s"


def test_one_layer_for_the_chosen_architecture_built_and_precompiled_by_its_makefile() -> None:
    # Issue 12: one layer (not one per architecture, all built and uploaded), for the Architecture
    # parameter, built by layers/shared/Makefile (pip + compileall with unchecked-hash pycs).
    layers = [logical_id for logical_id, _ in resources_of("AWS::Serverless::LayerVersion")]
    assert layers == ["SharedLayer"]
    layer = RESOURCES["SharedLayer"]
    assert layer["Properties"]["CompatibleArchitectures"] == [{"Ref": "Architecture"}]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    content = Path(__file__).resolve().parents[2] / layer["Properties"]["ContentUri"]
    makefile = (content / "Makefile").read_text()
    assert "build-SharedLayer:" in makefile
    assert "--invalidation-mode unchecked-hash" in makefile
    assert GLOBAL_FUNCTION["Architectures"] == [{"Ref": "Architecture"}]
    assert GLOBAL_FUNCTION["Layers"] == [{"Ref": "SharedLayer"}]


def test_every_function_has_the_shared_layer_tracing_and_a_retained_log_group() -> None:
    layers = {ref_target(v) for v in GLOBAL_FUNCTION.get("Layers", []) if ref_target(v)}
    layers |= {
        target
        for v in GLOBAL_FUNCTION.get("Layers", [])
        if isinstance(v, dict) and "Fn::If" in v
        for target in (ref_target(v["Fn::If"][1]), ref_target(v["Fn::If"][2]))
        if target
    }
    assert layers
    assert all(RESOURCES[layer]["Type"] == "AWS::Serverless::LayerVersion" for layer in layers)
    for function_id, props in FUNCTIONS.items():
        assert "Layers" not in props, f"{function_id} overrides the global layer list"
        assert function_property(props, "Tracing") == "Active", function_id
        log_group = ref_target(props.get("LoggingConfig", {}).get("LogGroup"))
        assert log_group, f"{function_id} has no explicit log group"
        assert RESOURCES[log_group]["Properties"].get("RetentionInDays"), f"{log_group} keeps logs forever"


def _statements(props: dict[str, Any]) -> Iterator[dict[str, Any]]:
    policies = props.get("Policies", [])
    for policy in policies if isinstance(policies, list) else [policies]:
        if isinstance(policy, dict) and "Statement" in policy:
            yield from policy["Statement"]


def test_no_inline_iam_wildcards_beyond_sam_policy_templates() -> None:
    for function_id, props in FUNCTIONS.items():
        for policy in props.get("Policies", []):
            assert not (isinstance(policy, str) and policy.endswith("FullAccess")), function_id
        for statement in _statements(props):
            actions = statement.get("Action", [])
            for action in actions if isinstance(actions, list) else [actions]:
                assert "*" not in str(action), f"{function_id}: wildcard action {action}"
            resources = statement.get("Resource", [])
            for resource in resources if isinstance(resources, list) else [resources]:
                assert resource != "*", f"{function_id}: wildcard resource"


def test_api_has_throttling() -> None:
    apis = dict(resources_of("AWS::Serverless::Api"))
    assert apis
    for api_id, props in apis.items():
        settings = props.get("MethodSettings", [])
        assert any("ThrottlingRateLimit" in s and "ThrottlingBurstLimit" in s for s in settings), api_id


def test_secrets_are_never_literal_in_the_template() -> None:
    for secret_id, props in resources_of("AWS::SecretsManager::Secret"):
        assert "SecretString" not in props, f"{secret_id} would put a secret value in the template"


# ---------------------------------------------------------------------------------------------------
# Alarms, the alarm topic and the dashboard
# ---------------------------------------------------------------------------------------------------
ALARMS = dict(resources_of("AWS::CloudWatch::Alarm"))
PARAMETERS: dict[str, dict[str, Any]] = TEMPLATE["Parameters"]
ALARM_TOPIC = "AlarmTopic"
REPO = Path(__file__).resolve().parents[2]
SIGNATURE_ALARM_WORDS = "wrong or rotated secret, or an attack"


def alarm_metrics(props: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(namespace, metric name, {dimension: value}) of every metric an alarm reads."""
    if "MetricName" in props:
        dims = {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}
        yield props["Namespace"], props["MetricName"], dims
    for query in props.get("Metrics", []):
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            yield metric["Namespace"], metric["MetricName"], dims


def alarms_on(namespace: str, metric_name: str, dimension: str, target: str) -> list[str]:
    """Alarms reading `metric_name` whose `dimension` is a Ref/GetAtt of the resource `target`."""
    return [
        alarm_id
        for alarm_id, props in ALARMS.items()
        for ns, name, dims in alarm_metrics(props)
        if ns == namespace and name == metric_name and ref_target(dims.get(dimension)) == target
    ]


def _version_specific(alarm_id: str) -> bool:
    """An alarm on one version's metrics (ExecutedVersion): a rollout alarm, not the function's own."""
    return any("ExecutedVersion" in dims for _, _, dims in alarm_metrics(ALARMS[alarm_id]))


@pytest.mark.parametrize("function_id", sorted(FUNCTIONS))
@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_every_function_has_an_errors_and_a_throttles_alarm(function_id: str, metric: str) -> None:
    alarms = alarms_on("AWS/Lambda", metric, "FunctionName", function_id)
    [alarm_id] = [alarm_id for alarm_id in alarms if not _version_specific(alarm_id)]
    assert alarm_id == f"{function_id.removesuffix('Function')}{metric}Alarm"  # one naming scheme
    assert ALARMS[alarm_id]["Threshold"] == 0
    assert ALARMS[alarm_id]["ComparisonOperator"] == "GreaterThanThreshold"


@pytest.mark.parametrize("dlq_id", sorted(i for i in DLQ_IDS if i))
def test_every_dead_letter_queue_has_a_depth_alarm(dlq_id: str) -> None:
    alarms = alarms_on("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", dlq_id)
    assert alarms, f"nobody hears about messages in {dlq_id}"
    for alarm_id in alarms:
        assert ALARMS[alarm_id]["Threshold"] == 0, "one message in a DLQ is one too many"


def test_the_orders_queue_has_an_age_alarm_with_a_threshold_parameter() -> None:
    [alarm_id] = alarms_on("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", "OrdersQueue")
    threshold = ref_target(ALARMS[alarm_id]["Threshold"])
    assert threshold in PARAMETERS
    assert PARAMETERS[threshold]["Type"] == "Number"


# Heartbeats (issue 25): what must keep happening, so no data is the alarm. They notify only while the
# schedules that make the data run: a paused stack is not an incident.
HEARTBEAT_ALARMS = {
    "OfferSyncNotSucceedingAlarm": "OfferSyncSucceeded",
    "ReconcileNotRunningAlarm": "ReconcileRuns",
}


@pytest.mark.parametrize("alarm_id", sorted(ALARMS))
def test_every_alarm_notifies_the_topic_on_alarm_and_ok(alarm_id: str) -> None:
    props = ALARMS[alarm_id]
    assert [ref_target(a) for a in props.get("AlarmActions", [])] == [ALARM_TOPIC]
    assert [ref_target(a) for a in props.get("OKActions", [])] == [ALARM_TOPIC]
    if alarm_id in HEARTBEAT_ALARMS:
        assert props["TreatMissingData"] == "breaching", "a heartbeat's silence is the alarm"
        assert props["ActionsEnabled"] == {"Fn::If": ["SchedulesEnabled", True, False]}
    else:
        assert props.get("TreatMissingData") in {"notBreaching", "missing"}, "no data is no alarm"
    assert props["AlarmDescription"].strip()
    # The topic policy lets CloudWatch publish for alarms of this name prefix only.
    assert props["AlarmName"]["Fn::Sub"].startswith("offergrid-integration-${Environment}-")


def test_alarm_names_are_unique() -> None:
    names = [props["AlarmName"]["Fn::Sub"] for props in ALARMS.values()]
    assert len(names) == len(set(names))


def test_the_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use() -> None:
    # alias/aws/sns would make every alarm action fail: its key policy cannot admit CloudWatch.
    topic = RESOURCES[ALARM_TOPIC]
    assert topic["Type"] == "AWS::SNS::Topic"
    key_id = ref_target(topic["Properties"]["KmsMasterKeyId"])
    key = RESOURCES[key_id]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    assert any(
        s["Effect"] == "Allow"
        and s["Principal"].get("Service") == "cloudwatch.amazonaws.com"
        and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(s["Action"])
        for s in statements
    )
    [policy] = [
        p for _, p in resources_of("AWS::SNS::TopicPolicy") if ALARM_TOPIC in map(ref_target, p["Topics"])
    ]
    assert any(
        s["Principal"].get("Service") == "cloudwatch.amazonaws.com"
        for s in policy["PolicyDocument"]["Statement"]
    )


def test_the_alarm_email_subscription_is_optional() -> None:
    assert PARAMETERS["AlarmEmail"]["Default"] == ""
    [(sub_id, sub)] = list(resources_of("AWS::SNS::Subscription"))
    assert sub["Protocol"] == "email"
    assert ref_target(sub["Endpoint"]) == "AlarmEmail"
    condition = TEMPLATE["Conditions"][RESOURCES[sub_id]["Condition"]]
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}


def test_function_log_groups_are_encrypted_with_the_stack_key() -> None:
    for function_id, props in FUNCTIONS.items():
        log_group = RESOURCES[ref_target(props["LoggingConfig"]["LogGroup"]) or ""]["Properties"]
        assert ref_target(log_group.get("KmsKeyId")) == "ObservabilityKey", function_id


def test_aws_endpoint_url_is_declared_empty_for_sam_local_env_vars() -> None:
    assert GLOBAL_FUNCTION["Environment"]["Variables"]["AWS_ENDPOINT_URL"] == ""


# --- the metrics behind alarms and dashboard are emitted by the code ---------------------------------
def _emitted_metric_names() -> set[str]:
    """Metric names some code emits: literal names in add_metric / single_metric calls, the
    `metrics_names` constants those calls use, and what the run reports emit (recorded)."""
    import offergrid_integration.metrics_names as names
    from offergrid_integration.catalog.report import RunStatus, SyncReport
    from offergrid_integration.orders.sweep import SweepReport

    emitted: set[str] = set()
    sources = [
        *(REPO / "layers/shared/offergrid_integration").rglob("*.py"),
        *(REPO / "functions").glob("*/app.py"),
    ]
    call = re.compile(r"(?:add_metric|single_metric)\(\s*(?:name=)?(?:\"(\w+)\"|([A-Z][A-Z_]+)\b|(\w+))")
    for source in sources:
        text = source.read_text()
        for literal, constant, _variable in call.findall(text):
            if literal:
                emitted.add(literal)
            elif constant:
                emitted.add(getattr(names, constant))
    # The outcome -> metric tables beside their result types (emitted by `orders.processor.report`
    # and `webhooks.results.report`, which count nothing else by variable name)
    from offergrid_integration.orders.ports import OUTCOME_METRICS
    from offergrid_integration.webhooks.results import (
        MESSAGE_TOO_LARGE_REPORT,
        OUTCOME_REPORTS,
        UNKNOWN_EVENT_TYPE_REPORT,
    )

    emitted.update(OUTCOME_METRICS.values())
    for report in (*OUTCOME_REPORTS.values(), UNKNOWN_EVENT_TYPE_REPORT, MESSAGE_TOO_LARGE_REPORT):
        emitted.update((report.metric, *report.also_count))

    class Recorder:
        def add_metric(self, name: str, unit: str, value: float) -> None:
            emitted.add(name)

    for status in RunStatus:
        SyncReport(run_id="r", started_at=0.0, status=status).emit_metrics(Recorder())
    SweepReport().emit_metrics(Recorder())
    return emitted


EMITTED = _emitted_metric_names()


def test_the_metric_catalogue_is_exactly_what_the_code_emits() -> None:
    from offergrid_integration.metrics_names import CATALOGUE

    assert set(CATALOGUE) == EMITTED


def test_docs_metrics_md_lists_the_catalogue_with_its_services_and_dimensions() -> None:
    """The meanings live in docs/metrics.md: every metric of the catalogue, and only those, with the
    services and dimension the catalogue gives it."""
    from offergrid_integration.metrics_names import CATALOGUE, OFFERGRID_ERROR, OFFERGRID_ERROR_STATUSES

    rows = {}
    for line in (REPO / "docs" / "metrics.md").read_text(encoding="utf-8").splitlines():
        if match := re.match(r"\| `(\w+)`(?: \((\w+)\))? \| ([\w, -]+) \| (?:`(\w+)`)? *\| (.+) \|$", line):
            name, unit, services, dimension, meaning = match.groups()
            rows[name] = (unit or "Count", tuple(services.split(", ")), dimension, meaning)
    assert {name: row[:3] for name, row in rows.items()} == {
        name: (info.unit, info.services, info.dimension) for name, info in CATALOGUE.items()
    }
    assert ", ".join(OFFERGRID_ERROR_STATUSES) in rows[OFFERGRID_ERROR][3]


def _substitute(body: str) -> str:
    """A `!Sub` string as CloudFormation would resolve it: parameters by default, resources by name."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("AWS::"):
            return {"AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012"}[name]
        if name in PARAMETERS:
            return str(PARAMETERS[name]["Default"])
        logical_id = name.split(".")[0]
        assert logical_id in RESOURCES, f"${{{name}}} names no parameter or resource"
        return f"resolved-{name}"

    # `${!Literal}` is CloudFormation's escape for a literal `${Literal}` (dashboard dynamic labels).
    return re.sub(r"\$\{([\w:.]+)\}", value, body).replace("${!", "${")


DASHBOARD_ID, DASHBOARD = next(resources_of("AWS::CloudWatch::Dashboard"))
DASHBOARD_BODY: dict[str, Any] = json.loads(_substitute(DASHBOARD["DashboardBody"]["Fn::Sub"]))
SERVICES = {str(props["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]) for props in FUNCTIONS.values()}


def _dashboard_metrics() -> Iterator[tuple[str, str, dict[str, str]]]:
    for widget in DASHBOARD_BODY["widgets"]:
        for row in widget.get("properties", {}).get("metrics", []):
            if isinstance(row[0], dict):  # a SEARCH expression
                expression = row[0]["expression"]
                namespace, *dims = re.search(r"\{([^}]*)\}", expression).group(1).split(",")  # type: ignore[union-attr]
                name = re.search(r'MetricName="(\w+)"', expression).group(1)  # type: ignore[union-attr]
                yield namespace, name, dict.fromkeys(dims, "*")
            else:
                fields = [f for f in row if not isinstance(f, dict)]
                yield fields[0], fields[1], dict(zip(fields[2::2], fields[3::2], strict=True))


def _check_custom_metric(name: str, dims: dict[str, Any], where: str) -> None:
    from offergrid_integration.metrics_names import CATALOGUE, OFFERGRID_ERROR_STATUSES

    assert name in EMITTED, f"{where}: no code emits {name}"
    info = CATALOGUE[name]
    assert set(dims) == {"service"} | ({info.dimension} if info.dimension else set()), (
        f"{where}: {name} {dims}"
    )
    service = dims["service"]
    assert service == "*" or (service in SERVICES and service in info.services), f"{where}: {name} {service}"
    if info.dimension == "Status" and dims["Status"] != "*":
        assert dims["Status"] in OFFERGRID_ERROR_STATUSES


def test_the_dashboard_body_leaves_only_dashboard_variables_unresolved() -> None:
    body = _substitute(DASHBOARD["DashboardBody"]["Fn::Sub"])
    assert set(re.findall(r"\$\{(\w+)\(", body)) <= {"PROP"}
    assert body.count("${") == body.count("${PROP(")


def test_the_dashboard_shows_only_metrics_the_code_emits() -> None:
    namespaces = set()
    for namespace, name, dims in _dashboard_metrics():
        namespaces.add(namespace)
        if namespace == "OffergridIntegration":
            _check_custom_metric(name, dims, f"dashboard {DASHBOARD_ID}")
        else:
            assert namespace in {"AWS/Lambda", "AWS/SQS", "AWS/ApiGateway"}
            assert all(
                v.startswith("resolved-") or v in {"dev", "offergrid-integration-webhooks-dev"}
                for v in dims.values()
            )
    assert GLOBAL_FUNCTION["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"] in namespaces


def test_the_dashboard_covers_the_flow_end_to_end() -> None:
    shown = {name for _, name, _ in _dashboard_metrics()}
    flow = {
        "WebhookReceived", "WebhookRejected",  # webhooks received / rejected
        "ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage",  # queue depth and age
        "OrderAccepted", "OrderRejected", "OrderCancelled", "StatusPushed",  # decisions, status pushed
        "OfferSyncCreated", "OfferSyncUpdated",  # sync actions
        "OffergridError", "RateBudgetWait",  # Offergrid errors by status, the budget
    }  # fmt: skip
    assert flow <= shown
    [alarm_widget] = [w for w in DASHBOARD_BODY["widgets"] if w["type"] == "alarm"]
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(f"resolved-{a}.Arn" for a in ALARMS)


@pytest.mark.parametrize("alarm_id", sorted(ALARMS))
def test_alarms_on_our_metrics_use_emitted_names_and_dimensions(alarm_id: str) -> None:
    for namespace, name, dims in alarm_metrics(ALARMS[alarm_id]):
        if namespace == "OffergridIntegration":
            _check_custom_metric(name, dims, alarm_id)


def test_the_unauthorized_alarm_sums_every_signature_failure() -> None:
    from offergrid_integration.signature import SignatureReason

    props = ALARMS["WebhookUnauthorizedAlarm"]
    reasons = {dims["Reason"] for _, name, dims in alarm_metrics(props) if name == "WebhookRejected"}
    assert reasons == {reason.value for reason in SignatureReason}
    [expression] = [q for q in props["Metrics"] if q.get("ReturnData")]
    ids = {q["Id"] for q in props["Metrics"] if "MetricStat" in q}
    assert set(re.findall(r"FILL\((\w+), 0\)", expression["Expression"])) == ids
    assert SIGNATURE_ALARM_WORDS in " ".join(props["AlarmDescription"].split())


def test_the_catalog_incomplete_alarm_watches_what_a_run_that_cannot_trust_its_catalog_emits() -> None:
    # Decision 15: a needed column absent, a cut export or a manifest that does not match is alarmed even
    # when that run had nothing to take off sale (a first import without isActive creates all inactive)
    from offergrid_integration.catalog.report import SyncReport

    [(_, name, _dims)] = alarm_metrics(ALARMS["OfferSyncCatalogIncompleteAlarm"])

    class Recorder:
        def __init__(self) -> None:
            self.values: dict[str, float] = {}

        def add_metric(self, metric: str, unit: str, value: float) -> None:
            self.values[metric] = value

    emitted: dict[tuple[bool, bool], float] = {}
    for dry_run in (False, True):
        for problems in ([], ["the catalog looks cut short"]):
            recorder = Recorder()
            SyncReport(run_id="r", started_at=0.0, dry_run=dry_run, catalog_problems=problems).emit_metrics(
                recorder
            )
            emitted[(dry_run, bool(problems))] = recorder.values[name]
    assert emitted == {(False, False): 0, (False, True): 1, (True, False): 0, (True, True): 0}
    description = " ".join(ALARMS["OfferSyncCatalogIncompleteAlarm"]["AlarmDescription"].split())
    assert "docs/runbooks/offer-sync.md#catalog-not-trusted" in description
    assert "## Catalog not trusted" in (REPO / "docs/runbooks/offer-sync.md").read_text(encoding="utf-8")


def test_the_serviceability_alarm_watches_the_exception_the_processor_counts() -> None:
    from offergrid_integration.orders.serviceability import ServiceabilityUnavailable

    [(_, name, dims)] = alarm_metrics(ALARMS["ServiceabilityUnavailableAlarm"])
    assert (name, dims["Reason"]) == ("TransientFailure", ServiceabilityUnavailable.__name__)


# --- checkov suppressions ---------------------------------------------------------------------------
def test_every_checkov_suppression_carries_its_reason() -> None:
    skips = [
        (logical_id, skip)
        for logical_id, resource in RESOURCES.items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for logical_id, skip in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (logical_id, skip)
        assert len(" ".join(str(skip.get("comment", "")).split())) >= 40, (
            f"{logical_id} {skip['id']}: say why"
        )


# --- throughput: batches that fill at bursts, orders first in the budget (issue 16) ------------------
def test_the_processor_gathers_bursts_into_batches_with_a_small_window() -> None:
    event = next(iter(FUNCTIONS["OrderProcessorFunction"]["Events"].values()))["Properties"]
    assert ref_target(event["BatchSize"]) == "OrderProcessorBatchSize"
    assert ref_target(event["MaximumBatchingWindowInSeconds"]) == "OrderProcessorBatchingWindowSeconds"
    window = PARAMETERS["OrderProcessorBatchingWindowSeconds"]
    # a lone order is still decided within seconds: the window is small, and its derivation is written
    assert 0 < window["Default"] <= 5
    assert window["MaxValue"] <= 10
    assert "lone order" in window["Description"]
    assert "burst" in window["Description"]


@pytest.mark.parametrize("function_id", ["OrderProcessorFunction", "OfferSyncFunction"])
def test_both_budget_users_read_the_order_reserve(function_id: str) -> None:
    variables = FUNCTIONS[function_id]["Environment"]["Variables"]
    assert ref_target(variables["ORDER_RESERVE_PERCENT"]) == "OrderReservePercent"
    reserve = PARAMETERS["OrderReservePercent"]
    # the bounds the settings accept (config.CommonSettings.order_reserve_percent)
    assert (reserve["Default"], reserve["MinValue"], reserve["MaxValue"]) == (40, 0, 90)


# --- the claim-check bucket (docs/decisions.md#17) ------------------------------------------------------
def test_every_bucket_is_private_encrypted_and_tls_only() -> None:
    policies = dict(resources_of("AWS::S3::BucketPolicy"))
    for bucket_id, props in resources_of("AWS::S3::Bucket"):
        [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"], bucket_id
        assert all(props["PublicAccessBlockConfiguration"].values()), bucket_id
        [policy] = [p for p in policies.values() if ref_target(p["Bucket"]) == bucket_id]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in policy["PolicyDocument"]["Statement"]
        ), bucket_id


def test_claim_checks_expire_only_after_every_message_that_can_point_at_them() -> None:
    # A body must outlive the orders queue's retention and then its DLQ's.
    orders = QUEUES["OrdersQueue"]
    dlq = QUEUES[str(ref_target(orders["RedrivePolicy"]["deadLetterTargetArn"]))]
    longest_message_days = (orders["MessageRetentionPeriod"] + dlq["MessageRetentionPeriod"]) / 86_400
    rule = _lifecycle_rules()[CLAIM_CHECK_PREFIX]
    assert rule["Status"] == "Enabled"
    assert longest_message_days < rule["ExpirationInDays"] <= longest_message_days + 2


def _lifecycle_rules() -> dict[str, dict[str, Any]]:
    """The webhook bucket's lifecycle rules by the prefix each expires."""
    rules = RESOURCES["ClaimCheckBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    return {rule["Prefix"]: rule for rule in rules}


def test_every_prefix_the_webhook_writes_expires_by_its_own_rule() -> None:
    # One bucket, three prefixes (claim checks, the archive, deploy checks): each with its own retention,
    # none left without one, none expiring another's objects.
    rules = _lifecycle_rules()
    written = {
        str(r["Fn::Sub"]).split("/", 1)[1].removesuffix("*") for _, r in _s3_grants("WebhookIngressFunction")
    }
    assert written == set(rules) == {CLAIM_CHECK_PREFIX, ARCHIVE_PREFIX, CHECKS_PREFIX}
    assert all(rule["Status"] == "Enabled" for rule in rules.values())
    assert not any(a != b and a.startswith(b) for a in rules for b in rules), "prefixes overlap"
    # the archive keeps deliveries as long as the parameter says, 90 days unless told otherwise
    assert ref_target(rules[ARCHIVE_PREFIX]["ExpirationInDays"]) == "DeliveryArchiveRetentionDays"
    assert PARAMETERS["DeliveryArchiveRetentionDays"]["Default"] == 90
    assert rules[CHECKS_PREFIX]["ExpirationInDays"] == 1


def test_the_webhook_archives_into_its_bucket_and_judges_staleness_as_the_parameters_say() -> None:
    webhook_env = FUNCTIONS["WebhookIngressFunction"]["Environment"]["Variables"]
    assert ref_target(webhook_env["DELIVERY_ARCHIVE_BUCKET"]) == "ClaimCheckBucket"
    assert ref_target(webhook_env["STALE_DELIVERY_MODE"]) == "StaleDeliveryMode"
    assert ref_target(webhook_env["STALE_DELIVERY_TOLERANCE_SECONDS"]) == "StaleDeliveryToleranceSeconds"
    # docs/decisions.md#20: counted, not refused, unless someone decides otherwise
    assert PARAMETERS["StaleDeliveryMode"]["Default"] == "count"
    assert set(PARAMETERS["StaleDeliveryMode"]["AllowedValues"]) == {mode.value for mode in StaleMode}
    tolerance = PARAMETERS["StaleDeliveryToleranceSeconds"]
    assert tolerance["Default"] == DEFAULT_TOLERANCE_SECONDS
    # refusable before the dedup key is forgotten (IDEMPOTENCY_EXPIRY_SECONDS' default, a day)
    assert tolerance["MaxValue"] <= MAX_STALE_TOLERANCE_SECONDS == 86_400


def test_the_provider_bus_is_archived_as_long_as_the_deliveries() -> None:
    [(archive_id, archive)] = list(resources_of("AWS::Events::Archive"))
    assert ref_target(archive["SourceArn"]) == "ProviderEventBus"
    assert ref_target(archive["RetentionDays"]) == "DeliveryArchiveRetentionDays"
    assert "EventPattern" not in archive, "every event of the bus, both ways"
    # named after the stage, within the deploy pipeline's execution role (pipeline/bootstrap.yaml)
    assert archive["ArchiveName"]["Fn::Sub"].startswith("offergrid-integration-${Environment}-")
    assert archive_id in {ref_target(o["Value"]) for o in TEMPLATE["Outputs"].values()}


def _s3_grants(function_id: str) -> list[tuple[str, Any]]:
    """(action, resource) of each S3 statement of the function's role, one row per resource."""
    return [
        (statement["Action"], resource)
        for statement in _statements(FUNCTIONS[function_id])
        if str(statement["Action"]).startswith("s3:")
        for resource in (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
    ]


def test_the_webhook_may_only_put_claim_checks_and_deliveries_and_the_processor_only_get_claim_checks() -> (
    None
):
    def objects(prefix: str) -> dict[str, str]:
        return {"Fn::Sub": "${ClaimCheckBucket.Arn}/" + prefix + "*"}

    assert _s3_grants("WebhookIngressFunction") == [
        ("s3:PutObject", objects(CLAIM_CHECK_PREFIX)),
        ("s3:PutObject", objects(ARCHIVE_PREFIX)),
        ("s3:PutObject", objects(CHECKS_PREFIX)),
    ]
    assert _s3_grants("OrderProcessorFunction") == [("s3:GetObject", objects(CLAIM_CHECK_PREFIX))]
    webhook_env = FUNCTIONS["WebhookIngressFunction"]["Environment"]["Variables"]
    assert ref_target(webhook_env["CLAIM_CHECK_BUCKET"]) == "ClaimCheckBucket"
    # ... and the queue holds what the writer measures against (contract.py)
    assert QUEUES["OrdersQueue"]["MaximumMessageSize"] == SQS_MAX_MESSAGE_BYTES


# --- rollout: gradual deployment that rolls itself back (issue 24) -------------------------------------
ROLLED_OUT: dict[str, set[str]] = {
    # the function -> the alarms that stop its rollout and move its alias back
    "WebhookIngressFunction": {"WebhookIngressNewVersionErrorsAlarm", "WebhookApi5xxAlarm"},
    "OrderProcessorFunction": {
        "OrderProcessorNewVersionErrorsAlarm",
        "OrdersDeadLetterQueueGrowingAlarm",
        "OrderRejectionsJumpAlarm",
        "OrderPermanentFailuresJumpAlarm",
    },
}
HOOK = "PreTrafficHookFunction"


def _rollout_alarms(function_id: str) -> set[str]:
    preference = FUNCTIONS[function_id]["DeploymentPreference"]
    return {str(ref_target(alarm)) for alarm in preference["Alarms"]}


@pytest.mark.parametrize("function_id", sorted(ROLLED_OUT))
def test_the_webhook_and_the_processor_roll_out_gradually_behind_the_hook(function_id: str) -> None:
    props = FUNCTIONS[function_id]
    assert props["AutoPublishAlias"] == "live"  # API Gateway / the event source mapping invoke the alias
    preference = props["DeploymentPreference"]
    assert preference.get("Enabled", True) is True
    assert ref_target(preference["Type"]) == "DeploymentStrategy"  # per environment (samconfig.toml)
    assert ref_target(preference["Hooks"]["PreTraffic"]) == HOOK
    assert _rollout_alarms(function_id) == ROLLED_OUT[function_id]


@pytest.mark.parametrize("function_id", sorted(ROLLED_OUT))
def test_a_rollout_watches_the_new_versions_own_errors(function_id: str) -> None:
    [alarm_id] = [a for a in _rollout_alarms(function_id) if _version_specific(a)]
    props = ALARMS[alarm_id]
    dims = {d["Name"]: d["Value"] for d in props["Dimensions"]}
    assert (props["Namespace"], props["MetricName"]) == ("AWS/Lambda", "Errors")
    assert ref_target(dims["FunctionName"]) == function_id
    assert dims["Resource"] == {"Fn::Sub": f"${{{function_id}}}:live"}
    # the version being rolled out, not the function: the old version's errors must not stop a fix
    assert dims["ExecutedVersion"] == {"Fn::GetAtt": [function_id, "Version.Version"]}
    assert (props["Threshold"], props["ComparisonOperator"], props["Period"]) == (
        0,
        "GreaterThanThreshold",
        60,
    )


def test_the_rollout_alarms_watch_what_a_bad_release_changes_not_a_standing_state() -> None:
    from offergrid_integration.orders.ports import FailureReason

    # 5xx at the webhook
    [(namespace, name, _)] = alarm_metrics(ALARMS["WebhookApi5xxAlarm"])
    assert (namespace, name) == ("AWS/ApiGateway", "5XXError")
    # the orders DLQ growing (its depth a minute ago to now), never "not empty": a DLQ being worked on
    # must not roll back the release that fixes its cause
    growing = ALARMS["OrdersDeadLetterQueueGrowingAlarm"]
    [(namespace, name, dims)] = alarm_metrics(growing)
    assert (namespace, name, ref_target(dims["QueueName"])) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "OrdersDeadLetterQueue",
    )
    [expression] = [q for q in growing["Metrics"] if q.get("ReturnData")]
    assert expression["Expression"] == "DIFF(depth)"
    assert (growing["Threshold"], growing["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    standing = {"OrdersDeadLetterQueueAlarm", "OrdersQueueAgeAlarm", "WebhookIngressErrorsAlarm"}
    assert not standing & (
        _rollout_alarms("OrderProcessorFunction") | _rollout_alarms("WebhookIngressFunction")
    )
    # a jump in rejections: the rejected share of at least 5 decisions, over a parameter
    jump = ALARMS["OrderRejectionsJumpAlarm"]
    assert {name for _, name, _ in alarm_metrics(jump)} == {"OrderAccepted", "OrderRejected"}
    assert ref_target(jump["Threshold"]) == "RolloutRejectedPercentAlarm"
    [share] = [q for q in jump["Metrics"] if q.get("ReturnData")]
    assert ">= 5" in share["Expression"]
    # a jump in permanent failures: every reason summed, over a parameter
    failures = ALARMS["OrderPermanentFailuresJumpAlarm"]
    reasons = {dims["Reason"] for _, name, dims in alarm_metrics(failures) if name == "PermanentFailure"}
    assert reasons == {reason.value for reason in FailureReason}
    [total] = [q for q in failures["Metrics"] if q.get("ReturnData")]
    ids = {q["Id"] for q in failures["Metrics"] if "MetricStat" in q}
    assert set(re.findall(r"FILL\((\w+), 0\)", total["Expression"])) == ids
    assert ref_target(failures["Threshold"]) == "RolloutPermanentFailuresAlarm"


def test_the_deployment_strategy_is_a_codedeploy_lambda_configuration_canary_by_default() -> None:
    strategy = PARAMETERS["DeploymentStrategy"]
    for value in strategy["AllowedValues"]:
        assert re.fullmatch(r"AllAtOnce|Canary10Percent\d+Minutes|Linear10PercentEvery\d+Minutes?", value)
    # a stack deployed without samconfig.toml's value (sam deploy by hand) gets a canary, not all at once
    assert strategy["Default"].startswith("Canary")


def test_the_offer_sync_runs_on_its_alias_without_traffic_shifting() -> None:
    sync = FUNCTIONS["OfferSyncFunction"]
    assert sync["AutoPublishAlias"] == "live"  # the schedules invoke the alias: the version deployed
    assert "DeploymentPreference" not in sync  # a scheduled run has no traffic to split
    assert set(FUNCTIONS) - {HOOK} == {*ROLLED_OUT, "OfferSyncFunction"}, "a new function: roll it out?"


def test_the_pre_traffic_hook_may_invoke_the_new_versions_and_report_nothing_more() -> None:
    hook = FUNCTIONS[HOOK]
    # CodeDeploy's role (AWSCodeDeployRoleForLambda) invokes only hooks named CodeDeployHook_*
    assert hook["FunctionName"]["Fn::Sub"].startswith("CodeDeployHook_")
    variables = hook["Environment"]["Variables"]
    assert variables["WEBHOOK_INGRESS_VERSION"] == {"Ref": "WebhookIngressFunction.Version"}
    assert variables["ORDER_PROCESSOR_VERSION"] == {"Ref": "OrderProcessorFunction.Version"}
    assert (
        variables["OFFERGRID_WEBHOOK_SECRET"]
        == FUNCTIONS["WebhookIngressFunction"]["Environment"]["Variables"]["OFFERGRID_WEBHOOK_SECRET"]
    )
    allowed = {
        action: statement["Resource"]
        for statement in _statements(hook)
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert allowed == {
        "lambda:InvokeFunction": [
            {"Ref": "WebhookIngressFunction.Version"},
            {"Ref": "OrderProcessorFunction.Version"},
        ],
        "codedeploy:PutLifecycleEventHookExecutionStatus": {
            "Fn::Sub": "arn:${AWS::Partition}:codedeploy:${AWS::Region}:${AWS::AccountId}:"
            "deploymentgroup:${ServerlessDeploymentApplication}/*"
        },
    }
    [secret_policy] = [p for p in hook["Policies"] if "AWSSecretsManagerGetSecretValuePolicy" in p]
    webhook_secret = variables["OFFERGRID_WEBHOOK_SECRET"]
    assert secret_policy["AWSSecretsManagerGetSecretValuePolicy"]["SecretArn"] == webhook_secret
    # it waits for the processor's whole timeout and still has time to report
    timeouts = [function_property(FUNCTIONS[f], "Timeout") for f in ROLLED_OUT]
    assert function_property(hook, "Timeout") > sum(timeouts)


# --- silence and health (issue 25): what stops happening raises an alarm -------------------------------
def _metric_stats(alarm_id: str) -> dict[str, tuple[dict[str, Any], Any]]:
    """Metric name -> (its dimensions, its period) of each metric an alarm reads."""
    stats: dict[str, tuple[dict[str, Any], Any]] = {}
    for query in ALARMS[alarm_id].get("Metrics", []):
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            stats[metric["MetricName"]] = (dims, query["MetricStat"]["Period"])
    return stats


def _expression(alarm_id: str) -> str:
    [expression] = [q["Expression"] for q in ALARMS[alarm_id]["Metrics"] if "Expression" in q]
    return str(expression)


def _hours(parameter: str) -> dict[str, Any]:
    return {"Fn::FindInMap": ["AlarmHours", {"Ref": parameter}, "Seconds"]}


def test_every_alarm_hours_parameter_has_a_period_for_each_of_its_values() -> None:
    periods = TEMPLATE["Mappings"]["AlarmHours"]
    assert all(entry["Seconds"] == int(hours) * 3600 for hours, entry in periods.items())
    hour_parameters = [name for name in PARAMETERS if name.endswith("AlarmHours")]
    assert len(hour_parameters) == 3
    for name in hour_parameters:
        assert {str(value) for value in PARAMETERS[name]["AllowedValues"]} <= set(periods), name
        assert str(PARAMETERS[name]["Default"]) in periods, name


def test_the_silence_alarm_wants_verified_deliveries_whenever_the_sweep_lists_pending_orders() -> None:
    # no verified delivery in the window AND pending orders listed by the sweep in the same window
    window = _hours("WebhookSilenceAlarmHours")
    assert _metric_stats("WebhookSilenceAlarm") == {
        "WebhookVerified": ({"service": "webhook-ingress"}, window),
        "OrderSweepListed": ({"service": "offer-sync"}, window),
    }
    expression = _expression("WebhookSilenceAlarm").replace(" ", "")
    # a window without a single verified delivery must count as 0 of them, not as no data
    assert "FILL(verified,0)==0" in expression
    assert "FILL(listed,0)>0" in expression
    props = ALARMS["WebhookSilenceAlarm"]
    assert (props["Threshold"], props["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    # with the schedule paused the sweep lists nothing: no alarm on a stack that is not running
    assert props["TreatMissingData"] == "notBreaching"
    assert PARAMETERS["WebhookSilenceAlarmHours"]["Default"] == 6


def test_an_order_only_the_sweep_found_raises_an_alarm() -> None:
    props = ALARMS["OrderFoundOnlyBySweepAlarm"]
    assert _metric_stats("OrderFoundOnlyBySweepAlarm") == {
        "OrderSweepEnqueued": ({"service": "offer-sync"}, 3600)
    }
    assert (props["Threshold"], props["ComparisonOperator"]) == (0, "GreaterThanThreshold")


@pytest.mark.parametrize(
    ("alarm_id", "hours"),
    [
        ("OfferSyncNotSucceedingAlarm", "OfferSyncSilenceAlarmHours"),
        ("ReconcileNotRunningAlarm", "ReconcileSilenceAlarmHours"),
    ],
)
def test_a_heartbeat_alarms_when_its_beat_stops_for_its_hours(alarm_id: str, hours: str) -> None:
    props = ALARMS[alarm_id]
    assert _metric_stats(alarm_id) == {HEARTBEAT_ALARMS[alarm_id]: ({"service": "offer-sync"}, _hours(hours))}
    assert _expression(alarm_id).replace(" ", "") == "FILL(runs,0)"
    assert (props["Threshold"], props["ComparisonOperator"]) == (1, "LessThanThreshold")
    # the schedules that make the beat are the offer sync's (paused with OfferSyncScheduleState)
    assert TEMPLATE["Conditions"]["SchedulesEnabled"] == {
        "Fn::Equals": [{"Ref": "OfferSyncScheduleState"}, "ENABLED"]
    }
    schedules = FUNCTIONS["OfferSyncFunction"]["Events"]
    assert {ref_target(event["Properties"]["State"]) for event in schedules.values()} == {
        "OfferSyncScheduleState"
    }


def test_a_delivery_not_archived_raises_an_alarm() -> None:
    props = ALARMS["DeliveryArchiveFailedAlarm"]
    assert _metric_stats("DeliveryArchiveFailedAlarm") == {
        "WebhookArchiveFailed": ({"service": "webhook-ingress"}, 300)
    }
    assert (props["Threshold"], props["ComparisonOperator"]) == (0, "GreaterThanThreshold")
