"""What the notebooks need beyond the kit's evidence functions, so a notebook holds no ``def`` or ``class``.

The notebooks under ``notebooks/`` are thin: a parameters cell, calls into the kit, tables, plots and prose.
This module holds the small pieces that would otherwise be written inside them:

    target_from_parameters(...)          the notebooks' parameters → a ``Target`` (the lab or a real account)
    connect_function(target)             the Lambda function the ``$connect`` route invokes
    hide_emails(frame)                   a copy of a frame with e-mail addresses and secrets masked
    root_cause_markdown / next_steps_markdown / write_summary     the diagnosis, for a reader and a machine
    log_errors(parsed)                   the log lines that report a failure
    connection_timeline, latency_plot, routes_over_time, durations_plot, permission_heatmap,
    index_coverage_plot                  matplotlib Figures; each draws "nothing to show" for an empty frame
    sample_connect_event(...)            a ``$connect`` event of the shape API Gateway sends a Lambda proxy
    exercise_connect_handlers(...)       the seed's and the fixed handler run on the same events, side by side

Figures are made with pyplot and closed before they are returned, so a notebook shows each exactly once
(when it is returned or passed to ``display``) under whatever backend the kernel uses; nothing here selects a
backend.

What this module must not do: write anywhere except through ``exercise_connect_handlers`` (the lab, or a
real account only when the caller passes ``allow_writes=True``, and it removes what it wrote) and
``write_summary`` (the path it is given); read files other than the lab file and the env file the target
resolution reads; or let a secret reach a figure, a frame or a message (e-mail addresses, which the seed uses
as tokens, can be masked with ``hide_emails``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import secrets
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import Any, Final
from urllib.parse import quote, urlencode

import boto3
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from kit import config, diagnose, frames, redact_display
from kit.errors import ConfigurationError, error_facts
from kit.handler import app, seed
from kit.lab import gateway_core
from kit.logparse import LOG_COLUMNS
from kit.markup import figure_text, markdown_code, markdown_text
from kit.probe_core import STEPS
from kit.target import Target

log = logging.getLogger("kit.notebook")

TARGET_KINDS: Final = ("lab", "aws")
NOTHING: Final = "nothing to show"
MAX_TIMELINE_ROWS: Final = 40

# Colours carry one meaning everywhere: green did what a healthy stack does, red did not, grey unknown.
GOOD: Final = "#2e7d32"
BAD: Final = "#c62828"
WARN: Final = "#ef6c00"
UNKNOWN: Final = "#9e9e9e"
OTHER: Final = "#1565c0"
SLOW: Final = "#6a1b9a"


# --------------------------------------------------------------------------------------------------
# Targets


def target_from_parameters(  # noqa: PLR0917 - the notebooks' parameters, in their order
    target: str,
    profile: str,
    region: str,
    table: str,
    env_file: str,
    websocket_url: str,
    *,
    allow_writes: bool = False,
) -> Target:
    """The target a notebook's parameters name: ``lab`` reads the running lab's file, ``aws`` an account.

    Papermill parameters cannot be None, so an empty string means "not given" (the env file, the environment
    and the defaults decide, as for ``kit --target aws``). The lab ignores the other parameters: the lab file
    says everything. ``allow_writes`` makes a real account writable (``kit --allow-writes``); read-only is
    the default.
    """
    kind = target.strip().lower()
    if kind == "lab":
        from kit.lab.lab import lab_target

        return lab_target()
    if kind == "aws":
        return Target.aws(
            profile=profile or None,
            region=region or None,
            table=table or None,
            env_file=env_file or None,
            websocket_url=websocket_url or None,
            allow_writes=allow_writes,
        )
    raise ConfigurationError(
        f"The target parameter is {target!r}; use 'lab' (a running `kit lab up`) or 'aws' (a real account)."
    )


def connect_function(target: Target) -> str:
    """The Lambda function the API's ``$connect`` route invokes (else the API's first function)."""
    answers = config.fetch_api(target)
    routes = config.routes_frame(answers.routes, answers.integrations)
    connect = routes[routes["route_key"] == "$connect"]["function_name"].dropna().tolist()
    names = [str(name) for name in connect] or config.functions_for_api(target, answers)
    if not names:
        raise ConfigurationError(
            f"No route of API {target.api_id} in {target.region} invokes a Lambda function; name the "
            "$connect function with the function_name parameter."
        )
    return names[0]


# --------------------------------------------------------------------------------------------------
# Presenting the diagnosis


def mask_text(text: str) -> str:
    """``text`` as a report shows it: ``ada@example.com`` → ``a***@***#3f9a1c`` in every spelling (``%40``,
    ``\\u0040``, ...), and secrets masked (:func:`kit.redact_display.kernel_redactor`)."""
    return redact_display.kernel_redactor().redact_text(text)


def hide_emails(frame: pd.DataFrame | None, enabled: bool = True) -> pd.DataFrame:
    """A copy of ``frame`` as a report shows it: e-mail addresses (the seed's tokens) and secrets masked, by
    shape in every text cell and by structure (a ``password`` column, a name/value pair naming a secret).

    ``enabled`` False returns the frame unchanged, so a notebook passes its ``mask_emails`` parameter through.
    None gives an empty frame. Column dtypes (but a masked column's) and ``attrs`` are kept. For display:
    the text of a long frame is redacted in the rows a display shows (:func:`kit.redact_display.shown_rows`),
    which keeps a frame of a million log lines as quick to show as before.
    """
    if frame is None:
        return pd.DataFrame()
    if not enabled or frame.empty:
        return frame
    masked: pd.DataFrame = redact_display.kernel_redactor().redact_frame(
        frame, rows=redact_display.shown_rows()
    )
    masked.attrs = dict(frame.attrs)
    return masked


def _shown(hide: bool) -> Callable[[object], str]:
    """How a notebook shows a value in Markdown: e-mail addresses masked (unless ``hide`` is False), then
    escaped, because summaries, evidence and next steps quote the system under investigation."""
    if hide:
        return lambda value: markdown_text(mask_text(str(value)))
    # Secrets are masked before escaping either way: escaped first, a secret with Markdown's characters
    # ($, *, (, ...) would be spelled otherwise in the notebook and slip past the report's redactor.
    keeping = redact_display.kernel_redactor(keep_emails=True)
    return lambda value: markdown_text(keeping.redact_text(str(value)))


def root_cause_markdown(diagnosis: diagnose.Diagnosis, *, hide: bool = True) -> str:
    """The ranked root cause as Markdown: id, summary, the evidence that decided it, the next step.

    Every piece is text, never markup: a connection id ``<img src=x onerror=…>`` in the evidence shows as
    those characters.
    """
    cause = diagnosis.root_cause
    shown = _shown(hide)
    if cause["id"] == "none":
        return (
            f"### No root cause found\n\n{shown(cause['summary'])}\n\n"
            f"**Next step:** {shown(cause['next_step'])}"
        )
    evidence = "\n".join(f"- {shown(item)}" for item in cause["evidence"]) or "- (none recorded)"
    return (
        f"### Root cause: {markdown_code(cause['id'])}\n\n{shown(cause['summary'])}\n\n"
        f"**Evidence**\n\n{evidence}\n\n**Next step:** {shown(cause['next_step'])}"
    )


def next_steps_markdown(diagnosis: diagnose.Diagnosis, *, hide: bool = True) -> str:
    """Every distinct next step of the failing, then the warning, findings, as a Markdown list (escaped as
    :func:`root_cause_markdown`)."""
    shown = _shown(hide)
    findings = diagnosis.findings
    lines: list[str] = []
    seen: set[str] = set()
    for verdict in ("fail", "warn"):
        part = findings[(findings["verdict"] == verdict) & findings["next_step"].fillna("").ne("")]
        for _, row in part.iterrows():
            step = str(row["next_step"])
            if step in seen:
                continue
            seen.add(step)
            lines.append(f"- **{markdown_text(row['check'])}** ({verdict}): {shown(step)}")
    if not lines:
        return "Nothing to do: no check failed or warned."
    return "\n".join(lines)


def write_summary(diagnosis: diagnose.Diagnosis, path: str | os.PathLike[str]) -> Path | None:
    """Write the diagnosis (``root_cause`` and ``findings``) as JSON to ``path``; empty writes nothing."""
    if not str(path):
        return None
    destination = Path(path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_text(diagnose.to_json(diagnosis) + "\n", encoding="utf-8")
    return destination


ERROR_LINE_COLUMNS: Final[tuple[str, ...]] = (
    "ts",
    "source",
    "kind",
    "request_id",
    "connection_id",
    "error_type",
    "app_error_code",
    "message",
)


def log_errors(parsed: pd.DataFrame | None) -> pd.DataFrame:
    """One row per parsed log line (``kit.logparse.parse``) that reports a failure: an uncaught error, a
    timeout, a runtime exit, or a handler line carrying an AWS error code (the seed's swallowed
    ``AccessDeniedException``). Columns :data:`ERROR_LINE_COLUMNS`, with ``LOG_COLUMNS``' dtypes."""
    columns = list(ERROR_LINE_COLUMNS)
    if parsed is None or parsed.empty or _missing(parsed, columns):
        return frames.empty({name: LOG_COLUMNS[name] for name in columns})
    failing = parsed["kind"].isin(["error", "timeout", "runtime_exit"]) | parsed["app_error_code"].notna()
    return parsed.loc[failing, columns].reset_index(drop=True)


# --------------------------------------------------------------------------------------------------
# Plots


def _figure(title: str, size: tuple[float, float] = (10.0, 4.0)) -> tuple[Figure, Axes]:
    figure, axes = plt.subplots(figsize=size, layout="constrained")
    # Closed at once: pyplot forgets it, so a kernel shows it only where the notebook returns or displays it.
    plt.close(figure)
    axes.set_title(title, loc="left")
    return figure, axes


def _nothing(axes: Axes, why: str) -> None:
    axes.text(
        0.5,
        0.5,
        f"{NOTHING}: {why}",
        transform=axes.transAxes,
        ha="center",
        va="center",
        color="0.35",
        wrap=True,
    )
    axes.set_xticks([])
    axes.set_yticks([])


def _missing(frame: pd.DataFrame | None, columns: Iterable[str]) -> list[str]:
    if frame is None:
        return list(columns)
    return [name for name in columns if name not in frame.columns]


def _utc_series(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True, errors="coerce")


def _date_axis(axes: Axes) -> None:
    """Times on x, labelled concisely at whatever scale the data spans (milliseconds to days), in UTC."""
    locator = mdates.AutoDateLocator(tz="UTC")  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz="UTC"))  # type: ignore[no-untyped-call]
    axes.set_xlabel("time (UTC)")


