"""serverless-offline 13 serving the kit's handler, the peer of ``make bench-peers``: its command, its
environment, and the process group it runs in.

``bench/peers/`` holds the peer: ``package.json`` and ``package-lock.json`` (serverless 3 and
serverless-offline 13, installed by ``make bench-peers`` into ``bench/peers/node_modules``),
``serverless.yml`` and ``app.py``, a symlink to ``kit/handler/app.py``, the very file the lab zips and runs.
serverless-offline's Python runner imports the handler by its path relative to the service folder (``app``,
as Lambda imports it from the zip's root), and starts the interpreter named by the runtime's first part
(``python3``) from ``PATH``, with ``$VIRTUAL_ENV/bin`` put first when that variable is set: so the handler
runs on this virtualenv's interpreter, which has boto3.

``offline_command`` and ``offline_environment`` are pure. ``OfflineServer`` is the shell: it starts the
command in a process group of its own, output to a temporary file (a pipe nobody reads would block it), waits
until the websocket port answers (bounded, and ended early when the process exits) and stops the whole group
(node, ``/bin/sh``, every Python runner) on the way out.

Must not: listen beyond 127.0.0.1, let serverless phone home (telemetry, notifications, update checks are
off), or leave a process behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from kit.errors import ConfigurationError, EngineError
from kit.lab.processes import die_with_parent
from kit.local import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY

PEERS_DIR = Path(__file__).resolve().parent / "peers"
SERVERLESS_JS = Path("node_modules") / "serverless" / "bin" / "serverless.js"
PACKAGES = ("serverless", "serverless-offline")
LOOPBACK = "127.0.0.1"
INSTALL_HINT = (
    "run `make bench-peers`, which installs serverless 3 and serverless-offline 13 into bench/peers"
)
# Serverless 3 talks to the network on its own unless told not to; the peer runs on loopback only.
QUIET_SERVERLESS = {
    "SLS_TELEMETRY_DISABLED": "1",
    "SLS_TRACKING_DISABLED": "1",
    "SLS_NOTIFICATIONS_MODE": "off",
    "SLS_DISABLE_AUTO_UPDATE": "1",
    "SLS_DEPRECATION_DISABLE": "*",
    "SLS_INTERACTIVE_SETUP_DISABLE": "1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
FUNCTION_TIMEOUT_S = 30  # serverless.yml's provider.timeout; why not the lab's 6 s: the comment there
READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 5.0


@dataclass(frozen=True)
class OfflinePorts:
    """The ports serverless-offline listens on, all on 127.0.0.1; ``websocket`` also serves @connections."""

    websocket: int
    http: int
    lambda_: int
    alb: int

    @classmethod
    def free(cls) -> OfflinePorts:
        ports: list[int] = []
        while len(ports) < 4:
            port = _free_port()
            if port not in ports:
                ports.append(port)
        return cls(*ports)

    @property
    def management_url(self) -> str:
        """serverless-offline's @connections API: ``POST /@connections/{id}`` on the websocket port."""
        return f"http://{LOOPBACK}:{self.websocket}"

    @property
    def websocket_url(self) -> str:
        return f"ws://{LOOPBACK}:{self.websocket}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def offline_command(node: str, ports: OfflinePorts) -> list[str]:
    """``serverless offline start`` on 127.0.0.1 and the given ports, run from ``PEERS_DIR`` (pure)."""
    return [
        node,
        str(SERVERLESS_JS),
        "offline",
        "start",
        "--host",
        LOOPBACK,
        "--websocketPort",
        str(ports.websocket),
        "--httpPort",
        str(ports.http),
        "--lambdaPort",
        str(ports.lambda_),
        "--albPort",
        str(ports.alb),
        "--noSponsor",
    ]


