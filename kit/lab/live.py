"""Live configuration for the lab: what the gateway and the runtime act on, read through AWS APIs.

The gateway and the Lambda runtime never keep their own copy of routes, integrations, function configuration
or role policies. They ask this module, which reads them from the lab's AWS APIs (moto) and caches each answer
only until moto's configuration generation moves (``kit.lab.engines.ChangeCountingApp`` counts every call
that may change IAM, Lambda or API Gateway configuration). A ``put_role_policy`` made with any boto3 client
therefore takes effect on the next connection, as on AWS, without re-reading everything on every event.

Routes and integrations are served as the stage's deployment captured them: ``GetStage`` names the
deployment, and its snapshot comes from the lab's own AWS layer (:mod:`kit.lab.deployments`; AWS keeps it
and has no API that shows it). A ``delete_route`` takes effect with the next ``create_deployment``, as on AWS.

Also here: the lab's stand-in for STS, issuing each function's execution-role credentials and telling the
lab's front doors which role a request's access key belongs to.
"""

from __future__ import annotations

import functools
import secrets
import string
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote

from botocore.exceptions import ClientError

from kit import policy
from kit.errors import error_code
from kit.lab.deployments import Snapshot
from kit.lab.provision import ClientFactory
from kit.lab.sigv4 import SigningSecret
from kit.local import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY

T = TypeVar("T")
DECISIONS_KEPT = 4096  # IAM decisions remembered (per generation, role, action, resource)
# What a stage serves: (GetApi, GetRoutes' items, GetIntegrations' items, GetStage, the route responses with
# their RouteId, the authorizers the routes name).
ServedApi = tuple[
    dict[str, Any],
    list[dict[str, Any]],
    list[dict[str, Any]],
    dict[str, Any],
    list[dict[str, Any]],
    list[dict[str, Any]],
]


class LiveConfig:
    """Reads configuration through AWS APIs; caches each answer until the configuration generation moves."""

    def __init__(
        self,
        aws: ClientFactory,
        generation: Callable[[], int],
        deployed: Callable[[str, str], Snapshot | None],
    ) -> None:
        self._aws = aws
        self._generation = generation
        self._deployed = deployed
        self._cache: dict[tuple[str, ...], tuple[int, Any]] = {}
        self._lock = threading.Lock()
        # Decisions per (generation, role, action, resource): a moved generation is a new key, so a policy
        # change is decided afresh on the next request; bounded, since @connections ARNs name connections.
        self._decide = functools.lru_cache(maxsize=DECISIONS_KEPT)(self._evaluate)

    def derived(self, key: tuple[str, ...], load: Callable[[], T]) -> T:
        """What ``load`` makes of live answers, made again only once the configuration moved (its key must not
        collide with this class's own: start it with the caller's name)."""
        return self._cached(("derived", *key), load)

    def decision(self, role_arn: str, action: str, resource: str) -> policy.Decision:
        """The role's policies (as IAM stores them now) on ``action`` and ``resource``, evaluated once per
        configuration generation."""
        return self._decide(self._generation(), role_arn, action, resource)

    def _evaluate(self, generation: int, role_arn: str, action: str, resource: str) -> policy.Decision:
        del generation  # part of the cache key only
        return policy.evaluate(self.role_policies(role_arn), action, resource)

    def _cached(self, key: tuple[str, ...], load: Callable[[], T]) -> T:
        generation = self._generation()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] == generation:
            return hit[1]  # type: ignore[no-any-return]
        value = load()
        with self._lock:
            self._cache[key] = (generation, value)  # stamped with the generation read *before* loading
        return value

    def function_configuration(self, name: str) -> dict[str, Any] | None:
        """``get_function_configuration`` for ``name``, or None when the function does not exist."""

        def load() -> dict[str, Any] | None:
            answer = self._lambda_answer("get_function_configuration", name)
            if answer is not None:
                answer.pop("ResponseMetadata", None)
            return answer

        return self._cached(("function", name), load)

    def code_location(self, name: str) -> str | None:
        """``GetFunction``'s ``Code.Location`` for ``name`` (never cached: a URL expires), or None."""
        answer = self._lambda_answer("get_function", name) or {}
        location = (answer.get("Code") or {}).get("Location")
        return str(location) if location else None

    def _lambda_answer(self, operation: str, name: str) -> dict[str, Any] | None:
        """A Lambda read about function ``name``; None when there is no such function (or policy)."""
        try:
            return dict(getattr(self._aws.client("lambda"), operation)(FunctionName=name))
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise

    def function_policy(self, name: str) -> dict[str, Any] | None:
        """The function's resource policy (who may invoke it), or None when it has none."""
        import json

        def load() -> dict[str, Any] | None:
            answer = self._lambda_answer("get_policy", name)
            return dict(json.loads(answer["Policy"])) if answer is not None else None

        return self._cached(("function-policy", name), load)

    def api(self, api_id: str, stage: str) -> ServedApi | None:
        """(api, routes, integrations, stage, route responses, authorizers) the stage serves: the API, routes,
        integrations, route responses and authorizers as its deployment captured them, the stage's settings as
        they are now. None when the API or stage is gone, or the stage points at no deployment (API Gateway
        refuses every handshake
        then)."""

        def load() -> ServedApi | None:
            client = self._aws.client("apigatewayv2")
            try:
                stage_answer = client.get_stage(ApiId=api_id, StageName=stage)
            except ClientError as exc:
                if error_code(exc) in ("NotFoundException", "404"):
                    return None
                raise
            deployment_id = stage_answer.get("DeploymentId")
            snapshot = self._deployed(api_id, str(deployment_id)) if deployment_id else None
            if snapshot is None:
                return None
            routes = [dict(route) for route in snapshot.routes]
            integrations = [dict(integration) for integration in snapshot.integrations]
            route_responses = [dict(response) for response in snapshot.route_responses]
            authorizers = [dict(authorizer) for authorizer in snapshot.authorizers]
            return dict(snapshot.api), routes, integrations, stage_answer, route_responses, authorizers

        return self._cached(("api", api_id, stage), load)

    def role_policies(self, role_arn: str) -> list[policy.Policy]:
        """The role's inline and attached policies, parsed leniently (a bad statement is kept, marked)."""

        def load() -> list[policy.Policy]:
            iam = self._aws.client("iam")
            role_name = role_arn.rsplit("/", 1)[-1]
            documents: dict[str, Any] = {}
            try:
                for name in iam.list_role_policies(RoleName=role_name).get("PolicyNames", []):
                    answer = iam.get_role_policy(RoleName=role_name, PolicyName=name)
                    documents[f"inline:{name}"] = _document(answer["PolicyDocument"])
                for attached in iam.list_attached_role_policies(RoleName=role_name).get(
                    "AttachedPolicies", []
                ):
                    arn = attached["PolicyArn"]
                    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
                    answer = iam.get_policy_version(PolicyArn=arn, VersionId=version)
                    documents[f"managed:{arn}"] = _document(answer["PolicyVersion"]["Document"])
            except ClientError as exc:
                if error_code(exc) == "NoSuchEntity":
                    return []  # a deleted role grants nothing
                raise
            return policy.parse_policies(documents, strict=False)

        return self._cached(("role", role_arn), load)


