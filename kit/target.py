"""Where the kit points: a lab on loopback or a real AWS account, and the one place that makes boto3 clients.

A ``Target`` says which account-and-region the investigation looks at (``kind`` "lab" or "aws"), which
connections table and index, and how to reach AWS: local endpoints and the lab's dummy credentials, or a
profile / the default credential chain / credentials from the app's ``.env.local``. ``Target.client(service)``
is the only way the kit builds a boto3 client, so region, endpoint, retry mode and timeouts are decided here
once; everything deeper takes a client or a target as an argument. ``Target.from_parameters`` is the one
place that turns parameters (the CLI's flags, the notebooks' parameters, a report's options) into a target.

The app's ``.env.local`` is read and parsed in :mod:`kit.env_file` (its keys, its problems, the API id, region
and stage of its WebSocket URL); secrets and credentials are held as :mod:`kit.credentials` says. Here they
are resolved, with the flags, the lab file and the environment, into a target.

What this module must not do: call AWS while resolving a target (credentials are checked, never used), read
any file but the env file, the lab file (``kit.local``) and the AWS config files boto3 reads anyway, import
the lab (``kit.lab`` builds on targets, not the reverse), or let a secret reach a repr, a log line or an
error message. Secret values live in ``Secret`` objects whose repr is redacted.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit, urlunsplit

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ProfileNotFound, UnknownServiceError

from kit import __version__
from kit.credentials import Credentials
from kit.env_file import (
    ACCESS_KEY_ID_KEYS,
    MANAGEMENT_URL_KEYS,
    PROFILE_KEYS,
    REGION_KEYS,
    SECRET_ACCESS_KEY_KEYS,
    SESSION_TOKEN_KEYS,
    TABLE_KEYS,
    WEBSOCKET_URL_KEYS,
    EnvFile,
    management_url_for,
    parse_websocket_url,
    public_url,
    read_env_file,
)
from kit.errors import ConfigurationError
from kit.local import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY, lab_file, read_lab_file
from kit.local_paths import file_names
from kit.reachability import Reachability

log = logging.getLogger("kit.target")

TargetKind = Literal["lab", "aws"]

# The seed names its table and index in dynamodb-schema.ts; a target that says nothing else uses these.
DEFAULT_TABLE = "chatgenius-connections"
DEFAULT_INDEX = "workspaceIndex"
DEFAULT_LAB_REGION = "us-east-2"


# Alternative spellings callers use for a service; the value is boto3's service name.
SERVICE_ALIASES = {
    "cloudwatch-logs": "logs",
    "cloudwatchlogs": "logs",
    "logs": "logs",
    "dynamo": "dynamodb",
    "apigateway-management": "apigatewaymanagementapi",
    "apigatewaymanagement": "apigatewaymanagementapi",
    "management": "apigatewaymanagementapi",
    "connections": "apigatewaymanagementapi",
    "apigateway-v2": "apigatewayv2",
}
MANAGEMENT_SERVICE = "apigatewaymanagementapi"
# The key in ``Target.endpoints`` that serves every service not listed by name (the lab's moto server).
ANY_SERVICE = "*"

_USER_AGENT = f"kit/{__version__}"


def client_config(kind: TargetKind) -> Config:
    """A fresh botocore ``Config`` for a client of a ``kind`` target (botocore edits the one it is given).

    Real AWS: adaptive retries ride out throttling during a broad read, timeouts allow for distance.
    Loopback engines answer fast or not at all: fail quickly so a dead engine is reported, not waited on.
    """
    if kind == "aws":
        return Config(
            retries={"mode": "adaptive", "max_attempts": 10},
            connect_timeout=5,
            read_timeout=30,
            user_agent_extra=_USER_AGENT,
        )
    return Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=2,
        read_timeout=15,
        user_agent_extra=_USER_AGENT,
    )


_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_API_ID = re.compile(r"^[a-z0-9]{1,64}$")
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")


def _custom_domain_stage(url: str | None) -> str | None:
    """The first path segment of a URL that is not execute-api's (a custom domain's base path, which is
    usually the stage), or None."""
    if not url:
        return None
    first = urlsplit(url if "//" in url else "//" + url).path.strip("/").split("/", 1)[0]
    return first or None


# --------------------------------------------------------------------------------------------------
# The target


def canonical_service(service: str) -> str:
    """boto3's name for ``service``, resolving the kit's aliases ("cloudwatch-logs" -> "logs")."""
    name = service.strip().lower()
    return SERVICE_ALIASES.get(name, name)


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _SearchPaths(list[str]):
    """A loader's search paths that keep each folder once: boto3 appends its own data folder to the loader
    of every session it wraps, and the kit's sessions share one loader, from any thread."""

    # One lock for every instance: the check and the append must be one step (two sessions made at once
    # would otherwise both see the folder missing), and a lock held by the class is never copied with a list.
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def append(self, path: str) -> None:
        with self._lock:
            if path not in self:
                super().append(path)


