"""Signed tokens for AUTH_MODE=signed: ``sign_token`` / ``verify_token`` as pure functions."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kit.handler.app import TOKEN_PATTERN, TokenError, sign_token, verify_token

SECRET = "test-secret-not-used-anywhere"
NOW = 1_731_324_924.0
LATER = 1_731_328_524


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_valid_token_gives_its_subject() -> None:
    token = sign_token("ada@example.com", SECRET, LATER)
    assert verify_token(token, SECRET, NOW) == "ada@example.com"


def test_the_token_is_two_unpadded_base64url_parts_and_url_safe() -> None:
    token = sign_token("user-42", SECRET, LATER)
    payload, signature = token.split(".")
    assert TOKEN_PATTERN.fullmatch(token) and "=" not in token
    assert json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))) == {
        "exp": LATER,
        "sub": "user-42",
    }
    assert len(base64.urlsafe_b64decode(signature + "=")) == 32  # SHA-256


def test_bytes_and_str_secrets_agree() -> None:
    assert sign_token("u", SECRET, LATER) == sign_token("u", SECRET.encode(), LATER)


@pytest.mark.parametrize("now", [LATER, LATER + 1, LATER + 86_400])
def test_expired_tokens_are_rejected(now: float) -> None:
    token = sign_token("user-42", SECRET, LATER)
    with pytest.raises(TokenError) as caught:
        verify_token(token, SECRET, now)
    assert caught.value.reason == "TokenExpired"


def test_wrong_secret_is_rejected() -> None:
    token = sign_token("user-42", "another-secret", LATER)
    with pytest.raises(TokenError) as caught:
        verify_token(token, SECRET, NOW)
    assert caught.value.reason == "InvalidToken"


def tampered_payload() -> str:
    token = sign_token("user-42", SECRET, LATER)
    _, signature = token.split(".")
    forged = b64url(json.dumps({"exp": LATER, "sub": "admin"}, separators=(",", ":")).encode())
    return f"{forged}.{signature}"


def tampered_expiry() -> str:
    token = sign_token("user-42", SECRET, 1)
    _, signature = token.split(".")
    forged = b64url(json.dumps({"exp": LATER, "sub": "user-42"}, separators=(",", ":")).encode())
    return f"{forged}.{signature}"


def flipped_signature() -> str:
    token = sign_token("user-42", SECRET, LATER)
    return token[:-1] + ("A" if token[-1] != "A" else "B")


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(tampered_payload(), id="tampered-subject"),
        pytest.param(tampered_expiry(), id="tampered-expiry"),
        pytest.param(flipped_signature(), id="flipped-signature"),
        pytest.param("", id="empty"),
        pytest.param("garbage", id="no-dot"),
        pytest.param("a.b.c", id="three-parts"),
        pytest.param(".", id="only-dot"),
        pytest.param("ada@example.com", id="an-email"),
        pytest.param("é.é", id="non-ascii"),
        pytest.param(sign_token("user-42", SECRET, LATER) + "=", id="padding-added"),
    ],
)
def test_invalid_tokens_are_rejected(token: str) -> None:
    with pytest.raises(TokenError) as caught:
        verify_token(token, SECRET, NOW)
    assert caught.value.reason == "InvalidToken"


def signed(payload: bytes) -> str:
    """A token whose signature is right but whose payload is ``payload`` (what a leaked secret could forge)."""
    import hashlib
    import hmac

    part = b64url(payload)
    return f"{part}.{b64url(hmac.new(SECRET.encode(), part.encode(), hashlib.sha256).digest())}"


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[1, 2]",
        b'{"exp": 1731328524}',
        b'{"sub": "", "exp": 1731328524}',
        b'{"sub": 42, "exp": 1731328524}',
        b'{"sub": "a b", "exp": 1731328524}',
        b'{"sub": "u", "exp": "1731328524"}',
        b'{"sub": "u", "exp": true}',
        b'{"sub": "u"}',
        b'{"sub": "\\ud800", "exp": 1731328524}',
    ],
)
def test_correctly_signed_but_malformed_payloads_are_rejected(payload: bytes) -> None:
    with pytest.raises(TokenError) as caught:
        verify_token(signed(payload), SECRET, NOW)
    assert caught.value.reason == "InvalidToken"


def test_an_empty_secret_is_a_configuration_error_not_a_bad_token() -> None:
    with pytest.raises(ValueError, match="AUTH_SECRET"):
        verify_token("a.b", "", NOW)
    with pytest.raises(ValueError, match="AUTH_SECRET"):
        sign_token("u", b"", LATER)


@pytest.mark.parametrize("user_id", ["", "a b", "é", "x" * 257])
def test_sign_token_refuses_user_ids_the_handler_would_not_accept(user_id: str) -> None:
    with pytest.raises(ValueError):
        sign_token(user_id, SECRET, LATER)


@given(st.text(max_size=200))
def test_verify_token_only_ever_raises_token_error(token: str) -> None:
    with pytest.raises(TokenError):
        verify_token(token, SECRET, NOW)


@given(
    st.from_regex(r"[\x21-\x7e]{1,256}", fullmatch=True), st.integers(min_value=int(NOW) + 1, max_value=2**40)
)
def test_round_trip(user_id: str, expires: int) -> None:
    assert verify_token(sign_token(user_id, SECRET, expires), SECRET, NOW) == user_id
