"""A `sam local invoke --env-vars` file for a running local stack, from template.yaml itself.

    .venv/bin/python -m devtools.local env-vars > .local/env.json      # the stack `make local` started
    sam local invoke WebhookIngressFunction --docker-network host \\
        -e events/webhook_order_created.json --env-vars .local/env.json

Shape (sam's): `"Parameters"` holds the variables every function declares (the template's
`Globals`), one entry per function logical id holds that function's own. Every value is what the
local stack gives the function's worker, plus `AWS_ENDPOINT_URL` pointing at its moto server;
secrets are named by their `Name` (Secrets Manager accepts it wherever it accepts the ARN, and
moto's ARNs end with a random suffix). The local physical names are deterministic
(`<stack>-<LogicalId>`, see `provision.physical_name`), so against `make local` on its default
ports this is exactly the committed `events/env.json`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from devtools.local.provision import LocalStack
from devtools.local.template import Template, load_template

__all__ = [
    "ENDPOINT_VARIABLE",
    "EnvVars",
    "global_variables",
    "render",
    "shell_exports",
    "stack_exports",
    "to_json",
]

ENDPOINT_VARIABLE: Final = "AWS_ENDPOINT_URL"

EnvVars = dict[str, dict[str, str]]


def global_variables(template: Template) -> list[str]:
    """The variables of `Globals.Function.Environment` (sam's `"Parameters"` section)."""
    function_globals = (template.document.get("Globals") or {}).get("Function") or {}
    return list(((function_globals.get("Environment") or {}).get("Variables") or {}).keys())


def render(stack: LocalStack, template_path: Path) -> EnvVars:
    """The env-vars document for `stack` (see the module docstring)."""
    template = load_template(template_path).with_parameters(
        stack.parameters, region=stack.region, stack_name=stack.stack_name
    )
    resolver = stack.resolver(template)
    shared = set(global_variables(template))
    secret_names = {
        res.ref: res.attributes["Name"]
        for res in stack.of_type("AWS::SecretsManager::Secret").values()
        if "Name" in res.attributes
    }
    document: EnvVars = {"Parameters": {}}
    for function_id in template.function_ids():
        environment = dict(template.function(function_id, resolver).environment)
        if ENDPOINT_VARIABLE in environment or ENDPOINT_VARIABLE in shared:
            environment[ENDPOINT_VARIABLE] = stack.endpoint_url
        document[function_id] = {}
        for name, value in environment.items():
            target = document["Parameters"] if name in shared else document[function_id]
            target[name] = secret_names.get(value, value)
    return document


def to_json(document: EnvVars) -> str:
    """The file's text, as committed in `events/env.json` (2-space indent, final newline)."""
    return json.dumps(document, indent=2) + "\n"


def shell_exports(aws_url: str, offergrid_url: str, region: str) -> str:
    """The local stack's settings for a shell (the aws CLI, boto3, the offer-sync CLI, curl): the
    README's setup block, which `make local` prints with the ports it took."""
    return (
        f"export AWS_ENDPOINT_URL={aws_url}  # the local stack's moto (AWS)\n"
        f"export AWS_REGION={region} AWS_DEFAULT_REGION={region}  # its region\n"
        "export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing  # moto takes any credentials\n"
        f"export OFFERGRID_FAKE_URL={offergrid_url}  # the local Offergrid (the fake)\n"
    )


def stack_exports(stack: LocalStack) -> str:
    return shell_exports(stack.urls.get("aws") or stack.endpoint_url, stack.urls["offergrid"], stack.region)