_LOADERS: dict[str | None, Any] = {}
_LOADERS_LOCK = threading.Lock()


def _shared_loader(data_path: str | None) -> Any:
    """One botocore data loader per data path for the whole process.

    A botocore session reads and parses each service's model, endpoint rules and partitions on its first
    client, ~0.2 s of CPU for DynamoDB alone; every target has a session of its own (credentials differ), so
    without sharing, each target paid that again. The files never change while the process runs, and the
    loader's cache only ever adds entries (a race loads a file twice, never wrongly).
    """
    with _LOADERS_LOCK:
        loader = _LOADERS.get(data_path)
        if loader is None:
            extra = [
                os.path.expanduser(os.path.expandvars(p)) for p in (data_path or "").split(os.pathsep) if p
            ]
            loader = _LOADERS[data_path] = botocore.loaders.Loader(extra_search_paths=_SearchPaths(extra))
        return loader


def botocore_session(**settings: Any) -> Any:
    """A new botocore session (``settings`` as ``botocore.session.Session`` takes them) on the process's
    shared data loader: the one way the kit starts a session."""
    session = botocore.session.Session(**settings)
    try:
        data_path = session.get_config_variable("data_path")
    except (
        BotoCoreError
    ):  # a missing profile: left to the session's own loader, and reported where it is used
        return session
    session.register_component("data_loader", _shared_loader(data_path))
    return session


def _isolated_botocore_session(*, hermetic: bool) -> Any:
    """A botocore session that ignores AWS_PROFILE (and, when hermetic, the AWS config files).

    Used with explicit credentials: a stale AWS_PROFILE naming a missing profile must not break a target
    whose credentials came from elsewhere, and the lab must not depend on anyone's ~/.aws.
    """
    session_vars: dict[str, tuple[str | None, str | None, str | None, None]] = {
        "profile": (None, None, None, None)
    }
    if hermetic:
        session_vars["config_file"] = (None, None, os.devnull, None)
        session_vars["credentials_file"] = (None, None, os.devnull, None)
    return botocore_session(session_vars=session_vars)


def _aws_config_files(session: Any) -> str:
    config_file = session.get_config_variable("config_file")
    credentials_file = session.get_config_variable("credentials_file")
    return f"{config_file} or {credentials_file}"


