"""A report keeps its kernels between notebooks (kit.report_kernels.KernelLane), and the next notebook sees
nothing the last one left: no name, no figure, no other folder, and cells numbered from 1. A notebook that
fails takes its kernel with it. Real kernels, tiny notebooks, no lab."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from kit.report_kernels import KernelLane, kernel_environment, kernel_lanes

pytestmark = pytest.mark.integration


def _notebook(folder: Path, name: str, *sources: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def _run(lane: KernelLane, path: Path, out: Path) -> tuple[dict[str, Any], Any]:
    executed = out / f"{path.stem}.out.ipynb"
    failure = lane.submit(lane.execute, path, executed, {}, 60).result()
    return failure, nbformat.read(str(executed), as_version=4) if executed.exists() else None


def _printed(nb: Any) -> list[str]:
    return [
        output["text"].strip()
        for cell in nb.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream"
    ]


@pytest.fixture
def lane(tmp_path: Path) -> Iterator[KernelLane]:
    with kernel_environment(tmp_path / "jupyter"), kernel_lanes(1) as lanes:
        yield lanes[0]


def test_the_next_notebook_in_a_kept_kernel_sees_nothing_the_last_one_left(
    lane: KernelLane, tmp_path: Path
) -> None:
    folder, out = tmp_path / "notebooks", tmp_path / "out"
    out.mkdir()
    first = _notebook(
        folder,
        "01_first",
        "import os, matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt\nplt.figure()",
        "import pandas as pd\npd.set_option('display.max_rows', 7)",
        "left_behind = 1\nos.mkdir('elsewhere'); os.chdir('elsewhere')\nprint(os.getpid())",
    )
    second = _notebook(
        folder,
        "02_second",
        "import os, sys\nprint(os.getpid())",
        "print('left_behind' in dir())",
        "print(os.path.basename(os.getcwd()))",
        "print(len(sys.modules['matplotlib.pyplot'].get_fignums()))",
        "print(sys.modules['pandas'].get_option('display.max_rows'))",
    )
    failure, ran = _run(lane, first, out)
    assert failure == {}, failure
    failure, again = _run(lane, second, out)
    assert failure == {}, failure
    assert lane.kernels_started == 1
    pid = _printed(ran)[-1]
    # Same kernel; no name, folder, figure or pandas option left (60 rows is pandas' default).
    assert _printed(again) == [pid, "False", "notebooks", "0", "60"]
    assert [cell.execution_count for cell in again.cells] == [1, 2, 3, 4, 5]


def test_a_failed_notebook_takes_its_kernel_with_it(lane: KernelLane, tmp_path: Path) -> None:
    folder, out = tmp_path / "notebooks", tmp_path / "out"
    out.mkdir()
    failing = _notebook(folder, "01_fails", "import os\nprint(os.getpid())", "raise ValueError('no')")
    after = _notebook(folder, "02_after", "import os\nprint(os.getpid())")
    failure, ran = _run(lane, failing, out)
    assert failure["ename"] == "ValueError" and failure["cell"] == 2
    _, again = _run(lane, after, out)
    assert lane.kernels_started == 2
    assert _printed(again) != _printed(ran)[:1]  # a new kernel


def test_a_kept_kernel_that_died_between_notebooks_is_replaced(lane: KernelLane, tmp_path: Path) -> None:
    """A kept kernel can die while it waits (killed, out of memory): the next notebook gets a new kernel
    instead of failing with "Kernel died before replying to kernel_info"."""
    folder, out = tmp_path / "notebooks", tmp_path / "out"
    out.mkdir()
    first = _notebook(folder, "01_first", "import os\nprint(os.getpid())")
    second = _notebook(folder, "02_second", "import os\nprint(os.getpid())")
    failure, ran = _run(lane, first, out)
    assert failure == {}, failure
    pid = int(_printed(ran)[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not _exited(pid):
        assert time.monotonic() < deadline, f"kernel {pid} still running 10 s after SIGKILL"
        time.sleep(0.01)
    failure, again = _run(lane, second, out)
    assert failure == {}, failure
    assert lane.kernels_started == 2
    assert int(_printed(again)[0]) != pid


def test_a_notebook_in_another_folder_gets_a_kernel_started_there(lane: KernelLane, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    here = _notebook(tmp_path / "here", "01_here", "import os\nprint(os.path.basename(os.getcwd()))")
    there = _notebook(tmp_path / "there", "01_there", "import os\nprint(os.path.basename(os.getcwd()))")
    assert _printed(_run(lane, here, out)[1]) == ["here"]
    assert _printed(_run(lane, there, out)[1]) == ["there"]
    assert lane.kernels_started == 2


def test_the_lanes_leave_no_kernel_running(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    path = _notebook(tmp_path / "notebooks", "01_pid", "import os\nprint(os.getpid())")
    with kernel_environment(tmp_path / "jupyter"), kernel_lanes(2) as lanes:
        pids = [int(_printed(_run(lane, path, out)[1])[0]) for lane in lanes]
        assert len(set(pids)) == 2
    assert not any(_running(pid) for pid in pids)


def _running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status  # a zombie has ended


def _exited(pid: int) -> bool:
    """Whether this process's child ``pid`` has exited as ``waitpid`` sees it, without reaping it (its kernel
    manager still will). /proc says zombie as soon as the main thread has ended, while the kernel's other
    threads may still be exiting and ``waitpid`` not report it yet."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
