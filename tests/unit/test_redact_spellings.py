"""kit.redact: secrets as people write them, each spelling bare and in context, each beside a near miss.

Every row of a table holds a text with a secret, what it must become, and a text that looks alike but holds
no secret and must come back unchanged (the evidence a diagnosis needs).
"""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote

import pytest

from kit.redact import REDACTED, Redactor, base64_cores

KNOWN = "canary-auth-secret-3b9d1e77f0a24c51"
SLASHED = "wJalrXUtnFEMI/K7MDENG+bPxRfiCY=é"
SIGV4 = (
    "Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-2/dynamodb/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
)
AGOJ = "AgoJb3JpZ2luX2VjEJb//////////wEaCXVzLWVhc3QtMSJGMEQCIB8jwf5cYf/RJHd+8uk+ymkn"
FWOG = "FwoGZXIvYXdzEBgaDBZPB84oOIykxfggFSLVAbCctxjnDE9/NQx8U7wAWdrZlaK5XY8Ikh"
IQOJ = "IQoJb3JpZ2luX2VjEAAaCXVzLWVhc3QtMiJHMEUCIQD"
AQOD = "AQoDYXdzEPT//////////wEaoAK1wvxJY12r2IrDFT2IvAzTCn3zHoZ7YNtpiQLG"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def redactor() -> Redactor:
    return Redactor([KNOWN, SLASHED], email_salt="fixed")


# --------------------------------------------------------------------------------------------------------
# A value after a secret-named key, in every quoting


