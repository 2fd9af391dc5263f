"""Every notebook executed end to end by papermill against one lab (scenario seed-put-denied).

The lab runs in this process and writes its lab file to a temporary ``$KIT_STATE_DIR``; the kernels papermill
starts inherit the environment, so ``target = "lab"`` in each notebook reads that same file. IPython, Jupyter
and matplotlib are pointed at temporary directories so nothing is written under ``$HOME``.

Also checked without running anything: each parameters cell is readable by papermill's ``--help-notebook``
inspection, no code cell defines a function or a class, and the committed notebooks carry no outputs.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import papermill
import pytest

from kit.lab.lab import Lab
from kit.local import STATE_DIR_ENV
from kit.report import stage_of, waves
from kit.report_kernels import ipc_kernels

from .labclient import EmptyDynamoDB

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
NAMES = [path.name for path in NOTEBOOKS]
EXPECTED = {
    "00_diagnose.ipynb",
    "01_connect_handler.ipynb",
    "02_probe.ipynb",
    "03_logs.ipynb",
    "04_dynamodb.ipynb",
    "05_iam.ipynb",
}
COMMON_PARAMETERS = {
    "target": "str",
    "profile": "str",
    "region": "str",
    "table": "str",
    "env_file": "str",
    "websocket_url": "str",
    "since_minutes": "int",
    "mask_emails": "bool",
}
# Fast settings: one probe client for the diagnosis, two for the probe notebook.
RUN_PARAMETERS: dict[str, dict[str, Any]] = {
    "00_diagnose.ipynb": {"probe_clients": 1},
    "02_probe.ipynb": {"clients": 2},
}
PLOTTING = set(EXPECTED) - {"01_connect_handler.ipynb"}
SCENARIO = "seed-put-denied"


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _parameters_cell(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell is tagged parameters"
    return tagged[0]


# --- static checks -------------------------------------------------------------------------------------


def test_every_notebook_is_here() -> None:
    assert set(NAMES) == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_notebook_is_committed_clean(path: Path) -> None:
    notebook = _read(path)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    first = notebook.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"outputs committed in {path.name}"
            assert cell.execution_count is None, f"execution count committed in {path.name}"
            assert "def " not in cell.source and "class " not in cell.source, cell.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_parameters_cell_is_readable_by_help_notebook(path: Path) -> None:
    cell = _parameters_cell(_read(path))
    lines = [line for line in cell.source.splitlines() if line.strip()]
    inspected = papermill.inspect_notebook(path)
    # One parameter per line, each with a type and a help text papermill could read.
    assert len(inspected) == len(lines)
    for line in lines:
        comment = line.split("#", 1)[1]
        assert "=" not in comment, f"a comment with '=' breaks --help-notebook: {line}"
    for name, parameter in inspected.items():
        assert parameter["inferred_type_name"] not in ("None", ""), name
        assert parameter["help"].strip(), name
    for name, type_name in COMMON_PARAMETERS.items():
        assert inspected[name]["inferred_type_name"] == type_name, name
    assert inspected["target"]["default"] == '"lab"'
    assert inspected["since_minutes"]["default"] == "60"
    assert inspected["mask_emails"]["default"] == "True"


@pytest.mark.parametrize(
    "plot",
    [
        "connection_timeline",
        "latency_plot",
        "routes_over_time",
        "durations_plot",
        "permission_heatmap",
        "index_coverage_plot",
    ],
)
@pytest.mark.parametrize("frame", [None, pd.DataFrame()], ids=["none", "no-columns"])
def test_every_plot_copes_with_nothing(plots: Any, plot: str, frame: pd.DataFrame | None) -> None:
    figure = getattr(plots, plot)(frame)
    texts = [text.get_text() for axes in figure.axes for text in axes.texts]
    assert any(text.startswith(plots.NOTHING) for text in texts), texts


def test_emails_are_masked(nb: Any) -> None:
    frame = pd.DataFrame(
        {
            "userId": pd.array(["ada@example.com", None], dtype="string"),
            "query": ["token=ada%40example.com", 1],
        }
    )
    masked = nb.hide_emails(frame)
    assert re.fullmatch(r"a\*\*\*@\*\*\*#[0-9a-f]{6}", masked["userId"].tolist()[0])
    assert masked["query"].tolist() == ["token=***", 1]  # the seed's token is the address itself
    assert str(masked["userId"].dtype) == "string"
    assert nb.hide_emails(frame, enabled=False) is frame


# --- executed against the lab ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A temporary ``$KIT_STATE_DIR``, and IPython, matplotlib and Jupyter pointed away from ``$HOME``."""
    root = tmp_path_factory.mktemp("notebooks")
    with pytest.MonkeyPatch.context() as patch:
        # Set before the lab starts (it writes lab.json there) and before any kernel starts (they inherit it).
        patch.setenv(STATE_DIR_ENV, str(root / "state"))
        for variable, directory in {
            "IPYTHONDIR": "ipython",
            "MPLCONFIGDIR": "matplotlib",
            "JUPYTER_RUNTIME_DIR": "jupyter-runtime",
            "JUPYTER_DATA_DIR": "jupyter-data",
        }.items():
            (root / directory).mkdir()
            patch.setenv(variable, str(root / directory))
        yield root


@pytest.fixture(scope="module")
def nb(homes: Path) -> Any:
    """``kit.notebook``, imported only once the kernel-like folders are redirected."""
    return importlib.import_module("kit.notebook")


@pytest.fixture(scope="module")
def plots(homes: Path) -> Any:
    """``kit.plots``, imported only once matplotlib's folder is redirected (it imports pyplot)."""
    return importlib.import_module("kit.plots")


