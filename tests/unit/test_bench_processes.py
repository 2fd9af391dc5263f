"""bench.processes: which part of the lab a process of its tree is, from its command line."""

from __future__ import annotations

import pytest

from bench import processes


@pytest.mark.parametrize(
    ("cmdline", "role"),
    [
        (
            ["/v/bin/python", "-s", "-X", "utf8", "-m", "kit.lab.runtime_worker", "--requests", "4"],
            "lambda workers",
        ),
        (["/usr/bin/node", "--max-old-space-size=115", "/p/kit/lab/runtime_worker.mjs"], "lambda workers"),
        (["/usr/bin/java", "-cp", "/x/launcher:/y/DynamoDBLocal.jar", "Launcher"], "dynamodb local"),
        (["/v/bin/python", "-m", "kit.lab.nextjs_backend"], "next.js stand-in"),
        (["/usr/bin/node", "/p/other.mjs"], "other"),
        ([], "other"),
    ],
)
def test_each_process_of_the_lab_gets_its_role(cmdline: list[str], role: str) -> None:
    assert processes.role_of(cmdline) == role


@pytest.mark.parametrize(
    ("name", "server_module", "role"),
    [
        ("kit-gateway", None, processes.THREAD_GATEWAY),
        ("kit-invoke_3", None, processes.THREAD_INVOKE),
        ("kit-log-writer", None, processes.THREAD_LOG_WRITER),
        ("moto-server", None, processes.THREAD_MOTO),
        ("Thread-7 (process_request_thread)", "werkzeug.serving", processes.THREAD_MOTO),
        ("dynamodb-front", None, processes.THREAD_FRONT),
        ("Thread-9 (process_request_thread)", "http.server", processes.THREAD_FRONT),
        ("kit-lambda-spawner_0", None, processes.THREAD_OTHER),
    ],
)
def test_each_thread_of_the_lab_process_gets_its_role(
    name: str, server_module: str | None, role: str
) -> None:
    assert processes.thread_role(name, server_module) == role
