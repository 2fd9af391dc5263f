"""``python -m bench`` end to end at a tiny scale: it runs, and results.json holds every figure, numerically.

No timing is asserted anywhere: the figures' values depend on the machine, and the bench reports them as
ratios to baselines measured in the same run. What is checked is the shape of the results, which is what the
table and anyone reading ``bench/results.json`` rely on. The pure ratio/target rules are pinned by table.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# bench/ sits beside kit/ but is not part of the installed package (pyproject installs kit* only), and pytest
# puts tests/ on sys.path, not the project root; `python -m bench` itself runs from the root.
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from bench.evidence import connection_pages, log_events  # noqa: E402
from bench.figures import figure, percentile, target_met  # noqa: E402
from bench.settings import BenchSettings  # noqa: E402

pytestmark = pytest.mark.integration
LAB_FIGURES = {
    "lab_start",
    "connect_rate",
    "connect_rate_node",
    "held_connections",
    "broadcast_fanout_p50",
    "broadcast_fanout_p99",
    "broadcast_fanout_total",
    "broadcast_fanout_p50_node",
    "broadcast_fanout_p99_node",
    "broadcast_fanout_total_node",
}
EVIDENCE_FIGURES = {
    "log_parse_speedup",
    "log_parse_rate",
    "dynamo_items_speedup",
    "log_parse_peak_memory",
    "log_file_parse_peak_memory",
}
REPORT_FIGURES = {"report_warm", "report_make"}
INSIGHTS_FIGURES = {"insights_time_to_diagnosis"}
FIGURES = LAB_FIGURES | EVIDENCE_FIGURES | REPORT_FIGURES | INSIGHTS_FIGURES


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict]:
    output = tmp_path_factory.mktemp("bench") / "results.json"
    environment = dict(os.environ)
    environment |= {
        "KIT_BENCH_SCALE": "0.02",
        "KIT_BENCH_REPEATS": "1",
        "KIT_BENCH_START_RUNS": "1",
        "KIT_BENCH_REPORT_RUNS": "1",
        "KIT_BENCH_REPORT_NOTEBOOKS": "00_diagnose",  # make report's figure, on one notebook: its shape
        "KIT_BENCH_OUTPUT": str(output),
    }
    run = subprocess.run(
        [sys.executable, "-m", "bench"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=360,
        check=False,
    )
    assert output.exists(), f"no results file; stderr:\n{run.stderr[-3000:]}"
    return run, json.loads(output.read_text())


def test_bench_runs_and_prints_a_table(results) -> None:
    run, _document = results
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "figure" in run.stdout and "baseline (same run)" in run.stdout
    assert "$connect/s through the lab" in run.stdout


def test_results_hold_every_figure_with_numbers(results) -> None:
    _run, document = results
    assert document["errors"] == []
    figures = {entry["name"]: entry for entry in document["figures"]}
    assert set(figures) == FIGURES
    for name, entry in figures.items():
        for key in ("value", "baseline", "ratio", "target"):
            assert _is_number(entry[key]), f"{name}.{key} is {entry[key]!r}"
        assert isinstance(entry["met"], bool), name
        assert entry["unit"] and entry["better"] in ("higher", "lower"), name
        assert entry["target_source"] in ("issue", "bench"), name


def test_results_say_where_and_when(results) -> None:
    _run, document = results
    assert document["timestamp"].endswith("+00:00")
    assert document["machine"]["cpu_count"] >= 1
    assert document["settings"]["held"] == 20
    assert document["settings"]["parts"] == ["lab", "evidence", "report", "insights"]
    connect = next(entry for entry in document["figures"] if entry["name"] == "connect_rate")
    assert connect["details"]["stored"] == connect["details"]["connected"]
    assert connect["note"]
    # The handshake, hop by hop: every hop timed, the parts adding up to the mean handshake.
    hops = {key: value for key, value in connect["details"].items() if key.startswith("hop_ms[")}
    assert len(hops) == 7, hops
    assert "hop by hop" in connect["note"]


def test_the_broadcast_p99_is_held_to_the_issues_second_on_both_runtimes(results) -> None:
    _run, document = results
    figures = {entry["name"]: entry for entry in document["figures"]}
    for name in ("broadcast_fanout_p99", "broadcast_fanout_p99_node"):
        entry = figures[name]
        assert (entry["target"], entry["target_of"], entry["better"]) == (1000.0, "value", "lower"), name
        delivered, expected = entry["details"]["delivered"].split("/")
        assert entry["met"] == (entry["value"] <= 1000.0 and delivered == expected), name


def test_evidence_figures_compare_equal_work(results) -> None:
    _run, document = results
    figures = {entry["name"]: entry for entry in document["figures"]}
    assert figures["log_parse_speedup"]["details"]["lines"] == 4000
    assert figures["dynamo_items_speedup"]["details"]["items"] == 1000
    assert figures["log_parse_peak_memory"]["details"]["lines"] == 20000
    assert figures["log_file_parse_peak_memory"]["details"]["file_mb"] == pytest.approx(4.0, abs=0.01)
    assert figures["log_file_parse_peak_memory"]["target_of"] == "ratio"
    for name in ("log_parse_speedup", "dynamo_items_speedup"):
        assert figures[name]["details"]["same_frame"] is True, name
        assert figures[name]["target_of"] == "ratio", name
    for name in ("log_parse_rate", "log_parse_peak_memory"):
        assert figures[name]["target_of"] == "value", name
    assert figures["log_parse_peak_memory"]["better"] == "lower"
    assert all(figures[name]["note"] for name in EVIDENCE_FIGURES)


def test_report_figure_holds_the_floor_and_the_allowance(results) -> None:
    _run, document = results
    report = next(entry for entry in document["figures"] if entry["name"] == "report_warm")
    details = report["details"]
    assert details["runs"] == 1
    assert len(details["report_s_each"].split(", ")) == len(details["floor_s_each"].split(", ")) == 1
    for key in ("lab_start_s", "allowed_s"):
        assert _is_number(details[key]), f"report_warm.details.{key} is {details[key]!r}"
    assert details["allowed_s"] == pytest.approx(2 * report["baseline"] + details["lab_start_s"], abs=0.01)
    assert report["target"] == pytest.approx(details["allowed_s"], abs=0.01)
    assert report["target_of"] == "value" and report["better"] == "lower" and report["unit"] == "s"
    assert report["met"] is (report["value"] <= report["target"])
    assert "lab start" in report["note"] and "allowed" in report["note"]


def test_make_report_figure_runs_its_notebooks_against_the_issues_30_s(results) -> None:
    _run, document = results
    report = next(entry for entry in document["figures"] if entry["name"] == "report_make")
    details = report["details"]
    assert details["runs"] == 1 and details["scenario"] == "seed-logs-dropped"
    assert details["notebooks"] == "00_diagnose"  # KIT_BENCH_REPORT_NOTEBOOKS; `make bench` runs every one
    assert document["settings"]["report_notebooks"] == ["00_diagnose"]
    assert _is_number(details["lab_start_s_median"]) and details["lab_start_s_median"] > 0  # its own lab
    assert report["target"] == 30.0 and report["target_of"] == "value" and report["better"] == "lower"
    assert report["met"] is (report["value"] <= 30.0)
    assert report["ratio"] == pytest.approx(report["value"] / report["baseline"], rel=0.01)


def _run_part(part: str, output: Path, sizes: dict[str, str]) -> dict:
    """``python -m bench <part>`` with these sizes; its results document (the run must succeed)."""
    environment = dict(os.environ) | sizes | {"KIT_BENCH_OUTPUT": str(output)}
    run = subprocess.run(
        [sys.executable, "-m", "bench", part],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads(output.read_text())


def test_insights_figure_reads_both_paths_to_the_same_diagnosis(results) -> None:
    _run, document = results
    entry = next(entry for entry in document["figures"] if entry["name"] == "insights_time_to_diagnosis")
    assert entry["details"]["same_diagnosis"] is True
    assert entry["details"]["insights_rows"] < entry["details"]["download_events"] == 20000  # 0.02 x 1M
    assert "emulated" in entry["note"]


def test_a_part_named_runs_alone(tmp_path: Path) -> None:
    """The cheapest part, at its smallest size: the document holds its figure only, and says which part ran.
    (Each part's figures are checked in the full run above.)"""
    document = _run_part("insights", tmp_path / "results.json", {"KIT_BENCH_INSIGHTS_EVENTS": "1000"})
    assert document["settings"]["parts"] == ["insights"]
    assert [entry["name"] for entry in document["figures"]] == ["insights_time_to_diagnosis"]
    assert document["errors"] == []


def test_an_unknown_part_is_a_usage_error() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench", "evidense"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert "python -m bench [lab] [evidence]" in run.stderr


def test_synthetic_inputs_have_the_asked_sizes_and_shapes() -> None:
    events = list(log_events(123))
    assert len(events) == 123
    assert {event["logGroupName"] for event in events} >= {"/aws/lambda/chatgenius-websocket"}
    assert all(event["message"] for event in events)
    pages = connection_pages(20_000)
    assert sum(len(page["Items"]) for page in pages) == 20_000
    assert len(pages) > 1 and "LastEvaluatedKey" not in pages[-1]
    assert all("LastEvaluatedKey" in page for page in pages[:-1])
    assert set(pages[0]["Items"][0]) == {"connectionId", "workspaceId", "userId", "timestamp", "status"}


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 50, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
        ([4.0, 1.0, 3.0, 2.0], 0, 1.0),
        (list(map(float, range(101))), 99, 99.0),
    ],
)
def test_percentile(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("ratio", "target", "better", "met"),
    [
        (0.8, 0.8, "higher", True),
        (0.79, 0.8, "higher", False),
        (2.5, 2.0, "lower", False),
        (1.5, 2.0, "lower", True),
        (None, 0.8, "higher", False),
    ],
)
def test_target_met(ratio: float | None, target: float, better: str, met: bool) -> None:
    assert target_met(ratio, target, better) is met  # type: ignore[arg-type]