def offline_environment(
    base: Mapping[str, str],
    *,
    ports: OfflinePorts,
    dynamodb_url: str,
    table: str,
    region: str,
    python_prefix: str,
) -> dict[str, str]:
    """The peer's environment (pure): ``base`` without its AWS settings, then what serverless.yml reads.

    serverless-offline copies every ``AWS_*`` variable of its own environment into the handler's, so the
    caller's AWS profile, keys or endpoints must not leak in: only the lab's dummy keys and DynamoDB Local's
    URL go through. ``python_prefix`` is the virtualenv whose ``python3`` runs the handler.
    """
    environment = {key: value for key, value in base.items() if not key.startswith(("AWS_", "SLS_"))}
    python_bin = str(Path(python_prefix) / "bin")
    environment |= QUIET_SERVERLESS
    environment |= {
        "VIRTUAL_ENV": python_prefix,  # serverless-offline puts $VIRTUAL_ENV/bin first on PATH itself
        "PATH": os.pathsep.join([python_bin, *filter(None, [base.get("PATH")])]),
        "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": region,
        "KIT_PEER_TABLE_NAME": table,
        "KIT_PEER_DYNAMODB_URL": dynamodb_url,
        "KIT_PEER_MANAGEMENT_URL": ports.management_url,
    }
    return environment


def installed_versions(folder: Path = PEERS_DIR) -> dict[str, str]:
    """The installed version of each package, or a ``ConfigurationError`` naming the next step."""
    versions: dict[str, str] = {}
    for package in PACKAGES:
        manifest = folder / "node_modules" / package / "package.json"
        try:
            versions[package] = str(json.loads(manifest.read_text())["version"])
        except (OSError, ValueError, KeyError):
            raise ConfigurationError(f"{package} is not installed in {folder}; {INSTALL_HINT}.") from None
    return versions


def find_node() -> str:
    node = shutil.which("node")
    if node is None:
        raise ConfigurationError(
            f"node was not found on PATH; install Node.js 18 or later, then {INSTALL_HINT}."
        )
    return node


class OfflineServer:
    """serverless-offline in a process group of its own; use as a context manager."""

    def __init__(
        self,
        environment: Mapping[str, str],
        ports: OfflinePorts,
        *,
        node: str,
        folder: Path = PEERS_DIR,
        ready_timeout_s: float = READY_TIMEOUT_S,
    ) -> None:
        self.environment = dict(environment)
        self.ports = ports
        self.node = node
        self.folder = folder
        self.ready_timeout_s = ready_timeout_s
        self.start_s: float | None = None
        self._output: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise EngineError("serverless-offline is not running.")
        return self._process.pid

    def __enter__(self) -> OfflineServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> OfflineServer:
        self._output = tempfile.TemporaryFile(prefix="kit-bench-peer-")  # noqa: SIM115 - closed by stop
        started = time.monotonic()
        self._process = subprocess.Popen(
            offline_command(self.node, self.ports),
            cwd=self.folder,
            env=self.environment,
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: stop() ends node, /bin/sh and every Python runner
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
        )
        try:
            self._wait_ready(started)
        except BaseException:
            self.stop()
            raise
        self.start_s = time.monotonic() - started
        return self

    def _wait_ready(self, started: float) -> None:
        """Until the websocket port accepts a connection; the process exiting or the timeout ends it
        sooner."""
        deadline = started + self.ready_timeout_s
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise EngineError(
                    f"serverless-offline exited with status {self._process.returncode} before it listened; "
                    f"its last line of output: {self.last_output_line() or 'none'}"
                )
            with contextlib.suppress(OSError):
                socket.create_connection((LOOPBACK, self.ports.websocket), timeout=0.5).close()
                return
            if time.monotonic() >= deadline:
                raise EngineError(
                    f"serverless-offline did not listen on {LOOPBACK}:{self.ports.websocket} within "
                    f"{self.ready_timeout_s:.0f} s; its last line of output: "
                    f"{self.last_output_line() or 'none'}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM to the whole group, SIGKILL to what is left after a grace period. Idempotent."""
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_GRACE_S)
            # The group outlives node when a runner ignores SIGTERM: kill whatever is left of it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_GRACE_S)
        if self._output is not None:
            self._output.close()
            self._output = None

    def last_output_line(self, limit: int = 4096) -> str:
        """The last non-empty line serverless printed (errors are one line; its output is many)."""
        if self._output is None:
            return ""
        with contextlib.suppress(OSError, ValueError):
            self._output.flush()
            self._output.seek(0, os.SEEK_END)
            self._output.seek(max(0, self._output.tell() - limit))
            tail = self._output.read().decode(errors="replace")
            return next((line.strip() for line in reversed(tail.splitlines()) if line.strip()), "")
        return ""


def python_prefix() -> str:
    """The virtualenv (or installation) of this interpreter: the one that runs the peer's handler."""
    return sys.prefix
