"""Bring your own function: the user's code (a folder or a deployment package .zip) read into what the lab
deploys, checked the way Lambda would refuse it, before anything starts.

    function_source(path, handler, runtime, env)  -> FunctionSource, or a one-line ConfigurationError
    check_zip(archive) / check_folder(folder)     the code, refused if unsafe or too large
    install(source, code_dir)                     the code where the lab runs it (Lambda's /var/task)
    extract_package(data, code_dir, shown)        an uploaded package (UpdateFunctionCode), checked, unpacked
    package(source)                               the .zip bytes CreateFunction is given
    describe(source, installed)                   what was loaded, in a line for the lab's output
    recorded(source)                              what the lab file keeps: no local path, no secret value

Checks, each a one-line error naming the input and the next step: the path exists and is a folder or a
.zip; a .zip is an archive (not a renamed file), with no member that would land outside the task root
(absolute paths, ``..``), no symbolic link, no name twice, and at most Lambda's 250 MB unzipped, summed from
its central directory before anything is extracted; the handler string has a dot; the runtime is one the
lab runs and the machine has what it needs (:mod:`kit.lab.lambda_runtimes`); each ``--env`` is
``NAME=value`` and not a variable Lambda reserves.

Must not: extract anything before every member is checked, write outside the given code folder, or keep a
secret-looking variable's value anywhere but in memory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Final, Literal

from kit.errors import ConfigurationError
from kit.lab import lambda_runtimes
from kit.lab.lambda_config import RESERVED_VARIABLES
from kit.redact_structure import is_secret_variable

UNZIPPED_LIMIT_BYTES: Final = 250 * 1024 * 1024  # Lambda's limit for a function's unzipped code
DEFAULT_NODE_RUNTIME: Final = "nodejs20.x"
DEFAULT_PYTHON_RUNTIME: Final = "python3.12"
# What the Lambda console names a new function's handler, per language.
DEFAULT_HANDLERS: Final = {"node": "index.handler", "python": "lambda_function.lambda_handler"}
NODE_FILES: Final = (".js", ".mjs", ".cjs")
SECRET_PLACEHOLDER: Final = "(secret, kept in memory only)"
# How errors name the inputs: `kit lab up`'s flags, or the caller's own names (a notebook's parameters).
CLI_NAMES: Final = {"function": "--function", "handler": "--handler", "runtime": "--runtime"}


@dataclass(frozen=True)
class FunctionSource:
    """The user's function as the lab will deploy it."""

    path: Path
    kind: Literal["folder", "zip"]
    handler: str
    runtime: str
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        """The code's own name (folder or file name), never its local path."""
        return self.path.name


@dataclass(frozen=True)
class Installed:
    files: int
    size_bytes: int


def parse_environment(pairs: Sequence[str]) -> dict[str, str]:
    """``NAME=value`` pairs (``--env``) → variables; a pair without ``=`` or a reserved name is refused."""
    variables: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise ConfigurationError(
                f"--env {pair.split('=')[0][:40]!r} is not NAME=value; write it as --env NAME=value."
            )
        if name in RESERVED_VARIABLES:
            raise ConfigurationError(
                f"--env {name}: Lambda sets {name} itself and refuses it in a function's configuration; "
                "leave it out."
            )
        variables[name] = value
    return variables


def check_zip(archive: zipfile.ZipFile, shown: str) -> list[zipfile.ZipInfo]:
    """The members of ``archive`` if every one is safe to extract, else a ConfigurationError naming one.

    The size is the sum of the central directory's uncompressed sizes, read before anything is extracted.
    """
    members = archive.infolist()
    seen: set[str] = set()
    total = 0
    for member in members:
        name = member.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or (parts and ":" in parts[0]) or ".." in parts:
            raise ConfigurationError(
                f"{shown}: member {name!r} would be written outside the function's folder; rebuild the "
                "package with paths relative to its root."
            )
        if stat.S_ISLNK(member.external_attr >> 16):
            raise ConfigurationError(
                f"{shown}: member {name!r} is a symbolic link; package the file it points to instead."
            )
        key = name.rstrip("/")
        if key in seen:
            raise ConfigurationError(f"{shown}: member {name!r} appears twice; rebuild the package.")
        seen.add(key)
        total += member.file_size
    if total > UNZIPPED_LIMIT_BYTES:
        raise ConfigurationError(
            f"{shown}: {total} bytes unzipped, over Lambda's limit of {UNZIPPED_LIMIT_BYTES} bytes (250 MB); "
            "trim the package or use a container image."
        )
    return members


def check_folder(folder: Path, shown: str) -> None:
    """A folder's files, as they would be zipped (links followed), within Lambda's 250 MB unzipped."""
    total = 0
    for root, _, files in os.walk(folder, followlinks=False):
        for name in files:
            with contextlib.suppress(OSError):  # a dangling link is not code; copying skips nothing else
                total += (Path(root) / name).stat().st_size
            if total > UNZIPPED_LIMIT_BYTES:
                raise ConfigurationError(
                    f"{shown}: over Lambda's limit of {UNZIPPED_LIMIT_BYTES} bytes (250 MB) unzipped; "
                    "trim it (dev dependencies, tests) or use a container image."
                )


def _file_names(path: Path, kind: str) -> list[str]:
    if kind == "zip":
        with zipfile.ZipFile(path) as archive:
            return [member.filename for member in archive.infolist() if not member.is_dir()]
    return [
        str(p.relative_to(path)) for p in path.rglob("*") if p.is_file() and "node_modules" not in p.parts
    ]


