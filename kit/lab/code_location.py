"""A function's code as Lambda hands it out: ``GetFunction``'s ``Code.Location``, a URL anyone holding it may
download for 10 minutes (on AWS a presigned S3 URL), and the code the lab's runtime runs after
``UpdateFunctionCode``. moto answers ``GetFunction`` with an S3 address nobody can fetch and keeps the code
bytes to itself; this is the lab's own AWS layer for both.

    location(base, secret, region, account, function, now)   a signed, expiring URL on the lab's moto port
    check(secret, path, query, now)                           why a URL may not be served, or None (pure)
    rewrite_get_function(body, make_location)                 GetFunction's answer with that URL (pure)
    CodeLocationApp                                           the WSGI layer in front of moto serving both
    DeployedCode                                              the code a function runs after it changed

The signature is an HMAC over the path and expiry with a secret only the lab process knows: a URL cannot be
forged or extended, and it names no credential.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, quote, unquote, urlsplit

from kit.errors import KitError
from kit.lab import sockets

CODE_PATH_PREFIX: Final = "/_lab/code/"
LOCATION_TTL_S: Final = 600  # AWS: "The presigned URL ... is valid for up to 10 minutes"
_GET_FUNCTION = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/?$")
_CODE_PATH = re.compile(r"^/_lab/code/(?P<region>[a-z0-9-]+)/(?P<account>\d{12})/(?P<function>[^/]+)$")

CodeOf = Callable[[str, str, str], bytes | None]  # (region, account, function name) -> the zip, or None


def _signature(secret: bytes, path: str, expires: int) -> str:
    return hmac.new(secret, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()


def location(base_url: str, secret: bytes, function_arn_parts: tuple[str, str, str], now: float) -> str:
    """The URL ``GetFunction`` answers with: ``base_url`` + the code's path, valid for 10 minutes.

    ``function_arn_parts``: (region, account, function name)."""
    region, account, function = function_arn_parts
    path = f"{CODE_PATH_PREFIX}{region}/{account}/{quote(function, safe='')}"
    expires = int(now) + LOCATION_TTL_S
    return (
        f"{base_url.rstrip('/')}{path}?X-Amz-Expires={LOCATION_TTL_S}&X-Kit-Expires-At={expires}"
        f"&X-Amz-Signature={_signature(secret, path, expires)}"
    )


def check(secret: bytes, path: str, query: str, now: float) -> str | None:
    """Why the code URL ``path?query`` may not be served (S3's error code), or None to serve it (pure)."""
    if _CODE_PATH.match(path) is None:
        return "NoSuchKey"
    fields = parse_qs(query)
    signature = (fields.get("X-Amz-Signature") or [""])[0]
    try:
        expires = int((fields.get("X-Kit-Expires-At") or [""])[0])
    except ValueError:
        return "AccessDenied"
    if not hmac.compare_digest(signature, _signature(secret, path, expires)):
        return "SignatureDoesNotMatch"
    if now > expires:
        return "AccessDenied"  # S3: "Request has expired"
    return None


def rewrite_get_function(body: bytes, make_location: Callable[[str, str, str], str]) -> bytes:
    """GetFunction's answer with ``Code.Location`` from ``make_location(region, account, function)``, read
    from the answer's function ARN (pure). An answer that is not a function's is returned as it came."""
    try:
        answer = json.loads(body)
        arn = str(answer["Configuration"]["FunctionArn"])
        code = answer["Code"]
    except (ValueError, KeyError, TypeError):
        return body
    parts = arn.split(":")
    if len(parts) < 7 or not isinstance(code, dict) or "Location" not in code:
        return body
    code["Location"] = make_location(parts[3], parts[4], parts[6])
    return json.dumps(answer).encode()


def _s3_error(code: str) -> bytes:
    messages = {
        "NoSuchKey": "The specified key does not exist.",
        "AccessDenied": "Request has expired",
        "SignatureDoesNotMatch": "The request signature we calculated does not match the signature you "
        "provided.",
    }
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{messages.get(code, code)}</Message></Error>"
    ).encode()


