"""The report's kernels: where they keep their files, how they talk, and how a run keeps them between
notebooks.

**Files.** Kernels inherit the report's environment, so :func:`kernel_environment` points IPython, matplotlib
and Jupyter at folders under ``.kit/jupyter/`` (never ``$HOME``) while they run.

**Sockets.** :func:`ipc_kernel_manager`'s kernels talk over Unix sockets in a private folder, not TCP ports
on loopback: no port for two kernels to race for, nothing on the network, no unencrypted-TCP warning.

**Kept kernels.** Starting a kernel and importing what a notebook needs (pandas, matplotlib, boto3, the kit)
costs ~2.5 s of CPU, about as much as the rest of a notebook's run on the lab, and a report of six notebooks
paid it six times on a 2-core machine. A run keeps each kernel in a :class:`KernelLane` instead: one thread,
and the kernel it started, running the lane's notebooks one after another. Between two notebooks the
kernel's figures are closed, pandas' options put back to their defaults, its folder restored and its
namespace reset as IPython's ``%reset`` does, with a new history session, so the next notebook sees none of
the last one's names and numbers its cells from 1. The rest of the process carries over: imported modules
and what they hold (module-level caches, ``boto3.DEFAULT_SESSION``, matplotlib's ``rcParams``, logging and
warnings settings), ``os.environ`` and ``sys.path``; a notebook must leave those as it found them. A notebook
that failed (an error, a timeout, a dead kernel) takes its kernel with it, and a kept kernel found dead
when the next notebook comes is dropped too: the lane's next notebook starts a new one. Every notebook still
runs alone in a new kernel in the notebook tests (``tests/integration/test_notebooks.py``), so none can come
to depend on what another left.

A lane's kernel is only ever used from the lane's own thread: jupyter_client's asynchronous managers bind
their sockets to the event loop of the thread that made them, and nbclient runs one loop per thread.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

KERNEL_NAME = "python3"
# Where each tool would otherwise write under $HOME (IPython profile and history, matplotlib's font cache,
# kernel connection files): a folder under .kit/jupyter/ each.
KERNEL_DIRS = {
    "IPYTHONDIR": "ipython",
    "MPLCONFIGDIR": "matplotlib",
    "JUPYTER_RUNTIME_DIR": "runtime",
    "JUPYTER_DATA_DIR": "data",
    "JUPYTER_CONFIG_DIR": "config",
}
# papermill's name for the engine that runs a notebook in a lane's kept kernel (registered at first use).
ENGINE_NAME = "kit-kept-kernel"
# A reset is one silent cell; a kernel that does not answer it in this long is not kept.
RESET_TIMEOUT_S = 30.0

T = TypeVar("T")


@contextlib.contextmanager
def kernel_environment(root: Path, extra: Mapping[str, str] | None = None) -> Iterator[dict[str, str]]:
    """Point IPython, matplotlib and Jupyter at folders under ``root`` while the kernels run.

    Kernels inherit this process's environment, so setting it here keeps them (and nbconvert) out of
    ``$HOME``; ``extra`` variables are set for them too (:func:`kit.redact_display.kernel_settings`). The
    previous values come back afterwards.
    """
    folders = {name: str(root / sub) for name, sub in KERNEL_DIRS.items()}
    for folder in folders.values():
        Path(folder).mkdir(parents=True, exist_ok=True)
    variables = {**folders, **(extra or {})}
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield folders
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def ipc_kernel_manager(folder: Path) -> type[Any]:
    """A kernel manager whose kernel talks over Unix sockets in ``folder``, not TCP ports on loopback.

    With TCP, a port is chosen by binding to port 0 and letting go, and the kernel binds it a moment later:
    two kernels starting at once (two reports, parallel tests) can pick the same one, and the kernel dies
    with zmq's "Address already in use" before it answers. Sockets in a private folder cannot collide,
    nothing listens on the network, and the kernel has no unencrypted-TCP warning to print. ``folder`` must
    be short: a socket's path is at most 104 bytes on macOS, 108 on Linux.
    """
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class IpcKernelManager(AsyncKernelManager):
        @default("transport")
        def _default_transport(self) -> str:
            return "ipc"

        @default("connection_file")
        def _default_connection_file(self) -> str:
            return str(folder / f"kernel-{uuid.uuid4().hex[:8]}.json")

        async def _async_interrupt_kernel(self) -> None:
            # jupyter_client interrupts every kernel before asking it to shut down, and an idle ipykernel
            # answers with "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel" on the report's
            # terminal. A kernel still busy is stopped by the shutdown's SIGTERM and SIGKILL; a cell's own
            # timeout still interrupts (it is not a shutdown).
            if not self.shutting_down:
                await super()._async_interrupt_kernel()

    return IpcKernelManager


@contextlib.contextmanager
def ipc_kernels() -> Iterator[type[Any]]:
    """:func:`ipc_kernel_manager` in a short private folder under the temporary directory, removed after."""
    folder = Path(tempfile.mkdtemp(prefix="kit-kernel-"))
    try:
        yield ipc_kernel_manager(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def reset_code(folder: Path) -> str:
    """The silent cell run between two notebooks in one kernel (pure): close the figures, put pandas' options
    back to their defaults, go back to ``folder``, then reset the namespace with a new history session
    (execution count 1). The reset comes last: it removes the cell's own names too. Neither pandas nor
    matplotlib is imported for this: a kernel that has not imported one has nothing of it to reset."""
    return (
        "import os as _kit_os, sys as _kit_sys\n"
        "if 'matplotlib.pyplot' in _kit_sys.modules:\n"
        "    _kit_sys.modules['matplotlib.pyplot'].close('all')\n"
        "if 'pandas' in _kit_sys.modules:\n"
        "    import warnings as _kit_warnings\n"
        "    with _kit_warnings.catch_warnings():  # resetting pandas' deprecated options warns of each\n"
        "        _kit_warnings.simplefilter('ignore')\n"
        "        _kit_sys.modules['pandas'].reset_option('all')\n"
        f"_kit_os.chdir({str(folder)!r})\n"
        "get_ipython().reset(new_session=True)\n"
    )


@cache
def _register_engine() -> None:
    """papermill's nbclient engine, given a lane's kernel manager: the kernel outlives the notebook (nbclient
    leaves a kernel it did not start running), and the client nbclient opened on it is closed after."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger

    class KeptKernelEngine(NBClientEngine):  # type: ignore[misc]
        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
            kwargs.pop("input_path", None)
            client = PapermillNotebookClient(
                nb_man,
                kernel_name=kernel_name,
                startup_timeout=kwargs.pop("start_timeout", 60),
                timeout=kwargs.pop("execution_timeout", None),
                log=logger,
                **kwargs,  # log_output, stdout_file, stderr_file, km, resources
            )
            try:
                return client.execute()
            finally:
                if client.kc is not None:
                    client.kc.stop_channels()

    papermill_engines.register(ENGINE_NAME, KeptKernelEngine)


