"""The lab's API Gateway WebSocket endpoint: a thin asyncio shell on ``websockets`` around the pure core.

Every decision (which route, which event, which status, close code or error frame, what @connections answers,
what the logs say) is made in the pure core (:mod:`kit.lab.gateway_core`, ``gateway_config``,
``gateway_events``) and :mod:`kit.lab.gateway_logs`. This module only does the I/O: it accepts sockets on
127.0.0.1 (each a :class:`kit.lab.gateway_connection.GatewayConnection`, which applies the frame limits),
reads the API's live configuration through :class:`kit.lab.live.LiveConfig` when it acts, invokes
integrations and authorizers (:mod:`kit.lab.gateway_integrations`: Lambda through the lab's runtime,
HTTP_PROXY over HTTP), sends frames, serves ``/{stage}/@connections/{id}`` on a second loopback port, and
hands log lines to the log writer.

It must not decide anything the core can decide, and it must not know about scenarios.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from kit import permissions, policy, throttling
from kit.errors import KitError
from kit.lab import (
    authorizer_core,
    gateway_config,
    gateway_events,
    gateway_logs,
    handshake,
    iam_connect,
    sigv4,
)
from kit.lab import gateway_core as core
from kit.lab.cloudwatch import LogWriter
from kit.lab.engines import LOOPBACK
from kit.lab.gateway_connection import GatewayConnection, connection_type, http_response, in_background
from kit.lab.gateway_integrations import Integrations
from kit.lab.hops import GATEWAY_HANDSHAKE, Hops
from kit.lab.live import CredentialIssuer, LiveConfig
from kit.lab.runtime import LambdaRuntime
from kit.local import LOCAL_ACCESS_KEY_ID

log = logging.getLogger("kit.lab")


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class GatewaySettings:
    api_id: str
    stage: str
    region: str
    account_id: str
    code_dir: str
    idle: core.IdlePolicy = field(default_factory=core.IdlePolicy)
    # Sockets that send nothing, or too slowly, must not be held: on both ports a request (the upgrade
    # request; an @connections request, head and body) must arrive within header_timeout_s, and a
    # kept-alive @connections socket with no new request is closed after management_idle_timeout_s.
    # 10 s is what websockets gives an opening handshake; neither value is documented for AWS.
    header_timeout_s: float = 10
    management_idle_timeout_s: float = 60
    # Environment every function gets on top of its configuration: AWS_ENDPOINT_URL[_<SERVICE>] pointing
    # at the lab (filled in by the lab), as Lambda adds its reserved variables.
    function_env: dict[str, str] = field(default_factory=dict)
    # The CodeSha256 of the code unpacked in code_dir; code with another hash (UpdateFunctionCode) is
    # fetched from GetFunction's Code.Location into a folder of its own (code_location.DeployedCode).
    code_sha256: str = ""
    # The account-level quotas (new connections a second; requests a second, which @connections calls
    # share): AWS's defaults unless a test lowers them (Lab(account_limits=...)).
    account_limits: throttling.AccountLimits = field(default_factory=throttling.AccountLimits)


class Gateway:
    """The WebSocket endpoint and the @connections API of one API stage, on loopback."""

    def __init__(
        self,
        settings: GatewaySettings,
        live: LiveConfig,
        runtime: LambdaRuntime,
        issuer: CredentialIssuer,
        logs: LogWriter,
        *,
        hops: Hops | None = None,
    ) -> None:
        self.settings = settings
        self.hops = hops or Hops()
        self.live = live
        self.issuer = issuer
        self.logs = logs
        self.registry = core.ConnectionRegistry()
        self.throttles = throttling.Throttles(settings.account_limits)
        self._sockets: dict[str, GatewayConnection] = {}
        self._rng = random.Random(secrets.randbits(64))
        self._execution_stream = secrets.token_hex(16)
        self._access_stream = secrets.token_hex(16)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ws_server: Server | None = None
        self._mgmt_server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._startup_error: BaseException | None = None
        self.integrations = Integrations(
            settings, live, runtime, issuer, hops=self.hops, management_url=lambda: self.management_url
        )
        self.ws_port = 0
        self.management_port = 0

    # -- lifecycle -----------------------------------------------------------------------------------------

    @property
    def websocket_url(self) -> str:
        return f"ws://{LOOPBACK}:{self.ws_port}/{self.settings.stage}"

    @property
    def management_url(self) -> str:
        return f"http://{LOOPBACK}:{self.management_port}/{self.settings.stage}"

    def start(self) -> Gateway:
        self._thread = threading.Thread(target=self._run_loop, name="kit-gateway", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._startup_error is not None:
            raise KitError(f"the lab gateway could not start: {self._startup_error}") from self._startup_error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _run_loop(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced to start() or logged; the lab must not die silently
            self._startup_error = exc
            self._ready.set()
            log.exception("lab gateway stopped with an error")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._ws_server = await serve(
            self._serve_connection,
            LOOPBACK,
            0,
            create_connection=connection_type(self.settings.header_timeout_s),
            process_request=self._process_request,
            process_response=self._process_response,
            # GatewayConnection times the request; $connect then takes as long as its function or HTTP
            # integration is allowed to (their own timeouts end it), as API Gateway waits for it.
            open_timeout=None,
            compression=None,
            max_size=None,  # the core enforces API Gateway's 32 KB frame / 128 KB message limits
            ping_interval=None,
            server_header=None,
        )
        self.ws_port = self._ws_server.sockets[0].getsockname()[1]
        self._mgmt_server = await asyncio.start_server(self._serve_management, LOOPBACK, 0)
        self.management_port = self._mgmt_server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stopping.wait()
        # Going away: clients see 1001, as when API Gateway drops connections.
        for connection in list(self._sockets.values()):
            with contextlib.suppress(Exception):
                await connection.close(1001, "Going away")
        self._ws_server.close()
        self._mgmt_server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws_server.wait_closed(), 5)

    # -- configuration -------------------------------------------------------------------------------------

    def _api(self) -> gateway_config.ApiConfig | None:
        def load() -> gateway_config.ApiConfig | None:
            answers = self.live.api(self.settings.api_id, self.settings.stage)
            if answers is None:
                return None
            api, routes, integrations, stage, route_responses, authorizers = answers
            return gateway_config.api_config_from_answers(
                api, routes, integrations, stage, route_responses=route_responses, authorizers=authorizers
            )

        return self.live.derived(("gateway-api", self.settings.api_id, self.settings.stage), load)

    # -- logs ----------------------------------------------------------------------------------------------

    def _write_logs(
        self,
        api: gateway_config.ApiConfig | None,
        context: dict[str, object],
        *,
        decision: gateway_config.RouteDecision | None,
        result: gateway_events.IntegrationResult | None,
        close: core.CloseDecision | None = None,
        request_body: str | None = None,
        response_body: str | None = None,
        throttled_by: str | None = None,
        authorizer_lines: Sequence[tuple[authorizer_core.LineLevel, str]] = (),
    ) -> None:
        if api is None:
            return
        now = _now_ms()
        stage = api.stage
        lines = gateway_logs.execution_log_lines(
            context,
            decision=decision,
            result=result,
            close=close,
            logging_level=stage.logging_level,
            data_trace=stage.data_trace,
            request_body=request_body,
            response_body=response_body,
            throttled_by=throttled_by,
            authorizer_lines=authorizer_lines,
        )
        if lines:
            group = f"API-Gateway-Execution-Logs_{api.api_id}/{stage.name}"
            self.logs.write(group, self._execution_stream, [(now, line) for line in lines])
        if stage.access_log_destination_arn and stage.access_log_format:
            group = stage.access_log_destination_arn.split(":log-group:", 1)[-1].removesuffix(":*")
            line = gateway_logs.access_log_line(stage.access_log_format, context)
            self.logs.write(group, self._access_stream, [(now, line)])

    # -- the handshake -------------------------------------------------------------------------------------

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        with self.hops.span(GATEWAY_HANDSHAKE):
            return await self._handshake(connection, request)

    async def _handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        assert isinstance(connection, GatewayConnection)
        path = request.path.split("?", 1)[0].rstrip("/")
        raw_query = request.path.split("?", 1)[1] if "?" in request.path else None
        api = self._api()
        if api is None or path != f"/{self.settings.stage}":
            return connection.respond(HTTPStatus.FORBIDDEN, '{"message":"Forbidden"}')
        # API Gateway checks the upgrade before $connect: a refused handshake invokes nothing, stores nothing.
        # (websockets < 14 refused other methods and protocols while parsing: its Request has neither.)
        rejection = handshake.check_upgrade(
            getattr(request, "method", "GET"),
            getattr(request, "protocol", "HTTP/1.1"),
            list(request.headers.raw_items()),
        )
        if rejection is not None:
            return http_response(connection, rejection.status, rejection.body, rejection.headers)
        now = _now_ms()
        remote = connection.remote_address
        source_ip = str(remote[0]) if remote else LOOPBACK
        client_headers = list(request.headers.raw_items())
        kit_connection = gateway_events.Connection(
            connection_id=gateway_events.new_connection_id(self._rng),
            connected_at_ms=now,
            source_ip=source_ip,
            user_agent=request.headers.get("User-Agent"),
            api_id=api.api_id,
            domain_name=f"{api.api_id}.execute-api.{self.settings.region}.amazonaws.com",
            stage=self.settings.stage,
        )
        request_id = gateway_events.new_request_id(self._rng, like=kit_connection.connection_id)
        # The stage's and the account's throttles come first: a refused handshake runs nothing, not even an
        # authorizer.
        throttled = self._throttle_connect(api)
        if throttled is not None:
            return self._refuse_throttled(
                connection, api, kit_connection, request_id=request_id, now=now, throttled=throttled
            )
        headers = gateway_events.forwarded_connect_headers(
            client_headers, source_ip=source_ip, trace_id=gateway_events.new_trace_id(self._rng, now)
        )
        event = gateway_events.connect_event(
            kit_connection, request_id=request_id, request_time_ms=now, headers=headers, raw_query=raw_query
        )
        refused = self._iam_refusal(api, connection, request, kit_connection, request_id, now)
        if refused is not None:
            return refused
        # A $connect Lambda authorizer runs first: a refusal ends the handshake before $connect runs.
        authorized = await self._authorize_connect(api, event, request_id, client_headers)
        if authorized is not None:
            if not authorized.verdict.allowed:
                return self._refuse_by_authorizer(
                    connection=connection,
                    api=api,
                    kit_connection=kit_connection,
                    step=authorized,
                    request_id=request_id,
                    now=now,
                )
            kit_connection = replace(kit_connection, authorizer=authorized.verdict.authorizer)
            event = gateway_events.connect_event(
                kit_connection,
                request_id=request_id,
                request_time_ms=now,
                headers=headers,
                raw_query=raw_query,
            )
        connection.kit_connection = kit_connection
        self.registry.register_pending(kit_connection)
        decision = gateway_config.route_for_key(api, "$connect")
        result = await self.integrations.invoke(api, decision, event)
        outcome = core.connect_outcome(result)
        if outcome.accept:
            # $connect said yes (and may have stored the connection): from here on, however the
            # connection ends, even before its 101 (or with this hook failing), $disconnect follows.
            self.registry.mark_accepted(kit_connection.connection_id)
            in_background(self._disconnect_if_undelivered(connection, kit_connection))
        context = _connect_log_context(
            kit_connection, request_id, now, outcome, decision=decision, result=result
        )
        authorizer_lines: tuple[tuple[authorizer_core.LineLevel, str], ...] = ()
        if authorized is not None:
            context |= dict(authorized.access_fields)
            authorizer_lines = authorized.lines
        self._write_logs(
            api,
            context,
            decision=decision,
            result=result,
            request_body=json.dumps(event),
            authorizer_lines=authorizer_lines,
        )
        if outcome.accept:
            connection.kit_subprotocol = outcome.subprotocol
            return None
        self.registry.forget(kit_connection.connection_id)
        return http_response(connection, outcome.status, outcome.body, outcome.headers)

    # -- throttling ----------------------------------------------------------------------------------------

    def _throttle_connect(self, api: gateway_config.ApiConfig) -> throttling.Throttled | None:
        """The account's quota of new connections, then the stage's $connect limit (read live)."""
        limit = api.stage.throttle_limit("$connect", self.throttles.account)
        return self.throttles.connect(time.monotonic(), limit)

    def _refuse_throttled(
        self,
        connection: GatewayConnection,
        api: gateway_config.ApiConfig,
        kit_connection: gateway_events.Connection,
        *,
        request_id: str,
        now: int,
        throttled: throttling.Throttled,
    ) -> Response:
        """429 before anything runs: nothing registered, nothing invoked; both logs say why."""
        outcome = core.THROTTLED_HANDSHAKE
        context = _connect_log_context(kit_connection, request_id, now, outcome)
        self._write_logs(api, context, decision=None, result=None, throttled_by=throttled.limit)
        return http_response(connection, outcome.status, outcome.body, outcome.headers)

    def _iam_refusal(  # noqa: PLR0917 - the handshake's parts, as _process_request holds them
        self,
        api: gateway_config.ApiConfig,
        connection: GatewayConnection,
        request: Request,
        kit_connection: gateway_events.Connection,
        request_id: str,
        now_ms: int,
    ) -> Response | None:
        """``AWS_IAM`` on ``$connect`` (kit.lab.iam_connect decides): None to go on, or the 403 refusal,
        logged; ``$connect`` is never invoked for it."""
        route = api.routes.get("$connect")
        if route is None or route.authorization_type != "AWS_IAM":
            return None
        settings = self.settings
        answer = iam_connect.authorize_connect(
            sigv4.ReceivedRequest("GET", request.path, list(request.headers.raw_items()), b""),
            region=settings.region,
            route_arn=permissions.execute_api_route_arn(
                settings.region, settings.account_id, api.api_id, settings.stage, "$connect"
            ),
            secrets=self.issuer.signing_secret,
            caller=self._iam_caller,
            now=datetime.fromtimestamp(now_ms / 1000, UTC),
        )
        stage = api.stage
        if stage.logging_level == "INFO" or (stage.logging_level == "ERROR" and not answer.allowed):
            group = f"API-Gateway-Execution-Logs_{api.api_id}/{stage.name}"
            self.logs.write(
                group, self._execution_stream, [(_now_ms(), f"({request_id}) {answer.log_line()}")]
            )
        if answer.allowed:
            return None
        context = gateway_logs.build_log_context(
            kit_connection,
            event_type="CONNECT",
            route_key="$connect",
            request_id=request_id,
            request_time_ms=now_ms,
            status=answer.status,
            error_message=answer.error_message,
            response_type=answer.response_type,
        )
        self._write_logs(api, context, decision=None, result=None)  # nothing was registered yet
        headers = (("Content-Type", "application/json"), ("x-amzn-ErrorType", answer.error_type))
        return http_response(connection, answer.status, answer.body, headers)

    def _iam_caller(self, access_key_id: str) -> iam_connect.Caller:
        """Who signed: a role's temporary credentials (its policies, read live), or the lab's long-term
        administrator key, which stands for the account's administrator (every action allowed)."""
        try:
            principal = self.issuer.lookup(access_key_id)
        except KeyError:
            return iam_connect.Caller(f"arn:aws:iam::{self.settings.account_id}:root", None)
        return iam_connect.Caller(principal.arn, tuple(self.live.role_policies(principal.role_arn)))

    async def _disconnect_if_undelivered(
        self, connection: GatewayConnection, kit_connection: gateway_events.Connection
    ) -> None:
        """Run ``$disconnect`` for an accepted connection whose 101 never reached the client.

        websockets starts the handler, which opens the connection in the registry, only when the 101 was
        written to a connection still open. A client that dropped TCP while ``$connect`` ran, or a 101
        that could not be sent, ends the connection with the handler never started and the record
        still "accepted". ``$connect`` succeeded (and may have stored the connection), so, as on AWS,
        ``$disconnect`` follows; it reports the drop as any TCP drop without a close frame.
        """
        await connection.wait_closed()
        record = self.registry.get(kit_connection.connection_id)
        if record is not None and record.state == "accepted":
            await self._on_close(connection, kit_connection)

    def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> Response | None:
        subprotocol = connection.kit_subprotocol if isinstance(connection, GatewayConnection) else None
        if subprotocol and response.status_code == HTTPStatus.SWITCHING_PROTOCOLS:
            response.headers["Sec-WebSocket-Protocol"] = subprotocol
        return None

    # -- the $connect Lambda authorizer ---------------------------------------------------------------------

    async def _authorize_connect(
        self,
        api: gateway_config.ApiConfig,
        event: dict[str, Any],
        request_id: str,
        client_headers: Sequence[gateway_events.Header],
    ) -> authorizer_core.Step | None:
        """Run the deployed ``$connect`` route's Lambda authorizer, if it has one (None when it has not).

        Decisions are :mod:`kit.lab.authorizer_core`'s; an authorizer that raises, times out or answers
        garbage refuses the handshake (500) and never the lab."""
        route = api.routes.get("$connect")
        if route is None or route.authorization_type != authorizer_core.CUSTOM:
            return None
        answer = api.authorizers.get(route.authorizer_id or "")
        settings = self.settings
        if answer is None:  # a route naming an authorizer the deployment did not capture
            missing = authorizer_core.Verdict(500, reason=f"authorizer {route.authorizer_id} does not exist")
            return authorizer_core.Step(missing, (("ERROR", f"Execution failed: {missing.reason}"),))
        authorizer = authorizer_core.authorizer_config(answer)
        found = authorizer_core.identity(authorizer, event, api.stage.variables)
        if found.missing is not None:
            verdict = authorizer_core.MISSING_IDENTITY
            lines = authorizer_core.log_lines(authorizer, request_id, found, verdict)
            return authorizer_core.Step(
                verdict, tuple(lines), tuple(authorizer_core.access_log_fields(verdict).items())
            )
        method_arn = authorizer_core.method_arn(
            settings.region, settings.account_id, api.api_id, settings.stage
        )
        started = time.monotonic()
        try:
            invocation = await self.integrations.invoke_authorizer(
                authorizer,
                authorizer_core.authorizer_event(event, method_arn, api.stage.variables, client_headers),
            )
        except Exception as exc:  # a lab bug must be visible, and still answer as AWS would (500)
            log.exception("the $connect authorizer failed in the lab")
            invocation = authorizer_core.Invocation("invoke-error", error_message=str(exc))
        latency = int((time.monotonic() - started) * 1000)
        verdict = authorizer_core.verdict(invocation, method_arn)
        function_arn = authorizer.function_arn
        endpoint = (
            gateway_events.integration_endpoint_uri(
                gateway_config.IntegrationConfig("", "AWS_PROXY", function_arn)
            )
            if function_arn
            else authorizer.uri
        )
        body = json.dumps(invocation.payload) if invocation.kind == "response" else None
        lines = authorizer_core.log_lines(
            authorizer, request_id, found, verdict, endpoint_uri=endpoint, result_body=body
        )
        reached = 200 if invocation.kind in ("response", "function-error") else None
        fields = authorizer_core.access_log_fields(verdict, latency_ms=latency, integration_status=reached)
        return authorizer_core.Step(verdict, tuple(lines), tuple(fields.items()))

    def _refuse_by_authorizer(
        self,
        *,
        connection: GatewayConnection,
        api: gateway_config.ApiConfig,
        kit_connection: gateway_events.Connection,
        step: authorizer_core.Step,
        request_id: str,
        now: int,
    ) -> Response:
        """The handshake the authorizer refused: AWS's status and body, and the logs; $connect never runs."""
        verdict = step.verdict
        status = verdict.status or 500
        message = json.loads(verdict.body)["message"]
        context = gateway_logs.build_log_context(
            kit_connection,
            event_type="CONNECT",
            route_key="$connect",
            request_id=request_id,
            request_time_ms=now,
            status=status,
            error_message=message,
            response_type=verdict.response_type,
        )
        context |= dict(step.access_fields)
        self._write_logs(api, context, decision=None, result=None, authorizer_lines=step.lines)
        return http_response(connection, status, verdict.body, (("Content-Type", "application/json"),))

    # -- an open connection --------------------------------------------------------------------------------

    async def _serve_connection(self, connection: ServerConnection) -> None:
        assert isinstance(connection, GatewayConnection)
        kit_connection = connection.kit_connection
        if kit_connection is None:
            return
        connection_id = kit_connection.connection_id
        record = self.registry.get(connection_id)
        if record is None or record.state != "accepted":
            return  # already closed: _disconnect_if_undelivered ran $disconnect
        self.registry.mark_open(connection_id)  # the 101 is out: messages and @connections calls from now
        self._sockets[connection_id] = connection
        timers = asyncio.create_task(self._watch_timers(connection, kit_connection))
        try:
            async for message in connection:
                if isinstance(message, bytes):  # binary frames are closed by the core's check; be safe
                    continue
                self.registry.touch(connection_id, _now_ms())
                await self._on_message(connection, kit_connection, message)
        except ConnectionClosed:
            pass
        finally:
            timers.cancel()
            self._sockets.pop(connection_id, None)
            await self._on_close(connection, kit_connection)

    async def _watch_timers(
        self, connection: GatewayConnection, kit_connection: gateway_events.Connection
    ) -> None:
        while True:
            record = self.registry.get(kit_connection.connection_id)
            if record is None or record.state != "open":
                return
            now = _now_ms()
            decision = core.timer_decision(
                now, kit_connection.connected_at_ms, record.last_active_at_ms, self.settings.idle
            )
            if decision is not None:
                connection.kit_close = decision
                await connection.close(decision.code, decision.reason)
                return
            deadline = core.next_timer_deadline_ms(
                kit_connection.connected_at_ms, record.last_active_at_ms, self.settings.idle
            )
            await asyncio.sleep(max(0.05, (deadline - now) / 1000))

    async def _on_message(
        self, connection: GatewayConnection, kit_connection: gateway_events.Connection, body: str
    ) -> None:
        api = self._api()
        if api is None:
            return
        now = _now_ms()
        request_id = gateway_events.new_request_id(self._rng)
        message_id = gateway_events.new_request_id(self._rng)
        decision = gateway_config.select_route(api, body)
        event = gateway_events.message_event(
            kit_connection,
            route_key=decision.route_key or "$default",
            request_id=request_id,
            message_id=message_id,
            request_time_ms=now,
            body=body,
        )
        route_key = decision.route_key or "$default"
        limit = api.stage.throttle_limit(route_key, self.throttles.account)
        throttled = self.throttles.message(time.monotonic(), route_key, limit)
        if throttled is None:
            result = await self.integrations.invoke(
                api, decision, event
            )  # NOT_INVOKED when no integration matched
            outcome = core.message_outcome(
                decision, result, connection_id=kit_connection.connection_id, request_id=request_id
            )
        else:
            result = gateway_events.NOT_INVOKED
            outcome = core.throttled_message_outcome(kit_connection.connection_id, request_id)
        context = gateway_logs.build_log_context(
            kit_connection,
            event_type="MESSAGE",
            route_key=decision.route_key,
            request_id=request_id,
            request_time_ms=now,
            status=outcome.context_status,
            message_id=message_id,
            integration=decision.integration,
            result=result,
            error_message=outcome.error_message,
            response_type=outcome.response_type,
        )
        self._write_logs(
            api,
            context,
            decision=decision if throttled is None else None,
            result=result,
            request_body=body,
            throttled_by=throttled.limit if throttled is not None else None,
        )
        for frame in outcome.frames:
            with contextlib.suppress(ConnectionClosed):
                await connection.send(frame)

    async def _on_close(
        self, connection: GatewayConnection, kit_connection: gateway_events.Connection
    ) -> None:
        if connection.kit_close is not None:
            close = connection.kit_close
        else:
            received = connection.protocol.close_rcvd
            # websockets reads an empty close frame as code 1005 (NO_STATUS_RCVD); the core wants None for
            # "no status", so that $disconnect carries AWS's reason for it. 1005 never appears on the wire.
            has_status = received is not None and received.code != CloseCode.NO_STATUS_RCVD
            close = core.client_close(
                received.code if received is not None and has_status else None,
                received.reason if received is not None else "",
                close_frame_received=received is not None,
            )
        if not self.registry.mark_closed(kit_connection.connection_id, close.code, close.reason):
            return
        api = self._api()
        if api is None:
            return
        now = _now_ms()
        request_id = gateway_events.new_request_id(self._rng)
        event = gateway_events.disconnect_event(
            kit_connection,
            request_id=request_id,
            request_time_ms=now,
            status_code=close.code,
            reason=close.reason,
        )
        decision = gateway_config.route_for_key(api, "$disconnect")
        result = await self.integrations.invoke(api, decision, event)
        outcome = core.disconnect_outcome(result)
        context = gateway_logs.build_log_context(
            kit_connection,
            event_type="DISCONNECT",
            route_key="$disconnect",
            request_id=request_id,
            request_time_ms=now,
            status=outcome.context_status,
            integration=decision.integration,
            result=result,
            error_message=outcome.error_message,
            response_type=outcome.response_type,
        )
        self._write_logs(
            api, context, decision=decision, result=result, close=close, request_body=json.dumps(event)
        )
        self.registry.forget(kit_connection.connection_id)

    # -- @connections --------------------------------------------------------------------------------------

    def _authorize_management(
        self, request: sigv4.ReceivedRequest, connection_id: str
    ) -> core.ManagementDecision | None:
        # The signature first (AWS's 403s for a bad one), then the role's execute-api:ManageConnections.
        endpoint = sigv4.execute_api(self.settings.region)  # the API's region: the endpoint's
        scope = sigv4.verify(request, endpoint, self.issuer.signing_secret, datetime.now(UTC))
        if isinstance(scope, sigv4.Rejection):
            return core.management_error(scope.status, scope.code, scope.message)
        if scope.access_key_id == LOCAL_ACCESS_KEY_ID:
            return None
        try:
            principal = self.issuer.lookup(scope.access_key_id)
        except KeyError:  # a key with a secret but no role: refused, as a stranger's
            return core.management_error(403, sigv4.UNRECOGNIZED_CLIENT, sigv4.INVALID_TOKEN_MESSAGE)
        resource = permissions.execute_api_connections_arn(
            self.settings.region,
            self.settings.account_id,
            self.settings.api_id,
            self.settings.stage,
            request.method.upper(),
            connection_id,
        )
        decision = self.live.decision(principal.role_arn, "execute-api:ManageConnections", resource)
        if decision.allowed:
            return None
        return core.management_error(
            403, "ForbiddenException", policy.decision_for_denial_message(decision, principal.arn)
        )

    async def _management_answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> core.ManagementDecision:
        parsed = core.parse_management_path(path, self.settings.stage)
        if isinstance(parsed, core.ManagementDecision):
            return parsed
        connection_id = parsed
        if self.throttles.management(time.monotonic()) is not None:
            return core.THROTTLED_MANAGEMENT
        if method.upper() in ("POST", "GET", "DELETE"):
            received = sigv4.ReceivedRequest(method, path, list(headers.items()), body)
            denied = self._authorize_management(received, connection_id)
            if denied is not None:
                return denied
        decision = core.management_decision(method, connection_id, len(body), self.registry)
        socket = self._sockets.get(connection_id)
        if decision.action == "send" and socket is not None:
            try:
                text = body.decode()
            except UnicodeDecodeError:
                text = None
            try:
                await socket.send(text if text is not None else body)
            except ConnectionClosed:
                return core.GONE
            self.registry.touch(connection_id, _now_ms())
        elif decision.action == "close" and socket is not None and decision.close is not None:
            socket.kit_close = decision.close
            # Answer 204 without waiting for the client's half of the closing handshake (up to the close
            # timeout): the caller is often the only one who could make the client read the close frame.
            in_background(socket.close(decision.close.code, decision.close.reason))
            await asyncio.sleep(0)  # let the close frame go out before the 204
        return decision

    async def _serve_management(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A minimal HTTP/1.1 server (keep-alive, Content-Length bodies) for the @connections API.

        Timeouts, so that silent or slow clients cannot hold sockets (and file descriptors) for ever:
        each request, head and body, must arrive within the header timeout (counted from the accept for
        the first request, from its first byte for the next ones) and its answer be taken within it too;
        a kept-alive socket is closed when no next request starts within the idle timeout.
        """
        settings = self.settings
        try:
            first_byte = b""
            while True:
                async with asyncio.timeout(settings.header_timeout_s):
                    request = await _read_management_request(reader, first_byte)
                if request is None:
                    return
                method, target, headers, body = request
                decision = await self._management_answer(method, target, headers, body)
                payload = decision.body.encode()
                reason = HTTPStatus(decision.status).phrase
                head = [f"HTTP/1.1 {decision.status} {reason}", f"Content-Length: {len(payload)}"]
                head += [f"{name}: {value}" for name, value in decision.headers]
                head.append(f"x-amzn-RequestId: {secrets.token_hex(16)}")
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
                async with asyncio.timeout(settings.header_timeout_s):
                    await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
                async with asyncio.timeout(settings.management_idle_timeout_s):
                    first_byte = await reader.read(1)
                if not first_byte:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, TimeoutError):
            return
        except asyncio.CancelledError:
            # The lab is stopping with a kept-alive client connected. Ending quietly: Python 3.11's
            # start_server callback calls task.exception() on a cancelled task and prints a traceback.
            return
        finally:
            writer.close()


def _connect_log_context(
    kit_connection: gateway_events.Connection,
    request_id: str,
    now: int,
    outcome: core.HandshakeDecision,
    *,
    decision: gateway_config.RouteDecision | None = None,
    result: gateway_events.IntegrationResult | None = None,
) -> dict[str, object]:
    """The ``$context`` of a CONNECT request answered with ``outcome``."""
    return gateway_logs.build_log_context(
        kit_connection,
        event_type="CONNECT",
        route_key="$connect",
        request_id=request_id,
        request_time_ms=now,
        status=outcome.context_status,
        integration=decision.integration if decision is not None else None,
        result=result,
        error_message=outcome.error_message,
        response_type=outcome.response_type,
    )


async def _read_management_request(
    reader: asyncio.StreamReader, first_byte: bytes
) -> tuple[str, str, dict[str, str], bytes] | None:
    """Method, target, headers (lower-case names) and body of the next request; None at end of stream.

    ``first_byte``: the request's first byte when it was already read (while the socket idled), else b"".
    """
    request_line = first_byte + await reader.readline()
    if not request_line:
        return None
    method, target, _version = request_line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    body = await reader.readexactly(length) if length else b""
    return method, target, headers, body
