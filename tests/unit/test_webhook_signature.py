"""Offergrid webhook signature verification (Decision 1)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from offergrid_integration.signature import (
    SignatureMatch,
    SignatureReason,
    SignatureVerificationError,
    compact_json,
    decode_body,
    find_signature_header,
    load_json,
    parse_signature,
    sign,
    verify_signature,
)

SECRET = "local-dev-webhook-secret"
OLD_SECRET = "previous-webhook-secret"
PAYLOAD = {"event": "order.created", "orderId": "order-1", "itemId": "item-1", "note": "Müller ✓"}
COMPACT = compact_json(PAYLOAD)
PRETTY = json.dumps(PAYLOAD, indent=2).encode()


def reason_of(excinfo: pytest.ExceptionInfo[SignatureVerificationError]) -> SignatureReason:
    return excinfo.value.reason


# --- sign -------------------------------------------------------------------------------------------
def test_sign_is_lowercase_hex_hmac_sha256_of_the_body():
    expected = hmac.new(SECRET.encode(), COMPACT, hashlib.sha256).hexdigest()
    assert sign(COMPACT, SECRET) == expected
    assert sign(COMPACT.decode(), SECRET) == expected
    assert sign(COMPACT, SECRET, prefix=True) == "sha256=" + expected


def test_compact_json_matches_javascript_json_stringify():
    # JSON.stringify({"a":[1,"é"],"b":null}) === '{"a":[1,"é"],"b":null}'
    assert compact_json({"a": [1, "é"], "b": None}) == '{"a":[1,"é"],"b":null}'.encode()


# --- raw bytes vs re-serialisation --------------------------------------------------------------------
def test_raw_body_signature_matches_in_raw_form():
    assert verify_signature(COMPACT, sign(COMPACT, SECRET), [SECRET]) == SignatureMatch("raw", 0)


def test_pretty_body_signed_over_its_compact_form_matches_by_reserialisation():
    # Given Offergrid signs JSON.stringify(parsed) but the wire body is pretty-printed
    header = sign(COMPACT, SECRET)
    # When / Then the raw form fails and the compact fallback matches
    assert verify_signature(PRETTY, header, [SECRET]) == SignatureMatch("compact_json", 0)


def test_reserialisation_parses_the_body_itself():
    match = verify_signature(PRETTY, sign(COMPACT, SECRET), [SECRET])
    assert match.form == "compact_json"


def test_pretty_body_signed_over_its_raw_bytes_matches_raw():
    assert verify_signature(PRETTY, sign(PRETTY, SECRET), [SECRET]).form == "raw"


def test_reserialisation_does_not_rescue_a_different_payload():
    other = compact_json({**PAYLOAD, "itemId": "item-2"})
    with pytest.raises(SignatureVerificationError) as excinfo:
        verify_signature(PRETTY, sign(other, SECRET), [SECRET])
    assert reason_of(excinfo) is SignatureReason.MISMATCH


@pytest.mark.parametrize("body", [b"not json", b"", b"\xff\xfe\x00", b"[" * 50_000, b'{"a":NaN}'])
def test_non_json_body_with_a_bad_signature_is_a_mismatch_not_a_crash(body: bytes):
    with pytest.raises(SignatureVerificationError) as excinfo:
        verify_signature(body, sign(b"something else", SECRET), [SECRET])
    assert reason_of(excinfo) is SignatureReason.MISMATCH


def test_non_json_body_with_a_valid_raw_signature_verifies():
    # The ingress answers 400 for it later; the verifier only proves who sent it.
    assert verify_signature(b"not json", sign(b"not json", SECRET), [SECRET]).form == "raw"


def test_lone_surrogate_in_json_does_not_crash_the_fallback():
    body = b'{"event":"x","s":"\\ud800"}'
    with pytest.raises(SignatureVerificationError) as excinfo:
        verify_signature(body, sign(b"other", SECRET), [SECRET])
    assert reason_of(excinfo) is SignatureReason.MISMATCH


def test_a_body_signed_over_its_json_stringify_form_with_a_lone_surrogate_verifies():
    # Given a pretty body whose reason holds a lone surrogate, signed as the guide's example signs:
    # over JSON.stringify of the parsed body, which (ES2019) writes a lone surrogate as "\ud83d"
    pretty = b'{\n  "event": "order.cancelled",\n  "reason": "cut \\ud83d here \\u00e9"\n}'
    stringified = '{"event":"order.cancelled","reason":"cut \\ud83d here é"}'.encode()
    # Then the compact form is that of JSON.stringify, and the delivery verifies
    assert compact_json({"event": "order.cancelled", "reason": "cut \ud83d here é"}) == stringified
    assert verify_signature(pretty, sign(stringified, SECRET), [SECRET]).form == "compact_json"


# --- base64 body ------------------------------------------------------------------------------------
def test_base64_body_is_verified_over_the_decoded_bytes():
    # Given API Gateway delivered the body base64-encoded
    encoded = base64.b64encode(COMPACT).decode()
    raw = decode_body(encoded, is_base64_encoded=True)
    # Then the decoded bytes are what was signed, not the base64 text
    assert raw == COMPACT
    assert verify_signature(raw, sign(COMPACT, SECRET), [SECRET]).form == "raw"
    with pytest.raises(SignatureVerificationError):
        verify_signature(encoded.encode(), sign(COMPACT, SECRET), [SECRET])


def test_decode_body_plain_text_is_utf8_and_none_is_empty():
    assert decode_body("Müller", is_base64_encoded=False) == "Müller".encode()
    assert decode_body(None, is_base64_encoded=False) == b""


@pytest.mark.parametrize("text", ["not base64!", "QUJD=", "QQ"])
def test_decode_body_rejects_invalid_base64(text: str):
    with pytest.raises(ValueError, match="base64"):
        decode_body(text, is_base64_encoded=True)


def test_decode_body_rejects_text_that_cannot_be_utf8():
    with pytest.raises(ValueError, match="UTF-8"):
        decode_body("\ud800", is_base64_encoded=False)


# --- prefix, case, whitespace -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "header",
    [
        "sha256=" + sign(COMPACT, SECRET),
        "SHA256=" + sign(COMPACT, SECRET),
        sign(COMPACT, SECRET).upper(),  # decision: uppercase hex is accepted
        "  " + sign(COMPACT, SECRET) + "\t",
        "sha256= " + sign(COMPACT, SECRET),
    ],
)
def test_accepted_header_spellings(header: str):
    assert verify_signature(COMPACT, header, [SECRET]).form == "raw"


# --- rotation ---------------------------------------------------------------------------------------
def test_rotation_accepts_current_and_previous_secret_and_says_which():
    assert verify_signature(COMPACT, sign(COMPACT, SECRET), [SECRET, OLD_SECRET]).secret_index == 0
    assert verify_signature(COMPACT, sign(COMPACT, OLD_SECRET), [SECRET, OLD_SECRET]).secret_index == 1
    assert verify_signature(PRETTY, sign(COMPACT, OLD_SECRET), [SECRET, OLD_SECRET]) == SignatureMatch(
        "compact_json", 1
    )


def test_a_secret_outside_the_list_is_refused():
    with pytest.raises(SignatureVerificationError) as excinfo:
        verify_signature(COMPACT, sign(COMPACT, "third-secret"), [SECRET, OLD_SECRET])
    assert reason_of(excinfo) is SignatureReason.MISMATCH


def test_no_secret_at_all_is_a_configuration_fault_not_a_401():
    with pytest.raises(ValueError, match="no webhook secret") as excinfo:
        verify_signature(COMPACT, sign(COMPACT, SECRET), [])
    assert not isinstance(excinfo.value, SignatureVerificationError)


# --- malformed headers: one typed error, the right reason ---------------------------------------------
VALID_HEX = sign(COMPACT, SECRET)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, SignatureReason.MISSING),
        ("", SignatureReason.EMPTY),
        ("   ", SignatureReason.EMPTY),
        ("sha256=", SignatureReason.EMPTY),
        ("sha256=   ", SignatureReason.EMPTY),
        ("z" * 64, SignatureReason.NOT_HEX),
        (VALID_HEX[:-1] + "g", SignatureReason.NOT_HEX),
        ("sha1=" + VALID_HEX, SignatureReason.NOT_HEX),
        ("v1," + VALID_HEX, SignatureReason.MULTIPLE),
        (VALID_HEX[:32] + " " + VALID_HEX[32:], SignatureReason.NOT_HEX),
        ("٣" * 64, SignatureReason.NOT_HEX),  # non-ASCII digits are not hex digits
        (VALID_HEX[:-2], SignatureReason.WRONG_LENGTH),
        (VALID_HEX + "00", SignatureReason.WRONG_LENGTH),
        ("abc", SignatureReason.WRONG_LENGTH),
        (f"{VALID_HEX},{VALID_HEX}", SignatureReason.MULTIPLE),
        (f"sha256={VALID_HEX}, sha256={VALID_HEX}", SignatureReason.MULTIPLE),
    ],
)
def test_malformed_header_raises_the_typed_error_with_its_reason(header: str | None, reason: SignatureReason):
    with pytest.raises(SignatureVerificationError) as excinfo:
        verify_signature(COMPACT, header, [SECRET])
    assert reason_of(excinfo) is reason
    with pytest.raises(SignatureVerificationError):
        parse_signature(header)


def test_wrong_signature_of_right_shape_is_a_mismatch():
    with pytest.raises(SignatureVerificationError) as excinfo:
        verify_signature(COMPACT, "0" * 64, [SECRET])
    assert reason_of(excinfo) is SignatureReason.MISMATCH


def test_error_message_and_repr_never_contain_the_signature_or_secret():
    header = sign(b"something", SECRET)
    with pytest.raises(SignatureVerificationError) as excinfo:
        verify_signature(COMPACT, header, [SECRET])
    rendered = f"{excinfo.value} {excinfo.value!r} {excinfo.value.args}"
    assert header not in rendered
    assert SECRET not in rendered
    assert "signature_mismatch" in rendered


# --- header lookup ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["x-offergrid-signature", "X-Offergrid-Signature", "X-OFFERGRID-SIGNATURE"])
def test_header_lookup_is_case_insensitive(name: str):
    assert find_signature_header({"Content-Type": "application/json", name: VALID_HEX}) == VALID_HEX


def test_header_found_in_multi_value_headers_only():
    assert find_signature_header(None, {"X-Offergrid-Signature": [VALID_HEX]}) == VALID_HEX


def test_same_value_in_both_maps_is_one_header():
    assert (
        find_signature_header({"x-offergrid-signature": VALID_HEX}, {"X-Offergrid-Signature": [VALID_HEX]})
        == VALID_HEX
    )


@pytest.mark.parametrize(
    ("headers", "multi", "reason"),
    [
        (None, None, SignatureReason.MISSING),
        ({}, {}, SignatureReason.MISSING),
        (
            {"content-type": "application/json"},
            {"content-type": ["application/json"]},
            SignatureReason.MISSING,
        ),
        ({"x-offergrid-signature": None}, None, SignatureReason.MISSING),
        # repeated header: API Gateway keeps the last in `headers`, all in `multiValueHeaders`
        ({"x-offergrid-signature": VALID_HEX}, {"x-offergrid-signature": ["0" * 64, VALID_HEX]}, None),
        (None, {"x-offergrid-signature": [VALID_HEX, VALID_HEX]}, None),
        # differently-cased duplicates
        ({"x-offergrid-signature": VALID_HEX, "X-Offergrid-Signature": "0" * 64}, None, None),
        # a list value where a string belongs
        ({"x-offergrid-signature": [VALID_HEX, "0" * 64]}, None, None),
        # maps that disagree
        ({"x-offergrid-signature": VALID_HEX}, {"x-offergrid-signature": ["0" * 64]}, None),
        ({"x-offergrid-signature": 12345}, None, SignatureReason.NOT_HEX),
    ],
)
def test_header_lookup_failures(headers, multi, reason):
    with pytest.raises(SignatureVerificationError) as excinfo:
        find_signature_header(headers, multi)
    assert reason_of(excinfo) is (reason or SignatureReason.MULTIPLE)


# --- timing-safe comparison -----------------------------------------------------------------------------
def test_every_candidate_is_compared_with_hmac_compare_digest(monkeypatch: pytest.MonkeyPatch):
    # Given a recorder around hmac.compare_digest, as the verifier module sees it
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("offergrid_integration.signature.hmac.compare_digest", recording)
    # When a pretty body signed with the previous secret over its compact form is verified
    match = verify_signature(PRETTY, sign(COMPACT, OLD_SECRET), [SECRET, OLD_SECRET])
    # Then raw x 2 secrets and compact x 2 secrets went through compare_digest, in that order
    assert match == SignatureMatch("compact_json", 1)
    assert len(calls) == 4
    expected_digest = bytes.fromhex(sign(COMPACT, OLD_SECRET))
    assert all(b == expected_digest for _, b in calls)
    assert calls[-1][0] == expected_digest


def test_a_comparison_that_says_no_is_respected(monkeypatch: pytest.MonkeyPatch):
    # Proves the result comes from compare_digest, not from some other equality check
    monkeypatch.setattr("offergrid_integration.signature.hmac.compare_digest", lambda a, b: False)
    with pytest.raises(SignatureVerificationError):
        verify_signature(COMPACT, sign(COMPACT, SECRET), [SECRET])


# --- strict JSON ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body", [b"NaN", b'{"a": Infinity}', b"[-Infinity]", b"[" * 100_000 + b"]" * 100_000]
)
def test_load_json_rejects_what_json_stringify_never_writes_and_deep_nesting(body: bytes):
    with pytest.raises(ValueError):  # noqa: PT011 - any ValueError is the contract
        load_json(body)