def _bool_or_none(value: object) -> bool | None:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return bool(value)


def _written_colour(written: bool | None) -> str:
    return UNKNOWN if written is None else GOOD if written else BAD


def connection_timeline(lifecycle: pd.DataFrame | None, probe: pd.DataFrame | None = None) -> Figure:
    """One horizontal bar per connection, from connect to disconnect (``kit.logparse.connection_lifecycle``).

    Colour: green when the handler said it stored the item, red when it logged a failed write, grey when the
    logs do not say; a probe frame (``kit.probe.run_probe``), when given, settles a connection it found. A
    hatched bar was still open when the logs were read. The label at the start of each bar is the status the
    client got for the handshake. The most recent ``MAX_TIMELINE_ROWS`` connections are drawn.
    """
    figure, axes = _figure("Connections: connect → disconnect, coloured by whether the item was written")
    needed = ("connection_id", "connect_ts", "disconnect_ts", "connect_status", "item_written")
    missing = _missing(lifecycle, needed)
    if lifecycle is None or missing or lifecycle.empty:
        _nothing(axes, "no connection in the logs" if not missing else f"no {', '.join(missing)} column")
        return figure
    rows = lifecycle.copy()
    rows["_start"] = _utc_series(rows["connect_ts"])
    rows["_end"] = _utc_series(rows["disconnect_ts"])
    rows["_start"] = rows["_start"].fillna(rows["_end"])
    rows = rows[rows["_start"].notna()].sort_values("_start", kind="stable")
    if rows.empty:
        _nothing(axes, "no connection has a connect or disconnect time")
        return figure
    dropped = max(0, len(rows) - MAX_TIMELINE_ROWS)
    rows = rows.tail(MAX_TIMELINE_ROWS).reset_index(drop=True)

    settled: dict[str, bool] = {}
    probe_note = ""
    if probe is not None and not probe.empty and not _missing(probe, ("step", "ok", "connection_id")):
        stored = probe[probe["step"] == "item-stored"]
        for connection_id, ok in zip(stored["connection_id"], stored["ok"], strict=True):
            flag = _bool_or_none(ok)
            if isinstance(connection_id, str) and flag is not None:
                settled[connection_id] = flag
        stored_ok = stored["ok"].astype("boolean").fillna(False).astype(bool)
        probe_note = f"; probe: {int(stored_ok.sum())} of {len(stored)} clients' items stored"

    last_seen = pd.concat([rows["_start"], rows["_end"]]).max()
    minimum = pd.Timedelta(milliseconds=300)
    for y, (_, row) in enumerate(rows.iterrows()):
        start = row["_start"]
        is_open = pd.isna(row["_end"])
        end = last_seen if is_open else row["_end"]
        end = max(end, start + minimum)
        written = settled.get(str(row["connection_id"]), _bool_or_none(row["item_written"]))
        left = start.to_pydatetime()
        axes.barh(
            y,
            (end - start).to_pytimedelta(),
            left=left,
            height=0.6,
            color=_written_colour(written),
            hatch="//" if is_open else None,
            edgecolor="0.2",
            linewidth=0.5,
        )
        status = row["connect_status"]
        axes.annotate(
            "handshake ?" if pd.isna(status) else f"handshake {int(status)}",
            (left, y),
            xytext=(4, 0),
            textcoords="offset points",
            ha="left",
            va="center",
            fontsize=8,
            color="white" if written is not None else "black",
        )
    axes.set_yticks(range(len(rows)), [figure_text(v) for v in rows["connection_id"]], fontsize=8)
    axes.invert_yaxis()
    axes.xaxis_date()
    _date_axis(axes)
    axes.margins(x=0.08)
    axes.legend(
        handles=[
            Patch(color=GOOD, label="item written"),
            Patch(color=BAD, label="write failed (logged)"),
            Patch(color=UNKNOWN, label="logs do not say"),
            Patch(facecolor="white", edgecolor="0.2", hatch="//", label="still open"),
        ],
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=8,
    )
    more = f" ({dropped} older not drawn)" if dropped else ""
    axes.set_title(
        "Connections: connect → disconnect, coloured by whether the item was written\n"
        f"{len(rows)} connection(s){more}{probe_note}",
        loc="left",
    )
    return figure


