"""The report's kernels talk over Unix sockets in a private folder (kit.report_kernels.ipc_kernel_manager): no TCP
port for two kernels to race for, nothing on the network, no unencrypted-TCP warning; they leave quietly; and
the notebooks run in waves (``kit.report.waves``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from kit import report_kernels
from kit.report import discover_notebooks, notebook_stage, stage_of, waves
from kit.report_kernels import KernelLane, ipc_kernel_manager


def test_kernels_use_unix_sockets_in_the_folder_they_are_given(tmp_path: Path) -> None:
    manager = ipc_kernel_manager(tmp_path)(kernel_name="python3")
    assert manager.transport == "ipc"
    assert Path(manager.connection_file).parent == tmp_path
    # The sockets are named after the connection file, so they land in the folder too (never the cwd).
    assert Path(manager.ip).parent == tmp_path
    info = manager.get_connection_info()
    assert info["transport"] == "ipc"


def test_each_kernel_gets_its_own_connection_file(tmp_path: Path) -> None:
    kind = ipc_kernel_manager(tmp_path)
    assert kind(kernel_name="python3").connection_file != kind(kernel_name="python3").connection_file


def test_a_kernel_is_not_interrupted_on_its_way_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """jupyter_client interrupts a kernel before asking it to shut down, and an idle ipykernel logs
    "KeyboardInterrupt caught in kernel" on the report's terminal for it: the report's kernels skip that
    interrupt, and only that one."""
    from jupyter_client.manager import AsyncKernelManager

    sent: list[bool] = []

    async def interrupt(self: AsyncKernelManager) -> None:
        sent.append(self.shutting_down)

    monkeypatch.setattr(AsyncKernelManager, "_async_interrupt_kernel", interrupt)
    manager = ipc_kernel_manager(tmp_path)(kernel_name="python3")
    asyncio.run(manager._async_interrupt_kernel())  # a cell's timeout, say
    manager.shutting_down = True
    asyncio.run(manager._async_interrupt_kernel())
    assert sent == [False]


class _KernelWithoutClient:
    """A kernel manager whose kernel is running but will not give a client (its sockets are gone, say)."""

    made: ClassVar[list[_KernelWithoutClient]] = []

    def __init__(self, kernel_name: str) -> None:
        self.has_kernel = True
        self.shut_down = False
        self.made.append(self)

    async def is_alive(self) -> bool:
        return not self.shut_down

    def blocking_client(self) -> Any:
        raise RuntimeError("no client for this kernel")

    async def shutdown_kernel(self, now: bool = False) -> None:
        self.shut_down = True


def test_a_kernel_that_cannot_take_its_reset_is_dropped_not_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between two notebooks the lane resets its kernel; if it cannot even open a client for that, the kernel is
    shut down and the next notebook starts another: nothing escapes to stop the report."""
    monkeypatch.setattr(report_kernels, "execute_notebook", lambda *args: {})
    monkeypatch.setattr(_KernelWithoutClient, "made", [])
    lane = KernelLane(_KernelWithoutClient, "kit-test-lane")
    path = tmp_path / "01.ipynb"
    try:
        for _ in range(2):
            assert lane.submit(lane.execute, path, tmp_path / "out.ipynb", {}, 60).result() == {}
    finally:
        lane.close()
    assert lane.kernels_started == 2
    assert [kernel.shut_down for kernel in _KernelWithoutClient.made] == [True, True]


def _notebook(path: Path, metadata: object) -> Path:
    path.write_text(json.dumps({"cells": [], "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}))
    return path


@pytest.mark.parametrize(
    ("metadata", "stage"),
    [
        ({"kit": {"stage": 2}}, 2),
        ({"kit": {"stage": 0}}, 0),
        ({}, None),
        ({"kit": {}}, None),
        ({"kit": {"stage": "2"}}, None),
        ({"kit": {"stage": True}}, None),  # a bool is an int to Python, not a stage
        ({"kit": {"stage": 1.0}}, None),
        ({"kit": ["stage"]}, None),
        ([], None),
    ],
)
def test_a_notebooks_stage_is_an_integer_in_its_kit_metadata(
    tmp_path: Path, metadata: object, stage: int | None
) -> None:
    assert notebook_stage(_notebook(tmp_path / "n.ipynb", metadata)) == stage


def test_a_notebook_that_cannot_be_read_has_no_stage(tmp_path: Path) -> None:
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    assert notebook_stage(broken) is None
    assert notebook_stage(tmp_path / "missing.ipynb") is None


@pytest.mark.parametrize(
    ("stages", "grouped"),
    [
        ([], []),
        ([None], [[0]]),
        ([None, None], [[0], [1]]),  # no stage: alone, even beside another without one
        ([1, 1], [[0, 1]]),
        ([None, 1, 1, 2, 2, 2], [[0], [1, 2], [3, 4, 5]]),  # the report's own notebooks
        ([1, 2, 1], [[0], [1], [2]]),  # only neighbours share: the order of the files is kept
        ([1, None, 1], [[0], [1], [2]]),
        ([0, 0], [[0, 1]]),  # stage 0 is a stage
    ],
)
def test_neighbours_of_one_stage_share_a_wave(stages: list[int | None], grouped: list[list[int]]) -> None:
    assert waves(stages) == grouped


def test_the_report_notebooks_run_diagnosis_first_then_in_two_waves() -> None:
    """00_diagnose alone (its probe and its fix's proof change the lab for a while); the handler exercise and
    the probe, which write only their own items; then the notebooks that only read."""
    paths = discover_notebooks()
    names = [[paths[i].stem for i in wave] for wave in waves([stage_of(p) for p in paths])]
    assert names == [
        ["00_diagnose"],
        ["01_connect_handler", "02_probe"],
        ["03_logs", "04_dynamodb", "05_iam"],
    ]


def test_a_lean_report_process_still_validates_and_writes_notebooks() -> None:
    """`kit report` goes without jsonschema's IRI grammar (kit.report.lean_imports): in a fresh process,
    nbformat still validates a notebook and rejects a broken one, and the grammar is never built."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from kit.report import lean_imports\n"
        "lean_imports()\n"
        "import nbformat, papermill, nbconvert\n"
        "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('1')])\n"
        "nbformat.validate(nb)\n"
        "nb.cells[0]['cell_type'] = 'nonsense'\n"
        "try:\n"
        "    nbformat.validate(nb)\n"
        "except nbformat.ValidationError:\n"
        "    print('rejected')\n"
        "print(sys.modules.get('rfc3987_syntax'), 'lark' in sys.modules)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:2] == ["rejected", "None False"], run.stdout
