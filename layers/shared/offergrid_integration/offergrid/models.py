"""Pydantic models of the Offergrid Provider API bodies (camelCase on the wire, `to_wire()` to send).

Unknown fields are kept (`extra="allow"`) so a round trip drops nothing. Requests are strict, so a mapping
bug fails here and not at Offergrid; responses are lenient (docs/decisions.md#10): an unreadable optional
field is left out and named in `unreadable_fields` rather than failing its list.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    field_serializer,
    model_validator,
)
from pydantic.alias_generators import to_camel


class OfferCategory(StrEnum):
    INTERNET = "internet"
    TELEVISION = "television"
    SECURITY = "security"
    ENERGY = "energy"
    INSURANCE = "insurance"
    OTHER = "other"


class OfferStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    INACTIVE = "inactive"
    ARCHIVED = "archived"


class PricingType(StrEnum):
    FIXED = "fixed"
    VARIABLE = "variable"
    TIERED = "tiered"
    CUSTOM = "custom"


class OrderItemStatus(StrEnum):
    PENDING = "pending"
    SUBMITTED_TO_PROVIDER = "submitted_to_provider"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    ACTIVE = "active"
    CANCELLED = "cancelled"
    FAILED = "failed"


class ConnectionType(StrEnum):
    FIBER = "fiber"
    CABLE = "cable"
    DSL = "dsl"
    SATELLITE = "satellite"
    FIXED_WIRELESS = "fixed_wireless"
    HOME_5G = "5g_home"


class MonitoringType(StrEnum):
    PROFESSIONAL_MONITORING = "professional_monitoring"
    SELF_MONITORING = "self_monitoring"
    HYBRID = "hybrid"


class InstallationType(StrEnum):
    PROFESSIONAL = "professional"
    DIY = "diy"


# Response-side enum types: try the enum first, keep a value we do not know yet as a plain string.
OpenOfferCategory = Annotated[OfferCategory | str, Field(union_mode="left_to_right")]
OpenOfferStatus = Annotated[OfferStatus | str, Field(union_mode="left_to_right")]
OpenPricingType = Annotated[PricingType | str, Field(union_mode="left_to_right")]
OpenOrderItemStatus = Annotated[OrderItemStatus | str, Field(union_mode="left_to_right")]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# A string on the wire that a server may also send as a number (`"zipCode": 62701`, `"id": 42`): its text.
Text = Annotated[str, BeforeValidator(lambda value: str(value) if _is_number(value) else value)]


class OffergridModel(BaseModel):
    """Base of every Offergrid body: camelCase on the wire, unknown fields kept."""

    model_config = ConfigDict(
        extra="allow", populate_by_name=True, alias_generator=to_camel, defer_build=True
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON body to send: wire names, JSON types, only the fields explicitly set."""
        return self.model_dump(exclude_unset=True, mode="json", by_alias=True)


class OffergridResponse(OffergridModel):
    """Validated as is, then without the optional fields that failed (named in `unreadable_fields`)."""

    _unreadable_fields: tuple[str, ...] = PrivateAttr(default=())
    _numbers_read_as_text: tuple[str, ...] = PrivateAttr(default=())

    @property
    def unreadable_fields(self) -> tuple[str, ...]:
        """Wire names of the optional fields left out because their value could not be read."""
        return self._unreadable_fields

    @property
    def numbers_read_as_text(self) -> tuple[str, ...]:
        """Wire names of the text fields (an id, a ZIP code) that came as a JSON number and were read
        as its text: what a number cannot hold (a ZIP code's leading zero) is not in that text."""
        return self._numbers_read_as_text

    @model_validator(mode="wrap")
    @classmethod
    def _leave_out_unreadable_optional_fields(
        cls, data: Any, handler: ModelWrapValidatorHandler[Self]
    ) -> Self:
        try:
            model = handler(data)
        except ValidationError as exc:
            if not isinstance(data, dict):
                raise
            names = _failed_optional_fields(cls, exc)
            if names is None:
                raise
            model = handler({key: value for key, value in data.items() if key not in names})
            model._unreadable_fields = tuple(sorted(names & data.keys()))
        if isinstance(data, dict):
            model._numbers_read_as_text = _numbers_read_as_text(model, data)
        return model


def _numbers_read_as_text(model: BaseModel, data: dict[str, Any]) -> tuple[str, ...]:
    """The wire names of the fields whose JSON number `model` holds as text (`Text` fields)."""
    return tuple(
        field.alias or name
        for name, field in type(model).model_fields.items()
        if isinstance(getattr(model, name), str)
        and any(_is_number(value) for value in (data.get(field.alias or name), data.get(name)))
    )


