"""`python -m devtools.local invoke`: every file in events/ through the Docker-free local invoke path.

One local stack from the project's template.yaml for the module (moto server + Offergrid fake, its
endpoints in a stack file); each event is invoked the way a developer does it, through the CLI's
`main` (a fresh worker per invocation, as `sam local invoke` starts a fresh container).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.local.__main__ import local_invoke
from devtools.local.__main__ import main as local_main
from devtools.local.events import trigger_of
from devtools.local.runtime import FunctionWorker
from devtools.local.stack import SAMPLE_CATALOG, LocalEnvironment
from devtools.local.template import FunctionSpec
from devtools.local.testing import write_project
from tests.fixtures.local_stack import empty_queues

REPO = Path(__file__).resolve().parents[2]
EVENTS = sorted((REPO / "events").glob("*.json"))
SAMPLE_EVENTS = [path for path in EVENTS if path.name != "env.json"]
WEBHOOK_STATUS = {
    "webhook_bad_signature.json": 401,
    "webhook_malformed_body.json": 400,
    # `sam local generate-event apigateway ...` untouched: unsigned
    "sam_apigateway_aws_proxy.json": 401,
    "sam_apigateway_http_api_proxy.json": 401,
    "http_api_webhook_get.json": 405,
}
WEBHOOK_PREFIXES = ("webhook_", "http_api_webhook_", "sam_apigateway_")


@pytest.fixture(scope="module")
def warm_workers() -> Iterator[dict[str, FunctionWorker]]:
    """Workers reused across the parametrised invocations (a cold start each would be ~1 s)."""
    workers: dict[str, FunctionWorker] = {}
    yield workers
    for worker in workers.values():
        worker.stop()


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEnvironment]:
    stack_file = tmp_path_factory.mktemp("local") / "stack.json"
    env = LocalEnvironment(log_dir=None, stack_file=stack_file, with_api=True, catalog=SAMPLE_CATALOG)
    with env.start(warm=False):
        yield env


def _function_for(env: LocalEnvironment, event_file: str) -> FunctionSpec:
    """Which function takes an event file, by the trigger type its name starts with (local invoke's rule)."""
    types = trigger_of(event_file)
    if types is None:
        raise AssertionError(f"events/{event_file}: no TRIGGERS rule (devtools/local/events.py) takes it")
    for spec in env.specs.values():
        if spec.events_of_type(*types) and env.has_code(spec.logical_id):
            return spec
    pytest.skip(f"template.yaml has no function with a {'/'.join(types)} event (with code) yet")


def _invoke(local: LocalEnvironment, function_id: str, event: Path, *extra: str) -> tuple[int, str, str]:
    assert local.stack_file is not None
    import io
    from contextlib import redirect_stderr, redirect_stdout

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = local_main(
            ["invoke", function_id, "-e", str(event), "--stack-file", str(local.stack_file), *extra]
        )
    return code, out.getvalue(), err.getvalue()


def test_every_sample_event_has_a_rule():
    assert SAMPLE_EVENTS, "events/ is empty"
    for path in SAMPLE_EVENTS:
        assert trigger_of(path.name) is not None or path.name.startswith("eventbridge_"), path.name


@pytest.mark.parametrize(
    "event_file", [p.name for p in SAMPLE_EVENTS if not p.name.startswith("eventbridge_")]
)
def test_sample_event_through_local_invoke(
    local: LocalEnvironment, warm_workers: dict[str, FunctionWorker], event_file: str
):
    spec = _function_for(local, event_file)
    assert local.stack_file is not None
    event = json.loads((REPO / "events" / event_file).read_text())
    outcome, ignored = local_invoke(
        spec.logical_id, event, stack_file=local.stack_file, warm_workers=warm_workers
    )
    assert outcome.ok, outcome.error
    assert ignored == []
    result = outcome.result
    if event_file.startswith(WEBHOOK_PREFIXES):
        expected = WEBHOOK_STATUS.get(event_file)
        if expected is None:  # accepted: Offergrid only needs a 2xx
            assert 200 <= result["statusCode"] < 300, result
        else:
            assert result["statusCode"] == expected, result
    elif event_file.startswith(("sqs_", "sam_sqs_")):
        # the processor answers with a partial batch response; the fake does not know these items,
        # and sam_sqs_receive_message.json's body ("Test message.") is no orders message: both are
        # permanent problems recorded by the processor, not retries
        assert result == {"batchItemFailures": []}
    elif event_file == "scheduled_reconcile_dry_run.json":
        # the reconciliation alone, as a dry run: it reports, it queues no repair
        assert result["dryRun"] is True
        assert result["reconcile"]["dryRun"] is True
        assert result["reconcile"]["repairsQueued"] == 0
        assert result.get("sync") is None
    else:
        assert isinstance(result, dict)
        assert "sync" in result or "sweep" in result or "reconcile" in result


@pytest.mark.parametrize("event_file", [p.name for p in SAMPLE_EVENTS if p.name.startswith("eventbridge_")])
def test_eventbridge_event_through_the_bus(local: LocalEnvironment, event_file: str):
    # An EventBridge event is what the bus delivers: put it on the bus whose rule matches, and the
    # rule's SQS target (the orders queue) gets the envelope, which the processor then handles.
    assert local.stack is not None
    assert local.template is not None
    event = json.loads((REPO / "events" / event_file).read_text())
    buses = [res.ref for lid, res in local.stack.of_type("AWS::Events::EventBus").items()]
    consumers = [s for s in local.sources if local.has_code(s.function_id)]
    if not buses or not consumers:
        pytest.skip("template.yaml has no event bus or no SQS consumer with code yet")
    empty_queues(local)
    events = local.stack.client("events")
    for bus in buses:
        events.put_events(
            Entries=[
                {
                    "EventBusName": bus,
                    "Source": event["source"],
                    "DetailType": event["detail-type"],
                    "Detail": json.dumps(event["detail"]),
                }
            ]
        )
    reports = local.drain(timeout=60)
    delivered = sum(report.received for report in reports.values())
    assert delivered >= 1, "no rule routed the event to a queue"
    assert all(not report.errors for report in reports.values())


def test_invoke_cli_as_a_process_prints_the_result(local: LocalEnvironment):
    # Given the CLI run exactly as the README says, against the running stack's file
    assert local.stack_file is not None
    completed = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-m",
            "devtools.local",
            "invoke",
            "WebhookIngressFunction",
            "-e",
            "events/webhook_order_created.json",
            "--stack-file",
            str(local.stack_file),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Then the handler's result is the JSON on stdout, its logs on stderr
    assert completed.returncode == 0, completed.stderr
    assert 200 <= json.loads(completed.stdout)["statusCode"] < 300
    assert "webhook queued" in completed.stderr


def test_env_vars_file_trap_warns_about_ignored_variables(local: LocalEnvironment, tmp_path: Path):
    env_vars = tmp_path / "env.json"
    env_vars.write_text(
        json.dumps(
            {
                "WebhookIngressFunction": {"POWERTOOLS_LOG_LEVEL": "DEBUG", "NOT_DECLARED_ANYWHERE": "x"},
                "Parameters": {"ALSO_UNDECLARED": "y"},
            }
        )
    )
    code, out, err = _invoke(
        local,
        "WebhookIngressFunction",
        REPO / "events" / "webhook_order_created.json",
        "--env-vars",
        str(env_vars),
    )
    assert code == 0
    assert 200 <= json.loads(out)["statusCode"] < 300
    assert "warning:" in err
    assert "ALSO_UNDECLARED, NOT_DECLARED_ANYWHERE" in err
    assert "POWERTOOLS_LOG_LEVEL" not in err.split("warning:")[1].split("\n")[0]


def test_handler_error_exits_non_zero_with_the_error_json(tmp_path: Path):
    template = write_project(
        tmp_path,
        """
        Transform: AWS::Serverless-2016-10-31
        Resources:
          FailingFunction:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: fn/
              Handler: app.handler
              Runtime: python3.13
        """,
        {"fn": "def handler(event, context):\n    raise KeyError('missing')\n"},
    )
    (tmp_path / "event.json").write_text("{}")
    completed = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-m",
            "devtools.local",
            "invoke",
            "FailingFunction",
            "-e",
            str(tmp_path / "event.json"),
            "--template",
            str(template),
            "--ephemeral",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 1
    assert json.loads(completed.stdout)["errorType"] == "KeyError"


def test_without_a_running_stack_invoke_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    missing = tmp_path / "none.json"
    code = local_main(["invoke", "WebhookIngressFunction", "--stack-file", str(missing)])
    assert code == 2
    err = capsys.readouterr().err
    assert f"start it with `.venv/bin/python -m devtools.local up --stack-file {missing}`" in err
    assert "--ephemeral" in err
    assert "no -e" not in err  # nothing was invoked: no word on which event it would have been


# --- issue 22: default events, files named, batch outcomes visible --------------------------------
@pytest.mark.parametrize(
    ("function_id", "sample"),
    [
        ("WebhookIngressFunction", "webhook_order_created.json"),
        ("OrderProcessorFunction", "sqs_order_created.json"),
        ("OfferSyncFunction", "scheduled_offer_sync_dry_run.json"),
    ],
)
def test_without_an_event_each_function_gets_its_own_sample(
    local: LocalEnvironment, function_id: str, sample: str
):
    # `make invoke FUNCTION=OfferSyncFunction` (no EVENT) sent the webhook sample: ten "Extra inputs"
    assert local.stack_file is not None
    code, out, err = _invoke_cli(local, function_id)
    assert f"no -e: events/{sample}, {function_id}'s sample event" in err
    assert "Extra inputs are not permitted" not in err
    result = json.loads(out)
    if function_id == "OfferSyncFunction":
        assert code == 0, err
        assert result["sync"]["status"] == "dry_run"  # the default is a dry run: nothing written
    elif function_id == "WebhookIngressFunction":
        assert code == 0, err
        assert result["statusCode"] == 200


def _invoke_cli(local: LocalEnvironment, *argv: str) -> tuple[int, str, str]:
    assert local.stack_file is not None
    done = subprocess.run(  # noqa: S603 - our CLI, as `make invoke` runs it
        [sys.executable, "-m", "devtools.local", "invoke", *argv, "--stack-file", str(local.stack_file)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def test_a_permanent_404_in_a_batch_fails_the_invoke_and_says_so(local: LocalEnvironment):
    # Given an order.created for an item the local Offergrid does not hold (this stack seeds nothing)
    code, out, err = _invoke_cli(local, "OrderProcessorFunction", "-e", "events/sqs_order_created.json")
    # Then the batch response alone looks clean...
    assert json.loads(out) == {"batchItemFailures": []}
    # ...but the invoke says what happened to the record, and fails
    assert "OrderProcessorFunction: 1 record: 1 permanent failure (item-456-def)" in err
    assert "1 record(s) failed permanently (recorded, not retried): item-456-def: item_not_found" in err
    assert "404" in err.splitlines()[-1]
    assert code == 1


def test_ephemeral_seeds_the_items_the_samples_name(tmp_path: Path):
    # `invoke --ephemeral` with the sample order.created: the item exists, so it is decided
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "devtools.local",
            "invoke",
            "OrderProcessorFunction",
            "-e",
            "events/sqs_order_created.json",
            "--ephemeral",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == {"batchItemFailures": []}
    assert "OrderProcessorFunction: 1 record: 1 accepted (item-456-def)" in done.stderr


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["-e", "{bad}"], "error: -e {bad}: not JSON (Expecting value at line 2 column 1)"),
        (["-e", "{missing}"], "error: -e {missing}: no such file"),
        (["-e", "{folder}"], "error: -e {folder}: a folder, not a JSON file"),
        (["--env-vars", "{folder}"], "error: --env-vars {folder}: a folder, not a JSON file"),
        (["--env-vars", "{list_section}"], "error: --env-vars {list_section}: 'Parameters' is a list"),
        (["--env-vars", "{not_object}"], "error: --env-vars {not_object}: an env-vars file is a JSON object"),
        (["--env-vars", "{bad}"], "error: --env-vars {bad}: not JSON"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_flag_and_the_file_and_nothing_is_invoked(
    local: LocalEnvironment, tmp_path: Path, argv: list[str], says: str
):
    files = {
        "bad": tmp_path / "bad.json",
        "missing": tmp_path / "missing.json",
        "folder": tmp_path,
        "list_section": tmp_path / "list.json",
        "not_object": tmp_path / "array.json",
    }
    files["bad"].write_text('{"a":\n')
    files["list_section"].write_text('{"Parameters": [1]}')
    files["not_object"].write_text("[1]")
    paths = {name: str(path) for name, path in files.items()}
    extra = [word.format(**paths) for word in argv]
    if "-e" not in extra:
        extra += ["-e", "events/webhook_order_created.json"]
    code, out, err = _invoke_cli(local, "WebhookIngressFunction", *extra)
    assert code == 2  # nothing was invoked
    assert out == ""
    assert err.strip().splitlines() == [err.strip()], err  # one line, no traceback
    assert err.startswith(says.format(**paths)), err
