"""Reports: the notebooks run by papermill against a target, redacted, rendered and indexed.

``run_report`` makes one folder per run, ``reports/<UTC stamp>-<target>[-<scenario>]/``, holding for each
notebook the executed ``.ipynb``, a full HTML and a code-hidden ``.report.html``, plus ``summary.json`` (the
ranked root cause, the findings, the target, the parameters, each notebook's status, versions, timings), and
rebuilds ``reports/index.html`` from every run's ``summary.json``. With ``target="lab"`` and no lab running it
starts one (``kit.lab.lab.Lab``) for the duration of the run. The pages are rendered once every notebook ran,
each led by the run's summary card and a table of contents (:mod:`kit.report_page`).

Exit codes (``ReportResult.exit_code``): 0 the diagnosis found no cause, 1 it ranked a cause or a symptom,
2 the kit failed (the lab could not start, or the notebook that writes the diagnosis failed before writing
it), 3 the diagnosis was inconclusive (evidence it needed was not read, or the target is not there;
``kit.diagnose.causes.exit_code``).

What this module must not do: write anything under ``reports/`` that has not passed the ``Redactor``
(papermill executes into a private folder under ``.kit/``, removed when the run ends), write under ``$HOME``
(the kernels' IPython, matplotlib and Jupyter folders live under ``.kit/jupyter/``), name a local path in a
page or notebook (:mod:`kit.local_paths`), or need the network to be read (figures are embedded, no CDN script
is referenced).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from kit import __version__
from kit.diagnose import causes
from kit.errors import ConfigurationError, KitError
from kit.local import PROJECT_ROOT, read_lab_file, state_dir
from kit.local_paths import local_roots, without_local_paths
from kit.markup import markdown_text, sanitize_html
from kit.redact import Redactor
from kit.redact_display import kernel_settings
from kit.report_changes import Changes, compare, pick_previous
from kit.report_index import SUMMARY_NAME, build_index, read_summary, write_text
from kit.report_kernels import KERNEL_DIRS, KernelLane, kernel_environment, kernel_lanes
from kit.report_page import CardFacts, FailedPart, decorate_page, summarise_outputs, summary_card

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
# Kernels at once in a wave, each kept for the next wave (kit.report_kernels): the notebooks mostly wait on
# the target, so three share two cores well.
WAVE_WORKERS = 3
DEFAULT_CELL_TIMEOUT_S = 1800  # a hung cell must not hang a cron job forever; probes take under a minute
VERSIONED_PACKAGES = ("boto3", "pandas", "papermill", "nbconvert", "nbclient", "ipykernel", "matplotlib")

Progress = Callable[[str], None]
NotebookStatus = Literal["ok", "failed"]


_PRINTING = threading.Lock()


def _stderr(line: str) -> None:
    # One write per line under a lock: the notebooks of a wave report from their own threads, and print()
    # writes the text and its newline apart, so two lines could run into one.
    with _PRINTING:
        sys.stderr.write(f"kit report: {line}\n")
        sys.stderr.flush()


@dataclass(frozen=True)
class NotebookRun:
    """One notebook of a run: how it ended and where its files are (names inside the run folder)."""

    name: str
    status: NotebookStatus
    execute_s: float
    render_s: float
    files: dict[str, str]
    ename: str | None = None
    evalue: str | None = None
    cell: int | None = None  # the failing cell's execution count (papermill's "In [N]")
    cell_index: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "ename": self.ename,
            "evalue": self.evalue,
            "cell": self.cell,
            "cell_index": self.cell_index,
            "execute_s": round(self.execute_s, 3),
            "render_s": round(self.render_s, 3),
            "files": dict(self.files),
        }


@dataclass(frozen=True)
class ReportResult:
    """What a run produced. ``status`` is ``ok``, ``partial`` (a notebook failed, the diagnosis stands) or
    ``failed`` (the kit failed; ``exit_code`` 2)."""

    folder: Path
    exit_code: int
    status: str
    root_cause: dict[str, Any] | None
    notebooks: tuple[NotebookRun, ...]
    errors: tuple[str, ...]
    summary: dict[str, Any] = field(repr=False)
    changes: Changes | None = None  # since the previous run of the same target (kit.report_changes)

    @property
    def summary_path(self) -> Path:
        return self.folder / SUMMARY_NAME

    def cause_line(self) -> str:
        """One line for the terminal: the ranked cause, or why there is none."""
        if self.root_cause is not None:
            return f"root cause: {self.root_cause.get('id')} — {self.root_cause.get('summary', '')}"
        if self.errors:
            return f"no diagnosis: {self.errors[0]}"
        return "no diagnosis in this run (no notebook writes one)"


# --------------------------------------------------------------------------------------------------------
# Notebooks


def discover_notebooks(notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The report's notebooks: ``NN_name.ipynb`` under ``notebooks_dir``, in name order."""
    return sorted(notebooks_dir.glob(NOTEBOOK_GLOB))


