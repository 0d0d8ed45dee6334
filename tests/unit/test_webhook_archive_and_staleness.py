"""The ingress's archive write and stale deliveries, without AWS (issue 25).

The archive: every verified delivery is kept as received; the queue write never waits for the archive,
and an archive that fails or hangs never loses or delays it (`WebhookIngress.handle`,
`archive`). Stale deliveries: docs/decisions.md#20.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field

import pytest

from offergrid_integration.archive import ArchivedDelivery, ArchiveWriteError, BackgroundArchive
from offergrid_integration.contract import DEPLOY_CHECK_EVENT, QueuedMessage
from offergrid_integration.signature import SIGNATURE_HEADER, sign, verify_signature
from offergrid_integration.webhooks.ingress import WebhookIngress
from offergrid_integration.webhooks.results import IngressOutcome, RequestReason, StaleMode
from tests.unit.test_webhook_ingress import SECRET, FakeClock, FakeSecrets, RecordingQueue, api_event

# Generous: a bound no test waits out on a working machine, only a broken test would.
NEVER: float = 30.0


def body_of(event: str = "order.created", **fields: object) -> str:
    return json.dumps({"event": event, "orderId": "o-1", "itemId": "i-1", **fields}, separators=(",", ":"))


@dataclass
class RecordingArchive:
    """A `DeliveryArchive` that keeps what it is given, or fails, or blocks until released."""

    kept: list[ArchivedDelivery] = field(default_factory=list)
    fail_with: Exception | None = None
    release: threading.Event | None = None
    entered: threading.Event = field(default_factory=threading.Event)

    def put(self, delivery: ArchivedDelivery) -> str:
        self.entered.set()
        if self.release is not None:
            assert self.release.wait(NEVER), "the test never released the archive"
        if self.fail_with is not None:
            raise self.fail_with
        self.kept.append(delivery)
        return delivery.key


@dataclass
class OrderedQueue(RecordingQueue):
    """Notes, at each send, whether the archive write had finished by then."""

    archive: RecordingArchive | None = None
    archive_done_at_send: list[bool] = field(default_factory=list)

    def send(self, message_body: str, attributes: dict[str, str]) -> str | None:
        if self.archive is not None:
            self.archive_done_at_send.append(bool(self.archive.kept))
        return super().send(message_body, attributes)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_ingress(
    queue: RecordingQueue,
    archive: RecordingArchive,
    clock: FakeClock,
    *,
    wait: float = NEVER,
    mode: StaleMode = StaleMode.COUNT,
    tolerance: float = 3600,
) -> tuple[WebhookIngress, BackgroundArchive]:
    background = BackgroundArchive(archive)
    ingress = WebhookIngress(
        secrets=FakeSecrets([SECRET]),
        queue=queue,
        clock=clock,
        archive=background,
        archive_wait_seconds=wait,
        stale_mode=mode,
        stale_tolerance_seconds=tolerance,
    )
    return ingress, background


# ---------------------------------------------------------------------------------------------------
# The archive write
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("is_base64", [False, True])
def test_a_verified_delivery_is_archived_as_received(clock: FakeClock, is_base64: bool):
    # Given a signed delivery, its body as API Gateway hands it (text, or base64 with the flag)
    raw = body_of(note="Müller")
    text = base64.b64encode(raw.encode()).decode() if is_base64 else raw
    event = api_event(text, signature=sign(raw.encode(), SECRET), isBase64Encoded=is_base64)
    archive, queue = RecordingArchive(), RecordingQueue()
    ingress, background = make_ingress(queue, archive, clock)
    # When it is handled
    result = ingress.handle(event, correlation_id="req-1")
    background.close()
    # Then it is queued and kept: the body as handed over, its flag, the signature header, and when
    assert result.status == 200
    assert result.archive is not None
    assert result.archive.ok
    [kept] = archive.kept
    assert (kept.body, kept.is_base64_encoded, kept.request_id) == (text, is_base64, "req-1")
    assert kept.signature == event["headers"]["X-Offergrid-Signature"]  # type: ignore[index]
    assert kept.received_at.timestamp() == pytest.approx(clock.current, abs=0.001)
    assert result.archive.key == kept.key
    assert kept.key.startswith("archive/")
    verify_signature(kept.raw_body(), kept.signature, [SECRET])  # it verifies again
    assert SECRET not in kept.to_json().decode()
    assert json.loads(kept.to_json())["headers"] == {SIGNATURE_HEADER: kept.signature}


def test_what_is_verified_is_archived_whatever_its_fate_and_nothing_else(clock: FakeClock):
    archive, queue = RecordingArchive(), RecordingQueue()
    ingress, background = make_ingress(queue, archive, clock)
    outcomes = {
        "queued": ingress.handle(api_event(body_of())).status,
        "verified, not a webhook": ingress.handle(api_event('{"no": "event"}')).status,
        "not signed": ingress.handle(api_event(body_of(), signature="0" * 64)).status,
        "not POST": ingress.handle(api_event(body_of(), httpMethod="GET")).status,
    }
    queue.fail_with = "AWS.SimpleQueueService.NonExistentQueue"
    outcomes["queue down"] = ingress.handle(api_event(body_of(itemId="i-2"))).status
    background.close()
    assert outcomes == {
        "queued": 200,
        "verified, not a webhook": 400,
        "not signed": 401,
        "not POST": 405,
        "queue down": 503,
    }
    # the three verified deliveries, and only they (a 503 is retried by Offergrid: kept each time)
    assert [json.loads(d.raw_body()).get("itemId") for d in archive.kept] == ["i-1", None, "i-2"]


def test_the_deploy_check_is_archived_apart_and_is_not_offergrids(clock: FakeClock):
    archive, queue = RecordingArchive(), RecordingQueue()
    ingress, background = make_ingress(queue, archive, clock)
    check = ingress.handle(api_event(json.dumps({"event": DEPLOY_CHECK_EVENT, "checkId": "c-1"})))
    delivery = ingress.handle(api_event(body_of()))
    background.close()
    assert [d.check for d in archive.kept] == [True, False]
    assert check.archive is not None
    assert check.archive.key is not None
    assert check.archive.key.startswith("checks/")
    # the silence alarm's count (WebhookVerified) is Offergrid's deliveries only
    assert (check.from_offergrid, delivery.from_offergrid) == (False, True)


def test_a_failing_archive_loses_nothing_and_changes_no_answer(clock: FakeClock):
    # Given an archive that refuses every write
    archive = RecordingArchive(fail_with=ArchiveWriteError("AccessDenied"))
    queue = RecordingQueue()
    ingress, background = make_ingress(queue, archive, clock)
    # When a delivery arrives
    result = ingress.handle(api_event(body_of()))
    background.close()
    # Then it is queued and answered 200 as ever; the archive's failure is only reported
    assert (result.status, result.outcome) == (200, IngressOutcome.QUEUED)
    assert len(queue.sent) == 1
    assert result.archive is not None
    assert (result.archive.status, result.archive.error) == ("failed", "AccessDenied")
    assert result.log_fields()["archive_error"] == "AccessDenied"


def test_an_archive_that_raises_anything_is_still_only_reported(clock: FakeClock):
    archive = RecordingArchive(fail_with=RuntimeError("boom with a body inside"))
    ingress, background = make_ingress(RecordingQueue(), archive, clock)
    result = ingress.handle(api_event(body_of()))
    background.close()
    assert result.status == 200
    assert result.archive is not None
    assert result.archive.error == "RuntimeError"


def test_a_hanging_archive_never_delays_the_queue_write(clock: FakeClock):
    # Given an archive whose write does not return until the test says so
    archive = RecordingArchive(release=threading.Event())
    queue = OrderedQueue(archive=archive)
    ingress, background = make_ingress(queue, archive, clock, wait=0.05)
    try:
        # When a delivery arrives
        result = ingress.handle(api_event(body_of()))
        # Then the queue write happened while the archive write was still running, and the answer came
        # without it: 200, the archive reported late. (No timing is asserted: the archive is still
        # blocked here, so everything above happened without it.)
        assert archive.entered.wait(NEVER)  # the worker may start it after the answer, on a busy machine
        assert queue.archive_done_at_send == [False]
        assert (result.status, len(queue.sent)) == (200, 1)
        assert result.archive is not None
        assert result.archive.status == "late"
        assert archive.kept == []
    finally:
        assert archive.release is not None
        archive.release.set()
        background.close()
    # and the late write still lands once it can
    assert len(archive.kept) == 1


def test_the_queue_message_is_the_same_with_or_without_an_archive(clock: FakeClock):
    with_archive, without = RecordingQueue(), RecordingQueue()
    ingress, background = make_ingress(with_archive, RecordingArchive(), clock)
    ingress.handle(api_event(body_of()), correlation_id="req-1")
    background.close()
    WebhookIngress(secrets=FakeSecrets([SECRET]), queue=without, clock=clock).handle(
        api_event(body_of()), correlation_id="req-1"
    )
    assert with_archive.sent == without.sent


# ---------------------------------------------------------------------------------------------------
# Stale deliveries (docs/decisions.md#20)
# ---------------------------------------------------------------------------------------------------
HOUR = 3600.0


def stamped(clock: FakeClock, age_seconds: float | None, **fields: object) -> dict[str, object]:
    if age_seconds is None:
        return api_event(body_of(**fields))
    return api_event(body_of(timestamp=int((clock.current - age_seconds) * 1000), **fields))


@pytest.mark.parametrize("mode", list(StaleMode))
def test_a_fresh_delivery_is_queued_in_either_mode(clock: FakeClock, mode: StaleMode):
    queue, archive = RecordingQueue(), RecordingArchive()
    ingress, background = make_ingress(queue, archive, clock, mode=mode, tolerance=HOUR)
    result = ingress.handle(stamped(clock, HOUR - 1))
    background.close()
    assert result.status == 200
    assert result.freshness is not None
    assert not result.freshness.stale
    assert len(queue.sent) == 1


def test_count_mode_queues_a_stale_delivery_and_says_how_old_it_is(clock: FakeClock):
    queue, archive = RecordingQueue(), RecordingArchive()
    ingress, background = make_ingress(queue, archive, clock, mode=StaleMode.COUNT, tolerance=HOUR)
    result = ingress.handle(stamped(clock, 2 * HOUR))
    background.close()
    assert (result.status, len(queue.sent)) == (200, 1)
    assert result.freshness is not None
    assert result.freshness.stale
    fields = result.log_fields()
    assert fields["stale"] is True
    assert fields["timestamp_age_seconds"] == pytest.approx(2 * HOUR, abs=0.01)


def test_refuse_mode_refuses_a_stale_delivery_with_a_reason_and_still_archives_it(clock: FakeClock):
    queue, archive = RecordingQueue(), RecordingArchive()
    ingress, background = make_ingress(queue, archive, clock, mode=StaleMode.REFUSE, tolerance=HOUR)
    result = ingress.handle(stamped(clock, 2 * HOUR))
    background.close()
    assert (result.status, result.body) == (401, {"message": "Unauthorized"})
    assert (result.outcome, result.reason) == (IngressOutcome.REJECTED, RequestReason.TIMESTAMP_STALE)
    assert result.log_fields()["reason"] == "timestamp_stale"
    assert result.item_id == "i-1"  # its log line names the item
    assert queue.sent == []
    assert len(archive.kept) == 1  # verified: kept as received, refused or not


@pytest.mark.parametrize("timestamp", [None, "", "sometime last week", {"not": "a time"}])
def test_refuse_mode_never_refuses_a_delivery_without_a_readable_timestamp(
    clock: FakeClock, timestamp: object
):
    queue, archive = RecordingQueue(), RecordingArchive()
    ingress, background = make_ingress(queue, archive, clock, mode=StaleMode.REFUSE, tolerance=60)
    fields = {} if timestamp is None else {"timestamp": timestamp}
    result = ingress.handle(api_event(body_of(**fields)))
    background.close()
    if isinstance(timestamp, dict):  # not a string nor a number: the payload rule, 400 as before
        assert result.status == 400
        return
    assert (result.status, len(queue.sent)) == (200, 1)
    assert result.freshness is not None
    assert not result.freshness.stale


def test_the_queued_message_keeps_the_timestamp_as_sent(clock: FakeClock):
    queue = RecordingQueue()
    ingress, background = make_ingress(queue, RecordingArchive(), clock, mode=StaleMode.COUNT, tolerance=60)
    ingress.handle(stamped(clock, HOUR))
    background.close()
    [(body, _)] = queue.sent
    assert QueuedMessage.from_json(body).event.timestamp == str(int((clock.current - HOUR) * 1000))
