"""Coverage rules (the document, its sources, the cache) and the provider's HTTPS hook."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import httpx
import pytest
from aws_lambda_powertools.utilities.parameters import SSMProvider

from offergrid_integration.config import ConfigurationError
from offergrid_integration.errors import TransientError
from offergrid_integration.offergrid.models import OrderItem, ServiceAddress
from offergrid_integration.orders import serviceability
from offergrid_integration.orders.adapters.serviceability import (
    HttpsHookChecker,
    S3RulesSource,
    SsmRulesSource,
    build_serviceability_checker,
)
from offergrid_integration.orders.serviceability import (
    DEFAULT_COVERAGE_RULES,
    CoverageRulesChecker,
    ServiceabilityCode,
    ServiceabilityUnavailable,
    parse_coverage_rules,
)

RULES = {
    "version": 1,
    "defaultCountry": "US",
    "allow": [
        {"countries": ["US"], "states": ["CA", "NV"]},
        {"zipPrefixes": ["100", "112"]},
        {"zipCodes": ["30301"]},
        {"countries": ["GB"], "zipPrefixes": ["SW1A"]},
    ],
    "deny": [{"zipCodes": ["94999"]}, {"states": ["NV"], "zipPrefixes": ["893"]}],
}


def address(
    zip_code: str | None = None, state: str | None = None, country: str | None = "US"
) -> ServiceAddress:
    return ServiceAddress(street="1 Main St", city="Town", state=state, zip_code=zip_code, country=country)


def item(service_address: ServiceAddress | None) -> OrderItem:
    return OrderItem(id="item-1", order_id="order-1", status="pending", service_address=service_address)


class FakeSource:
    """A rules source that serves its document (no cache of its own) and records what it keeps."""

    description = "test source"

    def __init__(self, document: str) -> None:
        self.document: str | Exception = document
        self.loads = 0
        self.kept: list[str | bytes] = []

    def load(self, *, max_age: int) -> str:
        self.loads += 1
        if isinstance(self.document, Exception):
            raise self.document
        return self.document

    def keep(self, document: str | bytes, *, max_age: int) -> None:
        self.kept.append(document)


@pytest.fixture
def ssm_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of every SSM parameter read through Powertools (cache misses only)."""
    reads: list[str] = []
    original = SSMProvider._get

    def counting_get(self: SSMProvider, name: str, **options: Any) -> str:
        reads.append(name)
        return original(self, name, **options)

    monkeypatch.setattr(SSMProvider, "_get", counting_get)
    return reads