def _failed_optional_fields(model: type[BaseModel], exc: ValidationError) -> set[str] | None:
    """The input keys (alias and name) of the optional fields that failed; None if a required one did."""
    keys: set[str] = set()
    for error in exc.errors():
        loc = error["loc"]
        if not loc:
            return None
        found = next(
            ((name, field) for name, field in model.model_fields.items() if loc[0] in (name, field.alias)),
            None,
        )
        if found is None or found[1].is_required():
            return None
        name, field = found
        keys.update(key for key in (name, field.alias) if key)
    return keys or None


class InternetServiceData(OffergridModel):
    min_bandwidth: float
    max_bandwidth: float
    connection_type: ConnectionType
    data_cap: float | None = None


class SecurityServiceData(OffergridModel):
    monitoring_type: MonitoringType
    installation_type: InstallationType
    equipment_included: str


# Internet and security data are documented; anything else (television, energy...) stays a dict.
ServiceSpecificData = Annotated[
    InternetServiceData | SecurityServiceData | dict[str, Any], Field(union_mode="left_to_right")
]


class _OfferContent(OffergridModel):
    """The writable offer fields whose type is the same on requests and responses."""

    name: str | None = None
    internal_name: str | None = None
    sku: str | None = None
    external_id: str | None = None
    metadata: dict[str, Any] | None = None
    description: str | None = None
    internal_description: str | None = None
    marketing_headline: str | None = None
    marketing_description: str | None = None
    key_features: list[str] | None = None
    image_url: str | None = None
    overview: str | None = None
    submission_url: str | None = None
    submission_config: dict[str, Any] | None = None
    service_specific_data: ServiceSpecificData | None = None
    monthly_price: float | None = None
    compliance_data: dict[str, Any] | None = None
    compliance_status: str | None = None
    compliance_notes: str | None = None


class OfferFields(_OfferContent):
    """Every writable offer field, all optional, enums strict (what we send)."""

    category: OfferCategory | None = None
    status: OfferStatus | None = None
    pricing_type: PricingType | None = None


class OfferCreate(OfferFields):
    """Body of `POST /provider/offers`."""

    name: str
    category: OfferCategory
    sku: str


class OfferUpdate(OfferFields):
    """Body of `PATCH /provider/offers/{id}`: only the fields explicitly set are sent (None sends null)."""


class Offer(_OfferContent, OffergridResponse):
    """An offer as Offergrid returns it (only `id` is required)."""

    id: Text
    category: OpenOfferCategory | None = None
    status: OpenOfferStatus | None = None
    pricing_type: OpenPricingType | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class CustomerInfo(OffergridResponse):
    full_name: str | None = None
    email: str | None = None
    phone: str | None = None


class ServiceAddress(OffergridResponse):
    street: str | None = None
    city: str | None = None
    state: str | None = None
    zip_code: Text | None = None
    country: str | None = None


class OrderItem(OffergridResponse):
    """One order item (`/provider/orders/{itemId}`): only `id` and `status` are required."""

    id: Text
    status: OpenOrderItemStatus
    order_id: Text | None = None
    offer_id: Text | None = None
    offer_name: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    customer_info: CustomerInfo | None = None
    service_address: ServiceAddress | None = None
    notes: str | None = None
    metadata: dict[str, Any] | None = None
    provider_notes: str | None = None
    scheduled_for: datetime | None = None


class StatusUpdate(OffergridModel):
    """Body of `PATCH /provider/orders/{itemId}/status`; `scheduled` needs `scheduled_for` (UTC)."""

    status: OrderItemStatus
    provider_notes: str | None = None
    scheduled_for: datetime | None = None
    metadata: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _scheduled_needs_a_date(self) -> Self:
        if self.status is OrderItemStatus.SCHEDULED and self.scheduled_for is None:
            raise ValueError("scheduledFor is required when status is 'scheduled'")
        return self

    @field_serializer("scheduled_for")
    def _iso_utc(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class ErrorBody(OffergridModel):
    """`{"statusCode": 400, "message": "..." | ["...", ...], "error": "Bad Request"}`."""

    status_code: int | None = None
    message: str | list[str] | None = None
    error: str | None = None

    def text(self) -> str | None:
        """The message as one string (a validation list joined with '; ')."""
        if isinstance(self.message, list):
            return "; ".join(str(part) for part in self.message) or None
        return self.message or None


def validation_problems(exc: ValidationError) -> str:
    """Where and what went wrong, never the values (the pydantic message quotes the input)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<body>'}: {err['msg']}" for err in exc.errors()
    )
