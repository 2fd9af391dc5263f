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

from bench.figures import figure, percentile, target_met  # noqa: E402
from bench.settings import BenchSettings  # noqa: E402

pytestmark = pytest.mark.integration
FIGURES = {
    "lab_start",
    "connect_rate",
    "held_connections",
    "broadcast_fanout_p50",
    "broadcast_fanout_p99",
    "broadcast_fanout_total",
}


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
        "KIT_BENCH_OUTPUT": str(output),
    }
    run = subprocess.run(
        [sys.executable, "-m", "bench"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
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
    connect = next(entry for entry in document["figures"] if entry["name"] == "connect_rate")
    assert connect["details"]["stored"] == connect["details"]["connected"]
    assert connect["note"]


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


def test_scale_shrinks_sizes_and_explicit_sizes_win() -> None:
    quick = BenchSettings.from_environment({"KIT_BENCH_SCALE": "0.1"})
    assert (quick.connects, quick.held, quick.start_runs) == (30, 100, 1)
    explicit = BenchSettings.from_environment({"KIT_BENCH_SCALE": "0.1", "KIT_BENCH_HELD": "1000"})
    assert explicit.held == 1000
    assert BenchSettings.from_environment({}).held == 1000