def resolve_notebooks(names: Sequence[str | Path] | None, notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Path]:
    """Paths for ``names``: a path to an ``.ipynb``, a name (``00_diagnose``) or a prefix (``00``) under
    ``notebooks_dir``; None means every notebook there. Anything not found is a ``ConfigurationError``."""
    if not names:
        found = discover_notebooks(notebooks_dir)
        if not found:
            raise ConfigurationError(
                f"no notebooks to run: {notebooks_dir} holds no {NOTEBOOK_GLOB} files; pass --notebooks "
                "with paths, or restore notebooks/ from git."
            )
        return found
    paths: list[Path] = []
    available = discover_notebooks(notebooks_dir)
    for name in names:
        candidate = Path(name)
        if candidate.suffix == ".ipynb" and candidate.is_file():
            paths.append(candidate.resolve())
            continue
        stem = candidate.name.removesuffix(".ipynb")
        matches = [p for p in available if p.stem == stem] or [
            p for p in available if p.stem.startswith(f"{stem}_")
        ]
        if len(matches) != 1:
            known = ", ".join(p.stem for p in available) or "none"
            raise ConfigurationError(
                f"notebook {str(name)!r} is not one of the notebooks in {notebooks_dir} ({known}); pass a "
                "name from that list or a path to an .ipynb file."
            )
        paths.append(matches[0].resolve())
    return paths


def notebook_stage(path: Path) -> int | None:
    """The stage a notebook declares in its metadata (``{"kit": {"stage": N}}``), or None.

    Notebooks of one stage only read the target, or write what no other notebook of the stage reads, so
    they run at once (:func:`waves`). A notebook that declares none, or that cannot be read here (its run
    will say why), runs alone.
    """
    try:
        kit_metadata = json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("kit", {})
        stage = kit_metadata.get("stage") if isinstance(kit_metadata, dict) else None
    except (OSError, ValueError, AttributeError):
        return None
    return stage if isinstance(stage, int) and not isinstance(stage, bool) else None


def waves(stages: Sequence[int | None]) -> list[list[int]]:
    """The notebooks' indexes in the waves they run in, in order: neighbours of one stage share a wave, and
    a notebook without a stage (None) has one of its own. Only whole waves run after one another, so what a
    notebook reads was written by the waves before it, never half-way by a neighbour."""
    grouped: list[list[int]] = []
    for index, stage in enumerate(stages):
        if stage is not None and grouped and stages[grouped[-1][0]] == stage:
            grouped[-1].append(index)
        else:
            grouped.append([index])
    return grouped


def declared_parameters(path: Path) -> dict[str, Any]:
    """The parameters a notebook's ``parameters`` cell declares (papermill's reading of it)."""
    import papermill

    return dict(papermill.inspect_notebook(str(path)))


# --------------------------------------------------------------------------------------------------------
# Rendering


_EMPTY_SCRIPT = re.compile(r"<script src=\"\">\s*</script>\s*")
_EXTERNAL_SCRIPT = re.compile(
    r"<script\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//[^>]*>.*?</script>\s*", re.IGNORECASE | re.DOTALL
)


_RENDERING = threading.Lock()


