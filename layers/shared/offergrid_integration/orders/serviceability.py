"""Can we serve this order item's address? The port, and the coverage rules (the document's format:
docs/configuration.md, "Coverage rules"). Rules that cannot be read are `ServiceabilityUnavailable`,
transient: a configuration mistake retries orders, never rejects them. The sources are in
`orders/adapters/serviceability.py`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Literal, Protocol

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from offergrid_integration.errors import TransientError
from offergrid_integration.metrics_names import SERVICEABILITY_RULES_STALE
from offergrid_integration.observability import logger, metrics
from offergrid_integration.offergrid.models import OrderItem, ServiceAddress

DEFAULT_RULES_MAX_AGE: Final = 300.0
# What a fresh deploy uses (the template's default parameter value): every US address.
DEFAULT_COVERAGE_RULES: Final = '{"version":1,"defaultCountry":"US","allow":[{"countries":["US"]}],"deny":[]}'

_COUNTRY_ALIASES: Final = {
    "USA": "US",
    "UNITEDSTATES": "US",
    "UNITEDSTATESOFAMERICA": "US",
    "UK": "GB",
    "UNITEDKINGDOM": "GB",
}


class ServiceabilityUnavailable(TransientError):
    """Serviceability cannot be decided now (rules missing/unreadable/invalid, hook down). Not a
    `ConfigurationError`: a hook that is down or rules being replaced are not a wrong environment."""

    def __init__(self, message: str, *, problems: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.problems: dict[str, str] = dict(problems or {})


class ServiceabilityCode(StrEnum):
    COVERED = "covered"
    NOT_COVERED = "not_covered"
    DENIED = "denied"
    ADDRESS_MISSING = "address_missing"
    HOOK = "hook"


@dataclass(frozen=True)
class ServiceabilityDecision:
    serviceable: bool
    code: ServiceabilityCode
    reason: str  # for people: goes into providerNotes on a rejection


class ServiceabilityChecker(Protocol):
    def check(self, item: OrderItem) -> ServiceabilityDecision:
        """Decide for the item's service address; `ServiceabilityUnavailable` if it cannot now."""
        ...


def _compact(value: str) -> str:
    return "".join(value.split()).upper()


def _country(value: str) -> str:
    compact = _compact(value).replace(".", "")
    return _COUNTRY_ALIASES.get(compact, compact)


@dataclass(frozen=True)
class _Address:
    country: str | None
    state: str | None
    zip_code: str | None

    @classmethod
    def from_service_address(cls, address: ServiceAddress | None, default_country: str | None) -> _Address:
        if address is None:
            return cls(default_country, None, None)
        country = _country(address.country) if address.country and address.country.strip() else None
        state = _compact(address.state) if address.state and address.state.strip() else None
        zip_code = _compact(address.zip_code) if address.zip_code and address.zip_code.strip() else None
        return cls(country or default_country, state, zip_code)

    def zip_candidates(self) -> tuple[str, ...]:
        if self.zip_code is None:
            return ()
        base = self.zip_code.split("-", 1)[0]
        return (self.zip_code, base) if base != self.zip_code else (self.zip_code,)