@pytest.fixture
def stale_metrics(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the metrics the serviceability module adds."""
    added: list[str] = []

    def add_metric(*, name: str, unit: Any, value: float) -> None:
        added.append(name)

    monkeypatch.setattr(serviceability.metrics, "add_metric", add_metric)
    return added


@pytest.mark.parametrize(
    ("where", "serviceable", "code"),
    [
        (address("94105", "CA"), True, ServiceabilityCode.COVERED),
        (address("94105-1234", "ca"), True, ServiceabilityCode.COVERED),  # ZIP+4, case
        (address("94999", "CA"), False, ServiceabilityCode.DENIED),  # deny wins over the CA rule
        (address("94999-0001", "CA"), False, ServiceabilityCode.DENIED),  # ZIP+4 of a denied ZIP
        (address("89301", "NV"), False, ServiceabilityCode.DENIED),
        (address("89101", "NV"), True, ServiceabilityCode.COVERED),
        (address("10001", "NY"), True, ServiceabilityCode.COVERED),  # by prefix
        (address("30301", "GA"), True, ServiceabilityCode.COVERED),  # by code
        (address("30302", "GA"), False, ServiceabilityCode.NOT_COVERED),
        (address("62701", "IL", country="USA"), False, ServiceabilityCode.NOT_COVERED),
        (address("10001", "NY", country=None), True, ServiceabilityCode.COVERED),  # defaultCountry
        (address("sw1a 1aa", None, country="United Kingdom"), True, ServiceabilityCode.COVERED),
        (address("94105", "CA", country="CA"), False, ServiceabilityCode.NOT_COVERED),  # Canada
        # nothing but the default country: matches no rule needing a state or ZIP
        (address(None, None, country=None), False, ServiceabilityCode.NOT_COVERED),
        (None, False, ServiceabilityCode.NOT_COVERED),
    ],
)
def test_rules_decide_by_allow_and_deny(
    where: ServiceAddress | None, serviceable: bool, code: ServiceabilityCode
) -> None:
    rules = parse_coverage_rules(json.dumps(RULES))
    decision = rules.evaluate(where)
    assert (decision.serviceable, decision.code) == (serviceable, code)
    assert decision.reason


def test_an_address_with_nothing_usable_is_rejected_as_missing() -> None:
    rules = parse_coverage_rules('{"allow": [{"countries": ["US"]}]}')
    decision = rules.evaluate(address(None, None, country=None))
    assert (decision.serviceable, decision.code) == (False, ServiceabilityCode.ADDRESS_MISSING)


def test_the_default_document_serves_every_us_address() -> None:
    rules = parse_coverage_rules(DEFAULT_COVERAGE_RULES)
    assert rules.evaluate(address("62701", "IL")).serviceable
    assert rules.evaluate(address("62701", "IL", country=None)).serviceable
    assert not rules.evaluate(address("M5V 2T6", "ON", country="CA")).serviceable


@pytest.mark.parametrize(
    "document",
    [
        "",
        "not json",
        "[]",
        '{"version": 1, "allow": []}',  # would reject everything
        '{"version": 1}',
        '{"version": 2, "allow": [{"countries": ["US"]}]}',
        '{"allow": [{}]}',
        '{"allow": [{"countries": [""]}]}',
        '{"allow": [{"country": ["US"]}]}',  # typo: unknown key
        '{"allow": [{"zipCodes": "10001"}]}',
    ],
)
def test_invalid_documents_are_transient_errors(document: str) -> None:
    # Issue 14: transient (the order is retried), not a ConfigurationError (a wrong environment).
    with pytest.raises(ServiceabilityUnavailable) as caught:
        parse_coverage_rules(document)
    assert isinstance(caught.value, TransientError)
    assert not isinstance(caught.value, ConfigurationError)
    assert caught.value.retryable is True


@pytest.mark.usefixtures("aws")
def test_checker_caches_rules_and_keeps_the_last_good_ones(
    cache_clock: Callable[[float], None], ssm_reads: list[str], stale_metrics: list[str]
) -> None:
    # Given rules in SSM and a checker with a 300 s cache
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name="/offergrid/coverage", Type="String", Value=json.dumps(RULES))
    checker = CoverageRulesChecker(SsmRulesSource("/offergrid/coverage"), max_age_seconds=300)
    ca_item = item(address("94105", "CA"))

    # When it decides twice within the cache age, it reads the parameter once
    assert checker.check(ca_item).serviceable
    assert checker.check(ca_item).serviceable
    assert ssm_reads == ["/offergrid/coverage"]

    # When the cache expires and the parameter has become unreadable, the last good rules are used,
    # counted, and kept for another cache age (no read per order while SSM fails)
    cache_clock(301)
    ssm.delete_parameter(Name="/offergrid/coverage")
    assert checker.check(ca_item).serviceable
    assert checker.check(ca_item).serviceable
    assert len(ssm_reads) == 2
    assert stale_metrics == ["ServiceabilityRulesStale"]

    # When an invalid document replaces it, the last good rules are still used
    cache_clock(301)
    ssm.put_parameter(Name="/offergrid/coverage", Type="String", Value='{"allow": []}')
    assert checker.check(ca_item).serviceable
    assert len(ssm_reads) == 3
    assert stale_metrics == ["ServiceabilityRulesStale"] * 2

    # When the parameter is fixed with new rules, they are used after the next expiry
    cache_clock(301)
    ssm.put_parameter(
        Name="/offergrid/coverage",
        Type="String",
        Value=json.dumps({"allow": [{"states": ["NY"]}]}),
        Overwrite=True,
    )
    assert not checker.check(ca_item).serviceable
    assert len(ssm_reads) == 4


def test_a_failed_refresh_keeps_the_last_good_document_in_the_source(stale_metrics: list[str]) -> None:
    # Given a checker that read good rules once (no cache: every check reads the source)
    source = FakeSource(json.dumps(RULES))
    checker = CoverageRulesChecker(source, max_age_seconds=0)
    assert checker.check(item(address("94105", "CA"))).serviceable

    # When the source fails, the last good document is handed back to it to serve
    source.document = ServiceabilityUnavailable("parameter gone")
    assert checker.check(item(address("94105", "CA"))).serviceable
    assert source.kept == [json.dumps(RULES)]
    assert stale_metrics == ["ServiceabilityRulesStale"]


def test_checker_without_any_good_rules_fails_loudly() -> None:
    source = FakeSource("{}")
    checker = CoverageRulesChecker(source)
    with pytest.raises(ServiceabilityUnavailable):
        checker.check(item(address("94105", "CA")))

    source.document = ServiceabilityUnavailable("parameter gone")
    with pytest.raises(ServiceabilityUnavailable, match="parameter gone"):
        checker.check(item(address("94105", "CA")))


@pytest.mark.usefixtures("aws")
def test_ssm_source_reads_the_parameter_and_reports_a_missing_one() -> None:
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name="/offergrid/coverage", Type="String", Value=json.dumps(RULES))
    checker = build_serviceability_checker(
        rules_parameter="/offergrid/coverage", rules_s3_uri=None, hook_url=None
    )
    assert checker.check(item(address("94105", "CA"))).serviceable

    missing = CoverageRulesChecker(SsmRulesSource("/offergrid/missing"))
    with pytest.raises(ServiceabilityUnavailable, match="ParameterNotFound"):
        missing.check(item(address("94105", "CA")))


@pytest.mark.usefixtures("aws")
def test_s3_source_wins_over_the_parameter_and_reports_a_missing_object() -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="rules", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(
        Bucket="rules", Key="coverage.json", Body=json.dumps({"allow": [{"zipCodes": ["62701"]}]}).encode()
    )
    checker = build_serviceability_checker(
        rules_parameter="/not/read", rules_s3_uri="s3://rules/coverage.json", hook_url=None
    )
    assert checker.check(item(address("62701", "IL"))).serviceable
    assert not checker.check(item(address("94105", "CA"))).serviceable

    missing = CoverageRulesChecker(S3RulesSource("s3://rules/absent.json"))
    with pytest.raises(ServiceabilityUnavailable, match="NoSuchKey"):
        missing.check(item(address("62701", "IL")))


def test_no_source_configured_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="SERVICEABILITY"):
        build_serviceability_checker(rules_parameter=None, rules_s3_uri=None, hook_url=None)


def test_s3_uri_must_name_a_bucket_and_key() -> None:
    for bad in ("https://rules/coverage.json", "s3://rules", "s3:///key", "s3://rules/"):
        with pytest.raises(ValueError, match="S3 URI"):
            S3RulesSource(bad)


# --- the HTTPS hook ---------------------------------------------------------------------------------
def hook(handler: Any) -> HttpsHookChecker:
    return HttpsHookChecker("https://provider.example/serviceability", transport=httpx.MockTransport(handler))


def test_hook_posts_the_address_and_uses_the_answer() -> None:
    seen: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        serviceable = seen[-1]["serviceAddress"]["zipCode"] == "62701"
        return httpx.Response(200, json={"serviceable": serviceable, "reason": "fiber not available yet"})

    checker = hook(answer)
    yes = checker.check(item(address("62701", "IL")))
    no = checker.check(item(address("94105", "CA")))

    assert (yes.serviceable, no.serviceable) == (True, False)
    assert no.reason == "fiber not available yet"
    assert no.code is ServiceabilityCode.HOOK
    assert seen[0]["itemId"] == "item-1"
    assert seen[0]["orderId"] == "order-1"
    assert seen[0]["serviceAddress"]["state"] == "IL"


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(500, json={"error": "down"}),
        httpx.Response(404),
        httpx.Response(200, text="yes"),
        httpx.Response(200, json={"serviceable": "yes"}),
        httpx.Response(200, json=[True]),
    ],
)
def test_hook_failures_are_transient_never_a_rejection(reply: httpx.Response) -> None:
    checker = hook(lambda request: reply)
    with pytest.raises(ServiceabilityUnavailable):
        checker.check(item(address("62701", "IL")))


def test_hook_unreachable_is_transient() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ServiceabilityUnavailable, match="unreachable"):
        hook(refuse).check(item(address("62701", "IL")))


def test_hook_wins_over_rules_when_configured() -> None:
    checker = build_serviceability_checker(
        rules_parameter="/p", rules_s3_uri="s3://b/k", hook_url="https://provider.example/serviceability"
    )
    assert isinstance(checker, HttpsHookChecker)


def test_s3_rules_over_the_size_limit_are_unavailable(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from offergrid_integration.orders.adapters import serviceability as rules_sources

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="rules", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="rules", Key="coverage.json", Body=json.dumps(RULES).encode())
    monkeypatch.setattr(rules_sources, "MAX_RULES_BYTES", 10)

    with pytest.raises(ServiceabilityUnavailable, match="over the 10 byte limit"):
        S3RulesSource("s3://rules/coverage.json").load(max_age=0)