@cache
def _exporter(code: bool) -> Any:
    """An HTMLExporter that needs no network (no require.js, MathJax, mermaid or jQuery from a CDN) and
    sanitises what the notebook holds.

    MathJax is off on purpose too: notebook prose is full of ``$connect``/``$disconnect``, which it would
    typeset as formulas. ``sanitize_html`` makes nbconvert pass every Markdown cell, HTML and Markdown output
    and highlighted input through its ``clean_html`` filter, here :func:`kit.markup.sanitize_html`, and drop
    JavaScript outputs: the notebooks escape what the system under investigation says, and this is the
    second line of defence should one of them forget.
    """
    nbconvert: Any = importlib.import_module("nbconvert")
    hidden = (
        {} if code else {"exclude_input": True, "exclude_input_prompt": True, "exclude_output_prompt": True}
    )
    return nbconvert.HTMLExporter(
        require_js_url="",
        mathjax_url="",
        mermaid_js_url="",
        mermaid_layout_elk_js_url="",
        jquery_url="",
        embed_images=True,
        sanitize_html=True,
        filters={"clean_html": sanitize_html},
        **hidden,
    )


def render_html(nb: Any, *, title: str, code: bool = True) -> str:
    """A self-contained HTML page for a (redacted) notebook; ``code=False`` hides inputs and prompts."""
    with _RENDERING:  # one exporter per kind is shared, and nbconvert's are not made for threads
        body, _ = _exporter(code).from_notebook_node(nb, resources={"metadata": {"name": title}})
    body = _EMPTY_SCRIPT.sub("", body)
    return _EXTERNAL_SCRIPT.sub("", body)


# --------------------------------------------------------------------------------------------------------
# The run


@dataclass
class _ReportRun:
    """One run of the report while it is made (its folder, redactor, notebooks, errors), so the steps stay
    small functions."""

    folder: Path
    work: Path
    redactor: Redactor
    progress: Progress
    started: datetime
    target: str
    scenario: str | None
    parameters: dict[str, Any]
    timings: dict[str, Any] = field(default_factory=lambda: {"notebooks": {}})
    target_description: dict[str, Any] = field(default_factory=dict)
    lab: Any = None
    errors: list[str] = field(default_factory=list)
    notebooks: list[NotebookRun] = field(default_factory=list)
    diagnosis: dict[str, Any] | None = None
    diagnosis_expected: bool = False
    diagnosis_from: str | None = None


# papermill, nbformat, nbconvert and jupyter_client take ~2.5 s to import (nbformat's jsonschema builds
# rfc3987-syntax's grammar on import, ~1.8 s alone); a report imports them in the background while its lab
# starts.
HEAVY_IMPORTS = ("nbformat", "papermill", "nbconvert", "jupyter_client.manager")
# jsonschema (imported by nbformat) builds rfc3987-syntax's IRI grammar on import, ~1.8 s of CPU, for a format
# check nothing in a report asks for: nbformat validates notebooks without a format checker, and jsonschema
# treats a format it has no checker for as valid. `kit report` runs in a process of its own and goes without
# (:func:`lean_imports`); a library caller's process is left as it is.
UNUSED_IN_A_REPORT = ("rfc3987_syntax",)


def lean_imports() -> None:
    """Make :data:`UNUSED_IN_A_REPORT` unimportable in this process (an ImportError, which jsonschema expects
    of an optional module), unless already imported. For the `kit report` command's own process only."""
    for module in UNUSED_IN_A_REPORT:
        sys.modules.setdefault(module, None)  # type: ignore[arg-type]


def _import_in_background(modules: Sequence[str]) -> threading.Thread:
    """Start importing ``modules`` in a daemon thread, and return it: join it before using them. Two threads
    importing packages that import each other can deadlock, and Python breaks the deadlock by handing one
    of them a module still half-initialised ("cannot import name ... from partially initialized module"),
    so the report waits for the thread rather than racing it. A module that fails to import fails again,
    loudly, where it is used."""

    def load() -> None:
        for module in modules:
            with contextlib.suppress(Exception):
                importlib.import_module(module)

    thread = threading.Thread(target=load, name="kit-report-imports", daemon=True)
    thread.start()
    return thread


