"""kit.report end to end: notebooks run by papermill against the lab, redacted, rendered, indexed.

The notebooks here are small ones written under tmp_path that follow the notebooks' contract (a papermill
``parameters`` cell with target, profile, region, table, env_file, websocket_url, since_minutes, mask_emails,
and for the diagnosis summary_path, written through ``kit.diagnose.ranking``). The last test runs the real
``notebooks/`` once they exist.

Order matters: the first test lets ``run_report`` start its own lab; the later ones share one lab started by
a module fixture (one lab per process).
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import nbformat
import pytest

from kit.diagnose.counts import COUNTS
from kit.errors import ConfigurationError
from kit.handler.app import sign_token
from kit.lab.lab import Lab
from kit.markup import SAFE_TAGS
from kit.redact import FRAGMENT_LENGTH, MIN_SECRET_LENGTH
from kit.report import run_report
from kit.report_bundle import write_bundle
from kit.report_changes import EXIT_CHANGED, FIRST_RUN, change_exit_code

from . import labclient
from .browser import chromium, open_page
from .labclient import EmptyDynamoDB

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = "seed-put-denied"  # the IAM evidence alone ranks put-access-denied: no probe needed
RUN_FOLDER = re.compile(r"^\d{8}T\d{6}Z-lab-seed-put-denied$")
SUFFIXES = (".ipynb", ".html", ".report.html")
EXTERNAL_SCRIPT = re.compile(r"<script[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//", re.IGNORECASE)

PARAMETERS = """target: str = "lab"  # lab or aws
profile: str = ""
region: str = ""
table: str = ""
env_file: str = ""
websocket_url: str = ""
since_minutes: int = 60
mask_emails: bool = True
summary_path: str = ""  # where the diagnosis JSON goes (empty: nowhere)"""

DIAGNOSE = """from pathlib import Path
from kit.diagnose import ranking
from kit.diagnose.reading import read_evidence
from kit.target import Target
result = ranking.diagnose(read_evidence(Target.from_lab_file()))
if summary_path:
    Path(summary_path).write_text(ranking.to_json(result))
result.findings[["check", "verdict", "cause"]]"""

FIGURE = """import matplotlib.pyplot as plt
result.findings["verdict"].value_counts().plot.bar(title="verdicts")
plt.show()"""


