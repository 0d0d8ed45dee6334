"""Request-body validation, with the documented enums and NestJS-style messages.

Offergrid is a NestJS API: a validation failure is a 400 whose `message` is a list of strings such
as "category must be one of the following values: ...". Every function here returns that list
(empty when the body is valid) so the server can answer with all problems at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

CATEGORIES: Final = ("internet", "television", "security", "energy", "insurance", "other")
OFFER_STATUSES: Final = ("draft", "active", "inactive", "archived")
PRICING_TYPES: Final = ("fixed", "variable", "tiered", "custom")
VISIBILITIES: Final = ("public", "preferred", "selected")
CONNECTION_TYPES: Final = ("fiber", "cable", "dsl", "satellite", "fixed_wireless", "5g_home")
MONITORING_TYPES: Final = ("professional_monitoring", "self_monitoring", "hybrid")
INSTALLATION_TYPES: Final = ("professional", "diy")
ORDER_ITEM_STATUSES: Final = (
    "pending",
    "submitted_to_provider",
    "accepted",
    "rejected",
    "scheduled",
    "in_progress",
    "completed",
    "active",
    "cancelled",
    "failed",
)

# Server-generated offer fields: never taken from a request body.
SERVER_OFFER_FIELDS: Final = frozenset({"id", "createdAt", "updatedAt"})
REQUIRED_OFFER_FIELDS: Final = ("name", "category", "sku")
_OPTIONAL_STRING_FIELDS: Final = (
    "internalName",
    "externalId",
    "description",
    "internalDescription",
    "marketingHeadline",
    "marketingDescription",
    "imageUrl",
    "overview",
    "submissionUrl",
    "complianceStatus",
    "complianceNotes",
)
_OBJECT_FIELDS: Final = ("metadata", "submissionConfig", "complianceData")


def one_of(field: str, allowed: tuple[str, ...]) -> str:
    return f"{field} must be one of the following values: {', '.join(allowed)}"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_enum(body: dict[str, Any], field: str, allowed: tuple[str, ...], errors: list[str]) -> None:
    if field in body and body[field] is not None and body[field] not in allowed:
        errors.append(one_of(field, allowed))


def validate_offer(body: dict[str, Any], *, existing: dict[str, Any] | None = None) -> list[str]:
    """Validate a create body (`existing` is None) or a PATCH body against the offer it changes."""
    errors: list[str] = []
    for field in REQUIRED_OFFER_FIELDS:
        value = body.get(field)
        if field not in body and existing is not None:
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            errors.append(f"{field} should not be empty")
        if value is not None and not isinstance(value, str):
            errors.append(f"{field} must be a string")
    if "category" in body and isinstance(body["category"], str) and body["category"] not in CATEGORIES:
        errors.append(one_of("category", CATEGORIES))
    _check_enum(body, "status", OFFER_STATUSES, errors)
    if existing is not None and "status" in body and body["status"] is None:
        errors.append(one_of("status", OFFER_STATUSES))  # an offer always has a status
    _check_enum(body, "pricingType", PRICING_TYPES, errors)
    _check_enum(body, "visibility", VISIBILITIES, errors)
    if body.get("monthlyPrice") is not None and not _is_number(body["monthlyPrice"]):
        errors.append("monthlyPrice must be a number conforming to the specified constraints")
    for field in _OPTIONAL_STRING_FIELDS:
        if body.get(field) is not None and not isinstance(body[field], str):
            errors.append(f"{field} must be a string")
    for field in _OBJECT_FIELDS:
        if body.get(field) is not None and not isinstance(body[field], dict):
            errors.append(f"{field} must be an object")
    features = body.get("keyFeatures")
    if features is not None and (
        not isinstance(features, list) or not all(isinstance(item, str) for item in features)
    ):
        errors.append("each value in keyFeatures must be a string")
    resellers = body.get("allowedResellers")
    if resellers is not None and (
        not isinstance(resellers, list) or not all(isinstance(item, str) for item in resellers)
    ):
        errors.append("each value in allowedResellers must be a string")
    if body.get("serviceSpecificData") is not None:
        category = body.get("category", (existing or {}).get("category"))
        errors.extend(validate_service_specific_data(body["serviceSpecificData"], category))
    return errors


def validate_service_specific_data(data: object, category: object) -> list[str]:
    """Documented DTOs: internet and security. Other categories are free-form objects."""
    if not isinstance(data, dict):
        return ["serviceSpecificData must be an object"]
    errors: list[str] = []
    prefix = "serviceSpecificData."
    if category == "internet":
        for field in ("minBandwidth", "maxBandwidth"):
            if field not in data or data[field] is None:
                errors.append(f"{prefix}{field} should not be empty")
            elif not _is_number(data[field]):
                errors.append(f"{prefix}{field} must be a number conforming to the specified constraints")
        if data.get("connectionType") is None:
            errors.append(f"{prefix}connectionType should not be empty")
        elif data["connectionType"] not in CONNECTION_TYPES:
            errors.append(one_of(f"{prefix}connectionType", CONNECTION_TYPES))
        if data.get("dataCap") is not None and not _is_number(data["dataCap"]):
            errors.append(f"{prefix}dataCap must be a number conforming to the specified constraints")
    elif category == "security":
        for field, allowed in (
            ("monitoringType", MONITORING_TYPES),
            ("installationType", INSTALLATION_TYPES),
        ):
            if data.get(field) is None:
                errors.append(f"{prefix}{field} should not be empty")
            elif data[field] not in allowed:
                errors.append(one_of(f"{prefix}{field}", allowed))
        if data.get("equipmentIncluded") is None:
            errors.append(f"{prefix}equipmentIncluded should not be empty")
        elif not isinstance(data["equipmentIncluded"], str):
            errors.append(f"{prefix}equipmentIncluded must be a string")
    return errors


def is_iso8601(value: object) -> bool:
    if not isinstance(value, str) or len(value) < 10:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def validate_status_update(body: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    if body.get("status") is None:
        errors.append("status should not be empty")
    elif body["status"] not in ORDER_ITEM_STATUSES:
        errors.append(one_of("status", ORDER_ITEM_STATUSES))
    if body.get("providerNotes") is not None and not isinstance(body["providerNotes"], str):
        errors.append("providerNotes must be a string")
    if body.get("scheduledFor") is not None and not is_iso8601(body["scheduledFor"]):
        errors.append("scheduledFor must be a valid ISO 8601 date string")
    if body.get("metadata") is not None and not isinstance(body["metadata"], dict):
        errors.append("metadata must be an object")
    return errors