def execute_notebook(
    path: Path,
    executed: Path,
    parameters: dict[str, Any],
    cell_timeout_s: int | None,
    manager: Any,
) -> dict[str, Any]:
    """papermill runs ``path`` into ``executed`` on ``manager``'s kernel (started in the notebook's folder if
    it is not running yet); what failed (name, value, cell), or {}.

    The kernel starts in the notebook's folder through nbclient (``resources``' path). papermill's own ``cwd``
    is not used: it changes this whole process's directory, which the notebooks of a wave, running at once on
    other threads, would share and restore out of order."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    _register_engine()
    failure: dict[str, Any] = {}
    try:
        papermill.execute_notebook(
            str(path),
            str(executed),
            parameters=parameters,
            engine_name=ENGINE_NAME,
            kernel_name=KERNEL_NAME,
            progress_bar=False,
            execution_timeout=cell_timeout_s,
            km=manager,
            resources={"metadata": {"path": str(path.parent)}},
        )
    except PapermillExecutionError as exc:
        failure = {
            "ename": exc.ename,
            "evalue": exc.evalue,
            "cell": exc.exec_count,
            "cell_index": exc.cell_index,
        }
    except Exception as exc:  # a timeout, a dead kernel, a kernel that never started
        failure = {"ename": type(exc).__name__, "evalue": str(exc)}
    return failure


class KernelLane:
    """One thread and the kernel it keeps (module docstring). ``submit`` work to the lane; the work calls
    :meth:`execute` (on the lane's thread) for each notebook. ``kernels_started`` counts the kernels it
    started."""

    def __init__(self, manager_class: type[Any], name: str) -> None:
        self._manager_class = manager_class
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=name)
        self._manager: Any = None
        self._folder: Path | None = None
        self.kernels_started = 0

    def submit(self, work: Callable[..., T], *args: Any) -> Future[T]:
        return self._thread.submit(work, *args)

    def execute(
        self, path: Path, executed: Path, parameters: dict[str, Any], cell_timeout_s: int | None
    ) -> dict[str, Any]:
        """:func:`execute_notebook` in this lane's kernel, kept for the next notebook when this one ran
        cleanly and the kernel took its reset; else shut down. Call it on the lane's thread."""
        folder = path.parent.resolve()
        if self._manager is not None and self._folder != folder:
            self._discard()  # kernels start in their notebook's folder, and stay there
        if self._manager is not None and not self._alive():
            self._discard()  # died while it waited (killed, out of memory): the notebook gets a new one
        if self._manager is None:
            self._manager, self._folder = self._manager_class(kernel_name=KERNEL_NAME), folder
            self.kernels_started += 1
        failure = execute_notebook(path, executed, parameters, cell_timeout_s, self._manager)
        if failure or not self._reset(folder):
            self._discard()
        return failure

    def _alive(self) -> bool:
        from jupyter_core.utils import run_sync

        try:
            return bool(run_sync(self._manager.is_alive)())
        except Exception:  # a kernel that cannot even be asked is not kept
            return False

    def _reset(self, folder: Path) -> bool:
        manager = self._manager
        if manager is None or not manager.has_kernel:
            return False
        client = None
        try:
            client = manager.blocking_client()
            client.start_channels()
            reply = client.execute_interactive(
                reset_code(folder),
                silent=True,
                store_history=False,
                timeout=RESET_TIMEOUT_S,
                output_hook=lambda _message: None,
            )
            return bool(reply["content"]["status"] == "ok")
        except Exception:  # a dead or hung kernel, or one that gives no client: not kept
            return False
        finally:
            if client is not None:
                with contextlib.suppress(Exception):  # channels half started: nothing more to stop
                    client.stop_channels()

    def _discard(self) -> None:
        manager, self._manager, self._folder = self._manager, None, None
        if manager is None or not manager.has_kernel:
            return
        from jupyter_core.utils import run_sync

        with contextlib.suppress(Exception):  # already dead: nothing left to stop
            run_sync(manager.shutdown_kernel)(now=False)

    def close(self) -> None:
        """Shut the kept kernel down (on the lane's thread) and end the thread."""
        with contextlib.suppress(RuntimeError):  # already closed
            self._thread.submit(self._discard).result()
        self._thread.shutdown(wait=True)


@contextlib.contextmanager
def kernel_lanes(count: int) -> Iterator[Sequence[KernelLane]]:
    """``count`` lanes whose kernels' sockets share one private folder; every kernel is shut down after,
    the lanes' at once."""
    with ipc_kernels() as manager_class:
        lanes = [KernelLane(manager_class, f"kit-report-{index}") for index in range(count)]
        try:
            yield lanes
        finally:
            with ThreadPoolExecutor(max(1, count)) as closing:
                list(closing.map(KernelLane.close, lanes))