class _RulesModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class CoverageRule(_RulesModel):
    countries: frozenset[str] = frozenset()
    states: frozenset[str] = frozenset()
    zip_codes: frozenset[str] = Field(default=frozenset(), alias="zipCodes")
    zip_prefixes: tuple[str, ...] = Field(default=(), alias="zipPrefixes")

    @field_validator("countries", mode="before")
    @classmethod
    def _countries(cls, value: Any) -> Any:
        return [_country(v) for v in value] if isinstance(value, list) else value

    @field_validator("states", "zip_codes", "zip_prefixes", mode="before")
    @classmethod
    def _compact_all(cls, value: Any) -> Any:
        return [_compact(v) for v in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _not_empty(self) -> CoverageRule:
        if not (self.countries or self.states or self.zip_codes or self.zip_prefixes):
            raise ValueError("a rule needs at least one of countries, states, zipCodes, zipPrefixes")
        if any(not value for value in (*self.countries, *self.states, *self.zip_codes, *self.zip_prefixes)):
            raise ValueError("rule values must not be blank")
        return self

    def matches(self, address: _Address) -> bool:
        if self.countries and address.country not in self.countries:
            return False
        if self.states and address.state not in self.states:
            return False
        if self.zip_codes or self.zip_prefixes:
            candidates = address.zip_candidates()
            in_codes = any(zip_code in self.zip_codes for zip_code in candidates)
            in_prefixes = any(zip_code.startswith(self.zip_prefixes) for zip_code in candidates)
            if not (in_codes or in_prefixes):
                return False
        return True


class CoverageRules(_RulesModel):
    version: Literal[1] = 1
    default_country: str | None = Field(default=None, alias="defaultCountry")
    allow: tuple[CoverageRule, ...] = Field(min_length=1)
    deny: tuple[CoverageRule, ...] = ()

    @field_validator("default_country")
    @classmethod
    def _default_country(cls, value: str | None) -> str | None:
        return _country(value) if value and value.strip() else None

    def evaluate(self, address: ServiceAddress | None) -> ServiceabilityDecision:
        where = _Address.from_service_address(address, self.default_country)
        if where.country is None and where.state is None and where.zip_code is None:
            return ServiceabilityDecision(
                False, ServiceabilityCode.ADDRESS_MISSING, "The order has no usable service address."
            )
        label = " ".join(part for part in (where.zip_code, where.state, where.country) if part)
        if any(rule.matches(where) for rule in self.deny):
            return ServiceabilityDecision(
                False, ServiceabilityCode.DENIED, f"We do not provide this service at {label}."
            )
        if any(rule.matches(where) for rule in self.allow):
            return ServiceabilityDecision(
                True, ServiceabilityCode.COVERED, f"{label} is in our coverage area."
            )
        return ServiceabilityDecision(
            False,
            ServiceabilityCode.NOT_COVERED,
            f"The service address ({label}) is outside our coverage area.",
        )


def parse_coverage_rules(document: str | bytes) -> CoverageRules:
    """The rules in `document`; `ServiceabilityUnavailable` naming the problem (never the content)."""
    try:
        return CoverageRules.model_validate_json(document)
    except ValidationError as exc:
        problems = sorted(
            {
                f"{'.'.join(str(p) for p in error['loc']) or 'document'}: {error['msg']}"
                for error in exc.errors()
            }
        )
        raise ServiceabilityUnavailable(
            "invalid coverage rules: " + "; ".join(problems[:10]), problems={"coverage_rules": "invalid"}
        ) from None


class RulesSource(Protocol):
    description: str

    def load(self, *, max_age: int) -> str | bytes:
        """The raw document, read at most every `max_age` seconds; `ServiceabilityUnavailable` if not."""
        ...

    def keep(self, document: str | bytes, *, max_age: int) -> None:
        """Serve `document` for `max_age` seconds (the last good one, after a failed refresh)."""
        ...


class CoverageRulesChecker:
    """Decides from the rules its source re-reads at most every `max_age` seconds. A failed refresh
    keeps the last good rules for another `max_age`, logged and counted (`ServiceabilityRulesStale`)."""

    def __init__(self, source: RulesSource, *, max_age_seconds: float = DEFAULT_RULES_MAX_AGE) -> None:
        self._source = source
        self._max_age = max(0, int(max_age_seconds))
        self._rules: CoverageRules | None = None
        self._document: str | bytes | None = None  # the last good document, as read
        self._lock = threading.Lock()

    def rules(self) -> CoverageRules:
        with self._lock:
            try:
                document = self._source.load(max_age=self._max_age)
                if document is self._document and self._rules is not None:
                    return self._rules  # the cached document: parsed already
                rules = parse_coverage_rules(document)
            except ServiceabilityUnavailable as exc:
                if self._rules is None or self._document is None:
                    raise
                # Keep deciding with the last good rules; the log and the metric (its alarm) say why.
                logger.error(
                    "coverage rules refresh failed; using the last good rules",
                    extra={"error": str(exc), "rules_source": self._source.description},
                )
                metrics.add_metric(name=SERVICEABILITY_RULES_STALE, unit=MetricUnit.Count, value=1)
                self._source.keep(self._document, max_age=self._max_age)
                return self._rules
            self._rules, self._document = rules, document
            return rules

    def check(self, item: OrderItem) -> ServiceabilityDecision:
        return self.rules().evaluate(item.service_address)