def _ok_colour(value: object) -> str:
    flag = _bool_or_none(value)
    return UNKNOWN if flag is None else GOOD if flag else BAD


def latency_plot(probe_frame: pd.DataFrame | None) -> Figure:
    """Each probe step's latency per client (``kit.probe.PROBE_COLUMNS``), green passed, red failed.

    A short black tick marks the median of the step. The x axis turns logarithmic when latencies span more
    than two orders of magnitude (a handshake of 300 ms next to a send of 0.1 ms).
    """
    figure, axes = _figure(
        "Probe: latency of each step per client (ms); steps that failed before timing anything are not "
        "drawn,\nso read the summary table beside it"
    )
    missing = _missing(probe_frame, ("step", "latency_ms", "ok", "client"))
    if probe_frame is None or missing or probe_frame.empty:
        _nothing(axes, "no probe ran" if not missing else f"no {', '.join(missing)} column")
        return figure
    timed = probe_frame[probe_frame["latency_ms"].notna()]
    if timed.empty:
        _nothing(axes, "no step of the probe has a latency")
        return figure
    steps = [step for step in STEPS if step in set(timed["step"].dropna())]
    steps += sorted(set(timed["step"].dropna().astype(str)) - set(steps))
    position = {step: index for index, step in enumerate(steps)}
    latencies = timed["latency_ms"].astype(float)
    jitter = (timed["client"].astype(int) % 5 - 2) * 0.08
    ys = timed["step"].map(position).astype(float) + jitter
    axes.scatter(latencies, ys, c=[_ok_colour(v) for v in timed["ok"]], s=24, edgecolors="none")
    for step, part in timed.groupby("step"):
        middle = float(part["latency_ms"].astype(float).median())
        axes.plot([middle, middle], [position[str(step)] - 0.3, position[str(step)] + 0.3], color="black")
    positive = latencies[latencies > 0]
    if not positive.empty and float(positive.max()) / float(positive.min()) > 100:
        axes.set_xscale("log")
    axes.set_yticks(range(len(steps)), [figure_text(step) for step in steps])
    axes.invert_yaxis()
    axes.set_xlabel("latency (ms)")
    axes.legend(
        handles=[Patch(color=GOOD, label="passed"), Patch(color=BAD, label="failed")],
        loc="lower right",
        fontsize=8,
    )
    return figure


