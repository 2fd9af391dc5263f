"""The lab gateway's integrations: what API Gateway does to run a route's integration or a Lambda authorizer.

A Lambda (``AWS_PROXY``) integration or authorizer is invoked through the lab's runtime, after Lambda's own
check that the function's resource policy lets API Gateway invoke it for this route (or, with
``AuthorizerCredentialsArn``, that the role's policies do), with the role's credentials issued once per
function and its code as deployed (an updated ``CodeSha256`` is fetched from its code location). An HTTP
integration is one request over loopback. Each outcome is handed back as
:class:`kit.lab.gateway_events.IntegrationResult` (or an authorizer's ``Invocation``): the pure core decides
what the client and the logs see. :class:`kit.lab.gateway.Gateway` holds one :class:`Integrations`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kit import permissions, policy
from kit.errors import KitError
from kit.lab import authorizer_core, gateway_config, gateway_events, sockets
from kit.lab.code_location import DeployedCode
from kit.lab.hops import GATEWAY_INVOKE, Hops
from kit.lab.lambda_config import FunctionConfig, function_config_from_answer
from kit.lab.lambda_environment import LambdaCredentials
from kit.lab.lambda_invocation import InvokeResult
from kit.lab.live import CredentialIssuer, LiveConfig
from kit.lab.runtime import LambdaRuntime

if TYPE_CHECKING:
    from kit.lab.gateway import GatewaySettings

log = logging.getLogger("kit.lab")


class Integrations:
    """One stage's integrations and authorizers, invoked as API Gateway invokes them. ``management_url`` is
    read at each invocation (the gateway's @connections port is known only once it serves)."""

    def __init__(
        self,
        settings: GatewaySettings,
        live: LiveConfig,
        runtime: LambdaRuntime,
        issuer: CredentialIssuer,
        *,
        hops: Hops,
        management_url: Callable[[], str],
    ) -> None:
        self.settings = settings
        self.live = live
        self.runtime = runtime
        self.issuer = issuer
        self.hops = hops
        self._management_url = management_url
        self._credentials: dict[str, LambdaCredentials] = {}
        self._deployed = DeployedCode(Path(settings.code_dir).parent / "code", live.code_location)

    async def invoke(
        self, api: gateway_config.ApiConfig, decision: gateway_config.RouteDecision, event: dict[str, Any]
    ) -> gateway_events.IntegrationResult:
        """Run the route's integration; an unexpected lab failure answers as a failed integration would."""
        try:
            return await self._run(api, decision, event)
        except Exception as exc:  # logged with its traceback: a lab bug must be visible, not silent
            log.exception("%s integration failed in the lab", decision.route_key)
            return gateway_events.IntegrationResult("invoke-error", error_message=str(exc))

    async def _run(
        self, api: gateway_config.ApiConfig, decision: gateway_config.RouteDecision, event: dict[str, Any]
    ) -> gateway_events.IntegrationResult:
        integration = decision.integration
        if decision.kind != "integration" or integration is None:
            return gateway_events.NOT_INVOKED
        started = time.monotonic()
        if integration.integration_type == "AWS_PROXY":
            return await self._invoke_lambda(
                api, integration, event, decision.route_key or "$default", started
            )
        if integration.integration_type in ("HTTP_PROXY", "HTTP"):
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, self._invoke_http, integration, event, started)
        return gateway_events.IntegrationResult(
            "invoke-error", error_message=f"integration type {integration.integration_type} is not supported"
        )

    async def _run_function(
        self,
        function_name: str,
        answer: Mapping[str, Any],
        event: dict[str, Any],
        extra_env: dict[str, str],
        *,
        hop: str | None = None,
    ) -> tuple[FunctionConfig, InvokeResult] | str:
        """One invocation through the runtime, of the code as deployed and with the role's credentials; or,
        when it could not be made, why (the invoke error's message). ``hop`` times the invocation."""
        try:
            code_path = await self._code_path(function_name, answer)
        except KitError as exc:
            return str(exc)
        config = self._function_config(function_name, answer, code_path)
        credentials = self._credentials_for(config.role_arn, config.function_name)
        try:
            with self.hops.span(hop) if hop is not None else contextlib.nullcontext():
                result = await self.runtime.ainvoke(
                    config, event, credentials=credentials, extra_env=extra_env
                )
        except KitError as exc:
            return str(exc)
        return config, result

    async def _code_path(self, function_name: str, answer: Mapping[str, Any]) -> str:
        """Where the function's code is: the provisioned folder, or its updated code (fetched once a hash)."""
        sha = str(answer.get("CodeSha256") or "")
        if not sha or not self.settings.code_sha256 or sha == self.settings.code_sha256:
            return self.settings.code_dir
        return await asyncio.to_thread(self._deployed.path_for, function_name, sha)

    def invoke_permitted(self, function_name: str, route_key: str, *, source_arn: str | None = None) -> bool:
        """Whether the function's resource policy lets API Gateway invoke it for this route (or, for an
        authorizer, as ``source_arn``): Lambda's own check, with that ARN as ``AWS:SourceArn`` (kit.policy, as
        the diagnosis reads it too)."""
        settings = self.settings
        source = source_arn or permissions.execute_api_route_arn(
            settings.region, settings.account_id, settings.api_id, settings.stage, route_key
        )

        def load() -> bool:
            answer = self.live.function_configuration(function_name) or {}
            decision = policy.resource_policy_decision(
                self.live.function_policy(function_name),
                service=policy.APIGATEWAY_PRINCIPAL,
                action=policy.INVOKE_FUNCTION,
                resource=str(answer.get("FunctionArn") or ""),
                context={"aws:SourceArn": source, "aws:SourceAccount": settings.account_id},
            )
            return decision.allowed

        return self.live.derived(("gateway-invoke-permitted", function_name, source), load)

    async def _invoke_lambda(
        self,
        api: gateway_config.ApiConfig,
        integration: gateway_config.IntegrationConfig,
        event: dict[str, Any],
        route_key: str,
        started: float,
    ) -> gateway_events.IntegrationResult:
        function_arn = gateway_events.lambda_function_arn(integration.uri) or ""
        function_name = function_arn.rsplit(":", 1)[-1]
        answer = self.live.function_configuration(function_name)
        if answer is None:
            return gateway_events.IntegrationResult(
                "invoke-error", error_message=f"Function not found: {function_arn}"
            )
        if not self.invoke_permitted(function_name, route_key):
            return gateway_events.IntegrationResult(
                "invoke-error", error_message="Invalid permissions on Lambda function"
            )
        extra_env = dict(self.settings.function_env)
        extra_env["AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI"] = self._management_url()
        ran = await self._run_function(function_name, answer, event, extra_env, hop=GATEWAY_INVOKE)
        if isinstance(ran, str):
            return gateway_events.IntegrationResult("invoke-error", error_message=ran)
        config, result = ran
        latency = int((time.monotonic() - started) * 1000)
        if result.kind == "response":
            return gateway_events.lambda_proxy_result(
                result.payload, integration_request_id=result.request_id, latency_ms=latency
            )
        if result.kind == "timeout" and config.timeout_s * 1000 >= integration.timeout_ms:
            # Only a function allowed to outlive the integration timeout (29 s at most) makes API Gateway
            # give up first (504). A function ended by its own, shorter timeout is, for API Gateway, a
            # function error ("Task timed out after N seconds"): 502, as every other failed invocation.
            return gateway_events.IntegrationResult(
                "timeout", integration_request_id=result.request_id, latency_ms=latency
            )
        return gateway_events.IntegrationResult(
            "function-error",
            error_message=result.error_message or result.error_type or "function error",
            integration_request_id=result.request_id,
            latency_ms=latency,
        )

    def _function_config(
        self, function_name: str, answer: Mapping[str, Any], code_path: str
    ) -> FunctionConfig:
        """The function's configuration as the runtime takes it, made once per configuration generation.

        Made from the answer as read inside the load, not ``answer``: one read before the generation moved
        must not be remembered for the new one (``answer`` serves only if the function is gone meanwhile).
        """

        def load() -> FunctionConfig:
            fresh = self.live.function_configuration(function_name) or answer
            return function_config_from_answer(fresh, self.settings.region, code_path=code_path)

        return self.live.derived(("gateway-function-config", function_name, code_path), load)

    def _credentials_for(self, role_arn: str, function_name: str) -> LambdaCredentials:
        """The role's temporary credentials, issued once per (role, function) as Lambda caches them."""
        key = f"{role_arn}|{function_name}"
        if key not in self._credentials:
            issued = self.issuer.issue(role_arn, function_name)
            self._credentials[key] = LambdaCredentials(
                issued.access_key_id, issued.secret_access_key, issued.session_token
            )
        return self._credentials[key]

    def _invoke_http(
        self, integration: gateway_config.IntegrationConfig, event: dict[str, Any], started: float
    ) -> gateway_events.IntegrationResult:
        spec = gateway_events.http_integration_request(integration, event)
        if not spec.url.startswith(("http://", "https://")):
            return gateway_events.IntegrationResult(
                "invoke-error", error_message=f"Invalid endpoint address: {spec.url}"
            )
        request = urllib.request.Request(  # noqa: S310 - scheme checked just above
            spec.url,
            data=spec.body.encode() if spec.body else b"",
            method=spec.method,
            headers=dict(spec.headers),
        )
        timeout = integration.timeout_ms / 1000
        try:
            with sockets.open_loopback(request, timeout=timeout) as response:
                body = response.read().decode(errors="replace")
                status, headers = response.status, dict(response.headers.items())
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")
            status, headers = exc.code, dict(exc.headers.items())
        except TimeoutError:
            return gateway_events.IntegrationResult("timeout")
        except (urllib.error.URLError, OSError) as exc:
            return gateway_events.IntegrationResult("invoke-error", error_message=f"Execution failed: {exc}")
        latency = int((time.monotonic() - started) * 1000)
        return gateway_events.IntegrationResult(
            "response", status=status, headers=headers, body=body, latency_ms=latency
        )

    async def invoke_authorizer(
        self, authorizer: authorizer_core.AuthorizerConfig, event: dict[str, Any]
    ) -> authorizer_core.Invocation:
        """Invoke the authorizer's function through the lab's runtime, as API Gateway would."""
        function_arn = authorizer.function_arn or ""
        function_name = function_arn.rsplit(":", 1)[-1]
        answer = self.live.function_configuration(function_name) if function_name else None
        if answer is None:
            return authorizer_core.Invocation(
                "invoke-error", error_message=f"Function not found: {function_arn}"
            )
        settings = self.settings
        source = (
            f"arn:aws:execute-api:{settings.region}:{settings.account_id}:{settings.api_id}/"
            f"authorizers/{authorizer.authorizer_id}"
        )
        # With AuthorizerCredentialsArn, API Gateway assumes that role: its policies decide (its trust policy
        # is not checked), not the function's resource policy.
        if authorizer.credentials_arn:
            permitted = policy.evaluate(
                self.live.role_policies(authorizer.credentials_arn), "lambda:InvokeFunction", function_arn
            ).allowed
        else:
            permitted = self.invoke_permitted(function_name, "$connect", source_arn=source)
        if not permitted:
            return authorizer_core.Invocation(
                "invoke-error", error_message="Invalid permissions on Lambda function"
            )
        ran = await self._run_function(function_name, answer, event, dict(settings.function_env))
        if isinstance(ran, str):
            return authorizer_core.Invocation("invoke-error", error_message=ran)
        _, result = ran
        if result.kind == "response":
            return authorizer_core.Invocation("response", payload=result.payload)
        if result.kind == "timeout":
            return authorizer_core.Invocation("timeout")
        return authorizer_core.Invocation(
            "function-error", error_message=result.error_message or result.error_type or "function error"
        )
