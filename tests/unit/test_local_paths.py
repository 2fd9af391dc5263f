"""kit.local_paths: a report names a file, never where it sits on this machine."""

from __future__ import annotations

import base64

import pytest

from kit import local_paths
from kit.local import PROJECT_ROOT

ROOTS = ("/work/main", "/root", "/tmp")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lab file /work/main/.kit/lab.json", "lab file lab.json"),
        ("/srv/app/.env.local (AWS_ACCESS_KEY_ID)", ".env.local (AWS_ACCESS_KEY_ID)"),
        ("file ~/app/.env.local", "file .env.local"),
        ("in /a/b.json, then /c/d/", "in b.json, then d"),
        ("dynamodb=http://127.0.0.1:8000/x/y", "dynamodb=http://127.0.0.1:8000/x/y"),  # a URL keeps its path
        ("s3://bucket/key/name", "s3://bucket/key/name"),
        ("arn:aws:iam::123456789012:role/service-role/x", "arn:aws:iam::123456789012:role/service-role/x"),
        ("a relative/path/here", "a relative/path/here"),
        ("profile dev", "profile dev"),
        ("", ""),
    ],
)
def test_file_names(text: str, expected: str) -> None:
    assert local_paths.file_names(text) == expected


PICTURE = "data:image/png;base64," + base64.b64encode(b"\xfb\xef\xff" * 8).decode() + "+/tmp/x"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "summary written to /work/main/.kit/report-work/1-x/00_diagnose.diagnosis.json",
            "summary written to 00_diagnose.diagnosis.json",
        ),
        ('env_file = "/root/app/.env.local"', 'env_file = ".env.local"'),
        ("File /work/main/kit/target.py:123, in from_parameters", "File target.py:123, in from_parameters"),
        ("<td>/tmp/pytest-of-root/x/.env.local</td>", "<td>.env.local</td>"),
        ("cwd /work/main", "cwd main"),
        ("/work/mainline/x and /tmpfiles/y", "/work/mainline/x and /tmpfiles/y"),  # other folders
        ("see https://example.com/tmp/a and /var/log/x", "see https://example.com/tmp/a and /var/log/x"),
        (PICTURE, PICTURE),  # base64 of a figure is never cut
    ],
)
def test_without_local_paths(text: str, expected: str) -> None:
    assert local_paths.without_local_paths(text, ROOTS) == expected


def test_without_roots_nothing_changes() -> None:
    assert local_paths.without_local_paths("/work/main/x", []) == "/work/main/x"


def test_the_local_roots_are_this_machines_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/someone")
    roots = local_paths.local_roots()
    assert str(PROJECT_ROOT) in roots and "/home/someone" in roots
    assert "/" not in roots and list(roots) == sorted(roots, key=len, reverse=True)
    page = f"<p>{PROJECT_ROOT}/notebooks/00_diagnose.ipynb and /home/someone/.env.local</p>"
    assert local_paths.without_local_paths(page, roots) == "<p>00_diagnose.ipynb and .env.local</p>"