@pytest.fixture(scope="module")
def lab_environment(homes: Path, empty_dynamodb: EmptyDynamoDB) -> Iterator[Path]:
    """The lab, with its lab file written where the kernels will look; yields the work folder."""
    with Lab(SCENARIO, write_lab_file=True, dynamodb=empty_dynamodb()):
        assert (homes / "state" / "lab.json").exists()
        yield homes


@pytest.fixture(scope="module")
def executed(lab_environment: Path) -> dict[str, nbformat.NotebookNode | BaseException]:
    """Every notebook executed once, in the waves `kit report` runs them in (the diagnosis first, as a reader
    would; then the notebooks of a stage at once)."""
    results: dict[str, nbformat.NotebookNode | BaseException] = {}
    out = lab_environment / "out"
    out.mkdir()

    def execute(path: Path) -> None:
        parameters = dict(RUN_PARAMETERS.get(path.name, {}))
        if path.name == "00_diagnose.ipynb":
            parameters["summary_path"] = str(lab_environment / "summary.json")
        try:
            with ipc_kernels() as manager:
                results[path.name] = papermill.execute_notebook(
                    str(path),
                    str(out / path.name),
                    parameters=parameters,
                    kernel_name="python3",
                    progress_bar=False,
                    kernel_manager_class=manager,
                    # not papermill's cwd=: it changes the process's directory, shared by the wave's threads
                    resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
                )
        except Exception as exc:  # reported by the test of that notebook, with papermill's message
            results[path.name] = exc

    for wave in waves([stage_of(path) for path in NOTEBOOKS]):
        with ThreadPoolExecutor(len(wave)) as pool:
            list(pool.map(execute, [NOTEBOOKS[i] for i in wave]))
    return results


def _outputs(notebook: nbformat.NotebookNode) -> list[dict[str, Any]]:
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_without_error(executed: dict[str, Any], name: str) -> None:
    result = executed[name]
    if isinstance(result, BaseException):
        pytest.fail(f"{name} failed: {result}")
    assert not result.metadata["papermill"]["exception"]
    errors = [output for output in _outputs(result) if output.get("output_type") == "error"]
    assert errors == []
    if name in PLOTTING:
        images = [output for output in _outputs(result) if "image/png" in output.get("data", {})]
        assert images, f"{name} embedded no figure"


def test_diagnosis_names_the_scenario_cause_and_writes_the_summary(
    executed: dict[str, Any], lab_environment: Path
) -> None:
    assert not isinstance(executed["00_diagnose.ipynb"], BaseException)
    summary = json.loads((lab_environment / "summary.json").read_text())
    assert summary["root_cause"]["id"] == "put-access-denied"
    assert {"check", "verdict", "cause", "evidence", "next_step"} <= set(summary["findings"][0])


def test_connect_handler_notebook_shows_both_handlers(executed: dict[str, Any]) -> None:
    result = executed["01_connect_handler.ipynb"]
    assert not isinstance(result, BaseException)
    html = "".join(
        output.get("data", {}).get("text/html", "")
        for output in _outputs(result)
        if output.get("output_type") in ("display_data", "execute_result")
    )
    assert "seed status" in html and "fixed status" in html
    # E-mail addresses are masked by default, percent-encoded ones (query strings) included.
    shown = json.dumps(_outputs(result))
    assert "ada@example.com" not in shown and "ada%40example.com" not in shown
    assert "a***@***#" in shown


@pytest.mark.skipif(shutil.which("node") is None, reason="no `node` on PATH: the Node.js runtime cannot run")
def test_connect_handler_notebook_runs_the_javascript_handlers_and_your_own(
    lab_environment: Path, tmp_path: Path
) -> None:
    own = tmp_path / "my-connect"
    own.mkdir()
    (own / "index.mjs").write_text(
        "export const handler = async () => ({ statusCode: 500, body: 'not today' });\n"
    )
    with ipc_kernels() as manager:
        result = papermill.execute_notebook(
            str(NOTEBOOKS_DIR / "01_connect_handler.ipynb"),
            str(tmp_path / "01-node.ipynb"),
            parameters={"handler_runtime": "nodejs20.x"},
            kernel_name="python3",
            cwd=str(NOTEBOOKS_DIR),
            progress_bar=False,
            kernel_manager_class=manager,
        )
    html = "".join(output.get("data", {}).get("text/html", "") for output in _outputs(result))
    assert "seed (.mjs) status" in html and "fixed (.mjs) status" in html
    assert "on nodejs20.x, in the lab&#x27;s Lambda runtime" in html or "on nodejs20.x, in the lab's" in html

    with ipc_kernels() as manager:
        yours = papermill.execute_notebook(
            str(NOTEBOOKS_DIR / "01_connect_handler.ipynb"),
            str(tmp_path / "01-yours.ipynb"),
            parameters={"function_path": str(own)},
            kernel_name="python3",
            cwd=str(NOTEBOOKS_DIR),
            progress_bar=False,
            kernel_manager_class=manager,
        )
    html = "".join(output.get("data", {}).get("text/html", "") for output in _outputs(yours))
    assert "yours status" in html and "fixed (.mjs) status" in html
    assert str(tmp_path) not in json.dumps(_outputs(yours))  # its name, never its local path


def test_kernels_used_the_redirected_directories(executed: dict[str, Any], lab_environment: Path) -> None:
    # IPython made its profile where IPYTHONDIR pointed, not under $HOME.
    assert (lab_environment / "ipython" / "profile_default").is_dir()
    assert os.environ.get(STATE_DIR_ENV) == str(lab_environment / "state")
