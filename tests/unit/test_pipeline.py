"""The deploy pipeline (issue 24): .github/workflows/pipeline.yml runs the make targets a person runs,
in the `sam pipeline init` two-stage order, with AWS credentials by OIDC only; pipeline/bootstrap.yaml's
deploy roles trust only their stage's GitHub environment and allow what `make smoke` calls.
(actionlint and cfn-lint lint both files in `make pipeline-check`, a gate of `make test`.)"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.cfn_yaml import load_template

REPO = Path(__file__).resolve().parents[2]
WORKFLOW_FILES = sorted((REPO / ".github" / "workflows").glob("*.yml"))
WORKFLOW: dict[str, Any] = yaml.safe_load((REPO / ".github" / "workflows" / "pipeline.yml").read_text())
JOBS: dict[str, dict[str, Any]] = WORKFLOW["jobs"]
MAKEFILE = (REPO / "Makefile").read_text(encoding="utf-8")
BOOTSTRAP = load_template(REPO / "pipeline" / "bootstrap.yaml")
STAGES = ("dev", "prod")
# What devtools/smoke.py calls in AWS (tests/e2e/test_smoke.py records the calls of a run against the
# local stack and checks them against this list); DescribeStacks only against a deployed stack.
SMOKE_ACTIONS = frozenset(
    {
        "cloudformation:DescribeStacks",
        "secretsmanager:GetSecretValue",
        "cloudwatch:DescribeAlarms",
        "cloudwatch:GetMetricData",
        "dynamodb:GetItem",
        "lambda:InvokeFunction",
    }
)


def _runs(job: dict[str, Any]) -> list[str]:
    return [step["run"].strip() for step in job["steps"] if "run" in step]


def _uses(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job["steps"] if step.get("uses", "").startswith(action + "@")]


def _recipe(target: str) -> list[str]:
    found = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", MAKEFILE, flags=re.M)
    assert found is not None, target
    return [line.strip() for line in found[1].splitlines()]


def _documented_make_targets() -> set[str]:
    texts = [(REPO / "README.md").read_text(encoding="utf-8")]
    texts += [path.read_text(encoding="utf-8") for path in (REPO / "docs" / "runbooks").glob("*.md")]
    return {target for text in texts for target in re.findall(r"\bmake (?:-[-\w=]+ )*([a-z][a-z-]*)", text)}


def test_every_step_that_runs_something_runs_a_make_target_a_person_runs() -> None:
    targets = set(re.findall(r"^([a-z][a-z-]*):", MAKEFILE, flags=re.M))
    documented = _documented_make_targets()
    for name, job in JOBS.items():
        for command in _runs(job):
            words = shlex.split(command)
            assert words[0] == "make", f"{name}: {command!r} is not a make command"
            assert "\n" not in command, f"{name}: {command!r} is more than one command"
            target = next(word for word in words[1:] if not word.startswith("-") and "=" not in word)
            assert target in targets, f"{name}: make {target} is no target of the Makefile"
            assert target in documented, f"{name}: make {target} is in no runbook nor the README"


def test_the_test_job_runs_what_ci_runs() -> None:
    # .ci/run's steps: scripts/timed-step "<what>" make ...
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    ci_makes = re.findall(r'^scripts/timed-step "[^"]*" (make .*)$', ci, flags=re.M)
    assert ci_makes == ["make -j3 --output-sync=target venvs", "make test"]
    assert _runs(JOBS["test"]) == ci_makes
    assert "if" not in JOBS["test"]  # pull requests and main alike


def test_stages_in_order_built_once_prod_behind_its_reviewers() -> None:
    assert JOBS["build"]["needs"] == "test"
    assert JOBS["dev"]["needs"] == "build"
    assert JOBS["prod"]["needs"] == "dev"
    assert "refs/heads/main" in JOBS["build"]["if"]
    assert "pull_request" in JOBS["build"]["if"]
    # built once: only the build job builds; the stages deploy its artifact as it is
    assert _runs(JOBS["build"]) == ["make build"]
    [upload] = _uses(JOBS["build"], "actions/upload-artifact")
    assert upload["with"]["path"] == ".aws-sam/build"
    for stage in STAGES:
        job = JOBS[stage]
        assert job["environment"] == stage  # prod: the GitHub environment with required reviewers
        assert _runs(job) == [f"make deploy-built ENV={stage}", f"make smoke ENV={stage}"]
        [download] = _uses(job, "actions/download-artifact")
        assert download["with"] == {"name": upload["with"]["name"], "path": ".aws-sam/build"}
        assert job["concurrency"]["cancel-in-progress"] is False  # never stop a deploy half-way


def test_make_deploy_is_make_build_then_what_the_pipeline_runs() -> None:
    # the pipeline's `make deploy-built` is the person's `make deploy` without its build
    deploy = _recipe("deploy")
    built = _recipe("deploy-built")
    assert [line for line in deploy if "build" not in line] == [
        line for line in built if "test -f" not in line
    ]
    assert any("$(MAKE) --no-print-directory build" in line for line in deploy)


def test_aws_credentials_come_by_oidc_only() -> None:
    text = "\n".join(path.read_text(encoding="utf-8") for path in WORKFLOW_FILES)
    for stored in ("aws-access-key-id", "aws-secret-access-key", "aws-session-token", "secrets."):
        assert stored not in text
    assert WORKFLOW["permissions"] == {"contents": "read"}
    for name, job in JOBS.items():
        configured = _uses(job, "aws-actions/configure-aws-credentials")
        if name in STAGES:
            assert job["permissions"] == {"contents": "read", "id-token": "write"}
            [step] = configured
            assert step["with"]["role-to-assume"] == "${{ vars.DEPLOY_ROLE_ARN }}"
        else:
            assert configured == [], f"{name} needs no AWS credentials"
            assert "permissions" not in job, f"{name} needs no more than reading the repository"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit(path: Path) -> None:
    for uses in re.findall(r"uses: (\S+)", path.read_text(encoding="utf-8")):
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", uses), uses


def _deploy_role_statements(policy: str | None = None) -> list[dict[str, Any]]:
    policies = BOOTSTRAP["Resources"]["DeployRole"]["Properties"]["Policies"]
    return [
        statement
        for document in policies
        if policy is None or document["PolicyName"] == policy
        for statement in document["PolicyDocument"]["Statement"]
    ]


def test_a_stages_deploy_role_trusts_only_its_github_environment() -> None:
    [trust] = BOOTSTRAP["Resources"]["DeployRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    conditions = trust["Condition"]["StringEquals"]
    assert conditions["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    assert conditions["token.actions.githubusercontent.com:sub"] == {
        "Fn::Sub": "repo:${GitHubRepository}:environment:${Environment}"
    }


def test_the_deploy_role_allows_every_call_of_the_smoke_test_on_its_stage_only() -> None:
    allowed = {
        action: statement["Resource"]
        for statement in _deploy_role_statements("smoke-test-the-stack")
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    deploy = {
        action
        for statement in _deploy_role_statements("deploy-the-stack")
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert SMOKE_ACTIONS - {"cloudformation:DescribeStacks"} == set(allowed)
    assert "cloudformation:DescribeStacks" in deploy
    for action, resource in allowed.items():
        if action != "cloudwatch:GetMetricData":  # no resource-level permission exists for it
            assert "${Environment}" in resource["Fn::Sub"], action


def test_the_execution_role_cannot_attach_any_managed_policy() -> None:
    role = BOOTSTRAP["Resources"]["CloudFormationExecutionRole"]["Properties"]
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    attach = [s for s in statements if "iam:AttachRolePolicy" in str(s["Action"])]
    assert [s["Sid"] for s in attach] == ["OnlyTheManagedPoliciesSamAttaches"]
    for statement in statements:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        assert "*" not in actions, statement["Sid"]
        assert "iam:*" not in actions, statement["Sid"]


def _execution_role_resources(action: str) -> list[str]:
    role = BOOTSTRAP["Resources"]["CloudFormationExecutionRole"]["Properties"]
    found: list[str] = []
    for policy in role["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
            if action in actions:
                resources = (
                    statement["Resource"]
                    if isinstance(statement["Resource"], list)
                    else [statement["Resource"]]
                )
                found += [r["Fn::Sub"] if isinstance(r, dict) else r for r in resources]
    return found


@pytest.mark.parametrize(
    ("resource_type", "action", "arn"),
    [
        ("AWS::S3::Bucket", "s3:*", "arn:${AWS::Partition}:s3:::{name}"),
        ("AWS::SQS::Queue", "sqs:*", "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:{name}"),
        (
            "AWS::DynamoDB::Table",
            "dynamodb:*",
            "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/{name}",
        ),
    ],
)
def test_the_execution_role_reaches_every_resource_the_stack_names_itself(
    resource_type: str, action: str, arn: str
) -> None:
    import fnmatch

    # Given each such resource of template.yaml, as CloudFormation names it in the stack of each stage
    stack = load_template(REPO / "template.yaml")
    patterns = _execution_role_resources(action)
    for logical_id, resource in stack["Resources"].items():
        if resource["Type"] != resource_type:
            continue
        name_property = {"AWS::S3::Bucket": "BucketName", "AWS::SQS::Queue": "QueueName"}.get(
            resource_type, "TableName"
        )
        assert name_property not in resource.get("Properties", {}), (
            f"{logical_id}: a fixed name; add it to the role"
        )
        generated = f"offergrid-integration-${{Environment}}-{logical_id}-abc123"
        if resource_type == "AWS::S3::Bucket":
            generated = generated.lower().replace("${environment}", "${Environment}")
        # Then the execution role may manage it
        assert any(fnmatch.fnmatchcase(arn.replace("{name}", generated), pattern) for pattern in patterns), (
            logical_id
        )


def test_the_execution_role_reaches_every_event_bus_resource_the_stack_names() -> None:
    import fnmatch

    # The bus, its rule's ARNs and the bus's EventBridge archive (issue 25), named after the stage.
    stack = load_template(REPO / "template.yaml")
    patterns = _execution_role_resources("events:*")
    names = {
        "AWS::Events::EventBus": ("Name", "event-bus/{}"),
        "AWS::Events::Archive": ("ArchiveName", "archive/{}"),
    }
    checked = 0
    for logical_id, resource in stack["Resources"].items():
        if resource["Type"] not in names:
            continue
        prop, form = names[resource["Type"]]
        name = resource["Properties"][prop]["Fn::Sub"]
        arn = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:" + form.format(name)
        assert any(fnmatch.fnmatchcase(arn, pattern) for pattern in patterns), logical_id
        checked += 1
    assert checked == 2
