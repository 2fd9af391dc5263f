"""GetFunction's Code.Location in the lab (kit.lab.code_location): a signed URL that expires, as AWS's
presigned S3 URL does, and the GetFunction answer that carries it. Pure."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from kit.lab import code_location as cl

SECRET = b"s" * 32
NOW = 1_800_000_000.0
ARN_PARTS = ("us-east-2", "123456789012", "chatgenius-websocket")


def url(now: float = NOW, parts: tuple[str, str, str] = ARN_PARTS) -> tuple[str, str]:
    made = urlsplit(cl.location("http://127.0.0.1:5000", SECRET, parts, now))
    return made.path, made.query


@pytest.mark.parametrize(
    ("case", "change", "at", "refused"),
    [
        ("fresh", None, NOW, None),
        ("the last second", None, NOW + cl.LOCATION_TTL_S, None),
        ("a second late", None, NOW + cl.LOCATION_TTL_S + 1, "AccessDenied"),
        ("signature changed", ("X-Amz-Signature=", "X-Amz-Signature=0"), NOW, "SignatureDoesNotMatch"),
        ("expiry extended", ("X-Kit-Expires-At=18", "X-Kit-Expires-At=19"), NOW, "SignatureDoesNotMatch"),
        ("expiry not a number", ("X-Kit-Expires-At=18", "X-Kit-Expires-At=x18"), NOW, "AccessDenied"),
        ("no signature", ("X-Amz-Signature=", "X-Other="), NOW, "SignatureDoesNotMatch"),
    ],
)
def test_a_code_url_is_served_only_as_signed_and_in_time(
    case: str, change: tuple[str, str] | None, at: float, refused: str | None
) -> None:
    path, query = url()
    if change is not None:
        query = query.replace(*change)
    assert cl.check(SECRET, path, query, at) == refused, case


def test_a_signature_is_bound_to_its_function_and_secret() -> None:
    path, query = url()
    other_path, _ = url(parts=("us-east-2", "123456789012", "another-function"))
    assert cl.check(SECRET, other_path, query, NOW) == "SignatureDoesNotMatch"
    assert cl.check(b"t" * 32, path, query, NOW) == "SignatureDoesNotMatch"
    assert cl.check(SECRET, "/_lab/code/us-east-2/not-an-account/fn", query, NOW) == "NoSuchKey"
    assert "secret" not in path + query and SECRET.decode() not in path + query


def _answer(**code: str) -> bytes:
    configuration = {"FunctionArn": "arn:aws:lambda:us-east-2:123456789012:function:chat", "CodeSha256": "x"}
    return json.dumps({"Configuration": configuration, "Code": code}).encode()


@pytest.mark.parametrize(
    ("body", "rewritten"),
    [
        (_answer(RepositoryType="S3", Location="https://awslambda-us-east-2-tasks.s3.amazonaws.com/x"), True),
        (_answer(RepositoryType="ECR", ImageUri="123.dkr.ecr/x"), False),  # an image has no Location
        (b"not json", False),
        (json.dumps({"Code": {"Location": "x"}}).encode(), False),  # no function ARN to name it by
    ],
    ids=["zip", "image", "not-json", "no-arn"],
)
def test_get_function_carries_the_labs_location(body: bytes, rewritten: bool) -> None:
    out = cl.rewrite_get_function(body, lambda region, account, name: f"lab://{region}/{account}/{name}")
    if not rewritten:
        assert out == body
        return
    assert json.loads(out)["Code"]["Location"] == "lab://us-east-2/123456789012/chat"
