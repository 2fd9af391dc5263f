"""The report benchmarks: a warm ``kit report`` of the diagnosis notebook, and ``make report`` whole, against
papermill's own floor.

The issue's target: a warm report of ``00_diagnose`` takes at most twice the floor plus a lab start, where

* the report is ``kit.report.run_report(target="lab", notebooks=["00_diagnose"])`` with ``probe_clients=0``
  (the report's own cost, not the probe's waits), against a lab this part started itself (so the report
  finds it running and starts none), after one untimed warm-up report;
* the floor is a one-empty-cell notebook (kernelspec ``python3``) executed by papermill the way the report
  runs its notebooks (same kernel, same kernel environment, same timeout), then exported to HTML with the
  report's own :func:`kit.report.render_html`, the two pages the report writes (with and without code);
* lab start is this part's own ``Lab("healthy").start()``, timed in the same run.

So ``allowed = 2 × floor + lab start`` and ``met = value ≤ allowed``; the ratio column is ``value / floor``.

``report_make`` is ``make report`` as its user runs it: every notebook, the seed's scenario, the lab started
and stopped inside the run, the probe's waits included; its target is issue 16's 30 s, its ratio is to the
same floor.

Must not: write outside temporary folders (the lab's state, the reports and the floor's notebooks all go to
one temporary directory, removed at the end), leave the lab running, or leave ``KIT_STATE_DIR`` changed.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.figures import Figure, figure, median
from bench.settings import BenchSettings

Progress = Callable[[str], None]

REPORT_NOTEBOOK = "00_diagnose"
REPORT_PARAMETERS: dict[str, Any] = {"probe_clients": 0}
FLOOR_TIMES = 2.0  # the "≤ 2× the floor plus lab start"
MAKE_REPORT_SCENARIO = "seed-logs-dropped"  # the Makefile's default SCENARIO for TARGET=lab
MAKE_REPORT_TARGET_S = 30.0  # issue 16: `make report` on a warm set-up in 30 s or less


@dataclass
class ReportBench:
    """The figures of one run, and the errors of measurements that could not be made."""

    figures: list[Figure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@contextlib.contextmanager
def _state_dir(folder: Path) -> Iterator[None]:
    """``KIT_STATE_DIR`` set to ``folder`` (the kernels inherit it), the previous value back afterwards."""
    from kit.local import STATE_DIR_ENV

    saved = os.environ.get(STATE_DIR_ENV)
    os.environ[STATE_DIR_ENV] = str(folder)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(STATE_DIR_ENV, None)
        else:
            os.environ[STATE_DIR_ENV] = saved


def _empty_notebook(path: Path) -> Path:
    nbformat: Any = importlib.import_module("nbformat")

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(""))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def _time_floor(source: Path, work: Path, run: int) -> float:
    """papermill of the empty notebook as the report runs one, then its two HTML pages; seconds."""
    import papermill

    from kit import report, report_kernels
    from kit.local import state_dir

    nbformat: Any = importlib.import_module("nbformat")
    executed = work / f"floor-{run}.ipynb"
    started = time.monotonic()
    with report_kernels.kernel_environment(state_dir() / "jupyter"), report_kernels.ipc_kernels() as manager:
        papermill.execute_notebook(
            str(source),
            str(executed),
            parameters={},
            kernel_name=report_kernels.KERNEL_NAME,
            progress_bar=False,
            cwd=str(source.parent),
            execution_timeout=report.DEFAULT_CELL_TIMEOUT_S,
            kernel_manager_class=manager,
        )
    nb = nbformat.read(str(executed), as_version=4)
    for code in (True, False):
        (work / f"floor-{run}.{'html' if code else 'report.html'}").write_text(
            report.render_html(nb, title="floor", code=code), encoding="utf-8"
        )
    return time.monotonic() - started


def _time_report(
    reports_dir: Path,
    *,
    notebooks: list[str] | None = None,
    parameters: dict[str, Any] | None = None,
    scenario: str | None = None,
) -> tuple[float, Any]:
    """One ``run_report`` against the lab (by default the warm report's notebook and parameters); seconds."""
    from kit.report import run_report

    started = time.monotonic()
    result = run_report(
        target="lab",
        scenario=scenario,
        notebooks=[REPORT_NOTEBOOK] if notebooks is None and scenario is None else notebooks,
        parameters=dict(REPORT_PARAMETERS if parameters is None else parameters),
        reports_dir=reports_dir,
        progress=lambda _line: None,
    )
    elapsed = time.monotonic() - started
    if result.status == "failed":
        raise RuntimeError(f"the report failed: {'; '.join(result.errors) or result.status}")
    return elapsed, result


def measure_report(settings: BenchSettings, progress: Progress) -> Figure:
    from kit.lab.lab import Lab

    runs = settings.report_runs
    root = Path(tempfile.mkdtemp(prefix="kit-bench-report-"))
    lab: Lab | None = None
    try:
        with _state_dir(root / "state"):
            (root / "state").mkdir()
            clock = time.monotonic()
            lab = Lab("healthy", write_lab_file=True).start()
            lab_start_s = time.monotonic() - clock
            progress(f"report: lab up in {lab_start_s:.2f} s")
            reports_dir = root / "reports"
            floor_work = root / "floor"
            floor_work.mkdir()
            empty = _empty_notebook(floor_work / "empty.ipynb")

            warm_up_s, warm_up = _time_report(reports_dir)
            progress(f"report: warm-up {warm_up_s:.2f} s ({warm_up.status}, exit {warm_up.exit_code})")
            floor_warm_up_s = _time_floor(empty, floor_work, 0)
            progress(f"report: floor warm-up {floor_warm_up_s:.2f} s")

            report_s: list[float] = []
            floor_s: list[float] = []
            execute_s: list[float] = []
            render_s: list[float] = []
            status = warm_up.status
            for run in range(runs):  # in turn, so a drift in the machine's load hits both sides alike
                elapsed, result = _time_report(reports_dir)
                report_s.append(elapsed)
                status = result.status
                timing = result.summary.get("timings", {}).get("notebooks", {}).get(REPORT_NOTEBOOK, {})
                if "execute_s" in timing:
                    execute_s.append(float(timing["execute_s"]))
                    render_s.append(float(timing["render_s"]))
                floor_s.append(_time_floor(empty, floor_work, run + 1))
                progress(f"report {run + 1}/{runs}: {report_s[-1]:.2f} s; floor {floor_s[-1]:.2f} s")
    finally:
        if lab is not None:
            lab.stop()
        shutil.rmtree(root, ignore_errors=True)

    floor = median(floor_s)
    allowed = FLOOR_TIMES * floor + lab_start_s
    result = _against_floor(
        "report_warm",
        f"warm report of {REPORT_NOTEBOOK}",
        report_s,
        floor_s,
        target=allowed,
        details={
            "lab_start_s": round(lab_start_s, 3),
            "allowed_s": round(allowed, 3),
            "execute_s_median": round(median(execute_s), 3) if execute_s else None,
            "render_s_median": round(median(render_s), 3) if render_s else None,
            "warm_up_s": round(warm_up_s, 3),
            "status": status,
            "parameters": json.dumps(REPORT_PARAMETERS),
        },
        note=(
            f"Target ≤ 2× floor + lab start: allowed = 2 × {floor:.2f} s + {lab_start_s:.2f} s (lab start, "
            f"this run) = {allowed:.2f} s; the target column is that allowance. Median of {runs} warm "
            f"run_report(target='lab', notebooks=['{REPORT_NOTEBOOK}'], probe_clients=0) against a lab "
            "already up, after one untimed warm-up report; the floor is papermill of a one-empty-cell "
            "python3 notebook in the report's kernel environment plus kit.report.render_html of both pages, "
            "timed in turn with the reports."
        ),
    )
    return result


def _against_floor(
    name: str,
    title: str,
    report_s: list[float],
    floor_s: list[float],
    *,
    target: float,
    details: dict[str, Any],
    note: str,
) -> Figure:
    """A report's median time against the floor's, both timed in turn; lower is better, held to ``target``."""
    return figure(
        name,
        title,
        value=median(report_s),
        unit="s",
        baseline=median(floor_s),
        baseline_title="papermill of an empty notebook + HTML export",
        ratio_of="value/baseline",
        target=target,
        better="lower",
        target_of="value",
        target_source="issue",
        details={
            "runs": len(report_s),
            "report_s_each": ", ".join(f"{s:.3f}" for s in report_s),
            "floor_s_each": ", ".join(f"{s:.3f}" for s in floor_s),
            **details,
        },
        note=note,
    )


def measure_make_report(settings: BenchSettings, progress: Progress) -> Figure:
    """``make report`` as its user runs it on a warm set-up: ``run_report`` of every notebook, starting a lab
    with the seed's scenario and stopping it, against the same papermill floor, timed in turn."""
    from kit.report import discover_notebooks

    runs = settings.report_runs
    root = Path(tempfile.mkdtemp(prefix="kit-bench-make-report-"))
    report_s: list[float] = []
    floor_s: list[float] = []
    lab_s: list[float] = []
    notebooks = list(settings.report_notebooks) or [path.stem for path in discover_notebooks()]
    try:
        with _state_dir(root / "state"):
            (root / "state").mkdir()
            floor_work = root / "floor"
            floor_work.mkdir()
            empty = _empty_notebook(floor_work / "empty.ipynb")
            for run in range(runs):
                elapsed, result = _time_report(
                    root / "reports",
                    notebooks=list(settings.report_notebooks) or None,
                    parameters={},
                    scenario=MAKE_REPORT_SCENARIO,
                )
                report_s.append(elapsed)
                lab_s.append(float(result.summary.get("timings", {}).get("lab_start_s") or 0.0))
                floor_s.append(_time_floor(empty, floor_work, run))
                progress(f"make report {run + 1}/{runs}: {report_s[-1]:.2f} s; floor {floor_s[-1]:.2f} s")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return _against_floor(
        "report_make",
        "make report, warm (every notebook, its own lab)",
        report_s,
        floor_s,
        target=MAKE_REPORT_TARGET_S,
        details={
            "lab_start_s_median": round(median(lab_s), 3),
            "notebooks": ", ".join(notebooks),
            "scenario": MAKE_REPORT_SCENARIO,
        },
        note=(
            f"Target ≤ {MAKE_REPORT_TARGET_S:g} s on a warm set-up (issue 16). Median of {runs} "
            f"run_report(target='lab', scenario='{MAKE_REPORT_SCENARIO}') of every notebook, as "
            "`make report` runs it: the lab started and stopped inside each run, the probe's waits "
            "included. The ratio is to the floor (papermill of a one-empty-cell notebook plus both HTML "
            "pages), timed in turn."
        ),
    )


def run_report_benchmarks(settings: BenchSettings, progress: Progress | None = None) -> ReportBench:
    """The report figure; a measurement that fails is an error in the result, not an exception."""
    say = progress or (lambda message: print(f"bench: {message}", file=sys.stderr, flush=True))
    result = ReportBench()
    try:
        result.figures.append(measure_report(settings, say))
    except Exception as exc:
        result.errors.append(f"the warm report could not be measured: {type(exc).__name__}: {exc}")
    try:
        result.figures.append(measure_make_report(settings, say))
    except Exception as exc:
        result.errors.append(f"make report could not be measured: {type(exc).__name__}: {exc}")
    return result
