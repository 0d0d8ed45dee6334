"""How many product files one order runs through, from the webhook's request to the PATCH.

Issue 23 measures the code's shape by the files an engineer follows for one `order.created`. This
counts them instead of reading them: every file of the layer and `functions/` with a function that
runs (init included, in every thread) while one signed delivery is answered, queued, drained by the
processor and accepted at the fake. 43 before issue 23, 30 after; the ceiling keeps it from growing
back (lower it when the path gets shorter). `-s` prints the list.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from devtools.offergrid_fake import OffergridFake
from tests.integration import test_text_and_size as sized
from tests.integration.test_text_and_size import Delivery

# the fixtures of the webhook-to-processor tests: moto, the fake, the stack, the queue with its DLQ
delivery = sized.delivery
fake = sized.fake
runtime = sized.runtime
runtime_factory = sized.runtime_factory
stack = sized.stack

ORDER_PATH_CEILING = 30
REPO = Path(__file__).resolve().parents[2]
PRODUCT = (str(REPO / "layers" / "shared" / "offergrid_integration"), str(REPO / "functions"))


def test_one_order_runs_through_at_most_the_ceiling_of_product_files(
    fake: OffergridFake, delivery: Delivery
) -> None:
    ran: set[str] = set()

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        code = frame.f_code
        if event == "call" and code.co_filename.startswith(PRODUCT) and code.co_name != "<module>":
            ran.add(str(Path(code.co_filename).relative_to(REPO)))

    fake.add_order_item(id="item-path", orderId="order-path")
    body = json.dumps({"event": "order.created", "orderId": "order-path", "itemId": "item-path"})
    sys.setprofile(profile)
    threading.setprofile(profile)
    try:
        answer = delivery.post(body)
        delivery.drain()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]

    assert answer["statusCode"] == 200
    assert fake.order_items["item-path"]["status"] == "accepted"
    print(f"\n{len(ran)} product files ran for one order:", *sorted(ran), sep="\n  ")
    assert len(ran) <= ORDER_PATH_CEILING, sorted(ran)
