"""Where the kit keeps its own files on this machine, and the one dummy key it signs local requests with.

    PROJECT_ROOT     the checkout (``notebooks/``, ``node_modules/``, ``.kit/`` live here)
    state_dir()      ``.kit/`` at the project root, or ``$KIT_STATE_DIR`` (tests point it at a fresh folder)
    CACHE_DIR        ``.kit/cache`` at the project root whatever ``$KIT_STATE_DIR`` says (compiled helpers)
    lab_file()       ``lab.json`` in the state dir: how a running lab is reached (``read_lab_file``)
    LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY    the dummy credentials of every local request

Both sides use this module: ``kit.target`` (a ``--target lab`` is read from the lab file and signed with the
dummy key) and the lab (``kit.lab``, which writes the lab file and accepts the key). The lab sits above the
target; neither reaches into the other for these.

What this module must not do: import the lab or the target, start anything, or write any file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final

from kit.errors import ConfigurationError

PROJECT_ROOT: Final = Path(__file__).resolve().parents[1]
STATE_DIR_ENV: Final = "KIT_STATE_DIR"
# Not under $KIT_STATE_DIR, which tests point at a fresh folder per lab: a compiled helper is kept once.
CACHE_DIR: Final = PROJECT_ROOT / ".kit" / "cache"
LAB_FILE_NAME: Final = "lab.json"

# Every local request is signed with these; DynamoDB Local keys its databases by access key + region, so one
# key makes regions behave as on AWS. A dummy, documented as such: it opens nothing outside the lab.
LOCAL_ACCESS_KEY_ID: Final = "AKIAKITLOCALLAB00000"
LOCAL_SECRET_ACCESS_KEY: Final = "kit-local-lab-dummy-secret"


def state_dir() -> Path:
    """Where the kit keeps its files: ``.kit/`` at the project root unless ``$KIT_STATE_DIR`` says else."""
    return Path(os.environ.get(STATE_DIR_ENV) or PROJECT_ROOT / ".kit")


def lab_file() -> Path:
    """The running lab's description (``.kit/lab.json``), there while a lab is up or after it stopped."""
    return state_dir() / LAB_FILE_NAME


def read_lab_file(path: Path | None = None) -> dict[str, Any]:
    """The running lab's description, or a ``ConfigurationError`` saying why there is none.

    No file: no lab is running. ``{"stopped": why}``: the lab stopped itself (its engine died for good). A pid
    that no longer runs: the lab was killed before it could remove its file.
    """
    path = path or lab_file()
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigurationError(
            f"no lab is running ({path} not found); start one with `kit lab up` in another terminal."
        ) from None
    except ValueError as exc:
        raise ConfigurationError(
            f"{path} is not valid JSON ({exc}); stop the lab and start it again."
        ) from exc
    if "stopped" in info:
        raise ConfigurationError(
            f"the lab is not running: {info['stopped']} Start it again with `kit lab up`."
        )
    pid = info.get("pid")
    if isinstance(pid, int):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            raise ConfigurationError(
                f"{path} names a lab (pid {pid}) that is no longer running; start one with `kit lab up`."
            ) from None
        except PermissionError:
            pass
    return dict(info)