class _ClientCache:
    """Per-target session and clients. Copies start empty, so ``asdict``/``replace`` never share clients."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.session: Any = None
        self.clients: dict[str, Any] = {}
        self.reachability = Reachability()  # endpoints that stopped answering, over all the clients

    def __repr__(self) -> str:
        return f"_ClientCache(clients={sorted(self.clients)})"

    def __deepcopy__(self, memo: dict[int, object]) -> _ClientCache:
        return _ClientCache()

    def __copy__(self) -> _ClientCache:
        return _ClientCache()


@dataclass(frozen=True)
class Target:
    """Where the investigation looks and how the kit reaches it.

    Build one with ``from_parameters`` (what the CLI, the notebooks and the reports do: the one place that
    chooses between the lab, a real account and a bare local endpoint), or directly with ``local``, ``aws`` or
    ``from_lab_file``.

    ``endpoints`` maps boto3 service names to URLs (the lab's engines); the key ``"*"`` serves every service
    not listed. An AWS target normally has none. ``source`` says in words where the target came from;
    ``provenance`` says where each of region, table, profile and credentials came from; ``problems`` carries
    what the env file and the resolution noticed (sentences, no secrets). ``read_only`` is True unless the
    caller opted in to writes (``Target.local`` does, the lab being disposable).
    """

    kind: TargetKind
    region: str
    table: str = DEFAULT_TABLE
    endpoints: Mapping[str, str] = field(default_factory=dict)
    profile: str | None = None
    credentials: Credentials | None = None
    source: str = ""
    websocket_url: str | None = None
    management_url: str | None = None
    api_id: str | None = None
    stage: str | None = None
    index: str = DEFAULT_INDEX
    read_only: bool = True
    provenance: Mapping[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    _cache: _ClientCache = field(default_factory=_ClientCache, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in ("lab", "aws"):
            raise ConfigurationError(f"Target kind {self.kind!r} is unknown; use 'lab' or 'aws'.")
        if not _REGION.match(self.region):
            raise ConfigurationError(f"{self.region!r} is not an AWS region name; pass one like us-east-2.")
        if not _TABLE_NAME.match(self.table):
            raise ConfigurationError(
                f"{self.table!r} is not a valid DynamoDB table name (3-255 letters, digits, '_', '-' "
                "or '.'); pass the table the $connect handler writes to with --table."
            )
        endpoints = {canonical_service(name): url for name, url in self.endpoints.items()}
        if self.kind == "lab":
            if not endpoints:
                raise ConfigurationError(
                    "A lab target needs at least one local endpoint; start the engines "
                    "(kit.lab.engines) and pass their URLs."
                )
            remote = sorted(url for url in endpoints.values() if not _is_loopback(url))
            if remote:
                raise ConfigurationError(
                    f"A lab target only talks to loopback, but {', '.join(remote)} is not; "
                    "use Target.aws for a real account."
                )
        # A private copy: the caller's dict may change, a frozen target must not.
        object.__setattr__(self, "endpoints", endpoints)
        object.__setattr__(self, "provenance", dict(self.provenance))
        object.__setattr__(self, "problems", tuple(self.problems))

    def __hash__(self) -> int:
        return hash(
            (
                self.kind,
                self.region,
                self.table,
                tuple(sorted(self.endpoints.items())),
                self.profile,
                self.credentials,
                self.websocket_url,
                self.management_url,
                self.api_id,
                self.stage,
                self.index,
                self.read_only,
            )
        )

    # ----------------------------------------------------------------------------------------------
    # Constructors

    @classmethod
    def local(
        cls,
        endpoints: Mapping[str, str],
        *,
        region: str = DEFAULT_LAB_REGION,
        table: str | None = None,
        index: str = DEFAULT_INDEX,
        websocket_url: str | None = None,
        management_url: str | None = None,
        api_id: str | None = None,
        stage: str | None = None,
        source: str = "lab",
    ) -> Target:
        """A lab target: local engines on loopback, signed with the lab's dummy credentials, writable.

        ``table`` None means ``chatgenius-connections``.
        """
        parsed = parse_websocket_url(websocket_url) if websocket_url else None
        return cls(
            kind="lab",
            region=region,
            table=DEFAULT_TABLE if table is None else table,
            endpoints=endpoints,
            credentials=Credentials(LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY),
            source=source,
            websocket_url=websocket_url,
            management_url=management_url,
            api_id=api_id or (parsed[0] if parsed else None),
            stage=stage or (parsed[2] if parsed else None),
            index=index,
            read_only=False,
            provenance={
                "region": "argument" if region != DEFAULT_LAB_REGION else "lab default",
                "table": "default" if table is None else "argument",
                "credentials": "lab dummy credentials (kit.local)",
            },
        )

    @classmethod
    def from_lab_file(cls, path: Path | None = None) -> Target:
        """The running lab as its lab file (``.kit/lab.json`` unless ``path``) describes it, scenario aside.

        No lab running, or a lab that stopped itself, is a ``ConfigurationError`` saying so in one line.
        """
        info = read_lab_file(path)
        endpoints = dict(info["endpoints"])
        return cls.local(
            endpoints | {ANY_SERVICE: endpoints.get("iam", "")},
            region=info["region"],
            table=info["table"],
            websocket_url=info["websocket_url"],
            management_url=info["management_url"],
            api_id=info["api_id"],
            stage=info["stage"],
            source=f"lab file {path or lab_file()}",
        )

    @classmethod
    def from_parameters(
        cls,
        kind: str,
        *,
        profile: str | None = None,
        region: str | None = None,
        table: str | None = None,
        env_file: str | os.PathLike[str] | None = None,
        websocket_url: str | None = None,
        dynamodb_url: str | None = None,
        lab_file: Path | None = None,
        allow_writes: bool = False,
        api_id: str | None = None,
    ) -> Target:
        """The target a set of parameters names; the one place that makes this choice.

        - ``dynamodb_url`` (``kit table --endpoint``): that local DynamoDB endpoint alone, in ``region``
          (default us-east-2), whatever ``kind`` says.
        - ``kind`` "lab": the running lab, read from ``lab_file`` (default ``.kit/lab.json``); the lab file
          says everything, so the other parameters are ignored.
        - ``kind`` "aws": a real account (:meth:`aws`), read-only unless ``allow_writes``.

        An empty string means "not given", as a papermill parameter cannot be None. ``kind`` is read without
        case or surrounding blanks; anything but lab or aws is a ``ConfigurationError``.
        """
        if dynamodb_url:
            return cls.local(
                {"dynamodb": dynamodb_url}, region=region or DEFAULT_LAB_REGION, table=table or None
            )
        chosen = kind.strip().lower()
        if chosen == "lab":
            return cls.from_lab_file(lab_file)
        if chosen == "aws":
            return cls.aws(
                profile=profile or None,
                region=region or None,
                table=table or None,
                env_file=env_file or None,
                websocket_url=websocket_url or None,
                allow_writes=allow_writes,
                api_id=api_id or None,
            )
        raise ConfigurationError(
            f"The target parameter is {kind!r}; use 'lab' (a running `kit lab up`) or 'aws' (a real account)."
        )

    @classmethod
    def aws(
        cls,
        *,
        profile: str | None = None,
        region: str | None = None,
        table: str | None = None,
        env_file: str | os.PathLike[str] | None = None,
        websocket_url: str | None = None,
        allow_writes: bool = False,
        api_id: str | None = None,
    ) -> Target:
        """A real AWS account, resolved without calling AWS.

        Region: ``region``, else the env file (``REGION_KEYS``), else ``AWS_REGION``/``AWS_DEFAULT_REGION``,
        else the profile's configured region. Credentials: an explicit ``profile`` wins; else the env file's
        ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (and token), else the profile named in the env file
        (``AWS_PROFILE``) or the default chain; they are only checked to exist, never used. Table:
        ``table``, else the env file (``TABLE_KEYS``), else ``chatgenius-connections``. Anything missing is
        a ``ConfigurationError`` naming every place looked in. The target is read-only unless
        ``allow_writes``. API: ``api_id`` (a custom domain's URL does not carry it), else the WebSocket URL's;
        with neither, the reading lists the region's WebSocket APIs (``config.fetch_api``).
        """
        env = read_env_file(env_file) if env_file is not None else None
        problems: list[str] = list(env.problems) if env else []
        provenance: dict[str, str] = {}

        profiles = _resolve_profile(profile, env, provenance)
        api = _resolve_api(websocket_url, env)
        region = _resolve_region(region, env, profiles, api, provenance)
        # When both came from the env file, its own problem list already says so, with line numbers.
        region_from_file = env is not None and provenance["region"].startswith(f"{env.path} (")
        url_from_file = env is not None and not websocket_url and env.get(WEBSOCKET_URL_KEYS) is not None
        if api.parsed and api.parsed[1] != region and not (region_from_file and url_from_file):
            api_id, api_region, _ = api.parsed
            problems.append(
                f"The WebSocket API {api_id} is in {api_region} but the target region is {region} "
                f"(from {provenance['region']}); unless the $connect Lambda sets its own region, it "
                f"writes to the table in {api_region}."
            )
        credentials, session = _resolve_credentials(env, profiles, region, provenance, problems)
        table = _resolve_table(table, env, provenance)

        profile_used = profiles.explicit if credentials is None else None
        source_parts = [f"file {env.path}"] if env else []
        if profile_used:
            source_parts.append(f"profile {profile_used}")
        elif credentials is None:
            source_parts.append(provenance["credentials"])
        parsed = api.parsed
        if api_id is not None and not _API_ID.match(api_id):
            raise ConfigurationError(
                f"{api_id!r} is not an API Gateway API id (lower-case letters and digits, like "
                "a1b2c3d4e5); copy it from the WebSocket URL or `aws apigatewayv2 get-apis`."
            )
        if api_id is not None:
            provenance["api"] = "--api-id"
            if parsed and parsed[0] != api_id:
                problems.append(
                    f"--api-id {api_id} differs from the WebSocket URL's API {parsed[0]}; the kit reads "
                    f"{api_id}."
                )
        target = cls(
            kind="aws",
            region=region,
            table=table,
            endpoints={},
            profile=profile_used,
            credentials=credentials,
            source=", ".join(source_parts),
            websocket_url=api.websocket_url,
            management_url=api.management_url,
            api_id=api_id or (parsed[0] if parsed else None),
            stage=parsed[2] if parsed else _custom_domain_stage(api.websocket_url),
            read_only=not allow_writes,
            provenance=provenance,
            problems=tuple(problems),
        )
        # Keep the session whose credentials were checked: resolving twice could prompt for MFA twice.
        target._cache.session = session
        log.debug("resolved AWS target: %s", target.describe())
        return target

    # ----------------------------------------------------------------------------------------------
    # Clients

    def session(self) -> Any:
        """The boto3 session for this target, built once per target."""
        with self._cache.lock:
            if self._cache.session is None:
                self._cache.session = self._new_session()
            return self._cache.session

    def _new_session(self) -> Any:
        if self.credentials is not None:
            token = self.credentials.session_token
            return boto3.Session(
                botocore_session=_isolated_botocore_session(hermetic=self.kind == "lab"),
                aws_access_key_id=self.credentials.access_key_id,
                aws_secret_access_key=self.credentials.secret_access_key.reveal(),
                aws_session_token=token.reveal() if token else None,
                region_name=self.region,
            )
        if self.kind == "lab":
            return boto3.Session(
                botocore_session=_isolated_botocore_session(hermetic=True),
                aws_access_key_id=LOCAL_ACCESS_KEY_ID,
                aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY,
                region_name=self.region,
            )
        # The profile goes to the botocore session itself (boto3's profile_name would set the same session
        # variable, but only after botocore_session() had looked the data path up under AWS_PROFILE's
        # profile): a stale AWS_PROFILE then costs nothing, and a missing profile is found here, not at the
        # first client.
        session = botocore_session(profile=self.profile)
        try:
            session.get_scoped_config()
        except ProfileNotFound as exc:
            raise ConfigurationError(
                f"AWS profile '{self.profile or session.profile}' was not found in "
                f"{_aws_config_files(session)}; check the name with `aws configure list-profiles`."
            ) from exc
        return boto3.Session(botocore_session=session, region_name=self.region)

    def endpoint_for(self, service: str) -> str | None:
        """The URL a client for ``service`` talks to; None means AWS's public endpoint for the region."""
        name = canonical_service(service)
        url = self.endpoints.get(name)
        if url is None and name == MANAGEMENT_SERVICE:
            url = self.management_url
            if url is None and self.kind == "aws" and self.api_id and self.stage:
                url = management_url_for(self.api_id, self.region, self.stage)
            if url is None:
                raise ConfigurationError(
                    f"No management API URL for target {self.label}: set WEBSOCKET_API_ENDPOINT in the "
                    "env file or give the WebSocket URL (--websocket-url) so it can be derived."
                )
        if url is None:
            url = self.endpoints.get(ANY_SERVICE)
        if url is None and self.kind == "lab":
            # Never let a lab client fall through to a real AWS endpoint.
            raise ConfigurationError(
                f"The lab target has no endpoint for {name} (it has {', '.join(sorted(self.endpoints))}); "
                "start the engine that serves it and pass its URL."
            )
        return url

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` on this target, built once per target and service."""
        name = canonical_service(service)
        with self._cache.lock:
            cached = self._cache.clients.get(name)
            if cached is not None:
                return cached
            endpoint = self.endpoint_for(name)
            try:
                made = self.session().client(
                    name,
                    region_name=self.region,
                    endpoint_url=endpoint,
                    config=client_config(self.kind),
                )
            except UnknownServiceError as exc:
                raise ConfigurationError(
                    f"boto3 knows no service called {service!r}; use its boto3 name, e.g. 'dynamodb' "
                    "or 'logs'."
                ) from exc
            self._cache.reachability.attach(made)
            log.debug("%s client for %s at %s", name, self.label, endpoint or "AWS")
            self._cache.clients[name] = made
            return made

    # ----------------------------------------------------------------------------------------------
    # Reporting and safety

    @property
    def label(self) -> str:
        """A short name for messages: ``lab us-east-2`` or ``aws us-east-2 (profile dev)``."""
        suffix = f" (profile {self.profile})" if self.profile else ""
        return f"{self.kind} {self.region}{suffix}"

    def describe(self) -> dict[str, str]:
        """A printable summary for reports: redacted (the access key id is masked, secrets are absent), and a
        file is named, not where it is (:func:`kit.local_paths.file_names`)."""
        summary = {
            "kind": self.kind,
            "region": self.region,
            "table": self.table,
            "index": self.index,
            "source": file_names(self.source),
            "endpoints": ", ".join(f"{k}={v}" for k, v in sorted(self.endpoints.items())) or "AWS",
            "profile": self.profile or "",
            "access_key_id": self.credentials.masked_access_key_id if self.credentials else "",
            "credential_source": file_names(self.provenance.get("credentials", "")),
            "region_source": file_names(self.provenance.get("region", "")),
            "table_source": file_names(self.provenance.get("table", "")),
            "websocket_url": public_url(self.websocket_url) if self.websocket_url else "",
            "management_url": public_url(self.management_url) if self.management_url else "",
            "api_id": self.api_id or "",
            "stage": self.stage or "",
            "read_only": "yes" if self.read_only else "no",
            "problems": str(len(self.problems)),
        }
        return summary

    def with_api(self, api_id: str, stage: str | None, found_by: str) -> Target:
        """This target with the API it did not name (``config.fetch_api`` found it by listing); same session.

        ``found_by`` goes into the provenance, so the report says how the API was chosen.
        """
        if self.api_id == api_id and self.stage == stage:
            return self
        return self._same_session(
            api_id=api_id, stage=stage, provenance={**self.provenance, "api": found_by or "argument"}
        )

    def as_read_only(self) -> Target:
        """This target, read-only (same session): for reading evidence before a change the user confirms."""
        if self.read_only:
            return self
        return self._same_session(read_only=True)

    def _same_session(self, **changes: Any) -> Target:
        """A copy with ``changes`` keeping this session (resolving it again could prompt for MFA)."""
        copy = replace(self, **changes)
        copy._cache.session = self._cache.session
        return copy

    def require_writes(self, action: str) -> None:
        """Raise unless this target may be changed; call before anything that writes."""
        if not self.read_only:
            return
        where = "a real AWS account" if self.kind == "aws" else "the lab"
        raise ConfigurationError(
            f"Cannot {action}: target {self.label} is read-only against {where}; pass --allow-writes "
            "to let the kit change it."
        )


# --------------------------------------------------------------------------------------------------
# Resolving an AWS target, one setting at a time. Each records where its answer came from in
# ``provenance``; none calls AWS.


@dataclass(frozen=True)
class _Profile:
    explicit: str | None  # named by --profile or the env file; None leaves the choice to botocore
    name: str  # the profile botocore will use, for messages ("default" when none is named)
    from_argument: bool
    session: Any  # a botocore session for that profile
    scoped_config: Mapping[str, Any]


@dataclass(frozen=True)
class _Api:
    websocket_url: str | None
    management_url: str | None
    parsed: tuple[str, str, str] | None  # (api_id, region, stage)


def _resolve_profile(profile: str | None, env: EnvFile | None, provenance: dict[str, str]) -> _Profile:
    from_argument = bool(profile)
    if profile:
        provenance["profile"] = "--profile"
    elif env and (hit := env.first(PROFILE_KEYS)):
        profile = hit[1]
        provenance["profile"] = f"{env.path} ({hit[0]})"
    # A profile named only by AWS_PROFILE is left to botocore, which then still lets AWS_ACCESS_KEY_ID
    # win, as every AWS SDK does; naming it explicitly would change that order.
    environ_profile = _env_first("AWS_PROFILE", "AWS_DEFAULT_PROFILE")
    if profile is None and environ_profile:
        provenance["profile"] = "environment (AWS_PROFILE)"
    session = botocore_session(profile=profile)
    name = profile or environ_profile or "default"
    try:
        scoped_config = session.get_scoped_config()
    except ProfileNotFound as exc:
        raise ConfigurationError(
            f"AWS profile '{name}' (from {provenance.get('profile', 'the default')}) was not found in "
            f"{_aws_config_files(session)}; check the name with `aws configure list-profiles` or pass "
            "another --profile."
        ) from exc
    except BotoCoreError as exc:
        raise ConfigurationError(
            f"The AWS config files ({_aws_config_files(session)}) could not be read "
            f"({type(exc).__name__}); fix them or point AWS_CONFIG_FILE elsewhere."
        ) from exc
    return _Profile(profile, name, from_argument, session, scoped_config)


def _resolve_api(websocket_url: str | None, env: EnvFile | None) -> _Api:
    websocket = websocket_url or (env.get(WEBSOCKET_URL_KEYS) if env else None)
    management = env.get(MANAGEMENT_URL_KEYS) if env else None
    parsed = parse_websocket_url(websocket) if websocket else None
    if parsed is None and management:
        parsed = parse_websocket_url(management)
    if management and urlsplit(management).scheme.lower() in {"wss", "ws"}:
        # The app's value is wrong (already an env-file problem); the kit still reaches it over https.
        management = urlunsplit(urlsplit(management)._replace(scheme="https"))
    if management is None and parsed:
        management = management_url_for(*parsed)
    return _Api(websocket, management, parsed)


def _resolve_region(
    region: str | None,
    env: EnvFile | None,
    profile: _Profile,
    api: _Api,
    provenance: dict[str, str],
) -> str:
    found: tuple[str, str] | None = None
    if region:
        found = ("--region", region)
    elif env and (hit := env.first(REGION_KEYS)):
        found = (f"{env.path} ({hit[0]})", hit[1])
    elif environ_key := _env_first_key("AWS_REGION", "AWS_DEFAULT_REGION"):
        found = (f"environment ({environ_key})", os.environ[environ_key])
    elif profile.scoped_config.get("region"):
        found = (f"profile {profile.name}", str(profile.scoped_config["region"]))
    if found is None:
        in_file = (
            f"not in {env.path} (looked for {', '.join(REGION_KEYS)})" if env else "no env file was given"
        )
        hint = f"{api.parsed[1]} (the WebSocket API's region)" if api.parsed else "us-east-2"
        raise ConfigurationError(
            f"No AWS region: not given with --region, {in_file}, not in AWS_REGION/AWS_DEFAULT_REGION, "
            f"and profile '{profile.name}' has none; pass --region {hint}."
        )
    provenance["region"], value = found
    value = value.strip()
    if not _REGION.match(value):
        raise ConfigurationError(
            f"The region {value!r} from {provenance['region']} is not an AWS region name; fix it or "
            "pass --region us-east-2."
        )
    return value


def _resolve_credentials(
    env: EnvFile | None,
    profile: _Profile,
    region: str,
    provenance: dict[str, str],
    problems: list[str],
) -> tuple[Credentials | None, Any]:
    """The env file's static credentials (and a session on them), or None and the profile's session."""
    from_file = _credentials_from_env(env) if env else None
    if env and from_file and not profile.from_argument:
        credentials, key = from_file
        provenance["credentials"] = f"{env.path} ({key})"
        token = credentials.session_token
        session = boto3.Session(
            botocore_session=_isolated_botocore_session(hermetic=False),
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key.reveal(),
            aws_session_token=token.reveal() if token else None,
            region_name=region,
        )
        return credentials, session
    if env and from_file:
        problems.append(
            f"{env.path} holds credentials, but --profile {profile.name} was given, so the profile's "
            "are used."
        )
    try:
        found = profile.session.get_credentials()
    except BotoCoreError as exc:
        raise ConfigurationError(
            f"The credentials of AWS profile '{profile.name}' could not be loaded "
            f"({type(exc).__name__}); run `aws sso login --profile {profile.name}` or `aws configure`, "
            "or pass another --profile."
        ) from exc
    if found is None:
        in_file = (
            f"not in {env.path} (looked for {', '.join(ACCESS_KEY_ID_KEYS)} with "
            f"{', '.join(SECRET_ACCESS_KEY_KEYS)})"
            if env
            else "no env file was given"
        )
        raise ConfigurationError(
            f"No AWS credentials: {in_file}, not in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, not in "
            f"profile '{profile.name}' of {_aws_config_files(profile.session)}, and no SSO, container "
            "or instance role is configured; run `aws configure` or `aws sso login`, or pass --profile."
        )
    method = getattr(found, "method", "unknown")
    provenance["credentials"] = (
        "environment (AWS_ACCESS_KEY_ID)" if method == "env" else f"profile {profile.name} ({method})"
    )
    return None, boto3.Session(botocore_session=profile.session, region_name=region)


def _resolve_table(table: str | None, env: EnvFile | None, provenance: dict[str, str]) -> str:
    found: tuple[str, str]
    if table is not None:
        found = ("--table", table)
    elif env and (hit := env.first(TABLE_KEYS)):
        found = (f"{env.path} ({hit[0]})", hit[1])
    else:
        found = ("default", DEFAULT_TABLE)
    provenance["table"], value = found
    if not _TABLE_NAME.match(value):
        raise ConfigurationError(
            f"No usable table name: {value!r} from {provenance['table']} is not a valid DynamoDB table "
            "name (3-255 letters, digits, '_', '-' or '.'); pass the table the $connect handler writes "
            "to with --table."
        )
    return value


def _env_first_key(*names: str) -> str | None:
    return next((name for name in names if os.environ.get(name, "").strip()), None)


def _env_first(*names: str) -> str | None:
    key = _env_first_key(*names)
    return os.environ[key].strip() if key else None


def _credentials_from_env(env: EnvFile) -> tuple[Credentials, str] | None:
    """Static credentials the env file sets, with the key the access key id came from; None when it sets none.

    Half a pair is a ``ConfigurationError``: silently falling back to a profile would investigate another
    identity than the app's.
    """
    key_id = env.first(ACCESS_KEY_ID_KEYS)
    secret = env.first(SECRET_ACCESS_KEY_KEYS)
    token = env.first(SESSION_TOKEN_KEYS)
    if key_id is None and secret is None:
        if token is not None:
            raise ConfigurationError(
                f"{env.path} sets {token[0]} but no {ACCESS_KEY_ID_KEYS[0]} or "
                f"{SECRET_ACCESS_KEY_KEYS[0]}; add the pair or remove the token."
            )
        return None
    if key_id is None or secret is None:
        have, missing = (key_id, SECRET_ACCESS_KEY_KEYS) if secret is None else (secret, ACCESS_KEY_ID_KEYS)
        assert have is not None
        raise ConfigurationError(
            f"{env.path} sets {have[0]} but none of {', '.join(missing)}; credentials need both, so add "
            "the missing one or remove both and use --profile."
        )
    return Credentials(key_id[1], secret[1], token[1] if token else None), key_id[0]
