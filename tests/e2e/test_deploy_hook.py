"""The pre-traffic hook (functions/deploy_hook) against the local stack: it passes a working build and
tells CodeDeploy so, fails a broken one, and always reports (issue 24).

The local stack serves what the hook calls in AWS (devtools/local/lambda_api.py): the Lambda Invoke API
of the new versions (locally, the code on disk) and CodeDeploy's PutLifecycleEventHookExecutionStatus,
whose reports it records. A broken build is the project's functions copied and broken, run from the
same template.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.local.__main__ import local_invoke
from devtools.local.stack import LocalEnvironment
from functions.deploy_hook.app import queue_event
from offergrid_integration.contract import DEPLOY_CHECK_EVENT
from tests.fixtures.local_stack import empty_queues

REPO = Path(__file__).resolve().parents[2]
HOOK = "PreTrafficHookFunction"

pytestmark = pytest.mark.slow


def _codedeploy_event(deployment_id: str) -> dict[str, str]:
    """What CodeDeploy sends a BeforeAllowTraffic hook."""
    return {"DeploymentId": deployment_id, "LifecycleEventHookExecutionId": f"{deployment_id}-hook"}


def _queued(env: LocalEnvironment) -> list[dict[str, Any]]:
    assert env.stack is not None
    sqs = env.stack.client("sqs")
    url = env.stack.outputs["OrdersQueueUrl"]
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
        "Messages", []
    )


@pytest.fixture(scope="module")
def working(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEnvironment]:
    stack_file = tmp_path_factory.mktemp("hook") / "stack.json"
    with LocalEnvironment(log_dir=None, stack_file=stack_file).start(warm=False) as env:
        yield env


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEnvironment]:
    """The same template on a build whose webhook cannot start and whose processor fails every record."""
    root = tmp_path_factory.mktemp("broken-build")
    shutil.copytree(REPO / "functions", root / "functions")
    (root / "functions" / "webhook_ingress" / "app.py").write_text(
        'raise ImportError("a release that forgot a module")\n', encoding="utf-8"
    )
    (root / "functions" / "order_processor" / "app.py").write_text(
        textwrap.dedent(
            """
            def lambda_handler(event, context):  # a release that cannot read the queue's messages
                return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}
            """
        ),
        encoding="utf-8",
    )
    with LocalEnvironment(log_dir=None, code_root=root, with_api=False).start(warm=False) as env:
        yield env


def test_the_hook_passes_a_working_build_and_tells_codedeploy(working: LocalEnvironment) -> None:
    assert working.fake is not None
    assert working.lambda_api is not None
    working.fake.clear_calls()
    # When CodeDeploy runs the hook before a release takes traffic
    outcome = working.invoke(HOOK, _codedeploy_event("d-WORKING"))
    # Then both new versions passed their check, and CodeDeploy was told Succeeded
    assert outcome.ok, outcome.error
    assert outcome.result["status"] == "Succeeded"
    assert [(c["check"], c["ok"]) for c in outcome.result["checks"]] == [
        ("webhook-ingress", True),
        ("order-processor", True),
    ]
    assert working.lambda_api.hook_statuses["d-WORKING"] == [("d-WORKING-hook", "Succeeded")]
    # and nothing happened to an order: not a single Offergrid request
    assert working.fake.calls == []
    empty_queues(working)


def test_the_hooks_queue_message_is_the_one_the_webhook_queued(working: LocalEnvironment) -> None:
    # Given the hook's check, its webhook version queued the delivery on the orders queue (the old
    # processor, in AWS, keeps it); the processor's version was given the hook's own copy of it
    working.invoke(HOOK, _codedeploy_event("d-SAME-MESSAGE"))
    [queued] = _queued(working)
    body = json.loads(queued["Body"])
    assert body["event"]["event"] == DEPLOY_CHECK_EVENT
    # Then the message the hook gives the processor is that one: same body (but the time it was
    # received), same attributes. One contract, the ingress's.
    wire = body["event"]
    payload = {"event": wire["event"], **wire["extra"], "timestamp": wire["timestamp"]}  # what was signed
    [record] = queue_event(payload, correlation_id="x")["Records"]
    built = json.loads(record["body"])
    assert {k: v for k, v in built.items() if k not in ("receivedAt", "correlationId")} == {
        k: v for k, v in body.items() if k not in ("receivedAt", "correlationId")
    }
    moment = ("receivedAt", "correlationId")  # when and by which request, not what
    attributes = {k: v["StringValue"] for k, v in queued["MessageAttributes"].items() if k not in moment}
    built_attributes = {
        k: v["stringValue"] for k, v in record["messageAttributes"].items() if k not in moment
    }
    assert built_attributes == attributes
    assert attributes["dedupKey"] == body["dedupKey"]
    empty_queues(working)


def test_the_hook_fails_a_broken_build_and_tells_codedeploy(broken: LocalEnvironment) -> None:
    assert broken.lambda_api is not None
    # When CodeDeploy runs the hook for a release that is broken
    outcome = broken.invoke(HOOK, _codedeploy_event("d-BROKEN"))
    # Then each broken version fails its check, and CodeDeploy is told Failed: the release rolls back
    assert outcome.ok, outcome.error  # the hook itself worked: it is the release that failed
    assert outcome.result["status"] == "Failed"
    checks = {c["check"]: c for c in outcome.result["checks"]}
    assert not checks["webhook-ingress"]["ok"]
    assert "Runtime.ImportModuleError" in checks["webhook-ingress"]["detail"]
    assert not checks["order-processor"]["ok"]
    assert checks["order-processor"]["detail"] == "batchItemFailures: 1, expected none"
    assert broken.lambda_api.hook_statuses["d-BROKEN"] == [("d-BROKEN-hook", "Failed")]


def test_the_hook_reports_failed_when_it_cannot_run_its_checks(working: LocalEnvironment) -> None:
    assert working.stack_file is not None
    assert working.lambda_api is not None
    # Given a hook whose new version names a function that does not exist
    wrong = {HOOK: {"WEBHOOK_INGRESS_VERSION": "arn:aws:lambda:eu-west-1:123456789012:function:Gone:7"}}
    outcome, ignored = local_invoke(
        HOOK, _codedeploy_event("d-CANNOT-RUN"), stack_file=working.stack_file, env_vars=wrong
    )
    # Then it still reports, Failed (CodeDeploy would otherwise wait an hour), and says why
    assert ignored == []
    assert outcome.ok, outcome.error
    assert outcome.result["status"] == "Failed"
    [check] = outcome.result["checks"]
    assert check == {
        "check": "hook",
        "ok": False,
        "detail": "could not run the checks: ResourceNotFoundException",
    }
    assert working.lambda_api.hook_status("d-CANNOT-RUN") == "Failed"
