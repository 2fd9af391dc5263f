"""The log file benchmark: ``kit logs parse FILE`` of a big file of raw lines, its peak memory and its time.

The issue's figure: a 200 MB file of raw lines once took 3 min 12 s and 15.1 GB resident, because the
command built the whole frame and then its text. The command now reads, parses and writes the file a part
at a time; its budget is a peak resident set of at most three times the file's size. The file is the lab's
own traffic (:func:`bench.evidence.log_events`: Lambda, execution-log and access-log lines), one event a
line, ``file_mb`` MB of it; the command runs in a child process (``--csv``, output to ``/dev/null``) whose
peak resident set and CPU time come from ``wait4``, so nothing the bench holds counts.

Must not: time the writing of the file, or reach the network.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.evidence import log_events
from bench.figures import Figure, figure
from bench.settings import BenchSettings
from kit.local import PROJECT_ROOT

Progress = Callable[[str], None]

FILE_TARGET_RATIO = 3.0  # the issue's: peak resident set at most three times the file's size
CHILD_TIMEOUT_S = 1800.0
BLOCK_LINES = 50_000  # lines generated once and written again until the file has its size


def write_log_file(path: Path, size_mb: float) -> tuple[int, int]:
    """``size_mb`` MB of raw log lines (a block of the lab's traffic, written again and again); the file's
    bytes and lines."""
    block = b"".join(event["message"].rstrip("\n").encode() + b"\n" for event in log_events(BLOCK_LINES))
    target = int(size_mb * 1024 * 1024)
    written = lines = 0
    with path.open("wb") as file:
        while written < target:
            piece = (
                block
                if written + len(block) <= target
                else block[: block.rfind(b"\n", 0, target - written) + 1]
            )
            if not piece:
                break
            file.write(piece)
            written += len(piece)
            lines += piece.count(b"\n")
    return written, lines


def run_parse(path: Path, form: str = "--csv") -> dict[str, float]:
    """``kit logs parse PATH FORM`` in a child: exit code, peak resident set (MB), wall and CPU seconds."""
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "-m", "kit.cli", "logs", "parse", str(path), form],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage, not every child's maximum
    child.returncode = os.waitstatus_to_exitcode(status)
    return {
        "exit": child.returncode,
        "peak_mb": usage.ru_maxrss / 1024,  # KiB on Linux
        "wall_s": time.monotonic() - started,
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


def measure_file_memory(settings: BenchSettings, progress: Progress) -> Figure:
    with tempfile.TemporaryDirectory(prefix="kit-bench-logfile-") as folder:
        path = Path(folder) / "lines.log"
        size, lines = write_log_file(path, settings.file_mb)
        size_mb = size / (1024 * 1024)
        progress(f"wrote {size_mb:,.0f} MB ({lines:,} lines); `kit logs parse` of it in a child process")
        floor = run_parse(PROJECT_ROOT / "tests" / "data" / "logs" / "python-text.log")
        measured = run_parse(path)
    if measured["exit"] != 0 or floor["exit"] != 0:
        raise RuntimeError(f"kit logs parse exited with {measured['exit']} (a small file: {floor['exit']})")
    peak = measured["peak_mb"]
    progress(f"peak {peak:,.0f} MB for a {size_mb:,.0f} MB file, {measured['wall_s']:.1f} s")
    return figure(
        "log_file_parse_peak_memory",
        f"`kit logs parse` of a {size_mb:,.0f} MB file: peak memory",
        value=peak,
        unit="MB",
        baseline=size_mb,
        baseline_title="the file's size",
        ratio_of="value/baseline",
        target=FILE_TARGET_RATIO,
        better="lower",
        target_source="issue",
        details={
            "file_mb": round(size_mb, 1),
            "lines": lines,
            "format": "csv",
            "wall_s": round(measured["wall_s"], 1),
            "cpu_s": round(measured["cpu_s"], 1),
            "small_file_peak_mb": round(floor["peak_mb"], 1),
            "growth_over_small_file_mb": round(peak - floor["peak_mb"], 1),
        },
        note=(
            "The whole command (Python, pandas and pyarrow included) in a child, its peak resident set from "
            "wait4, against the file's size. The file is read, parsed and written a part at a time "
            "(kit.logparse.reading.PART_SIZE), so the peak stays near what one part costs whatever the "
            "file's size; small_file_peak_mb is the same command on a file of a few lines, the floor."
        ),
    )