def default_runtime(names: Sequence[str], shown: str, runtime_name: str = CLI_NAMES["runtime"]) -> str:
    """The runtime the code's files point to: Node.js for .js/.mjs/.cjs/package.json, Python for .py."""
    node = any(name.endswith(NODE_FILES) or name.endswith("package.json") for name in names)
    python = any(name.endswith(".py") for name in names)
    if node != python:
        return DEFAULT_NODE_RUNTIME if node else DEFAULT_PYTHON_RUNTIME
    found = "both JavaScript and Python files" if node else "neither JavaScript nor Python files"
    raise ConfigurationError(
        f"{shown} holds {found}; say which runtime runs it with {runtime_name} (e.g. nodejs20.x or "
        "python3.12)."
    )


def function_source(
    path: str,
    handler: str | None = None,
    runtime: str | None = None,
    environment: Sequence[str] | Mapping[str, str] = (),
    *,
    which: Callable[[str], str | None] | None = None,
    names: Mapping[str, str] = CLI_NAMES,
) -> FunctionSource:
    """Read and check the user's function; every problem is a one-line ConfigurationError naming the input
    as ``names`` say (``kit lab up``'s flags by default)."""
    given = Path(path).expanduser()
    shown = given.name or str(given)
    if not given.exists():
        raise ConfigurationError(
            f"{names['function']} {path}: no such file or folder; give your function's folder or .zip."
        )
    if given.is_dir():
        kind: Literal["folder", "zip"] = "folder"
        check_folder(given, shown)
    elif zipfile.is_zipfile(given):
        kind = "zip"
        with zipfile.ZipFile(given) as archive:
            check_zip(archive, shown)
    else:
        raise ConfigurationError(
            f"{names['function']} {shown} is neither a folder nor a .zip archive; give your function's "
            "folder or its deployment package."
        )
    chosen = runtime or default_runtime(_file_names(given, kind), shown, names["runtime"])
    problem = lambda_runtimes.refusal(shown, chosen) or lambda_runtimes.missing_tool(chosen, which)
    if problem is not None:
        raise ConfigurationError(problem)
    family = lambda_runtimes.family(chosen)
    assert family is not None  # refusal() would have said
    chosen_handler = handler or DEFAULT_HANDLERS[family]
    if "." not in chosen_handler:
        raise ConfigurationError(
            f"{names['handler']} {chosen_handler!r} has no dot; Lambda handlers are file.function, e.g. "
            f"{DEFAULT_HANDLERS[family]}."
        )
    variables = dict(environment) if isinstance(environment, Mapping) else parse_environment(environment)
    return FunctionSource(given.resolve(), kind, chosen_handler, chosen, variables)


def install(source: FunctionSource, code_dir: Path) -> Installed:
    """Put the code where the lab's runtime runs it (the folder copied, the archive's checked members
    extracted); how many files and bytes."""
    code_dir.mkdir(parents=True, exist_ok=True)
    if source.kind == "folder":
        try:
            shutil.copytree(source.path, code_dir, dirs_exist_ok=True, symlinks=False)
        except (OSError, shutil.Error, RecursionError) as exc:
            raise ConfigurationError(
                f"{source.name} could not be copied into the lab ({type(exc).__name__}: {str(exc)[:120]}); "
                "check it for link loops or unreadable files."
            ) from exc
    else:
        with zipfile.ZipFile(source.path) as archive:
            for member in check_zip(archive, source.name):
                archive.extract(member, code_dir)
    files = [p for p in code_dir.rglob("*") if p.is_file()]
    return Installed(len(files), sum(p.stat().st_size for p in files))


def extract_package(data: bytes, code_dir: Path, shown: str) -> Installed:
    """A deployment package's bytes (``UpdateFunctionCode``'s ZipFile), checked, unpacked in ``code_dir``."""
    import io

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ConfigurationError(
            f"{shown} is not a .zip archive ({exc}); upload a deployment package."
        ) from exc
    with archive:
        for member in check_zip(archive, shown):
            archive.extract(member, code_dir)
    files = [p for p in code_dir.rglob("*") if p.is_file()]
    return Installed(len(files), sum(p.stat().st_size for p in files))


def package(source: FunctionSource, installed_dir: Path) -> bytes:
    """The deployment package for CreateFunction: the .zip as given, or the installed folder zipped."""
    if source.kind == "zip":
        return source.path.read_bytes()
    from io import BytesIO

    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(installed_dir.rglob("*")):
            if file.is_file():
                archive.write(file, arcname=str(file.relative_to(installed_dir)))
    return buffer.getvalue()


def _size(size_bytes: int) -> str:
    return (
        f"{size_bytes / 1024 / 1024:.1f} MB" if size_bytes >= 1024 * 1024 else f"{size_bytes / 1024:.0f} KB"
    )


def describe(source: FunctionSource, installed: Installed) -> str:
    """``your function from my-fn.zip: 12 files (40 KB); handler index.handler on nodejs20.x``."""
    variables = f"; environment {', '.join(sorted(source.environment))}" if source.environment else ""
    return (
        f"your function from {source.name}: {installed.files} files ({_size(installed.size_bytes)}); "
        f"handler {source.handler} on {source.runtime}{variables}"
    )


def recorded(source: FunctionSource) -> dict[str, object]:
    """What the lab file says about the function: its code's name, never a local path or a secret."""
    return {
        "code": source.name,
        "handler": source.handler,
        "runtime": source.runtime,
        "environment": {
            name: SECRET_PLACEHOLDER if is_secret_variable(name) else value
            for name, value in sorted(source.environment.items())
        },
    }