def test_ratio_follows_its_definition() -> None:
    faster_than_raw = figure(
        "f",
        "f",
        value=2.0,
        unit="s",
        baseline=1.0,
        baseline_title="raw",
        ratio_of="baseline/value",
        target=0.8,
        target_source="bench",
    )
    assert faster_than_raw.ratio == pytest.approx(0.5)
    assert faster_than_raw.met is False
    unmeasured = figure(
        "g",
        "g",
        value=math.nan,
        unit="s",
        baseline=1.0,
        baseline_title="raw",
        ratio_of="value/baseline",
        target=1.0,
        target_source="issue",
    )
    assert unmeasured.ratio is None and unmeasured.as_dict()["value"] is None


@pytest.mark.parametrize(
    ("value", "better", "met"),
    [
        (1100.0, "lower", False),
        (900.0, "lower", True),
        (math.nan, "lower", False),
        (600_000.0, "higher", True),
    ],
)
def test_an_absolute_budget_is_held_to_the_value(value: float, better: str, met: bool) -> None:
    budget = figure(
        "b",
        "b",
        value=value,
        unit="MB",
        baseline=500.0,
        baseline_title="input",
        ratio_of="value/baseline",
        target=1024.0 if better == "lower" else 500_000.0,
        better=better,  # type: ignore[arg-type]
        target_of="value",
        target_source="issue",
    )
    assert budget.met is met
    assert budget.target_text.endswith(" MB")


def test_scale_shrinks_sizes_and_explicit_sizes_win() -> None:
    quick = BenchSettings.from_environment({"KIT_BENCH_SCALE": "0.1"})
    assert (quick.connects, quick.held, quick.start_runs) == (30, 100, 1)
    explicit = BenchSettings.from_environment({"KIT_BENCH_SCALE": "0.1", "KIT_BENCH_HELD": "1000"})
    assert explicit.held == 1000
    assert BenchSettings.from_environment({}).held == 1000
    assert (quick.log_lines, quick.dynamo_items, quick.memory_lines) == (20_000, 5_000, 100_000)
    assert (quick.file_mb, BenchSettings.from_environment({}).file_mb) == (20.0, 200.0)
    assert quick.report_runs == 1 and BenchSettings.from_environment({}).report_runs == 3
    assert BenchSettings.from_environment({}).report_notebooks == ()  # every notebook
    picked = BenchSettings.from_environment({"KIT_BENCH_REPORT_NOTEBOOKS": " 00_diagnose, ,02_probe "})
    assert picked.report_notebooks == ("00_diagnose", "02_probe")
    assert picked.as_dict()["report_notebooks"] == ["00_diagnose", "02_probe"]
