"""The deploy path a person takes and the pipeline takes (issues 13 and 24): `make deploy ENV=dev|prod
[PARAMS=...]` from samconfig.toml, PARAMS merged over the environment's saved parameters, prod's change
set shown and confirmed unless CI=true, one line when there are no credentials, each environment's
rollout strategy as CloudFormation will get it; `sam build` without warnings about missing files; the
schedule's default as the runbook says."""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from devtools.cfn_yaml import load_template as load_cfn
from devtools.local.template import Template, load_template
from tests.unit.test_template import ROLLED_OUT

REPO = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make")
SAM_PYTHON = REPO / ".venv-sam" / "bin" / "python"
SAMCONFIG = tomllib.loads((REPO / "samconfig.toml").read_text(encoding="utf-8"))
DEPLOY_ENVS = ("dev", "prod")
FIRST_DEPLOY = (REPO / "docs" / "runbooks" / "first-deploy.md").read_text(encoding="utf-8")
needs_make = pytest.mark.skipif(MAKE is None, reason="make is not installed")


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(REPO / "template.yaml")


def _overrides(value: str) -> dict[str, str]:
    return dict(word.split("=", 1) for word in shlex.split(value))


def _no_aws_credentials() -> dict[str, str]:
    """This process's environment without any AWS credential source, and no network probe for one
    (the instance metadata service is off), as on a machine where nobody logged in."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "CI"}
    return {
        **environ,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    }


def _make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert MAKE is not None
    return subprocess.run(  # noqa: S603 - make, fixed arguments
        [MAKE, "--no-print-directory", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env=env if env is not None else _no_aws_credentials(),
        timeout=300,
    )


def _would_run(output: str) -> list[str]:
    [line] = [line for line in output.splitlines() if line.startswith("DRY_RUN: would run: ")]
    return shlex.split(line.removeprefix("DRY_RUN: would run: "))


def _parameter_overrides(argv: list[str]) -> dict[str, str]:
    start = argv.index("--parameter-overrides") + 1
    end = next(i for i in range(start, len(argv)) if argv[i].startswith("--"))
    return dict(word.split("=", 1) for word in argv[start:end])


@pytest.mark.parametrize("env", DEPLOY_ENVS)
def test_samconfig_answers_every_question_of_a_deploy(env: str, template: Template) -> None:
    config: dict[str, Any] = SAMCONFIG[env]
    # What `sam deploy --guided` would ask: stack name, region, capabilities, an artifact bucket
    assert config["global"]["parameters"]["stack_name"] == f"offergrid-integration-{env}"
    assert re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", config["global"]["parameters"]["region"])
    deploy = config["deploy"]["parameters"]
    assert "CAPABILITY_IAM" in deploy["capabilities"]
    assert deploy["resolve_s3"] is True or deploy.get("s3_bucket")
    assert deploy["fail_on_empty_changeset"] is False  # a redeploy with no change is not an error
    # and every parameter: given here or defaulted by the template, each value allowed
    parameters = template.document["Parameters"]
    given = _overrides(deploy["parameter_overrides"])
    assert given["Environment"] == env
    assert set(given) <= set(parameters), "samconfig.toml sets parameters the template lacks"
    assert [name for name, spec in parameters.items() if "Default" not in spec and name not in given] == []
    for name, value in given.items():
        allowed = parameters[name].get("AllowedValues")
        assert allowed is None or value in [str(v) for v in allowed], (name, value)


def test_the_environments_are_the_same_everywhere(template: Template) -> None:
    # samconfig.toml's environments = the template's Environment values = the bootstrap's stages
    environments = [name for name in SAMCONFIG if name not in ("version", "default")]
    assert environments == list(DEPLOY_ENVS)
    assert template.document["Parameters"]["Environment"]["AllowedValues"] == list(DEPLOY_ENVS)
    bootstrap = load_cfn(REPO / "pipeline" / "bootstrap.yaml")
    assert bootstrap["Parameters"]["Environment"]["AllowedValues"] == list(DEPLOY_ENVS)


def test_each_environment_has_its_rollout_strategy() -> None:
    strategies = {
        env: _overrides(SAMCONFIG[env]["deploy"]["parameters"]["parameter_overrides"])["DeploymentStrategy"]
        for env in DEPLOY_ENVS
    }
    assert strategies["dev"] == "AllAtOnce"  # dev takes a release at once (after the hook's check)
    assert strategies["prod"].startswith("Canary")  # prod: a share first, rolled back by the alarms
    # and prod shows its change set and asks; dev does not
    assert SAMCONFIG["prod"]["deploy"]["parameters"]["confirm_changeset"] is True
    assert SAMCONFIG["dev"]["deploy"]["parameters"]["confirm_changeset"] is False


@pytest.mark.skipif(not SAM_PYTHON.exists(), reason=".venv-sam is not installed (make dev)")
@pytest.mark.parametrize("env", DEPLOY_ENVS)
def test_the_deployed_rollout_per_environment_as_cloudformation_gets_it(env: str) -> None:
    # Given the environment's parameters, as samconfig.toml passes them to the SAM transform
    values = _overrides(SAMCONFIG[env]["deploy"]["parameters"]["parameter_overrides"])
    done = subprocess.run(  # noqa: S603 - the SAM venv's Python, our script
        [str(SAM_PYTHON), "scripts/check_template.py", "--translate", "template.yaml"]
        + [f"{k}={v}" for k, v in values.items()],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    resources = json.loads(done.stdout)["Resources"]
    # Then each rolled-out function has a deployment group with the environment's strategy, the
    # rollback alarms, automatic rollback, and the hook before traffic
    for function_id, alarms in ROLLED_OUT.items():
        group = resources[f"{function_id}DeploymentGroup"]["Properties"]
        config = group["DeploymentConfigName"]["Fn::Sub"]
        assert config == [
            "CodeDeployDefault.Lambda${ConfigName}",
            {"ConfigName": values["DeploymentStrategy"]},
        ]
        assert {alarm["Name"]["Ref"] for alarm in group["AlarmConfiguration"]["Alarms"]} == alarms
        assert group["AlarmConfiguration"]["Enabled"] is True
        assert group["AutoRollbackConfiguration"]["Enabled"] is True
        assert "DEPLOYMENT_STOP_ON_ALARM" in group["AutoRollbackConfiguration"]["Events"]
        alias = resources[f"{function_id}Aliaslive"]
        update = alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
        assert update["BeforeAllowTrafficHook"] == {"Ref": "PreTrafficHookFunction"}
    # the queue's event source mapping and the schedules invoke the aliases
    mapping = resources["OrderProcessorFunctionOrdersQueue"]["Properties"]
    assert mapping["FunctionName"] == {"Ref": "OrderProcessorFunctionAliaslive"}
    for schedule in ("OfferSyncFunctionSchedule", "OfferSyncFunctionReconcile"):
        assert resources[schedule]["Properties"]["Target"]["Arn"] == {"Ref": "OfferSyncFunctionAliaslive"}


# --- make deploy ---------------------------------------------------------------------------------------
@needs_make
def test_make_deploy_merges_params_over_the_saved_ones_and_builds_first() -> None:
    # Given dev's saved parameters, and PARAMS changing one and adding one
    done = _make("deploy", "ENV=dev", "PARAMS=LogLevel=WARNING OfferSyncScheduleState=ENABLED", "DRY_RUN=1")
    assert done.returncode == 0, done.stderr
    argv = _would_run(done.stdout)
    # Then sam deploy gets them all, PARAMS winning (--parameter-overrides alone would replace them)
    saved = _overrides(SAMCONFIG["dev"]["deploy"]["parameters"]["parameter_overrides"])
    assert _parameter_overrides(argv) == {**saved, "LogLevel": "WARNING", "OfferSyncScheduleState": "ENABLED"}
    assert argv[:4] == [".venv-sam/bin/sam", "deploy", "--config-env", "dev"]
    assert "--no-confirm-changeset" in argv
    assert "--guided" not in argv
    # and the recipe builds before it deploys (a dry run builds nothing)
    recipe = _make("-n", "deploy", "ENV=dev", env=_no_aws_credentials()).stdout
    assert recipe.index("scripts/deploy.py") < recipe.index("sam build") < recipe.rindex("deploy.py")


@needs_make
def test_make_deploy_prod_shows_the_change_set_and_asks_unless_ci() -> None:
    person = _would_run(_make("deploy", "ENV=prod", "DRY_RUN=1").stdout)
    assert "--confirm-changeset" in person
    pipeline = _would_run(
        _make("deploy", "ENV=prod", "DRY_RUN=1", env={**_no_aws_credentials(), "CI": "true"}).stdout
    )
    assert "--no-confirm-changeset" in pipeline  # the prod environment's reviewers approved the job


@needs_make
def test_the_pipeline_deploys_with_the_stage_bucket_and_execution_role() -> None:
    env = {
        **_no_aws_credentials(),
        "CI": "true",
        "ARTIFACTS_BUCKET": "offergrid-integration-dev-artifacts-123456789012-eu-west-1",
        "CLOUDFORMATION_ROLE_ARN": "arn:aws:iam::123456789012:role/offergrid-integration-dev-pipeline-cfn",
    }
    argv = _would_run(_make("deploy", "ENV=dev", "DRY_RUN=1", env=env).stdout)
    assert argv[argv.index("--s3-bucket") + 1] == env["ARTIFACTS_BUCKET"]
    assert "--no-resolve-s3" in argv  # samconfig's resolve_s3 would create SAM's own bucket stack
    assert argv[argv.index("--role-arn") + 1] == env["CLOUDFORMATION_ROLE_ARN"]


@needs_make
@pytest.mark.parametrize(
    ("params", "said"),
    [
        ("LogLevl=DEBUG", "LogLevl is not a parameter of template.yaml"),
        ("LogLevel=LOUD", "LogLevel=LOUD is not allowed: one of DEBUG, INFO, WARNING, ERROR"),
        ("LogLevel", "expected Key=Value pairs"),
        ("Environment=prod", "PARAMS sets Environment=prod for ENV=dev"),
    ],
)
def test_make_deploy_refuses_bad_params_before_building(params: str, said: str) -> None:
    done = _make("deploy", "ENV=dev", f"PARAMS={params}")
    assert done.returncode != 0
    assert said in done.stderr
    assert "sam build" not in done.stdout


@needs_make
@pytest.mark.parametrize("env", ["", "staging"])
def test_make_deploy_refuses_an_unknown_environment_before_building(env: str) -> None:
    done = _make("deploy", f"ENV={env}")
    assert done.returncode != 0
    assert "usage: make deploy ENV=dev|prod" in done.stderr
    assert "sam build" not in done.stdout


@needs_make
@pytest.mark.parametrize("target", ["deploy", "smoke"])
def test_no_credentials_is_one_line_saying_how_to_check_and_where_the_runbook_is(target: str) -> None:
    # Given a shell with no AWS credentials at all
    done = _make(target, "ENV=prod")
    # Then one line says so, how to check, and where the first-deploy runbook is; nothing was built
    assert done.returncode != 0
    [line] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert "no usable AWS credentials" in line
    assert "`aws sts get-caller-identity`" in line
    assert "docs/runbooks/first-deploy.md" in line
    assert "sam build" not in done.stdout
    assert "--guided" not in done.stdout + done.stderr


def test_expired_credentials_are_the_same_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError

    from devtools.credentials import CredentialsProblem, caller_identity

    class ExpiredSts:
        def client(self, *args: Any, **kwargs: Any) -> ExpiredSts:
            return self

        def get_caller_identity(self) -> dict[str, str]:
            error = {
                "Error": {
                    "Code": "ExpiredToken",
                    "Message": "The security token included in the request is expired",
                }
            }
            raise ClientError(error, "GetCallerIdentity")  # type: ignore[arg-type]

    with pytest.raises(CredentialsProblem) as raised:
        caller_identity("eu-west-1", purpose="make deploy ENV=prod", session=ExpiredSts())
    assert "ExpiredToken: expired or invalid" in str(raised.value)
    assert "`aws sts get-caller-identity`" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_the_schedule_default_is_what_the_first_deploy_runbook_says(template: Template) -> None:
    default = template.document["Parameters"]["OfferSyncScheduleState"]["Default"]
    said = re.search(r"`OfferSyncScheduleState` defaults to\s+`(\w+)`", FIRST_DEPLOY)
    assert said is not None, "first-deploy.md no longer says what the schedule's default is"
    assert said[1] == default == "DISABLED"  # no real sync before a dry run was read
    # and the runbook enables it only after the dry run, with make deploy (never a raw sam deploy)
    enable = FIRST_DEPLOY.index('PARAMS="OfferSyncScheduleState=ENABLED"')
    assert FIRST_DEPLOY.index("--dry-run") < enable


def test_the_runbooks_deploy_with_make_never_a_raw_sam_deploy() -> None:
    from tests.e2e.runbook_blocks import blocks

    # A copied `sam deploy --config-env prod ...` deploys prod with whatever parameters it names; make
    # deploy merges them over the environment's saved ones and asks before a prod change set.
    def runs_sam_deploy(command: str) -> bool:
        words = shlex.split(command, comments=True)
        return any(a.endswith("sam") and b == "deploy" for a, b in itertools.pairwise(words))

    raw = [
        f"{block.path.name}: {command}"
        for block in blocks()
        for command in block.commands()
        if runs_sam_deploy(command)
    ]
    assert raw == []
    assert runs_sam_deploy("make build && .venv-sam/bin/sam deploy --config-env prod")  # what it finds


def test_every_function_code_uri_has_a_requirements_file(template: Template) -> None:
    # sam build warns "requirements.txt file not found" for a CodeUri without one (python3.13 builder)
    for function_id in template.function_ids():
        properties = template.resources[function_id]["Properties"]
        code_uri = REPO / str(properties["CodeUri"])
        requirements = code_uri / "requirements.txt"
        assert requirements.is_file(), f"{function_id}: {requirements.relative_to(REPO)}"
        # empty on purpose: dependencies belong to the shared layer, not to each function's package
        assert [
            line
            for line in requirements.read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ] == []