def run_report(
    *,
    target: str = "lab",
    scenario: str | None = None,
    notebooks: Sequence[str | Path] | None = None,
    parameters: Mapping[str, Any] | None = None,
    env_file: str | os.PathLike[str] | None = None,
    profile: str | None = None,
    region: str | None = None,
    reports_dir: Path = Path("reports"),
    mask_emails: bool = True,
    notebooks_dir: Path = NOTEBOOKS_DIR,
    cell_timeout_s: int | None = DEFAULT_CELL_TIMEOUT_S,
    progress: Progress | None = None,
) -> ReportResult:
    """Run ``notebooks`` (default: every ``notebooks/NN_*.ipynb``) against ``target`` into a report folder.

    ``parameters`` adds or overrides notebook parameters (each notebook gets those it declares). Raises
    ``ConfigurationError`` before anything is written for a bad request (unknown target, notebook or
    scenario, a scenario for ``aws``, a scenario other than the running lab's, a missing env file); every
    later failure is recorded in the run's ``summary.json`` and in ``exit_code`` 2.
    """
    started = datetime.now(UTC)
    clock = time.monotonic()
    imports = _import_in_background(HEAVY_IMPORTS)
    if target not in ("lab", "aws"):
        raise ConfigurationError(f"unknown target {target!r}; use 'lab' or 'aws'.")
    if scenario is not None and target != "lab":
        raise ConfigurationError(
            f"--scenario {scenario} only applies to the lab; drop it for --target {target}."
        )
    paths = resolve_notebooks(notebooks, notebooks_dir)
    env_path = env_file_of(env_file, parameters)
    redactor = Redactor.from_environment(env_file=env_path, mask_emails=mask_emails)
    lab_needed, scenario = _lab_plan(target, scenario)

    reports_root = reports_dir.resolve()
    work_root = state_dir() / "report-work"
    _remove_stale_work(work_root)
    work_root.mkdir(parents=True, exist_ok=True)
    run = _ReportRun(
        folder=_new_run_folder(reports_root, started, target, scenario),
        work=Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=work_root)),
        redactor=redactor,
        progress=progress or _stderr,
        started=started,
        target=target,
        scenario=scenario,
        parameters=_common_parameters(
            target=target,
            profile=profile,
            region=region,
            env_file=env_path,
            mask_emails=mask_emails,
            extra={**_scenario_client(target, scenario), **(parameters or {})},
        ),
    )
    run.progress(f"writing {_display(run.folder)}")
    try:
        if lab_needed:
            lab_clock = time.monotonic()
            run.lab = _start_lab(scenario or "healthy", run)
            run.timings["lab_start_s"] = round(time.monotonic() - lab_clock, 3)
        if not run.errors:
            run.target_description, extra_secrets = _describe_target(run.parameters)
            if "error" in run.target_description:  # every notebook would fail the same way
                run.errors.append(f"the target could not be resolved: {run.target_description['error']}")
            if extra_secrets:
                run.redactor = Redactor.from_environment(
                    env_file=env_path, mask_emails=mask_emails, extra=extra_secrets
                )
        if not run.errors:
            imports.join()  # usually long done: the lab took longer to start
            jupyter = state_dir() / "jupyter"
            redaction = kernel_settings(jupyter / KERNEL_DIRS["IPYTHONDIR"], run.redactor, env_path)
            with kernel_environment(jupyter, redaction), _Pages(run) as pages:
                with kernel_lanes(WAVE_WORKERS) as lanes:
                    for wave in waves([stage_of(path) for path in paths]):
                        run.notebooks += _run_wave(
                            [paths[i] for i in wave], run, cell_timeout_s, pages, lanes
                        )
                    run.timings["kernels_started"] = sum(lane.kernels_started for lane in lanes)
                pages.finish()
        run.timings["total_s"] = round(time.monotonic() - clock, 3)
        result = _finish(run)
        build_index(reports_root)
    finally:
        shutil.rmtree(run.work, ignore_errors=True)
        if run.lab is not None:
            run.progress("stopping the lab")
            run.lab.stop()
    return result


def _finish(run: _ReportRun) -> ReportResult:
    """Decide the outcome and write ``summary.json``."""
    if run.diagnosis_expected and run.diagnosis is None and not run.errors:
        failed = [n for n in run.notebooks if n.status == "failed"]
        why = f"{failed[0].name} failed ({failed[0].ename})" if failed else "its notebook wrote none"
        run.errors.append(f"the diagnosis is missing: {why}.")
    exit_code, status = _outcome(run)
    summary = _summary(run, exit_code=exit_code, status=status)
    changes = changes_since_previous(run.folder, summary)
    summary["changes"] = changes.as_dict()
    write_text(run.folder / SUMMARY_NAME, json.dumps(summary, indent=2, default=str) + "\n")
    run.progress(f"{status} in {run.timings['total_s']:.1f} s (exit {exit_code})")
    run.progress(changes.headline())
    return ReportResult(
        folder=run.folder,
        exit_code=exit_code,
        status=status,
        root_cause=summary["root_cause"],
        notebooks=tuple(run.notebooks),
        errors=tuple(summary["errors"]),
        summary=summary,
        changes=changes,
    )


