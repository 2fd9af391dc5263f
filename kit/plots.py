"""The notebooks' figures: each evidence frame drawn the way a reader takes it in at a glance.

    connection_timeline(lifecycle, probe)   a bar per connection, connect → disconnect, coloured by its write
    latency_plot(probe_frame)               each probe step's latency per client
    routes_over_time(invocations)           each request as a dot: its time, its route, its status
    durations_plot(invocations)             each Lambda invocation's duration over time, cold starts ringed
    permission_heatmap(permissions)         the execution role's decision per action and resource
    index_coverage_plot(coverage)           stored items in ``workspaceIndex``, or why not

Each takes the frame a kit function returns (named in its docstring) and returns a matplotlib ``Figure``; an
empty frame, None, or a frame without the needed columns draws "nothing to show" and why. Figures are made
with pyplot and closed before they are returned, so a notebook shows each exactly once (when it is returned
or passed to ``display``) under whatever backend the kernel uses; nothing here selects a backend.

What this module must not do: read or write anything, or put a value from the system under investigation on
a figure without :func:`kit.markup.figure_text` (a connection id, a route, a status or a Sid is data, never
mathtext). Masking e-mail addresses is the caller's choice (:func:`kit.notebook.hide_emails` for frames).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Final

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from kit.markup import figure_text
from kit.probe_core import STEPS

NOTHING: Final = "nothing to show"
MAX_TIMELINE_ROWS: Final = 40

# Colours carry one meaning everywhere: green did what a healthy stack does, red did not, grey unknown.
GOOD: Final = "#2e7d32"
BAD: Final = "#c62828"
WARN: Final = "#ef6c00"
UNKNOWN: Final = "#9e9e9e"
SLOW: Final = "#6a1b9a"


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
    """Each probe step's latency per client (``kit.probe_core.PROBE_COLUMNS``), green passed, red failed.

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

    Takes ``kit.dynamo.items.index_coverage`` (one row per item); bars: "in the index", then each ``why_not``.
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