def contract_notebook(
    path: Path, *cells: str, markdown: str = "# Diagnosis of `$connect`", diagnosis: bool = True
) -> Path:
    """A notebook with the notebooks' parameters cell; ``diagnosis=False`` leaves out summary_path."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    declared = PARAMETERS if diagnosis else PARAMETERS.rsplit("\n", 1)[0]
    parameters = nbformat.v4.new_code_cell(declared)
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(markdown), parameters]
    nb.cells += [nbformat.v4.new_code_cell(cell) for cell in cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake HOME and, unless a shared lab set one, a private state folder."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))  # where tools would go if they ignored HOME
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    return home


# --------------------------------------------------------------------------------------------------------
# (a) run_report starts the lab itself


def test_a_report_against_a_lab_it_starts(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    monkeypatch.setenv("KIT_STATE_DIR", str(state))
    notebook = contract_notebook(tmp_path / "nb" / "00_check.ipynb", DIAGNOSE, FIGURE)
    reports = tmp_path / "reports"
    lines: list[str] = []

    result = run_report(
        target="lab", scenario=SCENARIO, notebooks=[notebook], reports_dir=reports, progress=lines.append
    )

    assert result.exit_code == 1, (result.errors, lines)
    assert result.status == "ok"
    assert RUN_FOLDER.match(result.folder.name), result.folder.name
    assert result.folder.parent == reports.resolve()
    assert {p.name for p in result.folder.iterdir()} == {
        "00_check.ipynb",
        "00_check.html",
        "00_check.report.html",
        "summary.json",
    }
    full = (result.folder / "00_check.html").read_text()
    hidden = (result.folder / "00_check.report.html").read_text()
    for page in (full, hidden):
        assert re.search(r'<img[^>]+src="data:image/png;base64,', page), "the figure must be embedded"
        assert not EXTERNAL_SCRIPT.search(page), "no script may come from the network"
        assert '<script src=""' not in page
        assert "put-access-denied" in page
    assert "write_text" in full and "write_text" not in hidden, "the report HTML hides the code"
    prompt = re.compile(r'class="jp-(?:Input|Output)Prompt[^"]*">(?:In|Out)\s*\[')
    assert prompt.search(full) and not prompt.search(hidden), "and the prompts"

    summary = json.loads((result.folder / "summary.json").read_text())
    assert summary["root_cause"]["id"] == "put-access-denied" == result.root_cause["id"]  # type: ignore[index]
    assert {"id", "summary", "evidence", "next_step"} <= set(summary["root_cause"])
    assert summary["findings"] and {"check", "verdict"} <= set(summary["findings"][0])
    assert summary["target"]["kind"] == "lab" and summary["target"]["table"] == "chatgenius-connections"
    assert summary["scenario"] == SCENARIO and summary["lab_started_by_report"] is True
    # The scenario's client side (how the browser connects) is passed to the probe; nothing else is.
    assert summary["parameters"] == {
        "target": "lab",
        "mask_emails": True,
        "probe_workspace_id": True,
        "probe_close_at_once": False,
        "probe_join": False,
    }
    assert summary["notebooks"] == [
        {
            "name": "00_check",
            "status": "ok",
            "ename": None,
            "evalue": None,
            "cell": None,
            "cell_index": None,
            "execute_s": summary["notebooks"][0]["execute_s"],
            "render_s": summary["notebooks"][0]["render_s"],
            "files": {
                "ipynb": "00_check.ipynb",
                "html": "00_check.html",
                "report_html": "00_check.report.html",
            },
        }
    ]
    assert set(summary["versions"]) >= {"kit", "python", "boto3", "pandas", "papermill"}
    timings = summary["timings"]
    assert timings["total_s"] >= timings["notebooks"]["00_check"]["execute_s"] > 0
    assert timings["lab_start_s"] > 0
    assert summary["started"] <= summary["finished"] and summary["exit_code"] == 1

    executed = nbformat.read(str(result.folder / "00_check.ipynb"), as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "summary_path" in injected[0].source

    index = (reports / "index.html").read_text()
    assert result.folder.name in index and "put-access-denied" in index
    assert f"{result.folder.name}/00_check.report.html" in index

    assert not (state / "lab.json").exists(), "the lab the report started is stopped"
    assert list((state / "report-work").iterdir()) == [], "the private work folder is removed"
    assert (state / "jupyter" / "ipython").is_dir() and (state / "jupyter" / "matplotlib").is_dir()
    assert files_under(isolated) == [], "nothing may be written under HOME"
    assert any("lab up" in line for line in lines) and lines[-1] == "stopping the lab"


# --------------------------------------------------------------------------------------------------------
# A lab shared by the remaining tests


@pytest.fixture(scope="module")
def shared_lab(tmp_path_factory: pytest.TempPathFactory, empty_dynamodb: EmptyDynamoDB) -> Iterator[Lab]:
    state = tmp_path_factory.mktemp("shared-state")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KIT_STATE_DIR", str(state))
        with Lab(SCENARIO, write_lab_file=True, dynamodb=empty_dynamodb()) as lab:
            yield lab


def test_a_scenario_other_than_the_running_labs_is_a_clear_error(shared_lab: Lab, tmp_path: Path) -> None:
    notebook = contract_notebook(tmp_path / "00_check.ipynb", DIAGNOSE)
    with pytest.raises(ConfigurationError, match=f"already running with scenario {SCENARIO}"):
        run_report(scenario="healthy", notebooks=[notebook], reports_dir=tmp_path / "reports")
    assert not (tmp_path / "reports").exists(), "nothing is written for a bad request"
    with pytest.raises(ConfigurationError, match="only applies to the lab"):
        run_report(target="aws", scenario=SCENARIO, notebooks=[notebook], reports_dir=tmp_path / "reports")


# --------------------------------------------------------------------------------------------------------
# (b) failing notebooks


def test_b_a_notebook_failing_before_the_diagnosis_is_exit_2_with_its_banner(
    shared_lab: Lab, tmp_path: Path, isolated: Path
) -> None:
    failing = contract_notebook(
        tmp_path / "00_broken.ipynb",
        "threshold = 7",
        'raise ValueError(f"bad threshold {threshold}")',
        DIAGNOSE,
    )
    result = run_report(notebooks=[failing], reports_dir=tmp_path / "reports", progress=lambda _: None)

    assert result.exit_code == 2 and result.status == "failed"
    assert result.root_cause is None and "diagnosis is missing" in result.errors[0]
    assert result.folder.name.endswith("-lab-seed-put-denied"), "the scenario comes from the running lab"
    (notebook,) = result.summary["notebooks"]
    assert notebook["status"] == "failed" and notebook["ename"] == "ValueError"
    # In [4]: the parameters cell, the injected one and `threshold = 7` ran before it
    assert notebook["evalue"] == "bad threshold 7" and notebook["cell"] == 4
    for name in ("00_broken.html", "00_broken.report.html"):
        page = (result.folder / name).read_text()
        assert "An Exception was encountered at" in page and "papermill-error-cell" in page
        assert "bad threshold 7" in page
        card = page[page.index('<section id="kit-summary"') : page.index("</section>")]
        assert "NO DIAGNOSIS: THE RUN FAILED" in card, "the card says there is no diagnosis, and why"
        assert "<code>00_broken</code> failed at cell In [4] (ValueError: bad threshold 7)" in card
    executed = nbformat.read(str(result.folder / "00_broken.ipynb"), as_version=4)
    assert executed.metadata.papermill.exception is True
    assert "papermill-error-cell-tag" in executed.cells[0].metadata.tags
    summary = json.loads(result.summary_path.read_text())
    assert summary["exit_code"] == 2 and summary["root_cause"] is None
    assert "failed" in (tmp_path / "reports" / "index.html").read_text()
    assert files_under(isolated) == []


def test_b_a_notebook_failing_after_the_diagnosis_keeps_the_cause(shared_lab: Lab, tmp_path: Path) -> None:
    diagnosis = contract_notebook(tmp_path / "00_check.ipynb", DIAGNOSE)
    broken = contract_notebook(tmp_path / "03_broken.ipynb", "1 / 0")
    result = run_report(
        notebooks=[diagnosis, broken], reports_dir=tmp_path / "reports", progress=lambda _: None
    )

    assert result.exit_code == 1 and result.status == "partial"
    assert [n.status for n in result.notebooks] == ["ok", "failed"]
    assert result.notebooks[1].ename == "ZeroDivisionError"
    assert result.cause_line().startswith("root cause: put-access-denied")
    # Every page, the diagnosis's own too, leads with the cause and says which part failed.
    for name in ("00_check.report.html", "00_check.html", "03_broken.report.html"):
        page = (result.folder / name).read_text()
        card = page[page.index('<section id="kit-summary"') : page.index("</section>")]
        assert "ROOT CAUSE</span> <code>put-access-denied</code>" in card, name
        assert "<code>03_broken</code> failed at cell In [3] (ZeroDivisionError: division by zero)" in card


# --------------------------------------------------------------------------------------------------------
# Scheduled runs: the second run of a target says what changed since the first


def _allow_put(document: dict[str, Any]) -> None:
    """Give back the PutItem the seed's role lacks (the statement that still allows DeleteItem)."""
    for statement in document["Statement"]:
        actions = statement.get("Action")
        if isinstance(actions, list) and "dynamodb:DeleteItem" in actions:
            actions.append("dynamodb:PutItem")


def test_two_scheduled_runs_say_what_changed(shared_lab: Lab, tmp_path: Path) -> None:
    notebook = contract_notebook(tmp_path / "00_check.ipynb", DIAGNOSE)
    reports = tmp_path / "reports"
    lines: list[str] = []
    first = run_report(notebooks=[notebook], reports_dir=reports, progress=lines.append)
    with labclient.role_policy_changed(shared_lab, _allow_put):  # the fault is fixed between the runs
        second = run_report(notebooks=[notebook], reports_dir=reports, progress=lines.append)

    assert first.changes is not None and second.changes is not None
    assert first.changes.previous_run is None and FIRST_RUN in lines
    assert change_exit_code(first.changes, first.exit_code) == EXIT_CHANGED
    changes = second.changes
    assert changes.previous_run == first.folder.name, lines
    # PutItem allowed, and no connection in the logs to back an all-clear: inconclusive, not "none"
    assert (changes.verdict_before, changes.verdict_after) == ("put-access-denied", "evidence-missing")
    assert [c.check for c in changes.stopped_failing] == ["iam-put"], changes
    assert [c.check for c in changes.started_failing] == ["all-clear"], changes
    assert change_exit_code(changes, second.exit_code) == EXIT_CHANGED
    recorded = json.loads(second.summary_path.read_text())
    assert recorded["changes"]["verdict_changed"] is True
    # The reader sees it first: each page's summary card says what changed, as summary.json does.
    for run, said in ((first, FIRST_RUN), (second, changes.headline())):
        page = (run.folder / run.notebooks[0].files["report_html"]).read_text()
        card = page[page.index('<section id="kit-summary"') : page.index("</section>")]
        assert "Since the previous run" in card and html.escape(said) in card, card
    assert "stopped failing: iam-put" in card
    assert recorded["changes"]["lines"] == changes.lines() and changes.headline() in lines
    assert set(recorded["counts"]) == set(COUNTS) and recorded["target"]["kind"] == "lab"
    index = (reports / "index.html").read_text()
    history = index[index.index("Each target over time") : index.index("Every run")]
    assert history.index(second.folder.name) < history.index(first.folder.name), "newest first"
    assert "cause: put-access-denied" in history
    bundle = write_bundle(second.folder)
    assert bundle.read_text().count("<iframe") == 1


