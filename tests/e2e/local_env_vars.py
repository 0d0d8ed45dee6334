"""A `sam local invoke --env-vars` file for the local stack (`make local`), from template.yaml itself.

    python -m tests.e2e.local_env_vars > .local/env.json       # exact names of the running stack
    sam local invoke WebhookIngressFunction --docker-network host \\
        -e events/webhook_order_created.json --env-vars .local/env.json

`make local` names its queues, tables and bucket like CloudFormation does, with a random suffix
(`offergrid-local-OrdersQueue-63VO6Q0SVK5Y`), so the names change at every start: this writes the
file for the stack described by `.local/stack.json`. `--portable` writes the committed
`events/env.json`: the same entries, with the suffixes dropped, the default ports (moto 5000, the
Offergrid fake 8900) and secret names instead of ARNs. `tests/e2e/test_runbooks.py` checks that
`events/env.json` is exactly this output, so it follows the template.

Shape (sam's): `"Parameters"` holds the variables every function declares (the template's
`Globals`), one entry per function logical id holds that function's own; every value is what the
local stack gives the function's worker, plus `AWS_ENDPOINT_URL` pointing at its moto server.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Final

from devtools.local.provision import LocalStack
from devtools.local.stack import DEFAULT_STACK_FILE, DEFAULT_TEMPLATE
from devtools.local.template import Template, load_template

PORTABLE_AWS_URL: Final = "http://127.0.0.1:5000"
PORTABLE_OFFERGRID_URL: Final = "http://127.0.0.1:8900"
ENDPOINT_VARIABLE: Final = "AWS_ENDPOINT_URL"
# `<stack>-<LogicalId>-<12 random characters>` (upper case; lower case for buckets)
_SUFFIXED: Final = re.compile(
    r"\b(?P<base>[a-z][a-z0-9-]*-[A-Za-z][A-Za-z0-9]*)-(?:[A-Z0-9]{12}|[a-z0-9]{12})\b"
)

EnvVars = dict[str, dict[str, str]]


def global_variables(template: Template) -> list[str]:
    function_globals = (template.document.get("Globals") or {}).get("Function") or {}
    return list(((function_globals.get("Environment") or {}).get("Variables") or {}).keys())


def render(stack: LocalStack, template_path: Path = DEFAULT_TEMPLATE, *, portable: bool = False) -> EnvVars:
    """The env-vars document for `stack` (see the module docstring)."""
    template = load_template(template_path).with_parameters(
        stack.parameters, region=stack.region, stack_name=stack.stack_name
    )
    resolver = stack.resolver(template)
    shared = set(global_variables(template))
    document: EnvVars = {"Parameters": {}}
    for function_id in template.function_ids():
        environment = dict(template.function(function_id, resolver).environment)
        if ENDPOINT_VARIABLE in environment or ENDPOINT_VARIABLE in shared:
            environment[ENDPOINT_VARIABLE] = stack.endpoint_url
        document[function_id] = {}
        for name, value in environment.items():
            target = document["Parameters"] if name in shared else document[function_id]
            target[name] = value
    return _portable(document, stack) if portable else document


def _portable(document: EnvVars, stack: LocalStack) -> EnvVars:
    replacements = {stack.endpoint_url: PORTABLE_AWS_URL}
    if "offergrid" in stack.urls:
        replacements[stack.urls["offergrid"]] = PORTABLE_OFFERGRID_URL
    for resource in stack.of_type("AWS::SecretsManager::Secret").values():
        if "Name" in resource.attributes:
            replacements[resource.ref] = resource.attributes["Name"]

    def portable(value: str) -> str:
        for old, new in replacements.items():
            value = value.replace(old, new)
        return _SUFFIXED.sub(r"\g<base>", value)

    return {section: {k: portable(v) for k, v in values.items()} for section, values in document.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.e2e.local_env_vars",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--stack-file", type=Path, default=DEFAULT_STACK_FILE, help="default .local/stack.json"
    )
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE, help="default template.yaml")
    parser.add_argument(
        "--portable", action="store_true", help="suffix-free names and default ports (events/env.json)"
    )
    args = parser.parse_args(argv)
    try:
        stack = LocalStack.load(args.stack_file)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(render(stack, args.template, portable=args.portable), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
