"""The index's targets over time and the bundle to send, from run folders written here (no notebooks run):
everything escaped, in order, and the bundle's pages and notebooks the run's own bytes."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from kit import cli
from kit.errors import ConfigurationError
from kit.report_bundle import Attachment, Page, bundle_page, write_bundle
from kit.report_changes import compare
from kit.report_index import build_index

from .test_markup import _parse as parse

HOSTILE = "<img src=x onerror=alert(1)>"
NOTEBOOKS = ("00_diagnose", "03_logs", "01_connect_handler")


def summary(
    name: str, cause: str | None, *, status: str = "ok", scenario: str = "seed-put-denied"
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "run": name,
        "status": status,
        "exit_code": 1,
        "root_cause": {"id": cause, "summary": f"summary of {cause}"} if cause else None,
        "findings": [
            {"check": "iam-put", "verdict": "pass" if cause in (None, "none") else "fail", "cause": cause}
        ],
        "counts": {"log_errors": 1},
        "diagnosis_from": "03_logs" if name.endswith("odd") else "00_diagnose",
        "target": {"kind": "lab"},
        "scenario": scenario,
        "errors": [],
        "notebooks": [
            {
                "name": notebook,
                "status": "ok",
                "files": {
                    "ipynb": f"{notebook}.ipynb",
                    "html": f"{notebook}.html",
                    "report_html": f"{notebook}.report.html",
                },
            }
            for notebook in NOTEBOOKS
        ],
    }
    return document


def write_run(reports: Path, document: dict[str, Any] | None, name: str | None = None) -> Path:
    folder = reports / (name or str(document and document["run"]))
    folder.mkdir(parents=True)
    if document is not None:
        (folder / "summary.json").write_text(json.dumps(document))
        for notebook in NOTEBOOKS:
            page = (
                f'<!DOCTYPE html><html><body><h1>{notebook}</h1><p>{HOSTILE} &amp; "quotes"</p></body></html>'
            )
            (folder / f"{notebook}.report.html").write_text(page)
            (folder / f"{notebook}.ipynb").write_bytes(
                json.dumps({"cells": [], "name": notebook}).encode() + b"\xe2\x86\x92"
            )
    return folder


# --------------------------------------------------------------------------------------------------------
# The index


def test_the_index_shows_each_target_over_time_newest_first(tmp_path: Path) -> None:
    first = summary("20261204T100000Z-lab-seed-put-denied", "put-access-denied")
    second = summary("20261204T110000Z-lab-seed-put-denied", "none")
    second["changes"] = compare(first, second, previous_run=first["run"]).as_dict()
    third = summary("20261204T120000Z-lab-seed-put-denied", None, status="failed")
    other = summary("20261204T113000Z-lab-healthy", "evidence-missing", scenario=HOSTILE)
    for document in (first, second, third, other):
        write_run(tmp_path, document)
    write_run(tmp_path, None, "20261204T130000Z-lab-seed-put-denied")  # still running

    page = build_index(tmp_path).read_text()
    parsed = parse(page)
    assert HOSTILE not in page and HOSTILE in "".join(parsed.text)
    history = page[page.index("Each target over time") : page.index("Every run")]
    labels = re.findall(r'<a class="verdict (v-[a-z]+)" href="\./([^/"]+)/"[^>]*>([^<]*)</a>', history)
    assert labels == [
        ("v-failed", "20261204T120000Z-lab-seed-put-denied", "failed"),
        ("v-none", "20261204T110000Z-lab-seed-put-denied", "ok: none"),
        ("v-cause", "20261204T100000Z-lab-seed-put-denied", "cause: put-access-denied"),
        ("v-inconclusive", "20261204T113000Z-lab-healthy", "inconclusive: evidence-missing"),
    ]
    rows = history.split("<tr>")
    assert "lab seed-put-denied" in rows[2] and "lab &lt;img" in rows[3], (
        "targets in the order of their newest run"
    )
    text = "".join(parsed.text)
    assert "verdict changed since 20261204T100000Z-lab-seed-put-denied: put-access-denied → none" in text
    assert "stopped failing: iam-put (now pass; was cause put-access-denied)" in text
    assert "incomplete" in text


def test_an_index_of_runs_from_before_changes_were_recorded(tmp_path: Path) -> None:
    old = summary("20261204T100000Z-lab-seed-put-denied", "put-access-denied")
    del old["counts"]
    write_run(tmp_path, old)
    page = build_index(tmp_path).read_text()
    assert "cause: put-access-denied" in page and "since the previous run" in page


# --------------------------------------------------------------------------------------------------------
# The bundle


def test_the_bundle_puts_the_diagnosis_first_and_attaches_the_notebooks_byte_for_byte(tmp_path: Path) -> None:
    document = summary("20261204T100000Z-lab-odd", "put-access-denied")
    document["changes"] = {"lines": [f"started failing: {HOSTILE}"]}
    folder = write_run(tmp_path, document)
    (folder / "20261204T100000Z-lab-odd.bundle.html").write_text("an old bundle, replaced")

    written = write_bundle(folder)

    assert written == folder / "20261204T100000Z-lab-odd.bundle.html"
    page = written.read_text()
    parsed = parse(page)
    frames = [attributes for tag, attributes in parsed.tags if tag == "iframe"]
    assert [frame["title"] for frame in frames] == ["03_logs", "00_diagnose", "01_connect_handler"]
    for frame in frames:
        assert frame["sandbox"] == "", "no script runs in a page"
        name = str(frame["title"])
        assert frame["srcdoc"] == (folder / f"{name}.report.html").read_text(), (
            "the page, whole and unescaped"
        )
    downloads = {
        str(a["download"]): str(a["href"]) for tag, a in parsed.tags if tag == "a" and "download" in a
    }
    assert set(downloads) == {f"{name}.ipynb" for name in NOTEBOOKS} | {"summary.json"}
    for name, href in downloads.items():
        media, _, data = href.partition(";base64,")
        assert media in ("data:application/x-ipynb+json", "data:application/json")
        assert base64.b64decode(data) == (folder / name).read_bytes()
    header = page[: page.index("<iframe")]
    assert HOSTILE not in header and f"started failing: {HOSTILE}" in "".join(parsed.text)
    assert "put-access-denied" in header and str(tmp_path) not in page
    assert not re.search(r"(?:src|href)=\"(?:https?:)?//", page), "nothing from the network"
    assert [tag for tag, _ in parsed.tags if tag in ("script", "img", "link")] == []


def test_bundle_page_escapes_names_and_anchors() -> None:
    attachment = Attachment(f'{HOSTILE}".ipynb', "application/x-ipynb+json", b"{}")
    page = bundle_page(
        {"run": HOSTILE, "root_cause": {"id": HOSTILE}}, [Page(HOSTILE, "<p>x</p>", attachment)], []
    )
    parsed = parse(page)
    assert HOSTILE not in page
    assert {tag for tag, _ in parsed.tags} <= {
        "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "dl", "dt", "dd", "code", "nav",
        "ol", "li", "a", "p", "ul", "section", "iframe",
    }  # fmt: skip
    (section,) = [a for tag, a in parsed.tags if tag == "section"]
    assert re.fullmatch(r"nb-[A-Za-z0-9_-]+", str(section["id"]))


@pytest.mark.parametrize(
    "setup",
    ["no folder", "no summary", "not json", "no notebooks", "files outside"],
)
def test_a_folder_that_cannot_be_bundled_is_a_clear_error(tmp_path: Path, setup: str) -> None:
    folder = tmp_path / "run"
    if setup != "no folder":
        folder.mkdir()
    if setup == "not json":
        (folder / "summary.json").write_text("{")
    if setup == "no notebooks":
        (folder / "summary.json").write_text(json.dumps({"run": "run"}))
    if setup == "files outside":
        (tmp_path / "secret.report.html").write_text("outside")
        listed = {"name": "x", "files": {"report_html": "../secret.report.html", "ipynb": "/etc/passwd"}}
        (folder / "summary.json").write_text(json.dumps({"run": "run", "notebooks": [listed]}))
    with pytest.raises(ConfigurationError, match=r"report folder|no \.report\.html page"):
        write_bundle(folder)


def test_kit_report_bundle_folder_bundles_without_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_run(tmp_path, summary("20261204T100000Z-lab-seed-put-denied", "put-access-denied"))
    build_index(tmp_path)
    assert "the bundle to send" not in (tmp_path / "index.html").read_text()
    assert cli.main(["report", "--bundle", str(folder)]) == 0
    out = capsys.readouterr()
    assert out.out.strip().endswith("20261204T100000Z-lab-seed-put-denied.bundle.html")
    link = (
        '<a href="./20261204T100000Z-lab-seed-put-denied/20261204T100000Z-lab-seed-put-denied.bundle.html">'
    )
    assert link + "the bundle to send</a>" in (tmp_path / "index.html").read_text(), "the index links it"
    assert cli.main(["report", "--bundle", str(tmp_path / "missing")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "not a finished report folder" in error and "Traceback" not in error


def test_kit_report_help_documents_the_change_exit_code_and_the_bundle(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["report", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "--exit-on-change" in shown and "4 when it changed" in shown and "2 when the kit failed" in shown
    assert "--bundle [FOLDER]" in shown


@pytest.mark.parametrize(
    ("previous", "exit_code", "flag", "expected"),
    [
        (None, 1, False, 1),  # without the flag: the verdict's code
        (None, 1, True, 4),  # first run
        ("put-access-denied", 1, True, 0),  # unchanged
        ("none", 1, True, 4),  # changed
        ("put-access-denied", 2, True, 2),  # failed
    ],
)
def test_kit_report_exit_on_change(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    previous: str | None,
    exit_code: int,
    flag: bool,
    expected: int,
) -> None:
    import kit.report

    folder = write_run(tmp_path, summary("20261204T110000Z-lab-seed-put-denied", "put-access-denied"))
    before = summary("20261204T100000Z-lab-seed-put-denied", previous) if previous else None
    current = summary(folder.name, "put-access-denied", status="failed" if exit_code == 2 else "ok")
    changes = compare(before, current, previous_run=before and before["run"])
    result = kit.report.ReportResult(folder, exit_code, "ok", None, (), (), current, changes)
    monkeypatch.setattr(kit.report, "run_report", lambda **_: result)
    assert cli.main(["report", *(["--exit-on-change"] if flag else [])]) == expected
