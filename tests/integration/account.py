"""A simulated AWS account: a lab served in a process of its own, reached by the kit only as a user's machine
reaches AWS, behind recording proxies that count every API call (issue 13's simulation tier).

- ``kit lab up --scenario S`` runs in its own process with its own state dir; the kit under test gets an empty
  one, so it has no lab file to read. That process is forked from a fork server that has imported the lab
  once (``forkserver.py``, ~2.4 s of CPU less per account), or, where Linux has no pidfd, a new Python.
- Every endpoint the account has (the control plane moto serves, the DynamoDB front door, @connections, the
  WebSocket stage) sits behind a :class:`RecordingProxy`: a loopback reverse proxy that forwards each request
  unchanged (the Host header too, so SigV4 signatures still verify) and records which AWS operation it was.
- The kit is pointed at the proxies through a profile in a temporary AWS config file (``services`` sections
  with ``endpoint_url``), credentials in a temporary credentials file, and an app's ``.env.local`` holding the
  stage's URLs, as a Next.js app would. ``--target aws``, never the lab file.

:func:`identify` and :func:`is_mutating` are pure (tested by tables in ``tests/unit/test_account_proxy.py``):
an operation is a read only when its name says so (Get, List, Describe, Scan, Query, ...); anything else,
an unknown operation included, counts as mutating, so a miss fails the read-only proof instead of passing it.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

import boto3
import botocore.session
from botocore.config import Config

from kit.local import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY

ROOT = Path(__file__).resolve().parents[2]
KIT = [sys.executable, "-m", "kit.cli"]
PROFILE = "sim"

# Operation names that only read. Everything else mutates (Put*, Create*, Update*, Delete*, PostToConnection,
# Invoke, Tag*, ...), unknown names included.
READ_PREFIXES = (
    "Get",
    "List",
    "Describe",
    "Scan",
    "Query",
    "BatchGet",
    "Filter",
    "Simulate",
    "StartQuery",  # Logs Insights: a query runs server-side and changes nothing
    "StopQuery",
    "Lookup",
    "Search",
    "Download",  # a function's code from its code location (a presigned GET)
)
CONNECT = "WebSocketConnect"  # a WebSocket handshake: it runs $connect, which stores a connection
CODE_DOWNLOAD = "DownloadCode"  # a GET of a function's code location (a presigned URL)
# The signing name in a SigV4 credential scope → boto3's service name.
SIGNING_NAMES = {
    "apigateway": "apigatewayv2",
    "execute-api": "apigatewaymanagementapi",
    "lambda": "lambda",
    "dynamodb": "dynamodb",
    "logs": "logs",
    "iam": "iam",
    "sts": "sts",
}
_SCOPE = re.compile(r"Credential=(?P<key>[^/,\s]+)/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")


def is_mutating(operation: str) -> bool:
    """Whether ``operation`` may change the account (pure). Unknown names count as changes."""
    return not operation.startswith(READ_PREFIXES)


@cache
def _rest_routes(service: str) -> tuple[tuple[str, re.Pattern[str], str], ...]:
    """(method, path pattern, operation) of a REST service's operations, most literal first."""
    model = botocore.session.get_session().get_service_model(service)
    routes = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        uri = str(http["requestUri"]).split("?", 1)[0]
        pattern = re.sub(r"\\\{[^}]+\\\+\\\}", ".+", re.escape(uri))
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", pattern)
        prefix = "(?:/[^/]+)?" if service == "apigatewaymanagementapi" else ""  # the stage in the URL
        routes.append((str(http["method"]), re.compile(f"^{prefix}{pattern}/?$"), name, len(uri)))
    routes.sort(key=lambda route: -route[3])
    return tuple((method, pattern, name) for method, pattern, name, _ in routes)