def _document(raw: Any) -> Any:
    """IAM answers carry documents as dicts (boto3 decodes them) or URL-encoded JSON text."""
    return unquote(raw) if isinstance(raw, str) and raw.startswith("%7B") else raw


@dataclass(frozen=True)
class Principal:
    role_arn: str
    session_name: str
    account_id: str

    @property
    def arn(self) -> str:
        """The assumed-role ARN AWS names in AccessDenied messages for a Lambda's calls."""
        role_name = self.role_arn.rsplit("/", 1)[-1]
        return f"arn:aws:sts::{self.account_id}:assumed-role/{role_name}/{self.session_name}"


@dataclass(frozen=True)
class IssuedCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str

    def __repr__(self) -> str:
        return f"IssuedCredentials(access_key_id={self.access_key_id!r}, secret=***, token=***)"


class CredentialIssuer:
    """The lab's STS: temporary credentials per (role, session), who holds a given access key, and the
    secret each key signs with (the lab's long-term administrator key included), to verify signatures."""

    def __init__(
        self,
        account_id: str,
        long_term_keys: Mapping[str, str] | None = None,
    ) -> None:
        self.account_id = account_id
        self._by_key: dict[str, Principal] = {}
        keys = {LOCAL_ACCESS_KEY_ID: LOCAL_SECRET_ACCESS_KEY} if long_term_keys is None else long_term_keys
        self._secrets = {key: SigningSecret(secret) for key, secret in keys.items()}
        self._lock = threading.Lock()

    def issue(self, role_arn: str, session_name: str) -> IssuedCredentials:
        alphabet = string.ascii_uppercase + string.digits
        key = "ASIA" + "".join(secrets.choice(alphabet) for _ in range(16))
        issued = IssuedCredentials(key, secrets.token_urlsafe(30), secrets.token_urlsafe(60))
        with self._lock:
            self._by_key[key] = Principal(role_arn, session_name, self.account_id)
            self._secrets[key] = SigningSecret(issued.secret_access_key, issued.session_token)
        return issued

    def signing_secret(self, access_key_id: str) -> SigningSecret | None:
        """What ``access_key_id`` signs with (a :data:`kit.lab.sigv4.SecretLookup`); None for a stranger."""
        with self._lock:
            return self._secrets.get(access_key_id)

    def lookup(self, access_key_id: str) -> Principal:
        """The principal holding ``access_key_id``; KeyError for a key the lab never issued."""
        with self._lock:
            return self._by_key[access_key_id]


def authorizer(issuer: CredentialIssuer, live: LiveConfig) -> Callable[[str, str, str], str | None]:
    """An authorize(access_key_id, action, resource) for the lab's front doors: None when allowed, else
    AWS's AccessDeniedException message for the caller's role."""

    def authorize(access_key_id: str, action: str, resource: str) -> str | None:
        principal = issuer.lookup(access_key_id)
        decision = live.decision(principal.role_arn, action, resource)
        if decision.allowed:
            return None
        return policy.decision_for_denial_message(decision, principal.arn)

    return authorize