def earlier_runs(folder: Path) -> list[tuple[str, object | None]]:
    """Every run folder beside ``folder`` with its parsed ``summary.json`` (None: unreadable or none yet)."""
    return [(other.name, read_summary(other)) for other in folder.parent.iterdir() if other.is_dir()]


def changes_since_previous(
    folder: Path, summary: Mapping[str, Any], candidates: Sequence[tuple[str, object | None]] | None = None
) -> Changes:
    """What changed since the previous run of the same target among ``folder``'s siblings (``candidates``:
    :func:`earlier_runs`, read once by the caller). ``summary`` needs only ``run``, ``status``,
    ``root_cause``, ``findings``, ``counts``, ``target`` and ``scenario``, so a page rendered before the run
    ends (its summary card) can ask too; ``Changes.html()`` is its escaped text."""
    if candidates is None:
        candidates = earlier_runs(folder)
    previous_run, previous, skipped = pick_previous(candidates, summary)
    return compare(previous, summary, previous_run=previous_run, skipped=skipped)


def _scenario_client(target: str, scenario: str | None) -> dict[str, Any]:
    """How the probe connects when reproducing ``scenario`` in the lab: the scenario's client side.

    A scenario is configuration plus how the browser connects; the probe plays the browser. The diagnosis
    still never sees the scenario, only what the probe's connections leave in the logs and the table.
    """
    if target != "lab" or scenario is None:
        return {}
    from kit.lab import scenarios

    client = scenarios.get(scenario).client
    return {
        "probe_workspace_id": client.include_workspace_id,
        "probe_close_at_once": client.close_after_connect,
        "probe_join": client.join_after_connect,
    }


def _lab_plan(target: str, scenario: str | None) -> tuple[bool, str | None]:
    """Whether the run must start a lab, and the scenario the report is about."""
    if target != "lab":
        return False, None
    from kit.lab import scenarios

    if scenario is not None:
        scenarios.get(scenario)  # an unknown name is a ConfigurationError listing the known ones
    try:
        info = read_lab_file()
    except ConfigurationError:
        return True, scenario or "healthy"
    running = str(info.get("scenario", ""))
    if scenario is not None and scenario != running:
        raise ConfigurationError(
            f"a lab is already running with scenario {running} (pid {info.get('pid')}); report on it "
            f"without --scenario (make report SCENARIO=), or stop it before asking for {scenario}."
        )
    return False, running or None


def _start_lab(scenario: str, run: _ReportRun) -> Any:
    from kit.lab.lab import Lab

    run.progress(f"starting the lab (scenario {scenario})")
    lab = Lab(scenario, write_lab_file=True)
    try:
        lab.start()
    except Exception as exc:  # the report records why, so a cron run leaves a trace in the index
        message = f"the lab could not start: {type(exc).__name__}: {exc}"
        run.errors.append(run.redactor.redact_text(message))
        run.progress(message)
        return None
    run.progress("lab up")
    return lab


