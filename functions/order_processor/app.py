"""Lambda entry of the order processor: orders queue (SQS) -> one use case per message -> partial batch.
Wiring only; the processor is `orders.processor`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from offergrid_integration.container import Container, init_phase

with init_phase():  # the GC paused while the imports and the init allocate (container.init_phase)
    from offergrid_integration import aws
    from offergrid_integration.config import load_settings
    from offergrid_integration.observability import log_metrics, logger, tracer
    from offergrid_integration.orders.processor import (
        IDEMPOTENCY_KEY_PREFIX,
        PartialBatchResponse,
        ProcessorSettings,
    )
    from offergrid_integration.orders.processor import ProcessorRuntime as Runtime

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

__all__ = ["IDEMPOTENCY_KEY_PREFIX", "Runtime", "configure", "get_runtime", "lambda_handler", "reset"]


def _close(runtime: Runtime) -> None:
    runtime.close()
    aws.reset()  # the next runtime starts a new session (tests: a new moto backend)


_runtime = Container(lambda: Runtime(load_settings(ProcessorSettings)), close=_close)
get_runtime, configure, reset = _runtime.get, _runtime.configure, _runtime.reset
with init_phase():
    _runtime.build_at_init()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialBatchResponse:
    runtime = get_runtime()
    runtime.bind(context)
    return runtime.batch.process(event)