def identify(method: str, path: str, headers: Mapping[str, str], body: bytes) -> tuple[str, str]:
    """(service, operation) of a request as it reached an endpoint (pure); headers' names in lower case.

    The service is the SigV4 scope's (a presigned URL's query too); the operation is ``X-Amz-Target``'s
    (JSON protocol), the form's ``Action`` (query protocol), or the REST route its method and path match.
    """
    if headers.get("upgrade", "").lower() == "websocket":
        return "execute-api", CONNECT
    split = urlsplit(path)
    query = parse_qs(split.query)
    scope = _SCOPE.search(headers.get("authorization", ""))
    signing = scope["service"] if scope else ""
    if not signing and "X-Amz-Credential" in query:
        signing = (
            query["X-Amz-Credential"][0].split("/")[3] if query["X-Amz-Credential"][0].count("/") >= 4 else ""
        )
    if not signing:
        return "unsigned", CODE_DOWNLOAD if method == "GET" else f"{method} {split.path}"
    service = SIGNING_NAMES.get(signing, signing)
    if target := headers.get("x-amz-target"):
        return service, target.rsplit(".", 1)[-1]
    if "x-www-form-urlencoded" in headers.get("content-type", ""):
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return service, action[0]
    try:
        routes = _rest_routes(service)
    except Exception:
        return service, f"{method} {split.path}"
    for route_method, pattern, name in routes:
        if route_method == method and pattern.match(split.path):
            return service, name
    return service, f"{method} {split.path}"


def refusal(service: str, kind: str, operation: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """The account's answer refusing ``operation``: ``kind`` "expired" (the caller's session ended) or
    "denied" (its identity may not), in the service's own protocol, as AWS words them (pure)."""
    if service in ("iam", "sts"):  # query protocol: an XML ErrorResponse
        code = "ExpiredToken" if kind == "expired" else "AccessDenied"
        message = (
            "The security token included in the request is expired"
            if kind == "expired"
            else f"User: arn:aws:iam::123456789012:user/kit is not authorized to perform: {service}:{operation}"
        )
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
        ).encode()
        return 403, [("Content-Type", "text/xml")], body
    code = "ExpiredTokenException" if kind == "expired" else "AccessDeniedException"
    message = (
        "The security token included in the request is expired"
        if kind == "expired"
        else f"User: arn:aws:iam::123456789012:user/kit is not authorized to perform: {service}:{operation}"
    )
    if service in ("dynamodb", "logs"):  # JSON protocol: the code in __type
        body = json.dumps({"__type": f"com.amazonaws#{code}", "message": message}).encode()
        return 400, [("Content-Type", "application/x-amz-json-1.0")], body
    body = json.dumps({"message": message, "Message": message}).encode()  # REST: the code in a header
    return 403, [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)], body


