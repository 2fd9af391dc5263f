"""The app's env file (a Next.js ``.env.local``): which keys the kit reads in it, parsing it with
python-dotenv, and the problems each line may have, kept as numbered sentences instead of dropped. Also the
execute-api URLs an env file names: ``parse_websocket_url`` reads the API id, region and stage from one.

Pure but for ``read_env_file``, which reads the file. Values may be secrets: no message here quotes a value
that could be one (``RedactedValues`` shows keys only), and URLs are quoted without query or user info.
:mod:`kit.target` resolves a target from an ``EnvFile``; :mod:`kit.env_check` compares one with a target.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit

from dotenv.parser import parse_stream

from kit.errors import ConfigurationError
from kit.redact_structure import is_secret_variable

# Keys looked for in the app's .env.local, first match wins. The seed is a Next.js app, so some settings
# also appear NEXT_PUBLIC_-prefixed (those are inlined into the browser bundle).
REGION_KEYS = ("AWS_REGION", "AWS_DEFAULT_REGION", "NEXT_PUBLIC_AWS_REGION", "REGION")
ACCESS_KEY_ID_KEYS = ("AWS_ACCESS_KEY_ID", "NEXT_PUBLIC_AWS_ACCESS_KEY_ID")
SECRET_ACCESS_KEY_KEYS = ("AWS_SECRET_ACCESS_KEY", "NEXT_PUBLIC_AWS_SECRET_ACCESS_KEY")
SESSION_TOKEN_KEYS = ("AWS_SESSION_TOKEN", "NEXT_PUBLIC_AWS_SESSION_TOKEN")
PROFILE_KEYS = ("AWS_PROFILE",)
TABLE_KEYS = (
    "CONNECTIONS_TABLE",
    "CONNECTIONS_TABLE_NAME",
    "DYNAMODB_CONNECTIONS_TABLE",
    "TABLE_NAME",
    "NEXT_PUBLIC_CONNECTIONS_TABLE",
)
WEBSOCKET_URL_KEYS = ("NEXT_PUBLIC_WEBSOCKET_URL", "NEXT_PUBLIC_WS_URL", "WEBSOCKET_URL", "WS_URL")
MANAGEMENT_URL_KEYS = (
    "WEBSOCKET_API_ENDPOINT",
    "API_GATEWAY_MANAGEMENT_ENDPOINT",
    "MANAGEMENT_API_URL",
    "WEBSOCKET_MANAGEMENT_URL",
)
CREDENTIAL_KEYS = ACCESS_KEY_ID_KEYS + SECRET_ACCESS_KEY_KEYS + SESSION_TOKEN_KEYS
RECOGNISED_KEYS = (
    REGION_KEYS + CREDENTIAL_KEYS + PROFILE_KEYS + TABLE_KEYS + WEBSOCKET_URL_KEYS + MANAGEMENT_URL_KEYS
)
# Settings whose aliases must agree; values are not secret, so a disagreement may quote them.
_ALIAS_GROUPS = {
    "region": REGION_KEYS,
    "table": TABLE_KEYS,
    "WebSocket URL": WEBSOCKET_URL_KEYS,
    "management API URL": MANAGEMENT_URL_KEYS,
}

_EXECUTE_API_HOST = re.compile(
    r"^(?P<api>[a-z0-9]+)\.execute-api\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d{1,2})"
    r"\.amazonaws\.com(?:\.cn)?$"
)


class RedactedValues(dict[str, str]):
    """The env file's values: an ordinary dict whose repr shows the keys only (values may be secrets)."""

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{key!r}: '…'" for key in self) + "}"

    __str__ = __repr__


@dataclass(frozen=True)
class EnvFile:
    """A parsed ``.env.local``: the values it sets, where each was set, and every line it could not use.

    ``values`` holds what the file sets (the last value wins for a repeated key, as in dotenv); treat them as
    secrets and never print them. ``problems`` are full sentences starting with ``line N:`` where a line is to
    blame. ``path`` is the path as given, for messages.
    """

    path: str
    values: RedactedValues = field(repr=False)
    lines: dict[str, int] = field(repr=False)
    problems: list[str]

    def first(self, aliases: Sequence[str]) -> tuple[str, str] | None:
        """The first of ``aliases`` set to a non-empty value, as ``(key, value)``; None when none is."""
        for key in aliases:
            value = self.values.get(key)
            if value:
                return key, value
        return None

    def get(self, aliases: Sequence[str]) -> str | None:
        """The value of the first of ``aliases`` set to a non-empty value, or None."""
        hit = self.first(aliases)
        return hit[1] if hit else None

    def line_of(self, key: str) -> int | None:
        return self.lines.get(key)


def read_env_file(path: str | os.PathLike[str]) -> EnvFile:
    """Read and parse an env file; a missing or unreadable file is a ``ConfigurationError`` naming it."""
    env_path = Path(path)
    try:
        text = env_path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigurationError(
            f"Env file {env_path} does not exist; pass the path of the app's .env.local with --env-file."
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"Env file {env_path} could not be read as UTF-8 text ({type(exc).__name__}); "
            "check that the path is the app's .env.local."
        ) from exc
    return parse_env_text(text, path=str(path))


def _binding_line(start_line: int, original: str) -> int:
    """dotenv reports the line where a binding's text starts, blank lines included; skip those."""
    leading = original[: len(original) - len(original.lstrip())]
    return start_line + leading.count("\n")


