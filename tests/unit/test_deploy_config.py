"""The deploy path a new user takes: `make deploy ENV=dev|prod` from samconfig.toml, no questions asked;
`sam build` without warnings about missing files; the schedule's default as the runbook says (issue 13)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from devtools.local.template import Template, load_template

REPO = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make")
SAMCONFIG = tomllib.loads((REPO / "samconfig.toml").read_text(encoding="utf-8"))
DEPLOY_ENVS = ("dev", "prod")
FIRST_DEPLOY = (REPO / "docs" / "runbooks" / "first-deploy.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(REPO / "template.yaml")


def _overrides(value: str) -> dict[str, str]:
    return dict(word.split("=", 1) for word in shlex.split(value))


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


@pytest.mark.skipif(MAKE is None, reason="make is not installed")
def test_make_deploy_builds_then_deploys_without_questions() -> None:
    assert MAKE is not None
    dry = subprocess.run(  # noqa: S603 - make, fixed arguments
        [MAKE, "-n", "deploy", "ENV=dev"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert dry.index("sam build") < dry.index("sam deploy")
    assert "sam deploy --config-env dev" in dry
    assert "--no-confirm-changeset --no-fail-on-empty-changeset" in dry
    assert "--guided" not in dry


@pytest.mark.skipif(MAKE is None, reason="make is not installed")
@pytest.mark.parametrize("env", ["", "staging"])
def test_make_deploy_refuses_an_unknown_environment_before_building(env: str) -> None:
    assert MAKE is not None
    done = subprocess.run(  # noqa: S603 - make, fixed arguments
        [MAKE, "deploy", f"ENV={env}"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
    assert "usage: make deploy ENV=dev|prod" in done.stderr
    assert "sam build" not in done.stdout


def test_the_schedule_default_is_what_the_first_deploy_runbook_says(template: Template) -> None:
    default = template.document["Parameters"]["OfferSyncScheduleState"]["Default"]
    said = re.search(r"`OfferSyncScheduleState` defaults to\s+`(\w+)`", FIRST_DEPLOY)
    assert said is not None, "first-deploy.md no longer says what the schedule's default is"
    assert said[1] == default == "DISABLED"  # no real sync before a dry run was read
    # and the runbook enables it only after the dry run (step 6)
    enable = FIRST_DEPLOY.index("OfferSyncScheduleState=ENABLED")
    assert FIRST_DEPLOY.index("--dry-run") < enable


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