@dataclass(frozen=True)
class Call:
    endpoint: str  # which of the account's endpoints (control, dynamodb, management, websocket, code)
    service: str
    operation: str
    method: str
    path: str
    status: int = 0

    @property
    def mutating(self) -> bool:
        return is_mutating(self.operation)


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RecordingProxy

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _any(self) -> None:
        body = self._body()
        headers = {name.lower(): value for name, value in self.headers.items()}
        service, operation = identify(self.command, self.path, headers, body)
        refused = self.server.refused(operation)
        if refused is not None:
            status, extra, data = refusal(service, refused, operation)
            self.server.record(Call(self.server.name, service, operation, self.command, self.path, status))
            self.send_response_only(status)
            for name, value in [*extra, ("Content-Length", str(len(data)))]:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            return
        if operation == CONNECT:
            self.server.record(Call(self.server.name, service, operation, self.command, self.path))
            self._tunnel(body)
            return
        upstream = http.client.HTTPConnection(
            self.server.upstream_host, self.server.upstream_port, timeout=120
        )
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in ("transfer-encoding", "content-length", "connection"):
                    upstream.putheader(name, value)
            upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body)
            answer = upstream.getresponse()
            data = answer.read()
        except OSError:
            self.server.record(Call(self.server.name, service, operation, self.command, self.path, 502))
            self.send_error(502, "the simulated account's endpoint did not answer")
            return
        finally:
            upstream.close()
        self.server.record(Call(self.server.name, service, operation, self.command, self.path, answer.status))
        self.send_response_only(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in ("transfer-encoding", "content-length", "connection", "keep-alive"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _tunnel(self, body: bytes) -> None:
        """A WebSocket: the handshake forwarded as it came, then bytes both ways until either side closes."""
        self.close_connection = True
        try:
            upstream = socket.create_connection((self.server.upstream_host, self.server.upstream_port), 10)
        except OSError:
            self.send_error(502, "the simulated account's WebSocket stage did not answer")
            return
        head = self.requestline + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in self.headers.items()) + "\r\n"
        upstream.sendall(head.encode("latin-1") + body)
        client = self.connection

        def pump(read: Any, write: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while chunk := read(65536):
                    write.sendall(chunk)
            with contextlib.suppress(OSError):
                write.shutdown(socket.SHUT_WR)

        back = threading.Thread(target=pump, args=(upstream.recv, client), daemon=True)
        back.start()
        pump(self.rfile.read1, upstream)
        back.join(timeout=30)
        upstream.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _any


class RecordingProxy(ThreadingHTTPServer):
    """A loopback reverse proxy in front of one endpoint, recording every call it forwards."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        name: str,
        upstream_url: str,
        calls: list[Call],
        lock: threading.Lock,
        refusals: dict[str, str] | None = None,
    ) -> None:
        parts = urlsplit(upstream_url)
        self.refusals = refusals if refusals is not None else {}  # operation or "*" -> expired | denied
        self.name = name
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.path_prefix = parts.path.rstrip("/")
        self._calls = calls
        self._lock = lock
        super().__init__(("127.0.0.1", 0), _Forward)
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name=f"proxy-{name}", daemon=True
        )
        self._thread.start()

    def record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def refused(self, operation: str) -> str | None:
        with self._lock:
            return self.refusals.get(operation, self.refusals.get("*"))

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.server_address[1]}{self.path_prefix}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


FORK_SERVER = Path(__file__).with_name("forkserver.py")
_FORK_LOCK = threading.Lock()
_FORK_SERVERS: dict[str, tuple[subprocess.Popen[bytes], socket.socket, IO[str]]] = {}  # this process's one


class Forked:
    """A child of this process's fork server (``forkserver.py``), held by the pidfd the server opened before
    the child could be reaped: it names that one process even after it exits and its pid is reused, so a
    signal can never reach another. Once it has exited, ``poll`` and ``wait`` give its exit code as
    ``Popen.returncode`` would (the server collected it: ``_exit_code``)."""

    def __init__(self, pid: int, pidfd: int) -> None:
        self.pid = pid
        self._fd: int | None = pidfd
        self.returncode: int | None = None

    def _exited(self, timeout: float) -> bool:
        if self._fd is None:
            return True
        watch = select.poll()
        watch.register(self._fd, select.POLLIN)
        return bool(watch.poll(timeout * 1000))

    def poll(self) -> int | None:
        return self._collected() if self._exited(0) else None

    def wait(self, timeout: float) -> int:
        if not self._exited(timeout):
            raise subprocess.TimeoutExpired(str(FORK_SERVER), timeout)
        return self._collected()

    def _collected(self) -> int:
        if self.returncode is None:
            self.returncode = _exit_code(self.pid)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self._fd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._fd, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@cache
def _pidfds_work() -> bool:
    """Whether this Python and this kernel give pidfds (Linux 5.3+): without them, no fork server."""
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


def _stop_fork_server(server: subprocess.Popen[bytes], ours: socket.socket, answers: IO[str]) -> None:
    """At exit: our end of the socket closes, the server leaves its loop (its children, if any are left, get
    SIGTERM)."""
    answers.close()
    ours.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.wait(timeout=5)


def _exit_code(pid: int) -> int:
    """The exit code of the fork server's child ``pid``, which has exited (its pidfd said so)."""
    with _FORK_LOCK:
        running = _FORK_SERVERS.get("server")
        if running is None or running[0].poll() is not None:
            raise RuntimeError(f"the fork server is gone: the exit code of its child {pid} went with it")
        _, ours, requests = running
        requests.write(json.dumps({"status": pid}) + "\n")
        requests.flush()
        answer = ours.recv(64).decode().strip()
    if answer == "running":
        raise RuntimeError(
            f"the fork server's child {pid} has not exited: ask for its code once its pidfd says so"
        )
    if not answer.lstrip("-").isdigit():
        raise RuntimeError(f"the fork server has no child {pid} (it answered {answer!r})")
    return int(answer)


def forked(argv: list[str], env: Mapping[str, str], cwd: Path, stderr: Path) -> Forked | None:
    """``python -m kit.cli ARGV`` forked from this process's fork server (started on first use); None where
    there are no pidfds, so the caller starts a new Python instead."""
    if not _pidfds_work():
        return None
    request = json.dumps({"argv": argv, "env": dict(env), "cwd": str(cwd), "stderr": str(stderr)})
    with _FORK_LOCK:
        running = _FORK_SERVERS.get("server")
        if running is None or running[0].poll() is not None:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            with theirs:
                server = subprocess.Popen(
                    [sys.executable, str(FORK_SERVER), str(theirs.fileno())],
                    pass_fds=[theirs.fileno()],
                    stdin=subprocess.DEVNULL,
                    cwd=ROOT,
                )
            running = _FORK_SERVERS["server"] = (server, ours, ours.makefile("w", encoding="utf-8"))
            atexit.register(_stop_fork_server, *running)
        _, ours, requests = running
        requests.write(request + "\n")
        requests.flush()
        answer, fds, _, _ = socket.recv_fds(ours, 64, 1)
    if not answer.strip().isdigit() or len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise RuntimeError(f"the fork server did not fork (it answered {answer!r}); see the test's stderr")
    return Forked(int(answer), fds[0])


@dataclass
class SimulatedAccount:
    """A lab running ``scenario`` in its own process, behind recording proxies, reachable as an account."""

    scenario: str
    home: Path
    region: str = "us-east-2"
    dynamodb: str = "auto"  # the account lab's engine (`kit lab up --dynamodb`)
    calls: list[Call] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _process: subprocess.Popen[str] | Forked | None = None
    _proxies: dict[str, RecordingProxy] = field(default_factory=dict)
    _refusals: dict[str, str] = field(default_factory=dict)

    # -- life ----------------------------------------------------------------------------------------------

    @property
    def stderr_file(self) -> Path:
        """Where the account's lab writes its stderr."""
        return self.home / "account-stderr.log"

    def start(self, timeout_s: float = 120) -> SimulatedAccount:
        state = self.home / "account-state"
        env = {**os.environ, "KIT_STATE_DIR": str(state)}
        # Its stderr goes to a file: a pipe nobody reads fills up (64 KB of the lab's warnings, say, while a
        # test deletes its log groups) and then blocks the lab mid-write, so it can no longer stop.
        stderr = self.stderr_file
        argv = ["lab", "up", "--scenario", self.scenario, "--dynamodb", self.dynamodb]
        self._process = forked(argv, env, ROOT, stderr)
        if self._process is None:  # no fork server here (no pidfd): a new Python, as a user would start it
            with stderr.open("w") as sink:
                self._process = subprocess.Popen(
                    [*KIT, *argv], stdout=subprocess.DEVNULL, stderr=sink, text=True, env=env, cwd=ROOT
                )
        lab_file = state / "lab.json"
        deadline = time.monotonic() + timeout_s
        while not lab_file.exists() and self._process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if not lab_file.exists():
            error = stderr.read_text(errors="replace")[-3000:] if self._process.poll() is not None else ""
            self.stop(expect_clean_exit=False)
            raise RuntimeError(f"the simulated account did not start: {error}")
        self.info = json.loads(lab_file.read_text())
        control = self.info["endpoints"]["iam"]
        for name, url in (
            ("control", control),
            ("dynamodb", self.info["endpoints"]["dynamodb"]),
            ("management", self.info["management_url"]),
            ("websocket", self.info["websocket_url"].replace("ws://", "http://", 1)),
        ):
            self._proxies[name] = RecordingProxy(name, url, self.calls, self._lock, self._refusals)
        self._write_client_files()
        return self

    def stop(self, *, expect_clean_exit: bool = True) -> None:
        """Stop the account's lab with SIGTERM; unless told otherwise, fail loudly if it does not exit 0."""
        for proxy in self._proxies.values():
            proxy.stop()
        self._proxies.clear()
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    code = process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
                    code = None  # killed
            else:
                code = process.poll()
            # `kit lab up` stops on SIGTERM as on Ctrl-C, with 0: anything else is a lab that failed.
            if expect_clean_exit:
                assert code is not None, (
                    f"the {self.scenario} account's lab ignored SIGTERM for 60 s (killed)"
                )
                assert code == 0, f"the {self.scenario} account's lab exited with {code}: {self.stderr_file}"
        finally:
            if isinstance(process, Forked):
                process.close()

    def __enter__(self) -> SimulatedAccount:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- what the user's machine has -----------------------------------------------------------------------

    @property
    def websocket_url(self) -> str:
        return self._proxies["websocket"].url("ws")

    @property
    def management_url(self) -> str:
        return self._proxies["management"].url()

    @property
    def api_id(self) -> str:
        return str(self.info["api_id"])

    @property
    def table(self) -> str:
        return str(self.info["table"])

    def _write_client_files(self) -> None:
        aws = self.home / "aws"
        aws.mkdir(parents=True, exist_ok=True)
        control = self._proxies["control"].url()
        services = "\n".join(
            f"{name} =\n  endpoint_url = {url}"
            for name, url in (
                ("iam", control),
                ("lambda", control),
                ("apigatewayv2", control),
                ("cloudwatch_logs", control),  # the config file names a service by its id, snake-cased
                ("sts", control),
                ("dynamodb", self._proxies["dynamodb"].url()),
            )
        )
        (aws / "config").write_text(
            f"[profile {PROFILE}]\nregion = {self.region}\nservices = {PROFILE}-endpoints\n\n"
            f"[services {PROFILE}-endpoints]\n{services}\n"
        )
        # For endpoints given the other way a user's machine may give them: AWS_ENDPOINT_URL* variables.
        (aws / "config-plain").write_text(f"[profile {PROFILE}]\nregion = {self.region}\n")
        (aws / "credentials").write_text(
            f"[{PROFILE}]\naws_access_key_id = {LOCAL_ACCESS_KEY_ID}\n"
            f"aws_secret_access_key = {LOCAL_SECRET_ACCESS_KEY}\n"
        )
        app = self.home / "app"
        app.mkdir(parents=True, exist_ok=True)
        # A custom domain in the app's eyes: the URL carries no API id, hence --api-id.
        (app / ".env.local").write_text(
            f"NEXT_PUBLIC_WEBSOCKET_URL={self.websocket_url}\n"
            f"WEBSOCKET_API_ENDPOINT={self.management_url}\n"
            f"AWS_REGION={self.region}\n"
            f"CONNECTIONS_TABLE={self.table}\n"
        )
        (self.home / "kit-state").mkdir(exist_ok=True)

    @property
    def env_file(self) -> Path:
        return self.home / "app" / ".env.local"

    def kit_env(self, endpoints: str = "config") -> dict[str, str]:
        """The environment of a user's shell: the temporary AWS files, no AWS_* of this machine, no lab file.

        ``endpoints`` "config": the profile's ``services`` section says where each service is; "env":
        ``AWS_ENDPOINT_URL`` (every service) and ``AWS_ENDPOINT_URL_DYNAMODB`` do, the config file only has
        the region.
        """
        clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "KIT_STATE_DIR"}
        via_env = (
            {
                "AWS_ENDPOINT_URL": self._proxies["control"].url(),
                "AWS_ENDPOINT_URL_DYNAMODB": self._proxies["dynamodb"].url(),
            }
            if endpoints == "env"
            else {}
        )
        return {
            **clean,
            **via_env,
            "AWS_CONFIG_FILE": str(self.home / "aws" / ("config-plain" if endpoints == "env" else "config")),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.home / "aws" / "credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "KIT_STATE_DIR": str(self.home / "kit-state"),
            # Anything that is not one of the account's loopback endpoints goes to a port nobody listens on:
            # a call that escapes the simulation fails at once instead of reaching AWS.
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "HTTP_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1,localhost",
        }

    def target_args(self, *, env_file: bool = True, api_id: bool = True) -> list[str]:
        args = ["--target", "aws", "--profile", PROFILE]
        if env_file:
            args += ["--env-file", str(self.env_file)]
        if api_id:
            args += ["--api-id", self.api_id]
        return args

    def run(
        self, args: list[str], timeout: float = 180, endpoints: str = "config", *, subprocess_: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """``kit ARGS`` as the user would run it, from the app's folder, in the user's environment.

        In this process by default (``kit.cli.main`` with the environment swapped for the block: the kit
        builds its sessions from it, so it reaches the account exactly as a new process would, without paying
        a Python start per command on a 2-core machine); ``subprocess_`` runs the real ``kit`` command.
        """
        if subprocess_:
            return subprocess.run(
                KIT + args,
                capture_output=True,
                text=True,
                env=self.kit_env(endpoints),
                timeout=timeout,
                cwd=self.home / "app",
                check=False,
            )
        import io
        from contextlib import redirect_stderr, redirect_stdout

        from kit import cli

        out, err = io.StringIO(), io.StringIO()
        with self.as_user(endpoints), redirect_stdout(out), redirect_stderr(err):
            code = cli.main(args)
        return subprocess.CompletedProcess(KIT + args, code, out.getvalue(), err.getvalue())

    @contextlib.contextmanager
    def as_user(self, endpoints: str = "config") -> Iterator[None]:
        """This process in the user's shell while the block runs: their environment, their app's folder."""
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.kit_env(endpoints))
        try:
            with contextlib.chdir(self.home / "app"):
                yield
        finally:
            os.environ.clear()
            os.environ.update(saved)

    # -- the proof -----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[Call]]:
        """The calls made while the block runs."""
        with self._lock:
            start = len(self.calls)
        seen: list[Call] = []
        try:
            yield seen
        finally:
            with self._lock:
                seen.extend(self.calls[start:])

    @contextlib.contextmanager
    def refusing(self, kind: str, operations: tuple[str, ...] = ("*",)) -> Iterator[None]:
        """While the block runs, the account refuses ``operations`` (every one by default): ``kind``
        "expired" (the caller's session token has expired) or "denied" (its identity may not)."""
        with self._lock:
            self._refusals.update(dict.fromkeys(operations, kind))
        try:
            yield
        finally:
            with self._lock:
                self._refusals.clear()

    # -- the account's owner (straight to the lab, never through the proxies, never counted) ----------------

    def admin(self, service: str) -> Any:
        endpoints = self.info["endpoints"]
        return boto3.client(
            service,
            endpoint_url=endpoints.get(service, endpoints["iam"]),
            region_name=self.region,
            aws_access_key_id=LOCAL_ACCESS_KEY_ID,
            aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY,
            config=Config(retries={"mode": "standard", "max_attempts": 2}),
        )

    def item_count(self) -> int:
        pages = self.admin("dynamodb").get_paginator("scan").paginate(TableName=self.table, Select="COUNT")
        return sum(int(page["Count"]) for page in pages)

    def connect_directly(self, query: str = "?token=sim-user%40example.com&workspaceId=ws-sim") -> Any:
        """Traffic in the account before the kit looks: a user's client connects to the stage (not through
        the proxies) and stays; the caller closes it."""
        import websocket

        return websocket.create_connection(self.info["websocket_url"] + query, timeout=10)
