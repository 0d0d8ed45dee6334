"""Where the tools work: the local stack (`make local`, its stack file) or a deployed one (`--stack-name`).

`Target` reads the stack's Outputs (the local stack resolves the template's own Outputs; a deployed
one's come from CloudFormation) and makes the AWS clients: against the local moto server, or with the
usual credentials (boto3 honours AWS_ENDPOINT_URL, so the same works against any moto server). Used by
`replay` and its `archive` and `trace` commands (devtools/archive_replay.py, devtools/trace.py).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from devtools.local.provision import LocalStack, LocalStackNotRunning

__all__ = ["ReplayError", "Target"]


class ReplayError(Exception):
    """A problem the user can fix (missing stack, output, secret, file); printed without a traceback."""


@dataclass
class Target:
    outputs: dict[str, str]
    local: LocalStack | None = None
    stack_name: str | None = None
    region: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Target:
        if args.stack_name:
            region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
            cloudformation = boto3.client("cloudformation", region_name=region)
            try:
                stack = cloudformation.describe_stacks(StackName=args.stack_name)["Stacks"][0]
            except (ClientError, BotoCoreError) as error:
                raise ReplayError(f"cannot read stack {args.stack_name}: {error}") from None
            outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
            return cls(outputs=outputs, stack_name=args.stack_name, region=region)
        try:
            local = LocalStack.load(args.stack_file)
        except LocalStackNotRunning as error:
            raise ReplayError(str(error)) from None
        return cls(outputs=dict(local.outputs), local=local, region=local.region)

    @property
    def where(self) -> str:
        return f"stack {self.stack_name}" if self.stack_name else "the local stack"

    def output(self, name: str) -> str:
        try:
            return self.outputs[name]
        except KeyError:
            raise ReplayError(
                f"{self.where} has no output {name!r} (outputs: {', '.join(self.outputs)})"
            ) from None

    def client(self, service: str) -> Any:
        if service not in self._clients:
            if self.local is not None:
                self._clients[service] = self.local.client(service)
            else:
                self._clients[service] = boto3.client(service, region_name=self.region)  # type: ignore[call-overload]
        return self._clients[service]
