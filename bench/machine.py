"""What machine a bench run happened on: CPU, memory, Python, Java, the engine and package versions.

Read from ``/proc``, ``platform``, package metadata and ``java -version``; anything that cannot be read is
left out rather than guessed. No host names or user names: results files get shared.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

from kit.lab import engines
from kit.local import PROJECT_ROOT

PACKAGES = ("kit", "boto3", "botocore", "moto", "websockets")


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError):
        return None
    return None


def _java_version() -> str | None:
    java = shutil.which("java")
    if java is None:
        return None
    try:
        answer = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (answer.stderr or answer.stdout).strip().splitlines()
    return lines[0] if lines else None


def _git_commit() -> str | None:
    try:
        answer = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return answer.stdout.strip() or None


def describe_machine() -> dict[str, object]:
    versions: dict[str, str] = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    folder = engines.find_dynamodb_local()
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "memory_gb": _memory_gb(),
        # Others may share the machine: a busy one slows both sides of every ratio, but not always equally.
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        "java": _java_version(),
        "dynamodb_local": folder.name if folder else None,
        "packages": versions,
        "git_commit": _git_commit(),
    }
