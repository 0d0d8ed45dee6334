"""Lambda entry of the order processor: orders queue (SQS) -> one use case per message -> partial batch.

Wiring only: the record pipeline (parse, idempotency, permanent/transient, reporting) is
`orders.pipeline`, the container's runtime `orders.runtime.ProcessorRuntime` (built at import inside
Lambda, on first use elsewhere), its batch runner `orders.batch.SqsBatch` (the partial-batch response
SQS's ReportBatchItemFailures reads). `configure()` / `reset()` / `get_runtime()` are for tests and tools.
"""

from __future__ import annotations

import gc

# The cold start allocates ~150,000 objects that live as long as the container (modules, classes,
# botocore's models, the runtime) and almost no garbage (~500 objects). The cyclic GC would scan
# them again and again while they are made (~50 collections, ~5 % of the cold start's CPU): it is
# off until the init is done, then they are frozen (never scanned again) and it is back on.
gc.disable()

from typing import TYPE_CHECKING, Any  # noqa: E402

from offergrid_integration import aws  # noqa: E402
from offergrid_integration.config import load_settings  # noqa: E402
from offergrid_integration.container import Container  # noqa: E402
from offergrid_integration.observability import log_metrics, logger, tracer  # noqa: E402
from offergrid_integration.orders.batch import PartialBatchResponse  # noqa: E402
from offergrid_integration.orders.pipeline import IDEMPOTENCY_KEY_PREFIX  # noqa: E402
from offergrid_integration.orders.runtime import ProcessorRuntime as Runtime  # noqa: E402
from offergrid_integration.orders.settings import ProcessorSettings  # noqa: E402

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

__all__ = ["IDEMPOTENCY_KEY_PREFIX", "Runtime", "configure", "get_runtime", "lambda_handler", "reset"]


def _close(runtime: Runtime) -> None:
    runtime.close()
    aws.reset()  # the next runtime starts a new session (tests: a new moto backend)


_runtime = Container(lambda: Runtime(load_settings(ProcessorSettings)), close=_close)
get_runtime, configure, reset = _runtime.get, _runtime.configure, _runtime.reset
try:
    _runtime.build_at_init()
finally:
    gc.freeze()
    gc.enable()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialBatchResponse:
    runtime = get_runtime()
    runtime.bind(context)
    return runtime.batch.process(event)