# --------------------------------------------------------------------------------------------------------
# (c) the canary test: no secret from any source reaches any output file


CANARY_SECRET_KEY = "cAnArYsEcReTkEy/0000+EnViRoNmEnT/9999zz"
CANARY_SESSION_TOKEN = "IQoJb3JpZ2luX2VjECANARY" + "Zm9vQ2FuYXJ5U2Vzc2lvblRva2Vu" * 12 + "Ab/+cd=="
CANARY_AUTH_SECRET = "canary-auth-secret-3b9d1e77f0a24c51"
FILE_SECRET_KEY = "fIlEcAnArYsEcReT/1111+dotenvlocal/8888qq"
FILE_ACCESS_KEY_ID = "AKIACANARYENVFILE001"
FILE_PASSWORD = "canary-db-password-6f1c2e"
CANARY_EMAIL = "canary.person@acme-widgets.io"

# Secrets nobody told the kit about, planted as people write them: one log line each (as a Python runtime's
# uncaught error, so 03_logs lists it), the values the report must not show in any encoding.
STS_AGOJ = "AgoJb3JpZ2luX2VjEJb//////////wEaCXVzLWVhc3QtMSJGMEQCIB8jwf5cYf/RJHd+8uk+ymkn" + "Q2FuYXJ5" * 8
STS_FWOG = "FwoGZXIvYXdzEBgaDBZPB84oOIykxfggFSLVAbCctxjnDE9/NQx8U7wAWdrZlaK5XY8Ikh" + "RndvZ0Nhbg" * 8
BASIC_PASSWORD = "basic-pass-3Vt9"
PLANTED_LINES: dict[str, tuple[str, tuple[str, ...]]] = {
    "password, unquoted": ("db login failed, password: pw-unquoted-Q7x2m retry 1", ("pw-unquoted-Q7x2m",)),
    "SecretAccessKey, unquoted": (
        "assumed role, SecretAccessKey: sak/Unquoted+9Zr4Lp ok",
        ("sak/Unquoted+9Zr4Lp",),
    ),
    "password, quoted with spaces": ('body {"password": "correct horse battery staple"}', ("horse battery",)),
    "Bearer": ("GET /me Authorization: Bearer opaqueBearer4Kd2xYw", ("opaqueBearer4Kd2xYw",)),
    "x-api-key": ("upstream call x-api-key: apikey-5Hn8Wq3zLm", ("apikey-5Hn8Wq3zLm",)),
    "Basic user:password": (
        "Authorization: Basic " + base64.b64encode(f"svc-user:{BASIC_PASSWORD}".encode()).decode(),
        (BASIC_PASSWORD, base64.b64encode(f"svc-user:{BASIC_PASSWORD}".encode()).decode()),
    ),
    "Basic holding a known secret": (
        "Proxy-Authorization: Basic " + base64.b64encode(f"admin:{CANARY_AUTH_SECRET}".encode()).decode(),
        (base64.b64encode(f"admin:{CANARY_AUTH_SECRET}".encode()).decode(),),
    ),
    "known secret in base64 JSON": (
        "payload=" + base64.b64encode(json.dumps({"key": CANARY_SECRET_KEY}).encode()).decode(),
        (base64.b64encode(json.dumps({"key": CANARY_SECRET_KEY}).encode()).decode(),),
    ),
    "URL password": ("dsn https://svc:url-pass-8Jd3Qx@db.internal.example/x", ("url-pass-8Jd3Qx",)),
    "STS token AgoJ": (f"cached credentials {STS_AGOJ} for later", (STS_AGOJ,)),
    "STS token FwoG": (f"cached credentials {STS_FWOG} for later", (STS_FWOG,)),
    "e-mail %2540": ("user pct.person%2540double-enc-domain.io joined", ("pct.person", "double-enc-domain")),
    "e-mail \\u0040": (
        "user json.person\\u0040json-esc-domain.io joined",
        ("json.person", "json-esc-domain"),
    ),
    "e-mail, IDN domain": (
        "user idn.person@bücher-canary.de joined",
        ("idn.person", "bücher-canary", "bcher-canary"),
    ),
    "e-mail, Unicode local part": ("user jösé.canary@例え-canary.jp joined", ("jösé", "例え-canary")),
}
# An item whose attributes say what their values are; the values sit in other cells than their names.
ITEM_SECRETS = {"password": "item-pw-K3v9", "secret": "item-secret-T5q1", "token": "item-token-W8r2"}
ITEM_NESTED_SECRET = "item-nested-sak-Z4m7"
# A Markdown table in a notebook's own text: the name in one cell, the value in the next.
MARKDOWN_TABLE = (
    "# Settings\n\n| name | value |\n|---|---|\n| DB_PASSWORD | md-table-pw-Y6k2 |\n| REGION | us-east-2 |"
)

CANARY_CELLS = (
    DIAGNOSE,
    """import os, json
import pandas as pd
from IPython.display import HTML, JSON, Markdown, display
t = Target.from_lab_file()
events = t.client("logs").filter_log_events(logGroupName="/aws/lambda/chatgenius-websocket")["events"]
canary = [e for e in events if "canary" in e["logStreamName"]]
print(json.dumps(canary, indent=1))
display(JSON({"events": canary}))
display(Markdown(canary[0]["message"]))
pd.DataFrame(canary)""",
    """items = t.client("dynamodb").scan(TableName=t.table)["Items"]
print(items)
flat = pd.DataFrame([{k: next(iter(v.values())) for k, v in i.items()} for i in items])
display(HTML(flat.to_html()))
long = flat.melt(id_vars=["connectionId"], var_name="attribute", value_name="value")
display(long)
print(long)
print(long.to_dict("records"))""",
    """print({k: v for k, v in os.environ.items() if k.startswith(("AWS_", "AUTH_"))})
pd.Series({k: v for k, v in os.environ.items() if k.startswith(("AWS_", "AUTH_"))})""",
    """print(open(env_file).read())""",
    FIGURE,
    """raise RuntimeError("lost the handler's secret " + os.environ["AUTH_SECRET"] + " for " + canary_user)""",
)


