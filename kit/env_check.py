"""The app's ``.env.local`` against the rest: the WebSocket URL, the kit's target, the tables, the functions.

A Next.js app reads its WebSocket URL, region and table from ``.env.local``; a value there that disagrees with
the deployed API, the table that exists or what the ``$connect`` function writes to is cause 2 of the ranked
list (the write goes to another table or region) seen from the app's side. ``env_file_check`` reads the file
with :func:`kit.env_file.read_env_file` and lays the comparison out one row per check (``ENV_CHECK_COLUMNS``).

Pure but for the file it reads: the tables (:func:`kit.config.fetch_tables`) and functions
(:func:`kit.config.function_frame`) come in as arguments. ``detail`` quotes regions, table names and public
URLs only, never a credential.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import pandas as pd

from kit import frames
from kit.config import function_frame
from kit.credentials import mask_access_key_id
from kit.env_file import (
    ACCESS_KEY_ID_KEYS,
    MANAGEMENT_URL_KEYS,
    REGION_KEYS,
    TABLE_KEYS,
    WEBSOCKET_URL_KEYS,
    EnvFile,
    parse_websocket_url,
    read_env_file,
)
from kit.errors import ConfigurationError
from kit.target import DEFAULT_TABLE

if TYPE_CHECKING:
    from kit.target import Target

ENV_CHECK_COLUMNS: Final[dict[str, str]] = {
    "check": "string",
    "ok": "boolean",
    "detail": "string",  # never a secret value
}


def _function_rows(functions: pd.DataFrame | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    frame = functions if isinstance(functions, pd.DataFrame) else function_frame(list(functions))
    return [
        {key: (None if value is pd.NA or value is None else value) for key, value in row.items()}
        for row in frame.to_dict("records")
    ]


@dataclass
class _Checks:
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, check: str, ok: bool, detail: str) -> None:
        self.rows.append({"check": check, "ok": ok, "detail": detail})


def env_file_check(
    env_file_path: str | os.PathLike[str],
    target: Target,
    functions: pd.DataFrame | Iterable[Mapping[str, Any]] = (),
    tables: Mapping[str, Iterable[str]] | Iterable[str] | None = None,
) -> pd.DataFrame:
    """Check the app's ``.env.local`` against the WebSocket URL, the target, the tables and the functions.

    ``functions``: :func:`function_frame` output or ``get_function_configuration`` answers. ``tables``: table
    names per region (:func:`fetch_tables`), or names in the WebSocket URL's region (else the target's).
    One row per check (:data:`ENV_CHECK_COLUMNS`); ``detail`` quotes regions, table names and public URLs
    only, never a credential. A missing or unreadable file is one failed row.
    """
    checks = _Checks()
    try:
        env = read_env_file(env_file_path)
    except ConfigurationError as exc:
        checks.add("env file readable", False, str(exc))
        return frames.from_rows(checks.rows, ENV_CHECK_COLUMNS)
    checks.add(
        "env file parsed",
        not env.problems,
        f"{env.path}: {len(env.values)} variables, "
        + (f"{len(env.problems)} problems (listed below)." if env.problems else "no problems."),
    )
    for problem in env.problems:
        checks.add("env file problem", False, problem)

    url_region, api = _check_urls(env, checks)
    env_region = env.first(REGION_KEYS)
    reference_region = url_region or (env_region[1] if env_region else target.region)
    if env_region and url_region:
        checks.add(
            "env region matches WebSocket URL",
            env_region[1] == url_region,
            f"{env_region[0]} is {env_region[1]}; the WebSocket API is in {url_region}.",
        )
    elif not env_region:
        checks.add(
            "env region set",
            False,
            f"None of {', '.join(REGION_KEYS)} is set; the app's SDK falls back to its host's region"
            + (f" (the API is in {url_region})." if url_region else "."),
        )
    checks.add(
        "target region matches WebSocket URL" if url_region else "target region matches env file",
        target.region == reference_region,
        f"The kit's target reads {target.region}; the "
        + ("WebSocket API is" if url_region else "env file says")
        + f" {reference_region}.",
    )

    known = _tables_by_region(tables, reference_region)
    env_table = env.first(TABLE_KEYS)
    app_table = env_table[1] if env_table else DEFAULT_TABLE
    checks.add(
        "env table name set",
        env_table is not None,
        f"{env_table[0]} is {env_table[1]}."
        if env_table
        else f"None of {', '.join(TABLE_KEYS)} is set; the app falls back to {DEFAULT_TABLE}.",
    )
    _check_table_exists(checks, "app table exists", app_table, reference_region, known)
    checks.add(
        "target table matches env file",
        target.table == app_table,
        f"The kit's target reads table {target.table}; the app uses {app_table}.",
    )
    for function in _function_rows(functions):
        _check_function(checks, function, app_table, reference_region, known)
    if api is not None:
        checks.add("credentials in env file", True, _credential_detail(env))
    return frames.from_rows(checks.rows, ENV_CHECK_COLUMNS)


def _check_urls(env: EnvFile, checks: _Checks) -> tuple[str | None, tuple[str, str, str] | None]:
    websocket = env.first(WEBSOCKET_URL_KEYS)
    parsed = parse_websocket_url(websocket[1]) if websocket else None
    if websocket is None:
        checks.add(
            "WebSocket URL set",
            False,
            f"None of {', '.join(WEBSOCKET_URL_KEYS)} is set; the region cannot be checked.",
        )
    elif parsed is None:
        checks.add(
            "WebSocket URL is an execute-api URL",
            False,
            f"{websocket[0]} is not wss://{{api}}.execute-api.{{region}}.amazonaws.com/{{stage}} (a custom "
            "domain hides the API id, region and stage).",
        )
    else:
        api_id, region, stage = parsed
        checks.add(
            "WebSocket URL is an execute-api URL",
            True,
            f"{websocket[0]} names API {api_id} in {region}, stage {stage}.",
        )
    management = env.first(MANAGEMENT_URL_KEYS)
    if management is not None:
        managed = parse_websocket_url(management[1])
        scheme = management[1].split("://", 1)[0].lower() if "://" in management[1] else ""
        same = managed is not None and parsed is not None and managed == parsed
        detail = (
            f"{management[0]} names API {managed[0]} in {managed[1]}, stage {managed[2]}"
            if managed
            else f"{management[0]} is not an execute-api URL"
        )
        if scheme in ("ws", "wss"):
            detail += f"; it uses {scheme}://, but @connections is reached over https://"
        checks.add(
            "management URL matches WebSocket URL",
            same and scheme not in ("ws", "wss"),
            detail + ".",
        )
    return (parsed[1] if parsed else None), parsed


def _tables_by_region(
    tables: Mapping[str, Iterable[str]] | Iterable[str] | None, default_region: str
) -> dict[str, set[str]]:
    if tables is None:
        return {}
    if isinstance(tables, Mapping):
        return {str(region): {str(t) for t in names} for region, names in tables.items()}
    return {default_region: {str(t) for t in tables}}


def _check_table_exists(
    checks: _Checks, check: str, table: str, region: str, known: Mapping[str, set[str]]
) -> None:
    if region not in known:
        return
    present = table in known[region]
    others = sorted(known[region])
    near = [t for t in others if t.lower().rstrip("s") == table.lower().rstrip("s") and t != table]
    detail = f"Table {table} {'exists' if present else 'does not exist'} in {region}"
    if not present:
        detail += f" (tables there: {', '.join(others) or 'none'})"
        if near:
            detail += f"; did you mean {near[0]}?"
    checks.add(check, present, detail + ("." if not detail.endswith("?") else ""))


def _check_function(
    checks: _Checks,
    function: Mapping[str, Any],
    app_table: str,
    url_region: str,
    known: Mapping[str, set[str]],
) -> None:
    name = function.get("function_name") or "(unnamed)"
    if function.get("function_arn") is None and function.get("problem"):
        checks.add(f"function {name} readable", False, str(function["problem"]))
        return
    table = function.get("table_name")
    effective_table = table or DEFAULT_TABLE
    checks.add(
        f"function {name} TABLE_NAME",
        effective_table == app_table,
        (
            f"TABLE_NAME is {table}"
            if table
            else f"TABLE_NAME is not set, so the seed's handler uses {DEFAULT_TABLE}"
        )
        + f"; the app uses {app_table}.",
    )
    table_region = function.get("table_region")
    runs_in = function.get("region")
    writes_to = table_region or runs_in or url_region
    checks.add(
        f"function {name} TABLE_REGION",
        writes_to == url_region,
        (
            f"TABLE_REGION is {table_region}"
            if table_region
            else f"TABLE_REGION is not set, so it writes to the region it runs in ({runs_in or 'unknown'})"
        )
        + f"; the WebSocket API and the app are in {url_region}.",
    )
    _check_table_exists(checks, f"function {name} table exists", effective_table, writes_to, known)


def _credential_detail(env: EnvFile) -> str:
    key = env.first(ACCESS_KEY_ID_KEYS)
    if key is None:
        return "The env file sets no access key; the app uses its host's credentials (role or profile)."
    return f"{key[0]} is {mask_access_key_id(key[1])} (the secret key is never shown)."