def _describe_target(parameters: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``Target.describe()`` of the target the notebooks build from ``parameters`` (or why it could not be
    resolved), and the session's own secrets."""
    from kit.target import Target

    def given(name: str) -> str | None:
        value = parameters.get(name)
        return None if value is None else str(value)

    kind = str(parameters.get("target", "lab"))
    try:
        resolved = Target.from_parameters(
            kind,
            profile=given("profile"),
            region=given("region"),
            table=given("table"),
            env_file=given("env_file"),
            websocket_url=given("websocket_url"),
            allow_writes=parameters.get("allow_writes") is True,
            api_id=given("api_id"),
        )
    except KitError as exc:
        return {"kind": kind, "error": str(exc)}, []
    description: dict[str, Any] = dict(resolved.describe())
    return description, _session_secrets(resolved) if resolved.kind == "aws" else []


def _session_secrets(target: Any) -> list[str]:
    """Static credentials the target's session holds (a profile's keys), so they are redacted too.

    Refreshable credentials (SSO, assumed roles) are left alone: reading them would call AWS.
    """
    try:
        from botocore.credentials import RefreshableCredentials

        credentials = target.session().get_credentials()
        if credentials is None or isinstance(credentials, RefreshableCredentials):
            return []
        return [value for value in (credentials.secret_key, credentials.token) if value]
    except Exception:  # best effort: the environment and the env file are already covered
        return []


def env_file_of(env_file: str | os.PathLike[str] | None, parameters: Mapping[str, Any] | None) -> str | None:
    """The env file the notebooks will read, resolved: ``-p env_file=`` wins over ``--env-file``, as it does
    for the notebooks, so the report's redactor knows the secrets of the file they actually read."""
    given = (parameters or {}).get("env_file") or env_file
    return str(Path(given).resolve()) if given else None


def _common_parameters(
    *,
    target: str,
    profile: str | None,
    region: str | None,
    env_file: str | None,
    mask_emails: bool,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    common: dict[str, Any] = {"target": target, "mask_emails": mask_emails}
    for name, value in (("profile", profile), ("region", region), ("env_file", env_file)):
        if value is not None:
            common[name] = value
    common.update({name: value for name, value in extra.items() if value is not None})
    return common


def stage_of(path: Path) -> int | None:
    """A notebook's stage; one that writes the diagnosis always runs alone, so which one wrote it is
    never a race."""
    return None if "summary_path" in declared_parameters(path) else notebook_stage(path)


def _run_wave(
    paths: Sequence[Path],
    run: _ReportRun,
    cell_timeout_s: int | None,
    pages: _Pages,
    lanes: Sequence[KernelLane],
) -> list[NotebookRun]:
    """Run ``paths`` at once, the i-th in lane i (modulo the lanes: a lane runs its notebooks in turn, in
    its kept kernel); results in order. Each notebook's pages are handed to ``pages`` as soon as it ran."""
    done: list[NotebookRun] = []
    ran: dict[int, NotebookRun] = {}  # by position in ``paths``
    futures = {
        lanes[i % len(lanes)].submit(_run_notebook, path, run, cell_timeout_s, lanes[i % len(lanes)]): i
        for i, path in enumerate(paths)
    }
    for future in as_completed(futures):
        ran[futures[future]] = result = future.result()
        done.append(result)
        pages.render(result, done)
    return [ran[i] for i in range(len(paths))]


def _run_notebook(path: Path, run: _ReportRun, cell_timeout_s: int | None, lane: KernelLane) -> NotebookRun:
    """Run one notebook in ``lane``'s kernel (on the lane's thread), write its redacted ``.ipynb``, and pick
    up the diagnosis it wrote."""

    nbformat: Any = importlib.import_module("nbformat")

    name = path.stem
    declared = declared_parameters(path)
    parameters = dict(run.parameters)
    diagnosis_file: Path | None = None
    if "summary_path" in declared:
        run.diagnosis_expected = True
        diagnosis_file = run.work / f"{name}.diagnosis.json"
        parameters["summary_path"] = str(diagnosis_file)
    if declared:  # papermill warns about every parameter a notebook does not declare
        parameters = {key: value for key, value in parameters.items() if key in declared}
    executed = run.work / f"{name}.ipynb"
    run.progress(f"{name}: running")
    clock = time.monotonic()
    failure = lane.execute(path, executed, parameters, cell_timeout_s)
    execute_s = time.monotonic() - clock

    if executed.is_file():
        nb = nbformat.read(str(executed), as_version=4)
    else:
        nb = nbformat.read(str(path), as_version=4)
        banner = "**This notebook could not be run:** " + markdown_text(
            f"{failure.get('ename')}: {failure.get('evalue')}"
        )
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(banner))
    nb.metadata.setdefault("papermill", {})["output_path"] = str(run.folder / f"{name}.ipynb")

    clock = time.monotonic()
    redacted = run.redactor.redact_notebook(nb)
    files = {"ipynb": f"{name}.ipynb", "html": f"{name}.html", "report_html": f"{name}.report.html"}
    write_text(run.folder / files["ipynb"], without_local_paths(nbformat.writes(redacted), _local_roots(run)))
    render_s = time.monotonic() - clock  # and the pages' own time, once rendered (_Pages)

    if diagnosis_file is not None and run.diagnosis is None and diagnosis_file.is_file():
        diagnosis = _read_diagnosis(diagnosis_file, name, run)
        if diagnosis is not None:
            run.diagnosis, run.diagnosis_from = diagnosis, name

    status: NotebookStatus = "failed" if failure else "ok"
    run.timings["notebooks"][name] = {"execute_s": round(execute_s, 3), "render_s": round(render_s, 3)}
    detail = f" ({failure['ename']}: {failure['evalue']})" if failure else ""
    run.progress(run.redactor.redact_text(f"{name}: {status} in {execute_s:.1f} s{detail}"))
    return NotebookRun(
        name=name,
        status=status,
        execute_s=execute_s,
        render_s=render_s,
        files=files,
        ename=failure.get("ename"),
        evalue=run.redactor.redact_text(str(failure["evalue"])) if failure else None,
        cell=failure.get("cell"),
        cell_index=failure.get("cell_index"),
    )


def _local_roots(run: _ReportRun) -> tuple[str, ...]:
    """The folders of this machine no written file may name: :func:`kit.local_paths.local_roots`, the
    reports folder, the env file's folder."""
    extra = [run.folder.parent]
    if run.parameters.get("env_file"):
        extra.append(Path(str(run.parameters["env_file"])).resolve().parent)
    return (*local_roots(), *(str(folder) for folder in extra))


def _card_facts(
    run: _ReportRun,
    also: Sequence[NotebookRun] = (),
    earlier: Sequence[tuple[str, object | None]] = (),
) -> CardFacts:
    """What the summary card of every page of ``run`` says (:func:`kit.report_page.summary_card`): its
    notebooks so far, ``also`` (the ones of the wave under way that already ran), and what changed since
    the previous run of the target among ``earlier`` (:func:`earlier_runs`)."""
    redact = run.redactor.redact_value
    notebooks = [*run.notebooks, *also]
    so_far = _compared(run, _outcome(run)[1])
    return CardFacts(
        diagnosis=redact(run.diagnosis) if run.diagnosis is not None else None,
        target={**run.target_description, "kind": run.target},
        started=run.started.isoformat(timespec="seconds"),
        run=run.folder.name,
        scenario=run.scenario,
        diagnosis_expected=run.diagnosis_expected,
        failed=[FailedPart(n.name, n.ename, n.evalue, n.cell) for n in notebooks if n.status == "failed"],
        errors=tuple(redact(list(run.errors))),
        changes=changes_since_previous(run.folder, so_far, earlier).html(),
    )


class _Pages:
    """Each executed notebook's two pages (with code, and code hidden), each leading with the run's summary
    card.

    A notebook's pages are rendered in the background as soon as it ran, with the card as it stands then:
    rendering is CPU-bound and runs one page at a time, while the next notebooks' kernels mostly wait on the
    target. ``finish`` renders again every page whose card has changed since (a later notebook failed, say),
    so every page ends with the run's final card, the diagnosis notebook's own included."""

    def __init__(self, run: _ReportRun) -> None:
        self.run = run
        self.roots = _local_roots(run)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="kit-render")
        self.rendered: dict[str, Future[tuple[str, float]]] = {}
        self.earlier = earlier_runs(run.folder)  # read once: a cron's reports/ may hold many runs

    def __enter__(self) -> _Pages:
        return self

    def __exit__(self, *_: object) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def render(self, notebook: NotebookRun, wave_so_far: Sequence[NotebookRun]) -> None:
        """Render ``notebook``'s pages in the background; ``wave_so_far``: its wave's notebooks that ran
        (itself included), which ``run.notebooks`` does not hold yet."""
        card = summary_card(_card_facts(self.run, wave_so_far, self.earlier))
        self.rendered[notebook.name] = self.pool.submit(self._render, notebook, card)

    def _render(self, notebook: NotebookRun, card: str) -> tuple[str, float]:
        """(the card it carries, seconds)."""
        nbformat: Any = importlib.import_module("nbformat")

        clock = time.monotonic()
        redacted = summarise_outputs(
            nbformat.read(str(self.run.folder / notebook.files["ipynb"]), as_version=4)
        )
        for key, code in (("html", True), ("report_html", False)):
            page = decorate_page(render_html(redacted, title=notebook.name, code=code), card, self.roots)
            write_text(self.run.folder / notebook.files[key], self.run.redactor.redact_markup(page))
        return card, time.monotonic() - clock

    def finish(self) -> None:
        """Wait for every page; render again those whose card is not the run's final one."""
        run = self.run
        final = summary_card(_card_facts(run, (), self.earlier))
        stale = 0
        for position, notebook in enumerate(run.notebooks):
            card, seconds = self.rendered[notebook.name].result()
            if card != final:
                stale += 1
                seconds += self._render(notebook, final)[1]
            render_s = notebook.render_s + seconds
            run.notebooks[position] = replace(notebook, render_s=render_s)
            run.timings["notebooks"][notebook.name]["render_s"] = round(render_s, 3)
        if run.notebooks:
            total = sum(n.render_s for n in run.notebooks)
            again = f", {stale} of them again with the final card" if stale else ""
            run.progress(f"rendered {2 * len(run.notebooks)} pages in {total:.1f} s{again}")


