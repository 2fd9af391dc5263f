"""Which requests to moto count as configuration changes (they invalidate the lab's configuration caches)."""

from __future__ import annotations

import json

import pytest

from kit.lab.engines import NotImplementedApp, is_api_gateway_v2, is_configuration_change


def _environ(service: str, method: str = "POST") -> dict[str, str]:
    scope = f"AKIAKITLOCALLAB00000/20261125/us-east-2/{service}/aws4_request"
    return {
        "REQUEST_METHOD": method,
        "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, Signature=x",
    }


@pytest.mark.parametrize(
    ("service", "method", "body", "expected"),
    [
        ("iam", "POST", b"Action=PutRolePolicy&RoleName=r", True),
        ("iam", "POST", b"Action=DeleteRolePolicy&RoleName=r", True),
        ("iam", "POST", b"Action=GetRolePolicy&RoleName=r", False),
        ("iam", "POST", b"Action=ListAttachedRolePolicies&RoleName=r", False),
        ("lambda", "PUT", b"{}", True),  # update_function_configuration
        ("lambda", "GET", b"", False),
        ("apigateway", "DELETE", b"", True),  # delete_route
        ("apigateway", "PATCH", b"{}", True),
        ("apigateway", "GET", b"", False),
        ("logs", "POST", b'{"logGroupName": "g"}', False),  # log writes are not configuration
        ("dynamodb", "POST", b"{}", False),
        ("sts", "POST", b"Action=GetCallerIdentity", False),
    ],
)
def test_configuration_change(service: str, method: str, body: bytes, expected: bool) -> None:
    assert is_configuration_change(_environ(service, method), body) is expected


def test_unsigned_request_is_not_a_change() -> None:
    assert is_configuration_change({"REQUEST_METHOD": "DELETE"}, b"") is False


@pytest.mark.parametrize(
    ("service", "path", "expected"),
    [
        ("apigateway", "/v2/apis", True),
        ("apigateway", "/v2/apis/abc/routes/r1", True),
        ("apigateway", "/v2", True),
        ("apigateway", "/v2apis", False),  # not the v2 prefix
        ("apigateway", "/restapis", False),  # API Gateway v1 stays with moto's dispatcher
        ("apigateway", "/", False),
        ("execute-api", "/v2/apis", False),  # another signing name
        ("lambda", "/v2/apis", False),
        ("", "/v2/apis", False),  # unsigned
    ],
)
def test_api_gateway_v2_calls_go_to_the_v2_app(service: str, path: str, expected: bool) -> None:
    environ = _environ(service) if service else {"REQUEST_METHOD": "GET"}
    assert is_api_gateway_v2(environ | {"PATH_INFO": path}) is expected


def test_a_call_moto_has_not_implemented_is_a_501_not_a_traceback() -> None:
    def moto(environ: dict[str, object], start_response: object) -> list[bytes]:
        raise NotImplementedError("The simulate_principal_policy action has not been implemented")

    answered: list[tuple[str, list[tuple[str, str]]]] = []
    app = NotImplementedApp(moto)
    body = b"".join(app(_environ("iam"), lambda status, headers: answered.append((status, headers))))
    ((status, headers),) = answered
    assert status == "501 Not Implemented"
    assert ("x-amzn-ErrorType", "NotImplemented") in headers
    assert json.loads(body) == {
        "__type": "NotImplemented",
        "message": "the lab does not answer this iam call: The simulate_principal_policy action has not "
        "been implemented",
    }


def test_other_errors_are_not_swallowed() -> None:
    def moto(environ: dict[str, object], start_response: object) -> list[bytes]:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        NotImplementedApp(moto)(_environ("iam"), lambda *_: None)
