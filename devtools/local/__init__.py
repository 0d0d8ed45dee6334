"""Run the stack on this machine without Docker and without AWS (see docs/local.md).

- `template`: read template.yaml (CloudFormation tags, conditions, SAM globals) into `FunctionSpec`s
- `provision`: moto server + the template's data resources created in it -> `LocalStack`
- `runtime`: one warm worker subprocess per function (`FunctionWorker.invoke`)
- `apigw`: the local API Gateway (REST proxy events) for the template's `Api` events
- `poller`: the SQS event source mapping (batches, partial failures, retries, DLQ)
- `stack`: all of it together (`LocalEnvironment`), used by `up`, `invoke`, the demo and the tests
- `env_vars`: the `sam local invoke --env-vars` file of a running stack (`env-vars`; events/env.json),
  and its settings for a shell (`exports`: the README's setup block)
- `ports`: the usual ports when free, any free one otherwise, a port asked for or `PortInUse`
- `events`: which sample event of `events/` each function takes, and its default
- `outcomes`: what one invocation did, in one line (each SQS record's outcome, from the log)
"""

from devtools.local.provision import LocalStack, MotoServer, provision
from devtools.local.runtime import FunctionWorker, InvokeResult
from devtools.local.stack import LocalEnvironment, apply_env_vars
from devtools.local.template import FunctionSpec, Template, TemplateError, load_template

__all__ = [
    "FunctionSpec",
    "FunctionWorker",
    "InvokeResult",
    "LocalEnvironment",
    "LocalStack",
    "MotoServer",
    "Template",
    "TemplateError",
    "apply_env_vars",
    "load_template",
    "provision",
]
