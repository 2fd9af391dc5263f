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