@pytest.mark.parametrize(
    ("text", "expected", "near_miss"),
    [
        # unquoted key: value (YAML, headers, log lines), bare and in context
        ("password: x", "password: ***", "password_length: 12"),
        ("SecretAccessKey: v", "SecretAccessKey: ***", "credential_source: env-file"),
        ("login failed, password: pw-7Qx retry 1", "login failed, password: *** retry 1", "password reset: done"),
        # a word before "(" is a value, a dotted call (code shown in a log) is not
        ("password: Summer(2024) ok", "password: *** ok", 'token = query.get("token")'),
        ("AWS_SECRET_ACCESS_KEY: wJalrXUtnFEMI/K7MDENG", "AWS_SECRET_ACCESS_KEY: ***", "AWS_REGION: us-east-2"),
        ("apiKey:k-5Hn8", "apiKey:***", "token: str | None"),  # an annotation in a traceback
        ("Token: abc", "Token: ***", "arn:aws:secretsmanager:us-east-2:123456789012:secret:db-AbC1"),
        ("x-auth-token:t-1", "x-auth-token:***", "https://token.actions.example.com:443/x"),
        # key=value
        ("db.password=hunter2hunter2", "db.password=***", "max_token_length=2048"),
        ("?token=opaque-1&workspaceId=w-1", "?token=***&workspaceId=w-1", "?token_kind=email&workspaceId=w-1"),
        # quoted values run to their closing quote, spaces included
        ('{"password": "correct horse battery"}', '{"password": "***"}', '{"password_policy": "min 12 chars"}'),
        ("{'token': 'a b c'}", "{'token': '***'}", "{'tokenizers': 'a b c'}"),
        ('{\\"password\\": \\"a b\\"}', '{\\"password\\": \\"***\\"}', '{\\"passwordRequired\\": \\"yes\\"}'),
        ("&quot;token&quot;: &quot;abc def&quot;", "&quot;token&quot;: &quot;***&quot;", "&quot;token_type&quot;: &quot;x&quot;"),
        # a nested value: every string and number below the key, the keys kept
        ("{'password': {'S': 'pw 1'}}", "{'password': {'S': '***'}}", "{'password__type': 'S'}"),
        ('"credentials": {"SecretAccessKey": "v", "Expiration": 12}', '"credentials": {"SecretAccessKey": "***", "Expiration": ***}', '"credential_source": {"kind": "env"}'),
        # a name/value pair: the name in one field, the value in the next
        ("{'attribute': 'password', 'value': 'x'}", "{'attribute': 'password', 'value': '***'}", "{'attribute': 'status', 'value': 'online'}"),
        ('{"Name": "DB_PASSWORD", "Type": "S", "Value": "v 1"}', '{"Name": "DB_PASSWORD", "Type": "S", "Value": "***"}', '{"Name": "DB_PASSWORD"} {"Value": "kept"}'),
        ("ParameterKey=DbPassword,ParameterValue=abc123", "ParameterKey=DbPassword,ParameterValue=***", "ParameterKey=DbHost,ParameterValue=db1"),
        # headers
        ("x-api-key: apikey-5Hn8", "x-api-key: ***", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="),
        ("Cookie: session=abc123; theme=dark", "Cookie: ***; theme=dark", "cookie_name=session"),
    ],
)  # fmt: skip
def test_a_value_after_a_secret_key_goes(
    redactor: Redactor, text: str, expected: str, near_miss: str
) -> None:
    assert redactor.redact_text(text) == expected
    assert redactor.redact_text(near_miss) == near_miss


# --------------------------------------------------------------------------------------------------------
# Credentials by their shape


@pytest.mark.parametrize(
    ("text", "expected", "near_miss"),
    [
        ("Authorization: Bearer opaque-4Kd2", "Authorization: Bearer ***", "bearer of bad news"),
        ("Authorization: Bearer x", "Authorization: Bearer ***", "Authorizer: chatgenius-authorizer"),
        ("sent Bearer abcDEF123456 upstream", "sent Bearer *** upstream", "Bearer tokens expire hourly"),
        ('{"authorization": "Bearer abc def"}', '{"authorization": "Bearer ***"}', '{"authorizationType": "NONE"}'),
        (f"Authorization: Basic {b64('u:p')}", "Authorization: Basic ***", "Basic authentication is off"),
        (f"proxy said Basic {b64('svc-user:basic-pass-3Vt9')}", "proxy said Basic ***", "Basic Authentication"),
        ("Authorization: Token t0k3n", "Authorization: Token ***", "Token verification failed"),
        (SIGV4, SIGV4.split(" Credential=", maxsplit=1)[0] + " Credential=***, SignedHeaders=host;x-amz-date, Signature=***",
         "X-Amz-SignedHeaders=host;x-amz-date"),
        ("dsn https://svc:url-pass-8Jd3@db.example/x", "dsn https://svc:***@db.example/x", "https://db.example:5432/x"),
        # STS session tokens by their prefix, bare, in context, URL-encoded, cut by a display
        (AGOJ, REDACTED, "AgoJ is a prefix"),
        (f"cached {FWOG} for later", f"cached {REDACTED} for later", "cached Zm9vYmFyYmF6 for later"),
        (f'"{IQOJ}..."', f'"{REDACTED}..."', '"IQoJ..."'),
        (f"x {AQOD} y", f"x {REDACTED} y", "x AQoDZXhhbXBsZQ y"),
        (
            "X-Amz-Security-Token=AgoJb3JpZ2luX2VjEOP%2F%2F%2F%2FwEaCXVz&X-Amz-Date=1",
            "X-Amz-Security-Token=***&X-Amz-Date=1",
            "X-Amz-Date=20260101T000000Z",
        ),
        ("tok%3DAgoJb3JpZ2luX2VjEOP%2F%2F%2FwEa%3D%3D end", f"tok%3D{REDACTED} end", "tok%3Dabc end"),
    ],
)  # fmt: skip
def test_credentials_go_by_their_shape(redactor: Redactor, text: str, expected: str, near_miss: str) -> None:
    assert redactor.redact_text(text) == expected
    assert redactor.redact_text(near_miss) == near_miss


# --------------------------------------------------------------------------------------------------------
# E-mail addresses in every spelling: masked, and masked alike


@pytest.mark.parametrize(
    ("spelling", "at", "near_miss"),
    [
        ("ada.lovelace@example.com", "@", "ada.lovelace at example.com"),
        ("ada.lovelace%40example.com", "%40", "100%40 of them"),
        ("ada.lovelace%2540example.com", "%2540", "ada.lovelace%2540"),
        ("ada.lovelace%252540example.com", "%252540", "%252540 alone"),
        ("ada.lovelace\\u0040example.com", "\\u0040", "\\u0040 alone"),
        ("ada.lovelace\\\\u0040example.com", "\\\\u0040", "ada.lovelace\\\\u0040"),
        ("ada.lovelace&#64;example.com", "&#64;", "&#64; alone"),
        ("ada.lovelace&#x40;example.com", "&#x40;", "&#x40;example"),
        ("ada.lovelace&amp;#64;example.com", "&amp;#64;", "AT&amp;T"),
        ("ada.lovelace&commat;example.com", "&commat;", "&commat;"),
        ("ADA.Lovelace@EXAMPLE.com", "@", "arn:aws:iam::123456789012:role/x"),
    ],
)
def test_every_spelling_of_an_address_masks_alike(spelling: str, at: str, near_miss: str) -> None:
    redactor = Redactor(email_salt="fixed")
    plain = redactor.redact_text("ada.lovelace@example.com")
    masked = redactor.redact_text(f"user {spelling} joined")
    assert masked == f"user {plain.replace('@', at)} joined"
    assert "lovelace" not in masked and "example" not in masked
    assert redactor.redact_text(near_miss) == near_miss


@pytest.mark.parametrize(
    ("spellings", "shown"),
    [
        (("jösé@bücher.de", "jösé@xn--bcher-kva.de", "j%C3%B6s%C3%A9%40b%C3%BCcher.de", "j\\u00f6s\\u00e9\\u0040b\\u00fccher.de"), "j"),
        (("用户@例子.广告", "用户@xn--fsqu00a.xn--4rr70v"), "用"),
        (("ölçü@例え.jp",), "ö"),
    ],
)  # fmt: skip
def test_unicode_addresses_are_masked_and_idn_spellings_hash_alike(
    spellings: tuple[str, ...], shown: str
) -> None:
    redactor = Redactor(email_salt="fixed")
    masked = [redactor.redact_text(f"<{s}>") for s in spellings]
    digests = {re.search(r"#([0-9a-f]{6})", m).group(1) for m in masked}  # type: ignore[union-attr]
    assert len(digests) == 1, masked
    for out in masked:
        assert out.startswith(f"<{shown}***") and out.endswith(">"), out
        assert not re.search(r"bücher|bcher|例子|广告|fsqu00a|例え|用户", out[2:])


def test_a_cut_address_is_masked_too() -> None:
    assert (
        Redactor(email_salt="fixed").redact_text("user jösé@bücher-canary.d...").startswith("user j***@***#")
    )


# --------------------------------------------------------------------------------------------------------
# Known secrets, encoded


@pytest.mark.parametrize(
    ("text", "near_miss"),
    [
        (b64(KNOWN), b64("canary-auth-secret-00000000000000")),  # the whole value
        (base64.urlsafe_b64encode(KNOWN.encode()).decode().rstrip("="), b64("another value entirely")),
        (b64(f"admin:{KNOWN}"), b64("admin:someone-else's-password")),  # Basic's user:secret
        (b64(f"a{KNOWN}z"), b64("a canary z")),  # the three offsets of a secret inside a longer value
        (b64(f"ab{KNOWN}"), b64("ab")),
        (b64(json.dumps({"key": KNOWN, "n": 1})), b64(json.dumps({"key": "k", "n": 1}))),
        (quote(b64(f"ab{KNOWN}"), safe=""), quote(b64("ab~~~"), safe="")),  # base64 in a URL
        (quote(quote(SLASHED, safe=""), safe=""), quote(quote(SLASHED[:10], safe=""), safe="")),
        (json.dumps(SLASHED)[1:-1], json.dumps(SLASHED[:10])[1:-1]),
        (SLASHED.replace("/", "\\/"), "wJalr\\/K7"),
    ],
)
def test_a_known_secret_goes_in_base64_and_url_encodings(
    redactor: Redactor, text: str, near_miss: str
) -> None:
    assert redactor.redact_text(f"payload={text} end") == "payload=*** end"
    assert redactor.redact_text(f"payload={near_miss} end") == f"payload={near_miss} end"


@pytest.mark.parametrize("offset", [0, 1, 2])
def test_base64_cores_hold_for_every_offset(offset: int) -> None:
    secret = "s3cr3t-value-0123"
    around = "x" * offset + secret + "tail"
    encoded = b64(around)
    assert any(core in encoded for core in base64_cores(secret))
    one_off = b64("x" * offset + "s3cr3t-value-012z" + "tail")  # the last character differs
    assert not any(core in one_off for core in base64_cores(secret))


def test_the_email_salt_is_never_shown() -> None:
    redactor = Redactor(email_salt="salt-of-this-run-0123")
    assert redactor.redact_text("salt=salt-of-this-run-0123") == "salt=***"
    assert redactor.email_salt == "salt-of-this-run-0123"
