"""Stored connections API Gateway no longer knows: each stored id asked of ``GET @connections/{id}``.

A connection whose item is still stored after API Gateway closed it (410 Gone) means ``$disconnect`` did not
delete it, and broadcasts to it fail. ``fetch_connections`` asks API Gateway (read-only: GET, never POST or
DELETE) through a :class:`~kit.target.Target`; ``stale_frame`` is pure and takes the items frame
(:mod:`kit.dynamo.items`) and the answers as boto3 gives them, errors included, so tests feed recorded
answers. ``stale_rows`` joins the two.

What this module must not do: POST to or DELETE a connection, or create a boto3 client of its own: every
client comes from ``Target.client``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from kit import frames
from kit.dynamo.items import TIMESTAMP_UTC, UTC_DTYPE
from kit.errors import error_response

if TYPE_CHECKING:
    from kit.target import Target

# One row per stored connection id: does API Gateway still know the connection?
STALE_COLUMNS: Final[dict[str, str]] = {
    "connection_id": "string",
    "workspace_id": "string",
    "user_id": "string",
    "stored_at": UTC_DTYPE,  # the item's timestamp
    "state": "string",  # alive | gone | invalid-id | forbidden | error | unchecked
    "http_status": "Int64",
    "error_code": "string",
    "connected_at": UTC_DTYPE,
    "last_active_at": UTC_DTYPE,
    "source_ip": "string",
    "detail": "string",
}

STATE_DETAIL: Final[dict[str, str]] = {
    "alive": "API Gateway knows this connection; it is open.",
    "gone": (
        "API Gateway answers 410 Gone: the connection is closed but its item is still stored, so $disconnect "
        "did not delete it and broadcasts to it will fail."
    ),
    "invalid-id": (
        "API Gateway answers 400: this is not an id it issued (an emulator's id, or a value written by "
        "something other than the $connect handler)."
    ),
    "forbidden": (
        "API Gateway answers 403: the kit's identity lacks execute-api:ManageConnections (GET), or the "
        "management URL names another API or stage."
    ),
    "unchecked": "Not checked (check=False).",
}


def _connection_ids(items: pd.DataFrame) -> list[str]:
    if items.empty or "connectionId" not in items.columns:
        return []
    ids = items["connectionId"].astype("string").dropna()
    return [str(v) for v in ids[ids != ""].drop_duplicates()]


def fetch_connections(
    target: Target, connection_ids: Iterable[str], *, max_workers: int = 8
) -> dict[str, dict[str, Any]]:
    """``GET @connections/{id}`` for each id (read-only: never POST or DELETE).

    Returns, per id, the answer (``ConnectedAt``, ``LastActiveAt``, ``Identity``) or, on an error, the
    error response (``Error``/``ResponseMetadata``, as ``ClientError.response`` holds it).
    """
    client = target.client("apigatewaymanagementapi")

    def get(connection_id: str) -> tuple[str, dict[str, Any]]:
        try:
            answer = client.get_connection(ConnectionId=connection_id)
        except (ClientError, BotoCoreError) as exc:
            return connection_id, error_response(exc)
        return connection_id, dict(answer)

    ids = list(dict.fromkeys(connection_ids))
    if not ids:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(ids)))) as pool:
        return dict(pool.map(get, ids))


def _state(answer: Mapping[str, Any] | None) -> tuple[str, int | None, str | None, str]:
    """(state, HTTP status, error code, detail) for one GetConnection answer."""
    if answer is None:
        return "unchecked", None, None, STATE_DETAIL["unchecked"]
    metadata = answer.get("ResponseMetadata")
    status = metadata.get("HTTPStatusCode") if isinstance(metadata, Mapping) else None
    status = status if isinstance(status, int) else None
    error = answer.get("Error")
    if not isinstance(error, Mapping):
        return "alive", status or 200, None, STATE_DETAIL["alive"]
    code = str(error.get("Code") or "Unknown")
    message = str(error.get("Message") or "").rstrip(".")
    by_code = {
        "GoneException": "gone",
        "BadRequestException": "invalid-id",
        "ForbiddenException": "forbidden",
        "AccessDeniedException": "forbidden",
    }
    by_status = {410: "gone", 400: "invalid-id", 403: "forbidden"}
    state = by_code.get(code) or (by_status.get(status) if status else None) or "error"
    if state == "error":
        detail = f"GetConnection failed with {code}{': ' + message if message else ''}."
    else:
        detail = STATE_DETAIL[state] + (f" ({message}.)" if message else "")
    return state, status, code, detail


def stale_frame(items: pd.DataFrame, answers: Mapping[str, Mapping[str, Any]] | None) -> pd.DataFrame:
    """One row per stored connection id with what ``GET @connections/{id}`` said (:data:`STALE_COLUMNS`).

    ``answers`` maps ids to GetConnection answers or error responses (``fetch_connections``); None means
    nothing was checked (state ``unchecked``). Pure.
    """
    if items.empty or "connectionId" not in items.columns:
        return frames.empty(STALE_COLUMNS)
    first = items.dropna(subset=["connectionId"]).drop_duplicates("connectionId")
    rows: list[dict[str, Any]] = []
    for record in first.to_dict("records"):
        connection_id = str(record["connectionId"])
        if not connection_id:
            continue
        answer = answers.get(connection_id) if answers is not None else None
        if answers is not None and answer is None:
            answer = {"Error": {"Code": "NotChecked", "Message": "no answer was recorded for this id"}}
        state, status, code, detail = _state(answer)
        identity = answer.get("Identity") if answer else None
        rows.append(
            {
                "connection_id": connection_id,
                "workspace_id": _na_to_none(record.get("workspaceId")),
                "user_id": _na_to_none(record.get("userId")),
                "stored_at": _na_to_none(record.get(TIMESTAMP_UTC)),
                "state": state,
                "http_status": status,
                "error_code": code,
                "connected_at": answer.get("ConnectedAt") if state == "alive" and answer else None,
                "last_active_at": answer.get("LastActiveAt") if state == "alive" and answer else None,
                "source_ip": identity.get("SourceIp") if isinstance(identity, Mapping) else None,
                "detail": detail,
            }
        )
    return frames.from_rows(rows, STALE_COLUMNS)


def _na_to_none(value: Any) -> Any:
    return None if value is None or value is pd.NA or value is pd.NaT else value


def stale_rows(
    target: Target, items: pd.DataFrame, *, check: bool = True, max_workers: int = 8
) -> pd.DataFrame:
    """For each stored connection, whether API Gateway still knows it (GET only). See :func:`stale_frame`."""
    if not check:
        return stale_frame(items, None)
    return stale_frame(items, fetch_connections(target, _connection_ids(items), max_workers=max_workers))
