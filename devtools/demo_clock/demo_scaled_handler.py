"""`make demo`'s handler shim: the function's own handler, its runtime on the fake's compressed clock.

`devtools.demo` starts the processor's and the sync's workers with this module as their handler and
this folder after the layer on `sys.path`. It imports the function's real handler module (named by
`OFFERGRID_DEMO_HANDLER`, e.g. `app.lambda_handler`), then hands it a runtime built from the same
environment on `ScaledClock(OFFERGRID_DEMO_TIME_SCALE)`, the way the tests inject a clock
(`app.configure(app.Runtime(settings, clock=...))`): rate-budget waits and backoff then pass at the
fake's speed instead of in real time. Only the demo sets these variables; the functions never read
them, so nothing of this exists in a deployed function.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from offergrid_integration.clock import ScaledClock
from offergrid_integration.config import load_settings

_module_name, _, _function_name = os.environ["OFFERGRID_DEMO_HANDLER"].rpartition(".")
_app: Any = importlib.import_module(_module_name)
_clock = ScaledClock(float(os.environ["OFFERGRID_DEMO_TIME_SCALE"]))

if hasattr(_app, "Runtime"):  # the order processor
    from offergrid_integration.orders.processor import ProcessorSettings

    _app.reset()
    _app.configure(_app.Runtime(load_settings(ProcessorSettings), clock=_clock))
elif hasattr(_app, "SyncRuntime"):  # the offer sync
    from offergrid_integration.catalog.settings import SyncSettings

    _app.reset()
    _app.configure(_app.SyncRuntime(load_settings(SyncSettings), clock=_clock))

lambda_handler = getattr(_app, _function_name)