def encodings(value: str) -> set[str]:
    """The spellings a value takes in a report's files: plain, URL-, JSON-, HTML-escaped and base64."""
    raw = value.encode()
    return {
        value,
        quote(value, safe=""),
        quote_plus(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        html.escape(value),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }


def base64_inside(value: str) -> set[str]:
    """What the base64 of a longer text holding ``value`` contains, at each of the three offsets."""
    return {base64.b64encode(pad + value.encode()).decode()[4:-4] for pad in (b"", b"a", b"ab")}


@pytest.fixture(scope="module")
def planted(shared_lab: Lab) -> str:
    """The secrets planted once in the shared lab's logs and table; the signed token planted with them."""
    signed = sign_token(CANARY_EMAIL, CANARY_AUTH_SECRET, int(time.time()) + 3600)
    admin = shared_lab.target()
    logs = admin.client("logs")
    logs.create_log_stream(logGroupName="/aws/lambda/chatgenius-websocket", logStreamName="canary-stream")
    first = (
        f"[ERROR] connect failed for {CANARY_EMAIL} GET /prod?token={signed}&workspaceId=w-1 "
        f"AWS_SECRET_ACCESS_KEY={CANARY_SECRET_KEY} X-Amz-Security-Token={CANARY_SESSION_TOKEN} "
        f"key {FILE_ACCESS_KEY_ID}"
    )
    lines = [
        f"[ERROR] CanaryError: canary-{n:02d} {line}" for n, (line, _) in enumerate(PLANTED_LINES.values())
    ]
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName="/aws/lambda/chatgenius-websocket",
        logStreamName="canary-stream",
        logEvents=[{"timestamp": now + n, "message": m} for n, m in enumerate([first, *lines])],
    )
    admin.client("dynamodb").put_item(
        TableName=admin.table,
        Item={
            "connectionId": {"S": "canary-connection"},
            "workspaceId": {"S": "w-1"},
            "userId": {"S": CANARY_EMAIL},
            "timestamp": {"S": "2026-11-25T00:00:00Z"},
            "status": {"S": "online"},
            **{name: {"S": value} for name, value in ITEM_SECRETS.items()},
            "credentials": {"M": {"SecretAccessKey": {"S": ITEM_NESTED_SECRET}}},
        },
    )
    return signed