def parse_env_text(text: str, *, path: str = ".env.local") -> EnvFile:
    """Parse the text of an env file (pure). Lines python-dotenv cannot parse are kept as problems."""
    values = RedactedValues()
    lines: dict[str, int] = {}
    problems: list[str] = []
    for binding in parse_stream(StringIO(text)):
        line = _binding_line(binding.original.line, binding.original.string)
        if binding.error:
            # Never quote the line: it may hold a secret.
            problems.append(
                f"line {line}: could not parse, so it is ignored; look for an unclosed quote "
                "or a missing '='."
            )
            continue
        key = binding.key
        if key is None:
            continue  # a comment or blank line
        if binding.value is None:
            problems.append(f"line {line}: {key} has no '=', so it sets nothing.")
            continue
        if key in lines:
            problems.append(
                f"line {line}: {key} is set again (first on line {lines[key]}); the later value wins."
            )
        values[key] = binding.value
        lines[key] = line
    problems.extend(_check_env_values(values, lines))
    return EnvFile(path=path, values=values, lines=lines, problems=problems)


def public_url(url: str) -> str:
    """A URL without its query string or user info, safe to quote in a message."""
    parts = urlsplit(url if "//" in url else "//" + url)
    scheme = f"{parts.scheme}://" if parts.scheme else ""
    return f"{scheme}{parts.hostname or ''}{parts.path}"


def _check_env_values(values: Mapping[str, str], lines: Mapping[str, int]) -> list[str]:
    problems: list[str] = []
    for key, value in values.items():
        at = f"line {lines[key]}: {key}"
        if key in RECOGNISED_KEYS and not value.strip():
            problems.append(f"{at} is empty, so the kit ignores it.")
        if key.startswith("NEXT_PUBLIC_") and (key in CREDENTIAL_KEYS or is_secret_variable(key)):
            problems.append(
                f"{at} puts a credential in a NEXT_PUBLIC_ variable, which Next.js inlines into the "
                "JavaScript sent to every browser; rotate the key and keep it in a server-only variable."
            )
        if key in RECOGNISED_KEYS and "$" in value and key not in CREDENTIAL_KEYS:
            problems.append(f"{at} refers to another variable with '$'; the kit reads the value literally.")
    for setting, aliases in _ALIAS_GROUPS.items():
        present = [(key, values[key]) for key in aliases if values.get(key)]
        if len({value for _, value in present}) > 1:
            first_key, first_value = present[0]
            others = ", ".join(
                f"{key} (line {lines[key]}) is {public_url(value) if 'URL' in setting else value}"
                for key, value in present[1:]
                if value != first_value
            )
            shown = public_url(first_value) if "URL" in setting else first_value
            problems.append(
                f"line {lines[first_key]}: the {setting} is set twice with different values: "
                f"{first_key} is {shown} but {others}; the kit uses {first_key}, so check which one "
                "the handler reads."
            )
    websocket = next(((k, values[k]) for k in WEBSOCKET_URL_KEYS if values.get(k)), None)
    if websocket is not None:
        key, url = websocket
        scheme = urlsplit(url).scheme.lower()
        if scheme and scheme not in {"wss", "ws"}:
            problems.append(
                f"line {lines[key]}: {key} uses {scheme}://, but browsers open WebSockets with wss://."
            )
        parsed = parse_websocket_url(url)
        region = next(((k, values[k]) for k in REGION_KEYS if values.get(k)), None)
        if parsed is None:
            problems.append(
                f"line {lines[key]}: {key} is not an execute-api URL "
                "(wss://{api}.execute-api.{region}.amazonaws.com/{stage}), so the API id, region and "
                "stage cannot be read from it; a custom domain hides them."
            )
        elif region is not None and region[1] != parsed[1]:
            problems.append(
                f"line {lines[key]}: {key} points at an API in {parsed[1]}, but {region[0]} "
                f"(line {lines[region[0]]}) is {region[1]}; the $connect Lambda runs in {parsed[1]} and, "
                f"unless it sets its own region, writes to the table in {parsed[1]}."
            )
    management = next(((k, values[k]) for k in MANAGEMENT_URL_KEYS if values.get(k)), None)
    if management is not None and urlsplit(management[1]).scheme.lower() in {"wss", "ws"}:
        key = management[0]
        problems.append(
            f"line {lines[key]}: {key} uses a WebSocket scheme; the management API (@connections) is "
            "reached over https://, so a client built from it cannot post to connections."
        )
    return problems


def parse_websocket_url(url: str) -> tuple[str, str, str] | None:
    """``wss://{api}.execute-api.{region}.amazonaws.com/{stage}`` -> ``(api_id, region, stage)``, else None.

    Also accepts the management form (``https://``, or no scheme) and ignores a query string or a path after
    the stage (``/prod/@connections``). A custom domain carries none of the three, so it gives None.
    """
    candidate = url.strip()
    if not candidate:
        return None
    parts = urlsplit(candidate if "//" in candidate else "//" + candidate)
    if parts.scheme and parts.scheme.lower() not in {"wss", "ws", "https", "http"}:
        return None
    match = _EXECUTE_API_HOST.match((parts.hostname or "").lower())
    stage = parts.path.strip("/").split("/", 1)[0]
    if match is None or not stage:
        return None
    return match["api"], match["region"], stage


def management_url_for(api_id: str, region: str, stage: str) -> str:
    """The @connections endpoint API Gateway gives a WebSocket API stage."""
    return f"https://{api_id}.execute-api.{region}.amazonaws.com/{stage}"
