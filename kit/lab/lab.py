"""The lab: the whole stack of the seed's app on one machine, with no AWS account.

``Lab`` starts DynamoDB Local (moto's DynamoDB as the announced fallback) and a moto server, provisions the
seed's infrastructure through AWS APIs (:mod:`kit.lab.provision`) or, as a mirror, a real account's stack as
it was read (``Lab(mirror=...)``, :mod:`kit.mirror` and :mod:`kit.lab.mirror_build`, with its manifest in
``.kit/mirror.json``), applies a scenario through the same APIs (:mod:`kit.lab.scenarios`), and starts the
parts no open tool provides: the DynamoDB front door that enforces execution roles, the Lambda runtime, the
Next.js stand-in, and the API Gateway WebSocket endpoint. While it is up it writes ``.kit/lab.json`` so other
processes (``kit ... --target lab``, notebooks) can reach it; the file is removed when the lab stops. Use it
as a context manager; ``kit lab up`` runs one in the foreground.

The lab watches its DynamoDB Local process (:mod:`kit.lab.supervisor`): when it dies the lab says so, restarts
it on the same port, re-creates the lab's table empty and records the death and the lost data in
``.kit/lab.json``; when the restart fails, the lab stops and leaves a note in ``.kit/lab.json`` saying why.

Stopping is idempotent and leaves no process or port behind: every child is also started with a parent-death
signal, so even a SIGKILL of the lab's process takes the JVM, the workers and the backend with it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from kit.dynamo import schema
from kit.errors import ConfigurationError, EngineError
from kit.lab import engines, function_source, lambda_runtimes, mirror_build, provision, scenarios
from kit.lab.activation import LOOPBACK, SocketActivated
from kit.lab.cloudwatch import LogWriter, MotoLogs
from kit.lab.dynamodb_front import DynamoDBFront
from kit.lab.function_source import FunctionSource
from kit.lab.gateway import Gateway, GatewaySettings
from kit.lab.gateway_core import IdlePolicy
from kit.lab.hops import Hops
from kit.lab.live import CredentialIssuer, LiveConfig, authorizer
from kit.lab.runtime import LambdaRuntime
from kit.lab.supervisor import RESTARTING, STOPPED, EngineEvent, EngineSupervisor
from kit.local import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY, PROJECT_ROOT, lab_file
from kit.mirror import AccountCopy, Manifest, write_manifest
from kit.target import DEFAULT_LAB_REGION, Target
from kit.throttling import AccountLimits

log = logging.getLogger("kit.lab")

DEFAULT_REGION = DEFAULT_LAB_REGION
CONTROL_SERVICES = ("iam", "lambda", "apigatewayv2", "logs", "sts")


@dataclass(frozen=True)
class LabInfo:
    """What ``.kit/lab.json`` holds; everything a client needs to reach the lab through AWS APIs."""

    region: str
    websocket_url: str
    management_url: str
    endpoints: dict[str, str]
    credentials: dict[str, str]
    table: str
    api_id: str
    stage: str
    functions: dict[str, str]
    role: str
    dynamodb_engine: str
    scenario: str
    pid: int
    # The function's runtime as provisioned (a scenario may change it), and the user's own function
    # (function_source.recorded) when the lab runs one.
    runtime: str = provision.DEFAULT_RUNTIME
    function: dict[str, object] | None = None
    mirror: dict[str, object] | None = None  # the mirrored account (Manifest.source), when it is a mirror
    dynamodb_status: str = "up"  # "up", "restarting" (after the engine died), "stopped"
    engine_events: tuple[dict[str, object], ...] = ()  # EngineEvent.as_dict() of every engine death

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Lab:
    """The local stack: started by ``__enter__`` or ``start()``, stopped by ``__exit__`` or ``stop()``.

    One lab per process at a time: moto keeps its state in module globals and a starting moto server
    resets it, so a second lab would silently wipe the first one's API, function and role.

    ``dynamodb`` names the engine to start, or is a DynamoDB Local already running (the tests share one per
    session): the lab then creates its tables in it but neither watches, restarts nor stops it, and what the
    lab leaves in it is the owner's to clear.
    """

    _running: Lab | None = None
    _running_lock = threading.Lock()

    def __init__(
        self,
        scenario: str = "healthy",
        *,
        dynamodb: Literal["auto", "dynamodb-local", "moto"] | engines.Engine = "auto",
        region: str = DEFAULT_REGION,
        write_lab_file: bool = True,
        idle_timeout_s: int = 600,
        max_duration_s: int = 7200,
        header_timeout_s: int = 10,
        management_idle_timeout_s: int = 60,
        runtime: str = provision.DEFAULT_RUNTIME,
        function: FunctionSource | str | None = None,
        mirror: AccountCopy | None = None,
        account_limits: AccountLimits | None = None,
    ) -> None:
        self.scenario = scenarios.get(scenario)
        self.mirror = mirror
        self.manifest: Manifest | None = None
        if mirror is not None:
            if scenario != "healthy" or function is not None:
                raise ConfigurationError(
                    "a mirror is the account's stack as it is: it takes no --scenario and no --function."
                )
            region = mirror.region
            for copied in mirror.functions:
                problem = lambda_runtimes.refusal(copied.name, copied.runtime)
                problem = problem or lambda_runtimes.missing_tool(copied.runtime)
                if problem is not None:
                    raise ConfigurationError(problem)
            runtime = next((f.runtime for f in mirror.functions), runtime)
        # Everything is refused here, before anything starts: the user's code (a path is read with the
        # defaults), a scenario that would swap it for the kit's handler, a runtime the lab cannot run.
        self.function = function_source.function_source(function) if isinstance(function, str) else function
        if self.function is not None:
            if self.scenario.replaces_handler:
                raise ConfigurationError(
                    f"scenario {self.scenario.name} swaps the function's handler for one of the kit's, so it "
                    "cannot run with your own function; use healthy or a scenario that changes the stack "
                    "around it (`kit lab scenarios`)."
                )
            runtime = self.function.runtime
        problem = lambda_runtimes.refusal(provision.FUNCTION_NAME, runtime)
        problem = problem or lambda_runtimes.missing_tool(runtime)
        if problem is None and self.scenario.runtime is not None:
            problem = lambda_runtimes.missing_tool(self.scenario.runtime)
        if problem is not None:
            raise ConfigurationError(problem)
        self.function_runtime = runtime
        self.dynamodb_choice = dynamodb
        self.region = region
        self.write_lab_file = write_lab_file
        self.idle_timeout_s = idle_timeout_s
        self.max_duration_s = max_duration_s
        self.header_timeout_s = header_timeout_s
        self.management_idle_timeout_s = management_idle_timeout_s
        # The account-level throttling quotas (kit.throttling): AWS's defaults (500 new connections a second
        # per region; 10,000 requests a second, burst 5,000) unless a test lowers or raises them.
        self.account_limits = account_limits or AccountLimits()
        self._stack = contextlib.ExitStack()
        self.info: LabInfo | None = None
        self.resources: provision.LabResources | None = None
        self.gateway: Gateway | None = None
        self.runtime: LambdaRuntime | None = None
        self.backend: SocketActivated | None = None  # the Next.js stand-in, started by its first request
        self.hops = Hops()  # where a request's time goes, hop by hop (the bench reads it)
        self.logs: LogWriter | None = None
        self.dynamodb_engine: engines.Engine | None = None
        self.moto_engine: engines.Engine | None = None
        self._admin: Target | None = None
        self._supervisor: EngineSupervisor | None = None
        self._stop_lock = threading.Lock()
        self.failure: str | None = None  # why the lab stopped itself (its engine died for good)

    # -- public --------------------------------------------------------------------------------------------

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def target(self, region: str | None = None) -> Target:
        """A lab target (the kit's own view, with the lab's administrator credentials) in ``region``."""
        if self.info is None or self.dynamodb_engine is None or self.moto_engine is None:
            raise EngineError("the lab is not running; use `with Lab() as lab:` or `kit lab up`.")
        return Target.local(
            self.info.endpoints,
            region=region or self.region,
            table=self.info.table,
            websocket_url=self.info.websocket_url,
            management_url=self.info.management_url,
            api_id=self.info.api_id,
            stage=self.info.stage,
            source="lab",
        )

    def flush_logs(self, timeout: float = 10.0) -> bool:
        """Wait until every log line produced so far is in CloudWatch Logs."""
        return self.logs.flush(timeout) if self.logs else True

    def start(self) -> Lab:
        started = time.monotonic()
        with Lab._running_lock:
            running = Lab._running
            if running is not None and running is not self:
                raise EngineError(
                    f"another lab (scenario {running.scenario.name}) is already running in this process; "
                    "moto keeps one state per process, so stop that lab before starting this one."
                )
            Lab._running = self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        log.info("lab up in %.1f s: %s", time.monotonic() - started, self.info)
        return self

    def stop(self) -> None:
        with self._stop_lock:
            self._stop()

    def _stop(self) -> None:
        if self.write_lab_file and self.info is not None:
            with contextlib.suppress(FileNotFoundError):
                current = json.loads(lab_file().read_text())
                if (
                    current.get("pid") == os.getpid()
                    and current.get("websocket_url") == self.info.websocket_url
                ):
                    lab_file().unlink()
        self._stack.close()
        self.info = None
        with Lab._running_lock:
            if Lab._running is self:
                Lab._running = None

    # -- start-up ------------------------------------------------------------------------------------------

    def _start(self) -> None:
        stack = self._stack
        choice = self.dynamodb_choice
        lent = choice if isinstance(choice, engines.Engine) else None
        if lent is not None and lent.name != "dynamodb-local":
            # a moto engine would share its state with the lab's own moto
            raise EngineError("a lab can only be given a running DynamoDB Local, not a moto engine.")
        # DynamoDB Local's JVM takes the longest to start: it starts on a thread of its own while moto starts
        # and the control plane (IAM, Lambda, API Gateway, log groups) is provisioned; the table comes after.
        starting = None if lent is not None or choice == "moto" else self._start_dynamodb_local(stack)
        moto = engines.start_moto()
        stack.callback(moto.stop)
        self.moto_engine = moto
        control = Target.local(dict.fromkeys(CONTROL_SERVICES, moto.endpoint_url), region=self.region)

        work, runtime, logs = self._start_runtime(control)
        table = self.mirror.table if self.mirror is not None else schema.EXPECTED.name
        provisioned = None
        if self.mirror is None:
            provisioned = provision.provision_control_plane(
                control,
                region=self.region,
                code_dir=work / "task",
                table=table,
                runtime=self.function_runtime,
                function=self.function,
            )

        # Under `moto` (or `auto` without Java), the lab's moto serves DynamoDB too.
        dynamodb = (lent or moto) if starting is None else self._dynamodb_started(starting, moto)
        self.dynamodb_engine = dynamodb
        endpoints = {"dynamodb": dynamodb.endpoint_url} | dict.fromkeys(CONTROL_SERVICES, moto.endpoint_url)
        admin = Target.local(endpoints | {"*": moto.endpoint_url}, region=self.region, source="lab")
        self._admin = admin

        live = LiveConfig(admin, moto.generation, moto.deployed)
        issuer = CredentialIssuer(provision.ACCOUNT_ID)
        front = DynamoDBFront(
            dynamodb.endpoint_url,
            authorizer(issuer, live),
            provision.ACCOUNT_ID,
            issuer.signing_secret,
            hops=self.hops,
        ).start()
        stack.callback(front.stop)

        backend_url = self._start_backend(front.url, table)

        def aws_in_region(region: str) -> Target:
            return Target.local(endpoints | {"*": moto.endpoint_url}, region=region)

        if provisioned is not None:
            schema.create_table(admin.client("dynamodb"), name=table)
            resources = provisioned
        else:
            assert self.mirror is not None
            resources, self.manifest = mirror_build.build(
                admin,
                self.mirror,
                code_dir=work / "task",
                http_backend_url=backend_url,
                aws_in_region=aws_in_region,
            )
        self.resources = resources

        settings = GatewaySettings(
            api_id=resources.api_id,
            stage=resources.stage,
            region=self.region,
            account_id=resources.account_id,
            code_dir=resources.code_dir,
            code_sha256=resources.code_sha256,
            idle=IdlePolicy(self.idle_timeout_s, self.max_duration_s),
            header_timeout_s=self.header_timeout_s,
            management_idle_timeout_s=self.management_idle_timeout_s,
            account_limits=self.account_limits,
            function_env={
                # Every AWS call of a function goes to the lab: DynamoDB through the front door (IAM
                # enforced), anything else to moto; never to a real endpoint.
                "AWS_ENDPOINT_URL": moto.endpoint_url,
                "AWS_ENDPOINT_URL_DYNAMODB": front.url,
            },
        )
        gateway = Gateway(settings, live, runtime, issuer, logs, hops=self.hops).start()
        stack.callback(gateway.stop)
        self.gateway = gateway

        context = scenarios.LabContext(
            aws=admin,
            resources=resources,
            http_backend_url=backend_url,
            aws_in_region=aws_in_region,
        )
        self.scenario.apply(context)

        self.info = LabInfo(
            region=self.region,
            websocket_url=gateway.websocket_url,
            management_url=gateway.management_url,
            endpoints=endpoints,
            credentials={
                "aws_access_key_id": LOCAL_ACCESS_KEY_ID,
                "aws_secret_access_key": LOCAL_SECRET_ACCESS_KEY,
            },
            table=resources.table,
            api_id=resources.api_id,
            stage=resources.stage,
            functions=dict(resources.functions),
            role=resources.role_arn,
            dynamodb_engine=dynamodb.name,
            scenario="mirror" if self.mirror is not None else self.scenario.name,
            pid=os.getpid(),
            runtime=self.function_runtime,
            function=None if self.function is None else function_source.recorded(self.function),
            mirror=None if self.manifest is None else dict(self.manifest.source),
        )
        if self.manifest is not None and self.write_lab_file:
            write_manifest(self.manifest)
        self._write_lab_file(self.info.as_dict())
        # moto runs in this process: it cannot die on its own; a lent engine is watched by its owner.
        if dynamodb.process is not None and lent is None:
            self._supervisor = EngineSupervisor(
                dynamodb, restart=self._restart_dynamodb, record=self._record, give_up=self._give_up
            ).start()

    def _start_runtime(self, control: Target) -> tuple[Path, LambdaRuntime, LogWriter]:
        """A work folder (the functions' code), the Lambda runtime, its log shipping: none needs DynamoDB."""
        # Lambda's and API Gateway's lines go into moto's store in this process, as AWS's services deliver
        # theirs (cloudwatch.MotoLogs); everything reads them back through the API.
        logs = LogWriter(MotoLogs(provision.ACCOUNT_ID, control.region))
        self._stack.callback(logs.close)
        self.logs = logs
        work = Path(tempfile.mkdtemp(prefix="kit-lab-"))
        self._stack.callback(shutil.rmtree, work, True)
        runtime = LambdaRuntime(logs.write, hops=self.hops)
        self._stack.callback(runtime.close)
        self.runtime = runtime
        return work, runtime, logs

    def _start_dynamodb_local(self, stack: contextlib.ExitStack) -> Future[engines.Engine]:
        """DynamoDB Local, starting on a thread of its own; a lab that fails meanwhile stops it once started.

        The JVM dies with the thread that started it (:mod:`kit.lab.processes`), so that thread lives as long
        as the lab: it ends only after the engine was stopped."""
        starting: Future[engines.Engine] = Future()
        stopped = threading.Event()

        def start() -> None:
            try:
                starting.set_result(engines.start_dynamodb_local())
            except BaseException as exc:  # handed to the lab's thread, which raises it
                starting.set_exception(exc)
                return
            stopped.wait()

        def stop_if_unclaimed() -> None:
            with contextlib.suppress(EngineError):
                engine = starting.result()
                if engine is not self.dynamodb_engine:
                    engine.stop()

        stack.callback(stopped.set)  # last: after the engine has been stopped
        stack.callback(self._stop_dynamodb)
        stack.callback(stop_if_unclaimed)
        threading.Thread(target=start, name="dynamodb-local", daemon=True).start()
        return starting

    def _dynamodb_started(self, starting: Future[engines.Engine], moto: engines.Engine) -> engines.Engine:
        """The DynamoDB Local started on its thread; under ``auto``, when it cannot start, the lab's moto
        (announced), which then serves DynamoDB too."""
        try:
            return starting.result()
        except EngineError as exc:
            if self.dynamodb_choice == "dynamodb-local":
                raise
            engines.announce_fallback(str(exc))
            return moto

    # -- the engine's deaths (called on the supervisor's thread) ------------------------------------------

    def _write_lab_file(self, content: dict[str, Any]) -> None:
        if not self.write_lab_file:
            return
        path = lab_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        temporary.write_text(json.dumps(content, indent=2) + "\n")
        temporary.replace(path)

    def _stop_dynamodb(self) -> None:
        if self._supervisor is not None:
            self._supervisor.stop()
        if self.dynamodb_engine is not None:
            self.dynamodb_engine.stop()

    def _restart_dynamodb(self, dead: engines.Engine) -> tuple[engines.Engine, str]:
        """A new DynamoDB Local on the dead one's port, with the lab's table re-created empty.

        The front door and every function keep their endpoint, so requests reach the new engine as soon as
        it answers. Only the table ``provision`` made is re-created: items, and tables a scenario made (in
        another region, say), are not.
        """
        engine = engines.restart_dynamodb_local(dead)
        self.dynamodb_engine = engine
        assert self._admin is not None and self.resources is not None
        table = self.resources.table
        copied = [t for t in self.mirror.tables if t.region == self.region] if self.mirror else []
        try:
            if copied:  # a mirror's tables have the account's keys, not the seed's
                for each in copied:
                    self._admin.client("dynamodb").create_table(**mirror_build.table_request(each))
            else:
                schema.create_table(self._admin.client("dynamodb"), name=table)
        except Exception:
            engine.stop()
            raise
        return engine, (
            f"The lab's table {table} was re-created empty in {self.region}; the items it held, and any "
            "table a scenario made, are not restored (restart the lab to get its scenario back exactly)."
        )

    def _record(self, events: list[EngineEvent]) -> None:
        """Keep the engine's history in ``info`` and ``.kit/lab.json`` for users and the diagnosis."""
        info = self.info
        if info is None:  # the lab is stopping
            return
        status = {RESTARTING: "restarting", STOPPED: "stopped"}.get(events[-1].outcome, "up")
        recorded = replace(
            info, dynamodb_status=status, engine_events=tuple(event.as_dict() for event in events)
        )
        if self._stop_lock.acquire(blocking=False):  # never rewrite the file of a lab being stopped
            try:
                self._write_lab_file(recorded.as_dict())
            finally:
                self._stop_lock.release()
        # Published after the file: whoever sees the new status in ``info`` finds it in .kit/lab.json too.
        self.info = recorded

    def _give_up(self, event: EngineEvent) -> None:
        """The engine died and could not be restarted: stop the lab and leave a note saying why."""
        message = event.message()
        if self._stop_lock.acquire(blocking=False):  # else someone is stopping the lab already
            try:
                self._stop()
                self._write_lab_file(
                    {"stopped": message, "pid": os.getpid(), "engine_events": [event.as_dict()]}
                )
            finally:
                self._stop_lock.release()
        self.failure = message  # last: whoever waits for it finds the lab stopped

    def _start_backend(self, dynamodb_url: str, table: str) -> str:
        """The Next.js stand-in's URL: the lab listens on its port now, and the stand-in's process (the
        app's environment) starts when the first request arrives (:mod:`kit.lab.activation`)."""
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(PROJECT_ROOT),
            "TABLE_NAME": table,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_ACCESS_KEY,
            "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_url,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        backend = SocketActivated(
            [sys.executable, "-m", "kit.lab.nextjs_backend"],
            env,
            "Next.js stand-in",
            "run `python -m kit.lab.nextjs_backend` to see why.",
        ).start()
        self._stack.callback(backend.stop)
        self.backend = backend
        return f"http://{LOOPBACK}:{backend.port}/api/websocket"