def canary_environment(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Path:
    """Known secrets in the environment and in an env file (returned) for the report to redact."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CANARY_SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", CANARY_SESSION_TOKEN)
    monkeypatch.setenv("AUTH_SECRET", CANARY_AUTH_SECRET)
    env_file = folder / ".env.local"
    env_file.write_text(
        f"AWS_REGION=us-east-2\nAWS_ACCESS_KEY_ID={FILE_ACCESS_KEY_ID}\n"
        f"AWS_SECRET_ACCESS_KEY={FILE_SECRET_KEY}\nDATABASE_PASSWORD={FILE_PASSWORD}\n"
        "TABLE_NAME=chatgenius-connections\n"
    )
    return env_file


def leaks(texts: dict[str, str], signed: str) -> list[str]:
    """Every planted secret found in any text, in any encoding, whole, in pieces or inside base64."""
    canaries = {
        "AWS_SECRET_ACCESS_KEY (environment)": CANARY_SECRET_KEY,
        "AWS_SESSION_TOKEN (environment)": CANARY_SESSION_TOKEN,
        "AUTH_SECRET (environment)": CANARY_AUTH_SECRET,
        "AWS_SECRET_ACCESS_KEY (.env.local)": FILE_SECRET_KEY,
        "AWS_ACCESS_KEY_ID (.env.local)": FILE_ACCESS_KEY_ID,
        "DATABASE_PASSWORD (.env.local)": FILE_PASSWORD,
        "signed token (log line)": signed,
        "e-mail (log line, item, source)": CANARY_EMAIL,
        "e-mail local part": "canary.person",
        **{f"{kind} (log line)": value for kind, (_, values) in PLANTED_LINES.items() for value in values},
        **{f"item attribute {name}": value for name, value in ITEM_SECRETS.items()},
        "item attribute credentials.SecretAccessKey": ITEM_NESTED_SECRET,
        "Markdown table cell": "md-table-pw-Y6k2",
    }
    found: list[str] = []
    for name, text in texts.items():
        for kind, canary in canaries.items():
            found += [f"{kind} in {name} as {s!r}" for s in encodings(canary) if s in text]
            if len(canary) >= 16:
                pieces = [canary[i : i + FRAGMENT_LENGTH] for i in range(len(canary) - FRAGMENT_LENGTH + 1)]
                found += [f"part of {kind} in {name}: {piece!r}" for piece in pieces if piece in text][:1]
            if len(canary) >= MIN_SECRET_LENGTH:
                found += [
                    f"{kind} in {name} inside base64" for core in base64_inside(canary) if core in text
                ][:1]
    return found


def test_c_no_canary_reaches_any_output_file(
    planted: str, tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = canary_environment(monkeypatch, tmp_path)
    cells = (f"canary_user = {CANARY_EMAIL!r}", *CANARY_CELLS)  # an e-mail in a cell source too
    notebook = contract_notebook(tmp_path / "nb" / "00_canary.ipynb", *cells, markdown=MARKDOWN_TABLE)
    reports = tmp_path / "reports"
    lines: list[str] = []

    result = run_report(notebooks=[notebook], env_file=env_file, reports_dir=reports, progress=lines.append)

    assert result.exit_code == 1 and result.status == "partial", (result.errors, lines)
    assert result.notebooks[0].ename == "RuntimeError"
    written = files_under(reports)
    assert {p.name for p in written} >= {
        *(f"00_canary{suffix}" for suffix in SUFFIXES),
        "summary.json",
        "index.html",
    }
    texts = {path.name: path.read_text() for path in written} | {"progress": "\n".join(lines)}
    found = leaks(texts, planted)
    assert not found, f"{len(found)} leaks:\n" + "\n".join(found)

    # The report still says what matters.
    page = texts["00_canary.report.html"]
    assert "chatgenius-connections" in page and "canary-connection" in page and "AKIA…E001" in page
    assert "c***@***#" in page, "the e-mail is masked, not dropped"
    assert "DB_PASSWORD" in page and "us-east-2" in page
    assert re.search(r'<img[^>]+src="data:image/png;base64,', page)
    for name in ("00_canary.html", "00_canary.report.html", "00_canary.ipynb"):
        assert str(tmp_path) not in texts[name] and str(ROOT) not in texts[name], f"a local path in {name}"
    summary = json.loads(texts["summary.json"])
    assert summary["redaction"]["secrets"] >= 5 and summary["root_cause"]["id"] == "put-access-denied"
    assert "lost the handler's secret ***" in summary["notebooks"][0]["evalue"]
    assert summary["parameters"]["env_file"] == str(env_file)
    assert files_under(isolated) == [], "nothing may be written under HOME"


# --------------------------------------------------------------------------------------------------------
# A real account's target is resolved (never called) and its env file's secrets are redacted


def test_an_aws_target_from_an_env_file(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIT_STATE_DIR", str(tmp_path / "state"))
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    env_file = tmp_path / ".env.local"
    env_file.write_text(
        f"AWS_REGION=us-east-2\nAWS_ACCESS_KEY_ID={FILE_ACCESS_KEY_ID}\nAWS_SECRET_ACCESS_KEY={FILE_SECRET_KEY}\n"
        "NEXT_PUBLIC_WEBSOCKET_URL=wss://abc123defg.execute-api.us-east-2.amazonaws.com/prod?token=x\n"
    )
    # No AWS call: the notebook only shows its parameters and the env file.
    notebook = contract_notebook(
        tmp_path / "05_params.ipynb",
        "print(target, region, env_file)",
        "print(open(env_file).read())",
        diagnosis=False,
    )
    result = run_report(
        target="aws",
        notebooks=[notebook],
        env_file=env_file,
        reports_dir=tmp_path / "r",
        progress=lambda _: None,
    )
    assert result.exit_code == 0 and result.status == "ok" and result.root_cause is None
    assert result.folder.name.endswith("-aws")
    described = result.summary["target"]
    assert described["kind"] == "aws" and described["region"] == "us-east-2"
    assert described["access_key_id"] == "AKIA…E001" and described["api_id"] == "abc123defg"
    assert described["websocket_url"] == "wss://abc123defg.execute-api.us-east-2.amazonaws.com/prod"
    assert result.summary["parameters"] == {"target": "aws", "mask_emails": True, "env_file": str(env_file)}
    for path in files_under(tmp_path / "r"):
        text = path.read_text()
        assert FILE_SECRET_KEY not in text and FILE_ACCESS_KEY_ID not in text, path.name
    assert "AKIA…E001" in (result.folder / "05_params.report.html").read_text()
    assert files_under(isolated) == []


def test_the_notebooks_of_a_wave_run_at_once_each_in_its_own_folder(
    shared_lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two notebooks of one stage run at once (each waits until the other has started), each kernel in its
    notebook's folder, and this process's directory never moves (papermill's cwd= would chdir the process)."""
    monkeypatch.chdir(tmp_path)
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    wait_for_the_other = (
        "import os, pathlib, time\n"
        "here = pathlib.Path(os.getcwd())\n"
        f"meeting = pathlib.Path({str(meeting)!r})\n"
        "(meeting / here.name).touch()\n"
        "deadline = time.monotonic() + 60\n"
        "while len(list(meeting.iterdir())) < 2 and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
        "print('met', len(list(meeting.iterdir())), 'in', here.name)"
    )
    paths = []
    for folder in ("one", "two"):
        path = contract_notebook(
            tmp_path / folder / f"0{len(paths) + 1}_{folder}.ipynb", wait_for_the_other, diagnosis=False
        )
        document = json.loads(path.read_text())
        document["metadata"]["kit"] = {"stage": 1}
        path.write_text(json.dumps(document))
        paths.append(path)
    result = run_report(notebooks=paths, reports_dir=tmp_path / "r", progress=lambda _: None)
    assert os.getcwd() == str(tmp_path)
    assert [n.status for n in result.notebooks] == ["ok", "ok"], result.summary
    for notebook, folder in zip(result.notebooks, ("one", "two"), strict=True):
        assert f"met 2 in {folder}" in (result.folder / notebook.files["ipynb"]).read_text()


def test_a_report_of_an_account_that_cannot_be_reached_renders_inconclusive(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every notebook against an account whose endpoints refuse every connection: the report still renders,
    every page's card says inconclusive, names the cause and what could not be read, and which parts failed.
    Each endpoint is retried only until it has failed three times in a row (kit.reachability), so this takes
    seconds, not botocore's minutes of backoff per call."""
    monkeypatch.setenv("KIT_STATE_DIR", str(tmp_path / "state"))
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as closed:  # bound, never listening: every connection to it is refused
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}"
        monkeypatch.setenv("AWS_ENDPOINT_URL", dead)
        monkeypatch.setenv("HTTPS_PROXY", dead)  # nothing may leave for the real AWS either
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        env_file = tmp_path / ".env.local"
        env_file.write_text(
            f"AWS_REGION=us-east-2\nAWS_ACCESS_KEY_ID={FILE_ACCESS_KEY_ID}\n"
            f"AWS_SECRET_ACCESS_KEY={FILE_SECRET_KEY}\n"
            "NEXT_PUBLIC_WEBSOCKET_URL=wss://abc123defg.execute-api.us-east-2.amazonaws.com/prod\n"
        )
        result = run_report(
            target="aws", env_file=env_file, reports_dir=tmp_path / "r", progress=lambda _: None
        )
    assert result.exit_code == 3, result.summary
    assert result.root_cause is not None and result.root_cause["id"] == "target-unreachable"
    failed = [n.name for n in result.notebooks if n.status == "failed"]
    assert result.status == ("partial" if failed else "ok")
    for notebook in result.notebooks:
        for key in ("html", "report_html"):
            page = (result.folder / notebook.files[key]).read_text()
            card = page[page.index('<section id="kit-summary"') : page.index("</section>")]
            assert "INCONCLUSIVE" in card and "target-unreachable" in card, notebook.name
            assert "did not answer" in card, notebook.name  # what could not be read, and why
            for name in failed:
                assert f"<code>{name}</code> failed" in card, (notebook.name, name)
            assert FILE_SECRET_KEY not in page and FILE_ACCESS_KEY_ID not in page


def test_a_target_that_cannot_be_resolved_is_exit_2_without_running_notebooks(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIT_STATE_DIR", str(tmp_path / "state"))
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    env_file = tmp_path / ".env.local"
    env_file.write_text("AWS_REGION=us-east-2\n")
    notebook = contract_notebook(tmp_path / "00_check.ipynb", DIAGNOSE)
    result = run_report(
        target="aws",
        notebooks=[notebook],
        env_file=env_file,
        reports_dir=tmp_path / "r",
        progress=lambda _: None,
    )
    assert result.exit_code == 2 and result.notebooks == ()
    assert result.cause_line().startswith(
        "no diagnosis: the target could not be resolved: No AWS credentials"
    )
    assert json.loads(result.summary_path.read_text())["target"]["error"].startswith("No AWS credentials")


def test_a_lab_that_cannot_start_is_exit_2_and_listed(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kit.errors import EngineError

    def refuse(self: Lab) -> Lab:
        raise EngineError("DynamoDB Local did not answer on 127.0.0.1:1 within 30 s.")

    monkeypatch.setenv("KIT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(Lab, "start", refuse)
    notebook = contract_notebook(tmp_path / "00_check.ipynb", DIAGNOSE)
    result = run_report(notebooks=[notebook], reports_dir=tmp_path / "r", progress=lambda _: None)
    assert result.exit_code == 2 and result.status == "failed" and result.notebooks == ()
    assert result.errors == (
        "the lab could not start: EngineError: DynamoDB Local did not answer on 127.0.0.1:1 within 30 s.",
    )
    assert result.folder.name.endswith("-lab-healthy")
    index = (tmp_path / "r" / "index.html").read_text()
    assert result.folder.name in index and "the lab could not start" in index


# --------------------------------------------------------------------------------------------------------
# The command line


def test_the_kit_report_command_prints_the_folder_and_the_cause(tmp_path: Path) -> None:
    notebook = contract_notebook(tmp_path / "00_check.ipynb", DIAGNOSE)
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "KIT_STATE_DIR": str(tmp_path / "state"), "HOME": str(home)}
    env.pop("AWS_SESSION_TOKEN", None)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "kit.cli",
            "report",
            "--scenario",
            "seed-logs-dropped",
            "--notebooks",
            str(notebook),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=180,
        check=False,
    )
    assert out.returncode == 1, out.stderr
    folder, cause = out.stdout.splitlines()
    assert re.fullmatch(r"reports/\d{8}T\d{6}Z-lab-seed-logs-dropped", folder)
    assert cause.startswith("root cause: put-access-denied — ")
    assert (tmp_path / folder / "00_check.report.html").is_file()
    assert "kit report: lab up" in out.stderr and "Traceback" not in out.stderr
    noise = [line for line in out.stderr.splitlines() if not line.startswith("kit report: ")]
    assert noise == [], "the progress lines and the result only"
    assert files_under(home) == []

    wrong = subprocess.run(
        [sys.executable, "-m", "kit.cli", "report", "--target", "aws", "--scenario", "healthy"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert (
        wrong.returncode == 2 and wrong.stderr.count("\n") == 1 and "only applies to the lab" in wrong.stderr
    )


# --------------------------------------------------------------------------------------------------------
# The real notebooks, rendered once with hostile evidence planted in every place they read from


def payloads(base: int) -> list[str]:
    """Strings that run ``alert(base + n)`` if any page ever treats them as markup; the last one is TeX that
    mathtext cannot parse, so a figure that reads labels as mathtext fails to draw."""
    return [
        f"<img src=x onerror=alert({base + 1})>",
        f"<script>alert({base + 2})</script>",
        f"[click](javascript:alert({base + 3}))",
        f'"><svg onload=alert({base + 4})>',
        f"![x](x onerror=alert({base + 5}))",
        f"`</code><img src=x onerror=alert({base + 6})>`",
        f"<a href=javascript:alert({base + 7})>link</a>",
        f"<details open ontoggle=alert({base + 8})>",
        f"$\\frac{{<img src=x onerror=alert({base + 9})>$",
    ]


# Connection ids and item values in the connections table.
TABLE_PAYLOADS = payloads(100)
# Log lines: the function's, and API Gateway's access log (connection ids, route keys).
LOG_PAYLOADS = payloads(200)
# The execution role's policy: Sids and resources of statements that nearly allow PutItem.
POLICY_PAYLOADS = payloads(300)
# The app's .env.local, read as a real account's target.
ENV_PAYLOADS = payloads(400)


def _plant_table(lab: Lab) -> None:
    client = lab.target().client("dynamodb")
    for payload in TABLE_PAYLOADS:
        client.put_item(
            TableName=labclient.info(lab).table,
            Item={
                "connectionId": {"S": payload},
                "workspaceId": {"S": payload},
                "userId": {"S": "planted"},
                "status": {"S": payload},
            },
        )


def _plant_logs(lab: Lab) -> None:
    logs = lab.target().client("logs")
    now = int(time.time() * 1000)
    stream = f"planted-{now}"
    for group, lines in (
        (labclient.lambda_group(lab), [f"[ERROR] connect failed: {payload}" for payload in LOG_PAYLOADS]),
        (
            labclient.ACCESS_GROUP,
            [
                json.dumps(
                    {
                        "requestId": f"planted-{index}",
                        "connectionId": payload,
                        "eventType": "CONNECT",
                        "routeKey": payload,
                        "status": "200",
                        "requestTimeEpoch": str(now),
                    }
                )
                for index, payload in enumerate(LOG_PAYLOADS)
            ],
        ),
    ):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": now + index, "message": line} for index, line in enumerate(lines)],
        )


def _near_misses(document: dict[str, Any]) -> None:
    """Statements that allow PutItem on another table, each named and aimed by a payload: the diagnosis quotes
    every near miss of the denied PutItem in its evidence."""
    document["Statement"] += [
        {
            "Sid": payload,
            "Effect": "Allow",
            "Action": "dynamodb:PutItem",
            "Resource": f"arn:aws:dynamodb:us-east-2:123456789012:table/{payload}",
        }
        for payload in POLICY_PAYLOADS
    ]


@dataclass
class PlantedReport:
    reports: Path
    lab_run: Any
    env_run: Any
    home: Path
    signed: str  # the signed token planted with the secrets

    def screenshot(self, page: Path) -> Path:
        """Where the browser tests keep a page's screenshot: ``screenshots/`` beside ``reports/`` in the
        fixture's pytest folder (``<basetemp>/planted0/screenshots/<run>/<page>.png``)."""
        relative = page.relative_to(self.reports)
        return self.reports.parent / "screenshots" / relative.parent / f"{relative.name}.png"


@pytest.fixture(scope="module")
def planted_report(
    shared_lab: Lab, planted: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PlantedReport]:
    """The real notebooks against the lab, and the first cells of 00_diagnose against an account resolved from
    a hostile .env.local, rendered into one reports folder; known secrets in the environment and in the lab
    run's env file, secrets as people write them in the lab's logs and table (``planted``)."""
    real = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not any(p.name == "00_diagnose.ipynb" for p in real):
        pytest.skip("notebooks/00_diagnose.ipynb does not exist yet; this runs once the notebooks land")
    root = tmp_path_factory.mktemp("planted")
    home = root / "home"
    home.mkdir()
    # The target's description shows where the file is and the URLs it holds (a table name must be valid).
    env_file = root / ENV_PAYLOADS[0] / ".env.local"
    env_file.parent.mkdir()
    env_file.write_text(
        f"AWS_REGION=us-east-2\nAWS_ACCESS_KEY_ID={FILE_ACCESS_KEY_ID}\nAWS_SECRET_ACCESS_KEY={FILE_SECRET_KEY}\n"
        f"NEXT_PUBLIC_WEBSOCKET_URL={json.dumps('wss://chat.example.com/' + ENV_PAYLOADS[1])}\n"
        f"WEBSOCKET_API_ENDPOINT={json.dumps('https://chat.example.com/' + ENV_PAYLOADS[2])}\n"
    )
    # The first cells of the diagnosis notebook, up to the table describing the target; without the diagnosis
    # they do not promise one (summary_path).
    diagnose = nbformat.read(str(ROOT / "notebooks" / "00_diagnose.ipynb"), as_version=4)
    (cut,) = [i for i, cell in enumerate(diagnose.cells) if "kit_target.describe()" in cell.source]
    diagnose.cells = diagnose.cells[: cut + 1]
    (parameters,) = [cell for cell in diagnose.cells if "parameters" in cell.metadata.get("tags", [])]
    parameters.source = "\n".join(
        line for line in parameters.source.splitlines() if "summary_path" not in line
    )
    env_notebook = root / "nb" / "00_diagnose.ipynb"
    env_notebook.parent.mkdir()
    nbformat.write(diagnose, str(env_notebook))

    reports = root / "reports"
    _plant_table(shared_lab)
    _plant_logs(shared_lab)
    with pytest.MonkeyPatch.context() as patch, labclient.role_policy_changed(shared_lab, _near_misses):
        patch.setenv("HOME", str(home))
        patch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
        patch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
        (root / "canary").mkdir()
        canary_env_file = canary_environment(patch, root / "canary")
        progress = lambda line: print(line, file=sys.stderr)  # noqa: E731
        lab_run = run_report(reports_dir=reports, env_file=canary_env_file, progress=progress)
        env_run = run_report(
            target="aws", notebooks=[env_notebook], env_file=env_file, reports_dir=reports, progress=progress
        )
    yield PlantedReport(reports=reports, lab_run=lab_run, env_run=env_run, home=home, signed=planted)


PAGE_BYTES = 3_000_000  # a page stays under a few MB: long frames, cells and evidence are summarised
# What the summary card and the contents are made of (kit.report_page): text, lists, code spans, links.
CARD_TAGS = {
    "h2",
    "dl",
    "dt",
    "dd",
    "span",
    "code",
    "ul",
    "li",
    "br",
    "p",
}  # p: what changed since the last run


def test_every_page_of_a_lab_report_reads_at_a_glance_in_chromium(planted_report: PlantedReport) -> None:
    """Every page of the lab report, as a reader opens it: it loads with no console error and nothing fetched
    from outside the file, every figure decodes, the summary card is the first thing seen, and a screenshot of
    what is seen first is kept (:meth:`PlantedReport.screenshot`)."""
    result = planted_report.lab_run
    pages = sorted(result.folder.glob("*.html"))
    assert {p.name for p in pages} == {
        f"{n.name}{suffix}" for n in result.notebooks for suffix in SUFFIXES[1:]
    }
    with chromium() as browser:
        opened = [open_page(browser, path, planted_report.screenshot(path)) for path in pages]
    figures = 0
    for page in opened:
        name = page.path.name
        assert page.console_errors == [] and page.errors == [], (name, page.console_errors, page.errors)
        assert page.requests == [], (name, page.requests)
        assert page.broken_images == [], (name, page.broken_images)
        figures += len(page.images)
        assert page.first_text is not None and page.first_text["in_card"], (name, page.first_text)
        assert page.highest_text is not None and page.highest_text["in_card"], (name, page.highest_text)
        assert "Verdict" in page.card_text and "Target" in page.card_text and "When" in page.card_text
        assert "the lab, scenario seed-put-denied" in page.card_text, page.card_text
        assert "VERIFIED: FIXED" in page.card_text, "the lab report proves its fix on the lab"
        assert "<NA>" not in page.text, name
        assert page.path.stat().st_size < PAGE_BYTES, (name, page.path.stat().st_size)
        shot = planted_report.screenshot(page.path)
        assert shot.is_file() and shot.read_bytes().startswith(b"\x89PNG"), shot
    assert figures >= 2 * 3, "the figures of 00_diagnose, 02_probe and 03_logs were looked at"
    # The diagnosis notebook's contents list its sections, in order.
    diagnose = next(page for page in opened if page.path.name == "00_diagnose.report.html")
    links = [href for href, _ in diagnose.contents]
    assert links.index("#The-ranked-root-cause") < links.index("#The-fix") < links.index("#Every-check")
    print(f"screenshots: {planted_report.screenshot(pages[0]).parent}", file=sys.stderr)


def test_no_page_names_a_local_path(planted_report: PlantedReport) -> None:
    """No page or notebook of either run names the project root, a home folder or the temporary folder."""
    folders = {
        "the project root": str(ROOT),
        "the project root, resolved": str(ROOT.resolve()),
        "$HOME": str(Path.home()),
        "$HOME of the run": str(planted_report.home),
        "the temporary folder": tempfile.gettempdir() + "/",
        "the reports folder": str(planted_report.reports),
    }
    found = [
        f"{label} ({folder}) in {path.relative_to(planted_report.reports)}"
        for path in files_under(planted_report.reports)
        if path.suffix in (".html", ".ipynb") and path.name != "index.html"
        for label, folder in folders.items()
        if folder in without_images(path.read_text())
    ]
    assert not found, "\n".join(found)


# An embedded figure's base64 (a page's data: URL, a notebook's image/png), which is not text a reader sees:
# "/tmp/" and "/root" are five base64 characters, and a ~100 KB figure holds them now and then.
EMBEDDED_IMAGE = re.compile(r'(?:;base64,|"image/[a-z.+-]+": ")[A-Za-z0-9+/=]+')


def without_images(text: str) -> str:
    return EMBEDDED_IMAGE.sub("", text)


def test_an_embedded_figure_is_not_a_path_but_text_around_it_is() -> None:
    figure = "iVBORw0KGgoAAAANSUhEUgAA/tmp/x0Lb/root/Zz=="
    page = f'<img src="data:image/png;base64,{figure}"> saved in /tmp/x.json'
    notebook = json.dumps({"data": {"image/png": figure + "\n", "text/plain": "/tmp/y"}})
    assert "/tmp/" not in without_images(page).split("saved in")[0]
    assert "/tmp/x.json" in without_images(page)
    assert "/root" not in without_images(notebook) and "/tmp/y" in without_images(notebook)


def test_the_real_notebooks_render(planted_report: PlantedReport) -> None:
    real = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    result = planted_report.lab_run
    statuses: dict[str, Any] = {n.name: (n.status, n.ename, n.evalue) for n in result.notebooks}
    assert [n.name for n in result.notebooks] == [p.stem for p in real]
    for name in statuses:
        for suffix in SUFFIXES:
            assert (result.folder / f"{name}{suffix}").is_file()
    assert result.exit_code == 1, (statuses, result.errors)
    assert result.root_cause is not None and result.root_cause["id"] == "put-access-denied"
    assert all(status == "ok" for status, _, _ in statuses.values()), statuses
    # Six notebooks in three waves of 1, 2 and 3: each wave's kernels are kept for the next (kit.report_kernels).
    assert result.summary["timings"]["kernels_started"] == 3, result.summary["timings"]
    env_run = planted_report.env_run
    assert env_run.exit_code == 0 and env_run.status == "ok", (env_run.errors, env_run.notebooks)
    assert files_under(planted_report.home) == []

    # The secrets planted in the logs and the table, as people write them, are in no file of either run
    # (03_logs and 04_dynamodb show those logs and items), and what they hid is still shown, masked.
    everything = {
        str(path.relative_to(planted_report.reports)): path.read_text()
        for path in files_under(planted_report.reports)
    }
    found = leaks(everything, planted_report.signed)
    assert not found, f"{len(found)} leaks:\n" + "\n".join(found)
    texts = {path.name: path.read_text() for path in files_under(result.folder)}
    logs_page = texts["03_logs.report.html"]
    for n, kind in enumerate(PLANTED_LINES):
        assert f"canary-{n:02d}" in logs_page, f"the line with {kind} is shown (redacted), not dropped"
    assert "Authorization: Bearer ***" in logs_page and "x-api-key: ***" in logs_page
    items_page = texts["04_dynamodb.report.html"]
    assert "canary-connection" in items_page and "<th>password</th>" in items_page


def test_no_planted_payload_executes_in_chromium(planted_report: PlantedReport) -> None:
    """Every page of both runs, opened in Chromium: no payload ran, none left a live element, handler or
    script link, and each source's payloads are there as text."""
    pages = sorted(planted_report.reports.rglob("*.html"))
    assert len(pages) == 2 * 6 + 2 + 1, [p.name for p in pages]  # six notebooks, one, index.html
    with chromium() as browser:
        opened = [open_page(browser, path, planted_report.screenshot(path)) for path in pages]

    for page in opened:
        where = page.path.relative_to(planted_report.reports)
        assert page.ran == [] and page.dialogs == [], (where, page.ran, page.dialogs)
        assert page.requests == [] and page.errors == [], (where, page.requests, page.errors)
        assert page.handlers == [] and page.script_links == [], (where, page.handlers, page.script_links)
        assert not set(page.tags) & {"svg", "iframe", "details", "object", "embed", "form", "math"}, (
            where,
            page.tags,
        )
        assert all(image.startswith("data:image/png;base64,") for image in page.images), (where, page.images)
        assert all("alert(" not in script for script in page.scripts), (where, page.scripts)
        assert set(page.output_tags) <= SAFE_TAGS | {"img"}, (where, set(page.output_tags) - SAFE_TAGS)

    # The summary card and the contents hold text and links only; a payload in them stays text.
    for page in opened:
        if page.path.name == "index.html":
            continue
        where = page.path.relative_to(planted_report.reports)
        assert set(page.card_tags) <= CARD_TAGS, (where, set(page.card_tags) - CARD_TAGS)
        assert page.card_text.startswith("Summary"), (where, page.card_text[:80])
        assert all(target for _, target in page.contents), (where, page.contents)
    lab_cards = [page.card_text for page in opened if page.path.parent == planted_report.lab_run.folder]
    assert len(lab_cards) == 12 and len(set(lab_cards)) == 1, "every page of a run carries the same card"
    assert "ROOT CAUSE\nput-access-denied" in lab_cards[0] or "ROOT CAUSE put-access-denied" in lab_cards[0]
    shown = [payload for payload in POLICY_PAYLOADS if payload in lab_cards[0]]
    assert shown, f"the root cause's evidence (near misses named by payloads) is in the card: {lab_cards[0]}"

    # Each source's payloads reached the pages, as text: the checks above looked at something.
    lab_page = {
        page.path.name: page.text for page in opened if page.path.parent == planted_report.lab_run.folder
    }
    env_page = {
        page.path.name: page.text for page in opened if page.path.parent == planted_report.env_run.folder
    }
    for source, planted, text in (
        ("table", TABLE_PAYLOADS, lab_page["04_dynamodb.report.html"]),
        ("logs", LOG_PAYLOADS, lab_page["03_logs.report.html"]),
        ("policy (the root cause's evidence)", POLICY_PAYLOADS, lab_page["00_diagnose.report.html"]),
        ("policy (the role's decisions)", POLICY_PAYLOADS[:1], lab_page["05_iam.report.html"]),
        (".env.local (its folder, two URLs)", ENV_PAYLOADS[:3], env_page["00_diagnose.report.html"]),
    ):
        for payload in planted:
            assert payload in text, f"the {source} payload {payload!r} is not shown as text"


def test_the_bundle_of_the_real_report(planted_report: PlantedReport, tmp_path: Path) -> None:
    """The lab run's bundle: one file, the diagnosis first, each page and notebook its own bytes, no secret,
    and in Chromium nothing runs and nothing is requested."""
    folder = planted_report.lab_run.folder
    bundle = write_bundle(folder, tmp_path / "bundle.html")
    text = bundle.read_text()
    assert len(text) < 8_000_000, f"{len(text):,} characters"
    titles = re.findall(r'<iframe sandbox="" title="([^"]+)"', text)
    assert titles == [n.name for n in planted_report.lab_run.notebooks], "00_diagnose leads, then run order"
    assert titles[0] == "00_diagnose"
    downloads = dict(re.findall(r'<a download="([^"]+)" href="data:[a-z/+-]+;base64,([^"]+)"', text))
    assert {name: base64.b64decode(data) for name, data in downloads.items()} == {
        name: (folder / name).read_bytes() for name in [f"{t}.ipynb" for t in titles] + ["summary.json"]
    }
    assert not leaks({"bundle": text}, planted_report.signed)
    header = text[: text.index("<iframe")]
    assert "/tmp" not in header and str(Path.home()) not in header
    with chromium() as browser:
        opened = open_page(browser, bundle)
    assert opened.ran == [] and opened.dialogs == [], (opened.ran, opened.dialogs)
    assert opened.requests == [] and opened.errors == [], (opened.requests, opened.errors)
    kinds = {link.partition(";")[0] for link in opened.script_links}
    assert kinds == {"data:application/x-ipynb+json", "data:application/json"}, kinds  # the downloads only
    assert opened.scripts == [] and "put-access-denied" in opened.text