def _read_diagnosis(path: Path, name: str, run: _ReportRun) -> dict[str, Any] | None:
    try:
        diagnosis = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        run.errors.append(f"{name} wrote a diagnosis that is not JSON ({type(exc).__name__}).")
        return None
    cause = diagnosis.get("root_cause") if isinstance(diagnosis, dict) else None
    if not isinstance(cause, dict) or "id" not in cause:
        run.errors.append(f"{name} wrote a diagnosis without root_cause.id.")
        return None
    return dict(diagnosis)


def _outcome(run: _ReportRun) -> tuple[int, str]:
    """(exit code, status): 2/failed when the kit failed, else the root cause's (``causes.exit_code``)."""
    any_failed = any(n.status == "failed" for n in run.notebooks)
    if run.errors or (run.diagnosis is None and (run.diagnosis_expected or any_failed)):
        return 2, "failed"
    status = "partial" if any_failed else "ok"
    if run.diagnosis is None:
        return 0, status
    return causes.exit_code(str(run.diagnosis["root_cause"].get("id"))), status


def _versions() -> dict[str, str]:
    versions = {"kit": __version__, "python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = ""
    return versions


def _compared(run: _ReportRun, status: str) -> dict[str, Any]:
    """The part of ``summary.json`` a later run compares with (:mod:`kit.report_changes`), redacted; the
    summary card asks for it before the run ends."""
    diagnosis = run.diagnosis or {}
    redact = run.redactor.redact_value
    return {
        "run": run.folder.name,
        "status": status,
        "root_cause": redact(diagnosis.get("root_cause")),
        "findings": redact(diagnosis.get("findings", [])),
        "counts": redact(diagnosis.get("counts")),
        "target": redact({**run.target_description, "kind": run.target}),
        "scenario": run.scenario,
    }


def _summary(run: _ReportRun, *, exit_code: int, status: str) -> dict[str, Any]:
    redact = run.redactor.redact_value
    return {
        **_compared(run, status),
        "exit_code": exit_code,
        "diagnosis_from": run.diagnosis_from,
        "lab_started_by_report": run.lab is not None,
        "parameters": redact(run.parameters),
        "notebooks": [n.as_dict() for n in run.notebooks],
        "errors": redact(list(run.errors)),
        "redaction": {
            "secrets": run.redactor.secret_count,
            "too_short_to_redact": list(run.redactor.skipped),
            "mask_emails": run.redactor.mask_emails,
        },
        "versions": _versions(),
        "timings": run.timings,
        "started": run.started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# --------------------------------------------------------------------------------------------------------
# Files and folders


def run_folder_name(started: datetime, target: str, scenario: str | None) -> str:
    """``20261125T192933Z-lab-seed-logs-dropped``: sorts by time, says what was looked at."""
    stamp = started.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{target}" + (f"-{scenario}" if scenario else "")


def _new_run_folder(root: Path, started: datetime, target: str, scenario: str | None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    base = run_folder_name(started, target, scenario)
    for attempt in range(1, 100):
        folder = root / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise ConfigurationError(f"could not make a new run folder for {base} in {root}; remove old runs.")


def _remove_stale_work(root: Path) -> None:
    """Private work folders left by runs that were killed (``<pid>-...`` with no such process)."""
    if not root.is_dir():
        return
    for entry in root.iterdir():
        pid = entry.name.split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(entry, ignore_errors=True)
        except PermissionError:
            pass


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