_ROUTE_ORDER: Final = ("$connect", "message", "presence", "typing", "$default", "$disconnect")
_TEXT_STATUS_COLOURS: Final = {"success": GOOD, "error": BAD, "timeout": SLOW, "unknown": UNKNOWN}
NO_ROUTE: Final = "(route not logged)"


def _status_colour(status: str) -> str:
    if status in _TEXT_STATUS_COLOURS:
        return _TEXT_STATUS_COLOURS[status]
    if status.isdigit():
        code = int(status)
        return GOOD if code < 300 else WARN if code < 500 else BAD
    return UNKNOWN


def _first_column(frame: pd.DataFrame, names: Sequence[str]) -> str | None:
    return next((name for name in names if name in frame.columns), None)


def routes_over_time(invocations: pd.DataFrame | None) -> Figure:
    """Each request as a dot: x its time, y its route, colour its status (green 2xx, orange 4xx, red 5xx).

    Takes ``kit.logparse.invocations`` (``start_ts``, ``route_key``, ``status``) or the parsed log lines of
    ``kit.logparse.parse`` (``ts``, ``route_key``, ``http_status``). For parsed lines only the API Gateway
    access-log lines are drawn when there are any (one per request, with the status the client got), else
    every line that has a status. A Lambda that does not log its route shows under "(route not logged)".
    """
    figure, axes = _figure("Requests by route over time, coloured by status")
    if invocations is None or invocations.empty:
        _nothing(axes, "no request in the logs")
        return figure
    frame = invocations
    time_column = _first_column(frame, ("start_ts", "ts", "connect_ts"))
    status_column = _first_column(frame, ("http_status", "status"))
    if time_column is None or status_column is None:
        _nothing(axes, "the frame has no time or status column")
        return figure
    if "source" in frame.columns:
        access = frame[frame["source"] == "apigw_access"]
        frame = access if not access.empty else frame[frame[status_column].notna()]
    if "route_key" in frame.columns:
        routes = frame["route_key"].astype("string").fillna(NO_ROUTE)
    else:
        routes = pd.Series(NO_ROUTE, index=frame.index, dtype="string")
    times = _utc_series(frame[time_column])
    statuses = frame[status_column].astype("string").fillna("unknown")
    keep = times.notna()
    if not keep.any():
        _nothing(axes, "no request has a time")
        return figure
    times, routes, statuses = times[keep], routes[keep], statuses[keep]
    present = set(routes.astype(str))
    order = [r for r in _ROUTE_ORDER if r in present] + sorted(present - set(_ROUTE_ORDER))
    position = {route: index for index, route in enumerate(order)}
    for status in sorted(set(statuses.astype(str))):
        chosen = statuses == status
        axes.scatter(
            [t.to_pydatetime() for t in times[chosen]],
            [position[str(r)] for r in routes[chosen]],
            color=_status_colour(status),
            label=figure_text(status),
            s=30,
            alpha=0.8,
            edgecolors="none",
        )
    axes.set_yticks(range(len(order)), [figure_text(route) for route in order])
    axes.invert_yaxis()
    axes.set_ylim(len(order) - 0.5, -0.5)
    _date_axis(axes)
    axes.legend(title="status", loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return figure


def durations_plot(invocations: pd.DataFrame | None) -> Figure:
    """Each Lambda invocation's duration over time (``kit.logparse.invocations``), colour by its status.

    A ringed dot is a cold start (its ``init_ms`` comes on top); the dashed line is the median duration.
    """
    figure, axes = _figure("Lambda invocations: duration over time")
    missing = _missing(invocations, ("start_ts", "duration_ms"))
    if invocations is None or missing or invocations.empty:
        _nothing(axes, "no invocation in the logs" if not missing else f"no {', '.join(missing)} column")
        return figure
    frame = invocations.assign(_start=_utc_series(invocations["start_ts"]))
    frame = frame[frame["_start"].notna() & frame["duration_ms"].notna()]
    if frame.empty:
        _nothing(axes, "no invocation has both a start time and a duration (REPORT line)")
        return figure
    times = [t.to_pydatetime() for t in frame["_start"]]
    durations = frame["duration_ms"].astype(float)
    statuses = (
        frame["status"].astype("string").fillna("unknown")
        if "status" in frame.columns
        else pd.Series("unknown", index=frame.index)
    )
    axes.scatter(times, durations, c=[_status_colour(str(s)) for s in statuses], s=28, edgecolors="none")
    if "cold_start" in frame.columns:
        cold = frame["cold_start"].astype("boolean").fillna(False).astype(bool).to_numpy()
        if cold.any():
            axes.scatter(
                [t for t, c in zip(times, cold, strict=True) if c],
                durations[cold],
                s=110,
                facecolors="none",
                edgecolors="black",
                label="cold start",
            )
    axes.axhline(float(durations.median()), color="0.4", linestyle="--", linewidth=1, label="median")
    _date_axis(axes)
    axes.set_ylabel("duration (ms)")
    handles = [
        Patch(color=_status_colour(s), label=figure_text(s)) for s in sorted(set(statuses.astype(str)))
    ]
    existing, _ = axes.get_legend_handles_labels()
    axes.legend(handles=handles + existing, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return figure


DECISIONS: Final = ("allowed", "implicit-deny", "explicit-deny")
_SID: Final = re.compile(r'Sid "([^"]+)"')
_STATEMENT: Final = re.compile(r"Statement\[\d+\]")


def _decider(statement: object, decision: str) -> str:
    if not isinstance(statement, str) or not statement:
        return "no statement allows it" if decision == "implicit-deny" else decision
    sid = _SID.search(statement)
    if sid:
        label = f"Sid {sid.group(1)}"
        return label if len(label) <= 24 else label[:23] + "…"
    found = _STATEMENT.search(statement)
    return found.group(0) if found else statement[:30]


def _resource_tail(resource: object) -> str:
    text = str(resource) if isinstance(resource, str) else ""
    tail = text.split(":", 5)[-1] if text.startswith("arn:") else text
    return tail if len(tail) <= 48 else "…" + tail[-47:]


def permission_heatmap(permission_frame: pd.DataFrame | None) -> Figure:
    """The execution role's decision for each permission the handler needs (``kit.iam.PERMISSION_COLUMNS``).

    One row per action and resource, one column per decision (allowed, implicit deny, explicit deny); the
    filled cell is green when allowed, red when denied, and names the deciding statement (its Sid).
    """
    rows = 0 if permission_frame is None else len(permission_frame)
    figure, axes = _figure("Execution role: what it may do", (10.0, 1.6 + 0.45 * max(rows, 2)))
    missing = _missing(permission_frame, ("action", "resource", "decision"))
    if permission_frame is None or missing or permission_frame.empty:
        _nothing(axes, "no permission was evaluated" if not missing else f"no {', '.join(missing)} column")
        return figure
    frame = permission_frame.reset_index(drop=True)
    matrix = [[0] * len(DECISIONS) for _ in range(len(frame))]
    statements = frame["statement"] if "statement" in frame.columns else pd.Series(None, index=frame.index)
    for index, (decision, statement) in enumerate(zip(frame["decision"], statements, strict=True)):
        if not isinstance(decision, str) or decision not in DECISIONS:
            continue
        column = DECISIONS.index(decision)
        matrix[index][column] = 1 if decision == "allowed" else 2
        axes.text(
            column,
            index,
            figure_text(_decider(statement, decision)),
            ha="center",
            va="center",
            fontsize=8,
            color="white",
        )
    axes.imshow(
        matrix,
        cmap=ListedColormap(["#f2f2f2", GOOD, BAD]),
        vmin=0,
        vmax=2,
        aspect="auto",
        interpolation="nearest",
    )
    labels = [
        figure_text(f"{action}  {_resource_tail(resource)}")
        for action, resource in zip(frame["action"], frame["resource"], strict=True)
    ]
    axes.set_yticks(range(len(frame)), labels, fontsize=8)
    axes.set_xticks(range(len(DECISIONS)), DECISIONS)
    axes.xaxis.tick_top()
    axes.set_xticks([x - 0.5 for x in range(1, len(DECISIONS))], minor=True)
    axes.set_yticks([y - 0.5 for y in range(1, len(frame))], minor=True)
    axes.grid(which="minor", color="white", linewidth=2)
    axes.tick_params(which="minor", length=0)
    return figure


def index_coverage_plot(coverage: pd.DataFrame | None) -> Figure:
    """How many stored items ``workspaceIndex`` holds, and why the others are missing from it.

    Takes ``kit.dynamo.table.index_coverage`` (one row per item); bars: "in the index", then each ``why_not``.
    """
    figure, axes = _figure("Stored connections: in workspaceIndex, or why not")
    missing = _missing(coverage, ("in_index", "why_not"))
    if coverage is None or missing or coverage.empty:
        _nothing(axes, "the table holds no item" if not missing else f"no {', '.join(missing)} column")
        return figure
    in_index = coverage["in_index"].astype("boolean").fillna(False).astype(bool)
    counts: dict[str, int] = {"in the index": int(in_index.sum())}
    for reason, count in coverage.loc[~in_index, "why_not"].fillna("unknown").value_counts().items():
        counts[str(reason)] = int(count)
    labels = list(counts)
    values = [counts[label] for label in labels]
    colours = [
        GOOD if label == "in the index" else WARN if label == "not-yet-in-index" else BAD for label in labels
    ]
    bars = axes.barh(range(len(labels)), values, color=colours)
    axes.bar_label(bars, padding=3)
    axes.set_yticks(range(len(labels)), [figure_text(label) for label in labels])
    axes.invert_yaxis()
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel(f"items (of {len(coverage)})")
    axes.margins(x=0.1)
    return figure


# --------------------------------------------------------------------------------------------------
# The $connect handlers, run here on real-shaped events


def sample_connect_event(
    token: str | None,
    workspace_id: str | None,
    *,
    connection_id: str | None = None,
    api_id: str | None = None,
    stage: str | None = None,
    region: str = "us-east-2",
    now_ms: int | None = None,
    rng: Random | None = None,
) -> dict[str, Any]:
    """The event API Gateway sends a Lambda proxy integration when the browser hook connects.

    The query string is the hook's (``token`` then ``workspaceId``, ``@`` percent-encoded); None leaves a
    parameter out, and with both None the event has no query-string keys at all, as a real one. Built with the
    lab gateway's event code, so the keys are those of real captures.
    """
    random = rng or Random(secrets.randbits(64))
    api = api_id or "k7d2xq9wme"
    stage_name = stage or "prod"
    moment = now_ms if now_ms is not None else int(time.time() * 1000)
    source_ip = "198.51.100.23"
    user_agent = (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
    )
    connection = gateway_core.Connection(
        connection_id=connection_id or gateway_core.new_connection_id(random),
        connected_at_ms=moment,
        source_ip=source_ip,
        user_agent=user_agent,
        api_id=api,
        domain_name=f"{api}.execute-api.{region}.amazonaws.com",
        stage=stage_name,
    )
    client_headers = [
        ("Host", connection.domain_name),
        ("Origin", "https://chat.example.com"),
        ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
        ("User-Agent", user_agent),
    ]
    headers = gateway_core.forwarded_connect_headers(
        client_headers, source_ip=source_ip, trace_id=gateway_core.new_trace_id(random, moment)
    )
    query = [
        (name, value)
        for name, value in (("token", token), ("workspaceId", workspace_id))
        if value is not None
    ]
    return gateway_core.connect_event(
        connection,
        request_id=gateway_core.new_request_id(random, like=connection.connection_id),
        request_time_ms=moment,
        headers=headers,
        raw_query=urlencode(query, quote_via=quote) if query else None,
    )


@dataclass(frozen=True)
class HandlerCase:
    """One way a client (or the deployment) can connect; both handlers get the same event."""

    name: str
    token: str | None  # the ``token`` query parameter; None leaves it out
    include_workspace_id: bool  # send ``workspaceId`` (the run's own workspace) or leave it out
    shows: str  # what the case tells the reader
    table_suffix: str = ""  # appended to TABLE_NAME: a misspelt table name in the function's environment


CONNECT_CASES: Final[tuple[HandlerCase, ...]] = (
    HandlerCase(
        "browser hook",
        "ada@example.com",
        True,
        "The normal connect: both handlers store the item when the write is allowed.",
    ),
    HandlerCase(
        "no workspaceId",
        "ada@example.com",
        False,
        "The seed stores an item without workspaceId, which the sparse workspaceIndex never returns; "
        "the fixed handler refuses the connection (400).",
    ),
    HandlerCase(
        "no query string",
        None,
        False,
        "The seed stores an anonymous item; the fixed handler refuses the connection (400).",
    ),
    HandlerCase(
        "token not an e-mail",
        "ada",
        True,
        "The seed stores whatever the token says as userId; the fixed handler answers 401.",
    ),
    HandlerCase(
        "TABLE_NAME misspelt",
        "ada@example.com",
        True,
        "The write fails (ResourceNotFoundException): the seed still answers 200, so the client connects and "
        "nothing is stored; the fixed handler answers 500 and the handshake fails visibly.",
        table_suffix="-missing",
    ),
)

HANDLERS: Final[Mapping[str, types.ModuleType]] = {"seed": seed, "fixed": app}
LAMBDA_DEFAULT_LEVEL: Final = (
    logging.WARNING
)  # the Python runtime's root logger, without AWS_LAMBDA_LOG_LEVEL

HANDLER_RUN_COLUMNS: Final[dict[str, str]] = {
    "case": "string",
    "handler": "string",  # seed | fixed
    "connection_id": "string",
    "query": "string",  # the query string the event carried (tokens are e-mails: mask before showing)
    "table": "string",  # TABLE_NAME the handler ran with
    "status_code": "Int64",  # what the handler answered API Gateway; NA when not run
    "body": "string",
    "item_stored": "boolean",  # is an item with the connection id in the target's table afterwards
    "stored_fields": "string",  # the attributes the item had, comma-separated
    "in_index": "boolean",  # the item has a non-empty string workspaceId, so workspaceIndex holds it
    "log_level": "string",  # the highest level the handler logged at
    "lambda_keeps_log": "boolean",  # would Lambda's default (WARNING) keep that line
    "log": "string",  # the first line logged at that level
    "note": "string",
}


class _Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def _captured_logs(loggers: Sequence[logging.Logger]) -> Iterator[_Captured]:
    """Every record of ``loggers``, INFO included (what Lambda would drop), without printing any of them."""
    capture = _Captured()
    saved = [(logger, logger.level, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.addHandler(capture)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
    try:
        yield capture
    finally:
        for logger, level, propagate in saved:
            logger.removeHandler(capture)
            logger.setLevel(level)
            logger.propagate = propagate


_CLEARED_ENVIRONMENT: Final = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_LAMBDA_LOG_LEVEL",
    "AUTH_SECRET",
    "INDEX_NAME",
    "MANAGEMENT_ENDPOINT",
)


def _handler_environment_values(target: Target, table_name: str) -> dict[str, str]:
    """The environment a handler runs with here: the function's variables, aimed at the target's table."""
    if target.credentials is not None:
        key_id = target.credentials.access_key_id
        secret = target.credentials.secret_access_key.reveal()
        token = target.credentials.session_token.reveal() if target.credentials.session_token else None
    else:
        found = target.session().get_credentials()
        if found is None:
            raise ConfigurationError(
                f"No AWS credentials for target {target.label}; run `aws configure` or `aws sso login`, or "
                "pass a profile."
            )
        frozen = found.get_frozen_credentials()
        key_id, secret, token = frozen.access_key, frozen.secret_key, frozen.token
    values = {
        "TABLE_NAME": table_name,
        "TABLE_REGION": target.region,
        "AWS_REGION": target.region,
        "AWS_DEFAULT_REGION": target.region,
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AUTH_MODE": "email",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    if token:
        values["AWS_SESSION_TOKEN"] = token
    endpoint = target.endpoint_for("dynamodb")
    if endpoint:
        values["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
    if target.kind == "lab":
        # The lab must not depend on anyone's ~/.aws (a profile there could name another endpoint).
        values["AWS_CONFIG_FILE"] = os.devnull
        values["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    else:
        values["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true"
    return values


@contextlib.contextmanager
def _handler_environment(target: Target, table_name: str) -> Iterator[None]:
    """Run the block with the handler's environment in this process; everything is put back afterwards.

    Both handlers read their configuration from ``os.environ`` and build boto3 clients from it, as on Lambda;
    the seed uses boto3's default session, which is therefore replaced for the block and restored after.
    """
    values = _handler_environment_values(target, table_name)
    names = set(values) | set(_CLEARED_ENVIRONMENT) | {"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"}
    saved = {name: os.environ.get(name) for name in names}
    default_session = boto3.DEFAULT_SESSION
    try:
        for name in _CLEARED_ENVIRONMENT:
            os.environ.pop(name, None)
        os.environ.update(values)
        boto3.DEFAULT_SESSION = None
        yield
    finally:
        boto3.DEFAULT_SESSION = default_session
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _stored_item(target: Target, connection_id: str) -> tuple[dict[str, Any] | None, str | None]:
    """The item stored under ``connection_id`` in the target's table (consistent read), or a problem."""
    try:
        answer = target.client("dynamodb").get_item(
            TableName=target.table, Key={"connectionId": {"S": connection_id}}, ConsistentRead=True
        )
    except (ClientError, BotoCoreError) as exc:
        code, _ = error_facts(exc)
        return None, f"GetItem on {target.table} failed with {code}, so whether it was stored is unknown"
    item = answer.get("Item")
    return (dict(item) if isinstance(item, Mapping) else None), None


def _log_summary(records: Sequence[logging.LogRecord]) -> tuple[str | None, bool | None, str | None]:
    if not records:
        return None, None, None
    # The last line at the highest level: the seed's error line comes after its "Connection attempt" line.
    top = max(reversed(records), key=lambda record: record.levelno)
    return top.levelname, top.levelno >= LAMBDA_DEFAULT_LEVEL, top.getMessage()[:240]


def _clip(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def exercise_connect_handlers(
    target: Target,
    cases: Sequence[HandlerCase] = CONNECT_CASES,
    *,
    allow_writes: bool = False,
) -> pd.DataFrame:
    """Run the seed's and the fixed ``$connect`` handler on the same events, here, against the target's table.

    One row per case and handler (:data:`HANDLER_RUN_COLUMNS`). The handlers run in this process with the
    function's environment pointed at the target (``TABLE_NAME``, region, the kit's own credentials), so this
    tests the code, not the execution role. Each connect gets a fresh connection id in a workspace of its own
    (``kit-notebook-<random>``), and every item written is deleted afterwards.

    The lab is always written to. A real account only with ``allow_writes=True``; otherwise nothing runs and
    each row says what would have been done.
    """
    run_id = secrets.token_hex(3)
    workspace = f"kit-notebook-{run_id}"
    writes = target.kind == "lab" or allow_writes
    random = Random(secrets.randbits(64))
    rows: list[dict[str, Any]] = []
    written: list[str] = []
    loggers = [logging.getLogger(seed.__name__), logging.getLogger(app.LOGGER_NAME)]
    try:
        for case in cases:
            for handler_name, module in HANDLERS.items():
                connection_id = gateway_core.new_connection_id(random)
                event = sample_connect_event(
                    case.token,
                    workspace if case.include_workspace_id else None,
                    connection_id=connection_id,
                    api_id=target.api_id,
                    stage=target.stage,
                    region=target.region,
                    rng=random,
                )
                table_name = target.table + case.table_suffix
                row: dict[str, Any] = {
                    "case": case.name,
                    "handler": handler_name,
                    "connection_id": connection_id,
                    "query": urlencode(event.get("queryStringParameters") or {}, quote_via=quote),
                    "table": table_name,
                }
                if not writes:
                    row["note"] = (
                        f"not run (allow_writes is False): {handler_name} handler() would run here and may "
                        f"put an item into {table_name} in {target.region}, deleted again afterwards"
                    )
                    rows.append(row)
                    continue
                context = types.SimpleNamespace(aws_request_id=f"kit-notebook-{run_id}-{len(rows)}")
                with _captured_logs(loggers) as capture, _handler_environment(target, table_name):
                    response = module.handler(event, context)
                item, problem = _stored_item(target, connection_id)
                if item is not None:
                    written.append(connection_id)
                level, kept, line = _log_summary(capture.records)
                workspace_value = (item or {}).get("workspaceId", {})
                row |= {
                    "status_code": response.get("statusCode"),
                    "body": _clip(str(response.get("body") or "")),
                    "item_stored": None if problem else item is not None,
                    "stored_fields": ", ".join(sorted(item)) if item else None,
                    "in_index": (
                        bool(workspace_value.get("S")) if isinstance(workspace_value, Mapping) else False
                    )
                    if item
                    else None,
                    "log_level": level,
                    "lambda_keeps_log": kept,
                    "log": line,
                    "note": problem,
                }
                rows.append(row)
    finally:
        cleanup = _remove_items(target, written)
    frame = frames.from_rows(rows, HANDLER_RUN_COLUMNS)
    frame.attrs["workspace_id"] = workspace
    frame.attrs["cleanup"] = cleanup if writes else "nothing ran (allow_writes is False), nothing was written"
    return frame


def _remove_items(target: Target, connection_ids: Sequence[str]) -> str:
    """Delete the items this run wrote (fresh ids, so nobody else's); say what happened in a sentence."""
    if not connection_ids:
        return "nothing was stored, so nothing was removed"
    client = target.client("dynamodb")
    failed: list[str] = []
    for connection_id in connection_ids:
        try:
            client.delete_item(TableName=target.table, Key={"connectionId": {"S": connection_id}})
        except (ClientError, BotoCoreError) as exc:
            log.warning("could not remove %s from %s: %s", connection_id, target.table, exc)
            failed.append(connection_id)
    if failed:
        return (
            f"{len(connection_ids) - len(failed)} item(s) removed; {len(failed)} could not be: "
            f"{', '.join(failed)} (delete them from {target.table} by hand)"
        )
    return f"the {len(connection_ids)} item(s) written were removed from {target.table}"


def compare_handlers(results: pd.DataFrame, cases: Sequence[HandlerCase] = CONNECT_CASES) -> pd.DataFrame:
    """One row per case: each handler's status, whether it stored an item, and whether the index has it."""
    shows = {case.name: case.shows for case in cases}
    table_rows: list[dict[str, Any]] = []
    for case_name, part in results.groupby("case", sort=False):
        row: dict[str, Any] = {"case": case_name}
        for handler_name in HANDLERS:
            mine = part[part["handler"] == handler_name]
            first = mine.iloc[0] if not mine.empty else None
            row[f"{handler_name} status"] = None if first is None else first["status_code"]
            row[f"{handler_name} stored"] = None if first is None else first["item_stored"]
            row[f"{handler_name} in index"] = None if first is None else first["in_index"]
        row["what it shows"] = shows.get(str(case_name), "")
        table_rows.append(row)
    columns = {"case": "string"}
    for handler_name in HANDLERS:
        columns |= {
            f"{handler_name} status": "Int64",
            f"{handler_name} stored": "boolean",
            f"{handler_name} in index": "boolean",
        }
    columns["what it shows"] = "string"
    return frames.from_rows(table_rows, columns).set_index("case")
