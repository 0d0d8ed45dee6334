"""`make deploy` and `make deploy-built`: `sam deploy` of one environment of samconfig.toml, safely.

    scripts/deploy.py --env prod --params "LogLevel=DEBUG" check    # before the build: environment,
                                                                     # parameters, credentials
    scripts/deploy.py --env prod --params "LogLevel=DEBUG" deploy   # sam deploy

- **Parameters**: `--params "Key=Value ..."` (make's `PARAMS=`) is merged over the environment's saved
  `parameter_overrides` (a key given wins), and the merged set is passed: `sam deploy
  --parameter-overrides` alone would replace the saved ones, not add to them. Each key must be a
  parameter of template.yaml, each value one it allows.
- **Review**: the change set is shown and confirmed when the environment's `confirm_changeset` says so
  (prod), unless `CI=true` (the pipeline, where a GitHub environment's reviewers approved the job).
- **Credentials**: checked first (`aws sts get-caller-identity`); none, or expired, is one line saying
  how to check and where the first-deploy runbook is, not SAM's advice to run `sam deploy --guided`.
- **The pipeline**: `ARTIFACTS_BUCKET` and `CLOUDFORMATION_ROLE_ARN` (the bootstrap stack's outputs,
  pipeline/bootstrap.yaml) become `--s3-bucket ... --no-resolve-s3 --role-arn ...`.
- `DRY_RUN=1` prints the `sam deploy` command instead of running it (no credentials needed).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

REPO: Final = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devtools.cfn_yaml import load_template  # noqa: E402 - the repository root is put on sys.path first
from devtools.credentials import CredentialsProblem, caller_identity  # noqa: E402

SAMCONFIG: Final = REPO / "samconfig.toml"
TEMPLATE: Final = REPO / "template.yaml"
SAM: Final = REPO / ".venv-sam" / "bin" / "sam"


class DeployError(Exception):
    """Bad input: printed as one `error:` line, exit 2, nothing built or deployed."""


def environments(config: Mapping[str, Any]) -> list[str]:
    """The deploy environments of samconfig.toml: every section but `default` with deploy parameters."""
    return [
        name
        for name, section in config.items()
        if name != "default" and isinstance(section, dict) and "parameters" in section.get("deploy", {})
    ]


def parse_overrides(text: str, *, where: str) -> dict[str, str]:
    """`Key=Value Key2="a value"` (sam's --parameter-overrides shorthand) as a dict, in order."""
    overrides: dict[str, str] = {}
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise DeployError(f"{where}: {error}") from None
    for word in words:
        name, sep, value = word.partition("=")
        name = name.removeprefix("ParameterKey=")
        if not sep or not name:
            raise DeployError(
                f'{where}: expected Key=Value pairs, got {word!r} (PARAMS="Key=Value Key2=Value2")'
            )
        overrides[name] = value
    return overrides


def check_parameters(values: Mapping[str, str], template_parameters: Mapping[str, Any]) -> None:
    for name, value in values.items():
        spec = template_parameters.get(name)
        if spec is None:
            raise DeployError(
                f"{name} is not a parameter of template.yaml (README: Template parameters lists them)"
            )
        allowed = spec.get("AllowedValues")
        if allowed is not None and value not in [str(option) for option in allowed]:
            raise DeployError(f"{name}={value} is not allowed: one of {', '.join(map(str, allowed))}")


class Deployment:
    """One environment's deploy: its saved configuration, the parameters given, the environment."""

    def __init__(self, env: str, params: str, environ: Mapping[str, str], config: Mapping[str, Any]) -> None:
        known = environments(config)
        if env not in known:
            raise DeployError(
                f'usage: make deploy ENV={"|".join(known)} [PARAMS="Key=Value ..."] '
                f"(the environments of samconfig.toml; got ENV='{env}')"
            )
        self.env = env
        self.environ = environ
        section: dict[str, Any] = config[env]
        self.deploy_config: dict[str, Any] = section["deploy"]["parameters"]
        self.global_config: dict[str, Any] = section.get("global", {}).get("parameters", {})
        self.saved = parse_overrides(
            str(self.deploy_config.get("parameter_overrides", "")),
            where=f"samconfig.toml [{env}.deploy.parameters] parameter_overrides",
        )
        self.given = parse_overrides(params, where="PARAMS")
        if "Environment" in self.given and self.given["Environment"] != env:
            raise DeployError(f"PARAMS sets Environment={self.given['Environment']} for ENV={env}: drop it")
        self.parameters = {**self.saved, **self.given}

    @property
    def stack_name(self) -> str:
        return str(self.global_config.get("stack_name") or self.deploy_config.get("stack_name"))

    @property
    def region(self) -> str:
        return str(self.global_config.get("region") or self.deploy_config.get("region") or "")

    @property
    def ci(self) -> bool:
        return self.environ.get("CI", "").lower() == "true"

    @property
    def confirm(self) -> bool:
        """Show the change set and ask: what the environment's config says, never in CI (no one to ask)."""
        return bool(self.deploy_config.get("confirm_changeset", False)) and not self.ci

    def argv(self) -> list[str]:
        argv = [str(SAM.relative_to(REPO)), "deploy", "--config-env", self.env]
        argv += ["--parameter-overrides", *(f"{name}={value}" for name, value in self.parameters.items())]
        argv.append("--confirm-changeset" if self.confirm else "--no-confirm-changeset")
        argv.append("--no-fail-on-empty-changeset")
        if bucket := self.environ.get("ARTIFACTS_BUCKET"):
            argv += ["--s3-bucket", bucket, "--no-resolve-s3"]
        if role := self.environ.get("CLOUDFORMATION_ROLE_ARN"):
            argv += ["--role-arn", role]
        return argv

    def describe(self) -> str:
        changed = ", ".join(f"{k}={v}" for k, v in self.given.items()) or "none"
        review = (
            "shows the change set and asks before executing it" if self.confirm else "no change-set prompt"
        )
        if self.ci and self.deploy_config.get("confirm_changeset"):
            review += " (CI=true: the pipeline's reviewers approved it)"
        return (
            f"deploy {self.env}: stack {self.stack_name} in {self.region}; parameters from samconfig.toml "
            f"[{self.env}] with PARAMS over them ({changed}); {review}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/deploy.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="")
    parser.add_argument("--params", default="")
    parser.add_argument("command", choices=("check", "deploy"))
    args = parser.parse_args(argv)
    environ = os.environ
    dry_run = environ.get("DRY_RUN", "") not in ("", "0")
    try:
        deployment = Deployment(
            args.env, args.params, environ, tomllib.loads(SAMCONFIG.read_text(encoding="utf-8"))
        )
        check_parameters(deployment.parameters, load_template(TEMPLATE).get("Parameters", {}))
        if args.command == "check":
            print(deployment.describe(), flush=True)
            if dry_run:
                print("DRY_RUN: credentials not checked, nothing built", flush=True)
                return 0
            who = caller_identity(deployment.region, purpose=f"make deploy ENV={deployment.env}")
            print(f"as {who.arn} (account {who.account})", flush=True)
            return 0
        command = shlex.join(deployment.argv())
        if dry_run:
            print(f"DRY_RUN: would run: {command}", flush=True)
            return 0
        print(f"==> {command}", flush=True)
        path = f"{REPO / '.venv' / 'bin'}{os.pathsep}{environ.get('PATH', '')}"  # as `make build` runs sam
        done = subprocess.run(deployment.argv(), cwd=REPO, env={**environ, "PATH": path}, check=False)  # noqa: S603
        return done.returncode
    except (DeployError, CredentialsProblem) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