class CodeLocationApp:
    """WSGI layer in front of moto: serves ``/_lab/code/...`` URLs and puts them into ``GetFunction``."""

    def __init__(self, app: Callable[..., Any], secret: bytes, code_of: CodeOf) -> None:
        self.app = app
        self.secret = secret
        self.code_of = code_of

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        method = str(environ.get("REQUEST_METHOD", ""))
        if path.startswith(CODE_PATH_PREFIX) and method == "GET":
            return self._serve(path, str(environ.get("QUERY_STRING", "")), start_response)
        if method == "GET" and _GET_FUNCTION.match(path):
            return self._get_function(environ, start_response)
        return self.app(environ, start_response)  # type: ignore[no-any-return]

    def _serve(self, path: str, query: str, start_response: Callable[..., Any]) -> Iterable[bytes]:
        refused = check(self.secret, path, query, time.time())
        match = _CODE_PATH.match(path)
        code = None
        if refused is None and match is not None:
            code = self.code_of(match["region"], match["account"], unquote(match["function"]))
            refused = None if code else "NoSuchKey"
        if refused is not None or code is None:
            body = _s3_error(refused or "NoSuchKey")
            status = "404 Not Found" if refused == "NoSuchKey" else "403 Forbidden"
            start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
            return [body]
        start_response("200 OK", [("Content-Type", "application/zip"), ("Content-Length", str(len(code)))])
        return [code]

    def _get_function(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        captured: dict[str, Any] = {}

        def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        chunks = self.app(environ, keep)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        if str(captured.get("status", "")).startswith("200"):
            base = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '127.0.0.1')}"
            now = time.time()
            body = rewrite_get_function(
                body, lambda region, account, name: location(base, self.secret, (region, account, name), now)
            )
        headers = [(k, v) for k, v in captured.get("headers", []) if k.lower() != "content-length"]
        length = ("Content-Length", str(len(body)))
        start_response(captured.get("status", "500 Internal Server Error"), [*headers, length])
        return [body]


def moto_code(region: str, account: str, function: str) -> bytes | None:
    """The zip moto keeps for a function (the lab runs moto in its own process), or None."""
    try:
        from moto.awslambda.models import lambda_backends

        found = lambda_backends[account][region].get_function(function)
    except Exception:  # no such function, account or region: the URL names nothing
        return None
    code = getattr(found, "code_bytes", b"")
    return bytes(code) if code else None


class DeployedCode:
    """The code a function runs once ``UpdateFunctionCode`` changed it: fetched as Lambda fetches it (from
    ``GetFunction``'s ``Code.Location``), checked as a deployment package (``function_source.check_zip``) and
    unpacked once per ``CodeSha256`` under ``root``. The lab's provisioned code keeps its own folder."""

    def __init__(self, root: Path, code_location: Callable[[str], str | None]) -> None:
        self.root = root
        self.code_location = code_location
        self._lock = threading.Lock()

    def path_for(self, function: str, sha256: str) -> str:
        folder = self.root / hashlib.sha256(sha256.encode()).hexdigest()[:24]
        with self._lock:
            if folder.is_dir():
                return str(folder)
            url = self.code_location(function)
            if not url or urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
                raise KitError(f"The code of {function} has no location in the lab; redeploy it.")
            with sockets.open_loopback(url, timeout=30) as answer:
                data = answer.read()
            actual = base64.b64encode(hashlib.sha256(data).digest()).decode()
            if actual != sha256:
                raise KitError(f"The code of {function} changed while it was fetched; invoke it again.")
            from kit.lab import function_source

            self.root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix="code-", dir=self.root))
            function_source.extract_package(data, staging, f"{function}'s code ({len(data)} bytes)")
            staging.rename(folder)
            return str(folder)
