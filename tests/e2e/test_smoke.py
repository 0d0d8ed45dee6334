"""`make smoke ENV=local` against the local stack (issue 24): the command a person runs after a deploy,
run as a process against `make local`'s stack, green on a working stack and red, check by check, on a
broken one. The same calls reach AWS for ENV=dev|prod (devtools/smoke.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.local.stack import SAMPLE_CATALOG, LocalEnvironment

REPO = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make")
CHECKS = ("outputs", "alarms", "webhook", "queue", "processor", "offergrid", "offer sync", "draft offer")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(MAKE is None, reason="make is not installed")]


def _local(tmp: Path) -> LocalEnvironment:
    """The stack as `make local` runs it: the sample catalog uploaded, the queue's poller running."""
    env = LocalEnvironment(log_dir=tmp / "logs", stack_file=tmp / "stack.json", catalog=SAMPLE_CATALOG)
    env.start(warm=False)
    env.start_pollers()
    return env


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalEnvironment]:
    env = _local(tmp_path)
    try:
        yield env
    finally:
        env.stop()


def _make_smoke(env: LocalEnvironment, *extra: str) -> subprocess.CompletedProcess[str]:
    assert MAKE is not None
    assert env.stack_file is not None
    return subprocess.run(  # noqa: S603 - make, fixed arguments
        [
            MAKE,
            "--no-print-directory",
            "smoke",
            "ENV=local",
            f"SMOKE_ARGS=--stack-file {env.stack_file}",
            *extra,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def _statuses(output: str) -> dict[str, str]:
    found = dict(
        (name, status) for status, name in re.findall(r"^  (ok|FAIL|skip)\s+([a-z ]+?): ", output, flags=re.M)
    )
    assert set(found) == set(CHECKS), output
    return found


def test_make_smoke_is_green_against_the_local_stack(local: LocalEnvironment) -> None:
    assert local.fake is not None
    # When a person runs the smoke test, with the draft offer
    done = _make_smoke(local, "DRAFT_OFFER=1")
    # Then every check passed
    assert done.returncode == 0, done.stdout + done.stderr
    assert _statuses(done.stdout) == dict.fromkeys(CHECKS, "ok")
    assert done.stdout.rstrip().endswith("8 ok, 0 failed")
    # and no order was touched: the only Offergrid writes are the draft offer's create and delete
    writes = [
        (c.method, c.path.split("/")[2]) for c in local.fake.calls if c.method in ("POST", "PATCH", "DELETE")
    ]
    assert writes == [("POST", "offers"), ("DELETE", "offers")]
    assert local.fake.offers == {}


def test_make_smoke_says_which_check_a_broken_stack_fails(local: LocalEnvironment) -> None:
    assert local.stack is not None
    # Given a stack whose alarm was deleted, whose API key is not the team's, and whose processor failed
    cloudwatch = local.stack.client("cloudwatch")
    cloudwatch.delete_alarms(AlarmNames=["offergrid-integration-dev-order-rejections-jump"])
    secrets = local.stack.client("secretsmanager")
    secrets.put_secret_value(SecretId=local.stack.outputs["ApiKeySecretArn"], SecretString="not-the-team-key")
    failed = local.invoke("OrderProcessorFunction", {"not": "an SQS event"})
    assert not failed.ok
    # When the smoke test runs
    done = _make_smoke(local)
    # Then it fails, and says which checks failed and why; the others still ran
    assert done.returncode != 0, done.stdout + done.stderr  # the smoke's 1, as make's error
    statuses = _statuses(done.stdout)
    # (the offer sync's dry run reads Offergrid with the same key)
    failing = {"alarms", "processor", "offergrid", "offer sync"}
    assert {name for name, status in statuses.items() if status == "FAIL"} == failing
    assert "missing offergrid-integration-dev-order-rejections-jump" in done.stdout
    assert re.search(r"processor: 1 of \d+ invocations in the last 30 min failed", done.stdout)
    assert "AuthenticationError" in done.stdout
    assert statuses["webhook"] == statuses["queue"] == "ok"
    assert statuses["draft offer"] == "skip"


def test_make_smoke_without_a_running_local_stack_says_to_start_it(tmp_path: Path) -> None:
    assert MAKE is not None
    done = subprocess.run(  # noqa: S603 - make, fixed arguments
        [
            MAKE,
            "--no-print-directory",
            "smoke",
            "ENV=local",
            f"SMOKE_ARGS=--stack-file {tmp_path / 'none.json'}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 2
    # the stack file is not the usual one, so the hint is the command that starts a stack there
    assert f"start it with `.venv/bin/python -m devtools.local up --stack-file {tmp_path / 'none.json'}`" in (
        done.stderr
    )


def test_every_aws_call_of_the_smoke_test_is_one_the_deploy_role_allows(
    local: LocalEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    import boto3

    from devtools import smoke
    from tests.unit.test_pipeline import SMOKE_ACTIONS

    assert local.stack_file is not None
    called: set[str] = set()

    iam_name = {"lambda:Invoke": "lambda:InvokeFunction"}  # the API's operation vs IAM's action name

    def record(model: Any, **_: Any) -> None:
        operation = f"{model.service_model.service_name}:{model.name}"
        called.add(iam_name.get(operation, operation))

    session = boto3._get_default_session()
    session.events.register("before-call", record, unique_id="smoke-calls")
    try:
        code = smoke.main(["--env", "local", "--stack-file", str(local.stack_file)])
    finally:
        session.events.unregister("before-call", unique_id="smoke-calls")
    assert code == 0, capsys.readouterr().out
    # Every call it made is in the list the bootstrap's deploy role is checked against
    # (tests/unit/test_pipeline.py); only DescribeStacks is not made against the local stack
    assert called == SMOKE_ACTIONS - {"cloudformation:DescribeStacks"}
