"""How big a bench run is: sizes read from the environment, with one scale knob for quick runs.

``KIT_BENCH_SCALE`` (default 1) multiplies the connection counts, the hold time and the evidence inputs, so
``KIT_BENCH_SCALE=0.1 make bench`` is a quick run of the same measurements. Each size can also be set on its
own; an explicit size wins over the scale. Pure: reads a mapping, never ``os.environ`` itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kit.errors import ConfigurationError

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results.json"


@dataclass(frozen=True)
class Size:
    variable: str
    default: float
    scaled: bool  # multiplied by KIT_BENCH_SCALE unless set explicitly
    minimum: float
    help: str


SIZES: dict[str, Size] = {
    "connects": Size("KIT_BENCH_CONNECTS", 300, True, 2, "connections opened for the $connect/s figure"),
    "concurrency": Size("KIT_BENCH_CONCURRENCY", 16, False, 1, "handshakes in flight (and baseline threads)"),
    "held": Size(
        "KIT_BENCH_HELD", 1000, True, 2, "connections held at once in one workspace (the fan-out's)"
    ),
    "hold_s": Size("KIT_BENCH_HOLD_S", 5.0, True, 0.5, "seconds held before they are checked"),
    "repeats": Size(
        "KIT_BENCH_REPEATS", 3, False, 1, "timed broadcasts; rounds of $connect/s and of each evidence race"
    ),
    "start_runs": Size("KIT_BENCH_START_RUNS", 3, False, 1, "lab starts (and engine starts) timed"),
    "log_lines": Size("KIT_BENCH_LOG_LINES", 200_000, True, 100, "log lines parsed for lines/s"),
    "dynamo_items": Size("KIT_BENCH_DYNAMO_ITEMS", 50_000, True, 10, "table items read from scan pages"),
    "memory_lines": Size("KIT_BENCH_MEMORY_LINES", 1_000_000, True, 100, "log lines parsed for peak memory"),
    "file_mb": Size(
        "KIT_BENCH_FILE_MB", 200, True, 1, "MB of raw log lines `kit logs parse` reads from a file"
    ),
    "insights_events": Size(
        "KIT_BENCH_INSIGHTS_EVENTS",
        1_000_000,
        True,
        1000,
        "events in the simulated account's log window",
    ),
    "report_runs": Size("KIT_BENCH_REPORT_RUNS", 3, False, 1, "warm reports (and floor runs) timed"),
}
SCALE_ENV = "KIT_BENCH_SCALE"
OUTPUT_ENV = "KIT_BENCH_OUTPUT"
# `make report`'s figure runs every notebook; a comma-separated list of names runs only those (the bench's
# smoke test times one, to check the figure's shape at a fraction of the cost).
REPORT_NOTEBOOKS_ENV = "KIT_BENCH_REPORT_NOTEBOOKS"
# Below this scale one start of each (and one warm report and floor) is timed instead of three: each costs
# seconds.
FULL_START_RUNS_SCALE = 0.5


@dataclass(frozen=True)
class BenchSettings:
    scale: float = 1.0
    connects: int = 300
    concurrency: int = 16
    held: int = 1000
    hold_s: float = 5.0
    repeats: int = 3
    start_runs: int = 3
    log_lines: int = 200_000
    dynamo_items: int = 50_000
    memory_lines: int = 1_000_000
    file_mb: float = 200.0
    report_runs: int = 3
    insights_events: int = 1_000_000
    output: Path = DEFAULT_OUTPUT
    report_notebooks: tuple[str, ...] = ()  # () means every notebook

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> BenchSettings:
        """Sizes from ``environ``: explicit ``KIT_BENCH_<SIZE>`` values, else the defaults times the scale."""
        scale = read_scale(environ)

        def size(name: str) -> float:
            return read_size(environ, SIZES[name], scale)

        start_runs = size("start_runs")
        if SIZES["start_runs"].variable not in environ and scale < FULL_START_RUNS_SCALE:
            start_runs = 1
        report_runs = size("report_runs")
        if SIZES["report_runs"].variable not in environ and scale < FULL_START_RUNS_SCALE:
            report_runs = 1
        output = environ.get(OUTPUT_ENV)
        return cls(
            scale=scale,
            connects=round(size("connects")),
            concurrency=round(size("concurrency")),
            held=round(size("held")),  # at least 2: a broadcast needs a sender and a receiver
            hold_s=float(size("hold_s")),
            repeats=round(size("repeats")),
            start_runs=round(start_runs),
            log_lines=round(size("log_lines")),
            dynamo_items=round(size("dynamo_items")),
            memory_lines=round(size("memory_lines")),
            file_mb=float(size("file_mb")),
            report_runs=round(report_runs),
            insights_events=round(size("insights_events")),
            output=Path(output) if output else DEFAULT_OUTPUT,
            report_notebooks=tuple(
                name.strip() for name in environ.get(REPORT_NOTEBOOKS_ENV, "").split(",") if name.strip()
            ),
        )

    def as_dict(self) -> dict[str, object]:
        return {
            name: str(value)
            if isinstance(value, Path)
            else list(value)
            if isinstance(value, tuple)
            else value
            for name, value in vars(self).items()
        }


def read_scale(environ: Mapping[str, str]) -> float:
    """``KIT_BENCH_SCALE``: 1 when unset, else a number in (0, 10]."""
    scale = _number(environ, SCALE_ENV, 1.0)
    if not 0 < scale <= 10:
        raise ConfigurationError(f"{SCALE_ENV}={scale} is out of range; use a value in (0, 10].")
    return scale


def read_size(environ: Mapping[str, str], spec: Size, scale: float) -> float:
    """One size: its variable when set (at least its minimum), else its default, times ``scale`` if scaled."""
    if spec.variable in environ:
        value = _number(environ, spec.variable, spec.default)
        if value < spec.minimum:
            raise ConfigurationError(
                f"{spec.variable}={value:g} is too small; use at least {spec.minimum:g}."
            )
        return value
    return max(spec.minimum, spec.default * scale if spec.scaled else spec.default)


def _number(environ: Mapping[str, str], variable: str, default: float) -> float:
    raw = environ.get(variable)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"{variable}={raw!r} is not a number.") from None
