"""Redaction inside a notebook's kernel: every DataFrame and Series a notebook displays is redacted first.

A report redacts the executed notebook's text afterwards (:meth:`kit.redact.Redactor.redact_notebook`), but
by then a frame is only text: ``password`` in a header and ``hunter2`` three lines below no longer belong
together. So the kernels ``kit.report`` starts load this module as an IPython extension (through
``ipython_kernel_config.py`` in the run's own ``IPYTHONDIR``, see :func:`kernel_settings`), and it registers
display formatters that pass each frame through :meth:`kit.redact.Redactor.redact_frame` before pandas renders
it: as text (``print(frame)`` too), as HTML (laid out for a reader by :func:`kit.report_page.frame_html`:
empty cells empty, no meaningless index), as LaTeX and as a table schema. A notebook can load it itself
with ``%load_ext kit.redact_display``.

The kernel's redactor is built from the environment the report sets (:data:`ENV_FILE_VARIABLE`,
:data:`MASK_EMAILS_VARIABLE`, :data:`SALT_VARIABLE`), so a kernel knows the same secrets as the report and
masks an address with the same hash; without them (a notebook opened by hand) it reads the process
environment only, with a salt of its own.

What this module must not do: change a frame a notebook holds (what is shown is a redacted copy), or let a
display fail silently (a formatter that raises shows IPython's error in place of that output, never the raw
frame).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Final

import pandas as pd

from kit.redact import Redactor
from kit.report_page import frame_html

ENV_FILE_VARIABLE: Final = "KIT_REDACT_ENV_FILE"
MASK_EMAILS_VARIABLE: Final = "KIT_REDACT_MASK_EMAILS"
# Named as a secret so that Redactor.from_environment treats the salt as one wherever a kernel prints it.
SALT_VARIABLE: Final = "KIT_REDACT_EMAIL_SALT_SECRET"
KERNEL_CONFIG: Final = "ipython_kernel_config.py"
CONFIG_TEXT: Final = (
    "# Written by kit.report: every kernel of a report redacts the frames it displays (kit.redact_display).\n"
    'c.InteractiveShellApp.extensions = ["kit.redact_display"]\n'
)


@functools.cache
def kernel_redactor(*, keep_emails: bool = False) -> Redactor:
    """This kernel's redactor (built once): the report's secrets, e-mail setting and salt when it set them.

    ``keep_emails``: the same secrets, e-mail addresses left as they are (a notebook asked to show them).
    """
    env_file = os.environ.get(ENV_FILE_VARIABLE) or None
    return Redactor.from_environment(
        env_file=env_file,
        mask_emails=not keep_emails and os.environ.get(MASK_EMAILS_VARIABLE, "1") != "0",
        email_salt=os.environ.get(SALT_VARIABLE) or None,
    )


def email_salt() -> str | None:
    """The salt the report chose for this run's e-mail hashes (None outside a report)."""
    return os.environ.get(SALT_VARIABLE) or None


def shown_rows() -> int | None:
    """How many rows at each end of a long frame a display shows at most (None: all of them)."""
    max_rows = pd.get_option("display.max_rows")
    return int(max_rows) if max_rows else None


def _frame(frame: Any) -> Any:
    return kernel_redactor().redact_frame(frame, rows=shown_rows())


def _html(frame: Any) -> str | None:
    shown = _frame(frame)
    if isinstance(shown, pd.DataFrame):  # as a report shows a table (kit.report_page.frame_html)
        return frame_html(shown)
    method = getattr(shown, "_repr_html_", None)
    return method() if method is not None else None


def _latex(frame: Any) -> str | None:
    method = getattr(_frame(frame), "_repr_latex_", None)
    return method() if method is not None else None


def _table_schema(frame: Any) -> Any:
    method = getattr(_frame(frame), "_repr_data_resource_", None)
    return method() if method is not None else None


def _redacting(method: Any) -> Any:
    """``method`` (a ``__repr__``) applied to the redacted copy; marked so that it is wrapped only once."""
    if getattr(method, "redacting", False):
        return method

    @functools.wraps(method)
    def shown(frame: Any) -> Any:
        return method(_frame(frame))

    shown.redacting = True  # type: ignore[attr-defined]
    return shown


def load_ipython_extension(ipython: Any) -> None:
    """Redact every DataFrame and Series the kernel shows (IPython calls this on ``%load_ext``).

    ``__repr__`` is wrapped, so ``print(frame)``, an f-string and IPython's plain-text display all show the
    redacted copy; HTML, LaTeX and table-schema displays get formatters of their own.
    """
    formatters = ipython.display_formatter.formatters
    for kind in (pd.DataFrame, pd.Series):
        kind.__repr__ = _redacting(kind.__repr__)
        formatters["text/html"].for_type(kind, _html)
        formatters["text/latex"].for_type(kind, _latex)
        if "application/vnd.dataresource+json" in formatters:
            formatters["application/vnd.dataresource+json"].for_type(kind, _table_schema)


def unload_ipython_extension(ipython: Any) -> None:
    """Show frames as pandas does again (IPython calls this on ``%unload_ext``)."""
    formatters = ipython.display_formatter.formatters
    for kind in (pd.DataFrame, pd.Series):
        if getattr(kind.__repr__, "redacting", False):
            kind.__repr__ = kind.__repr__.__wrapped__
        for mime in ("text/html", "text/latex", "application/vnd.dataresource+json"):
            if mime in formatters:
                formatters[mime].pop(kind, None)


def kernel_settings(ipython_dir: Path, redactor: Redactor, env_file: str | None) -> dict[str, str]:
    """Make every kernel started with ``ipython_dir`` load this extension; the environment variables that give
    it the secrets, the e-mail setting and the salt of ``redactor`` (and ``env_file``), for the kernels to
    inherit (:func:`kit.report_kernels.kernel_environment` sets them while the notebooks run)."""
    profile = ipython_dir / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    config = profile / KERNEL_CONFIG
    if not config.is_file() or config.read_text(encoding="utf-8") != CONFIG_TEXT:
        config.write_text(CONFIG_TEXT, encoding="utf-8")
    return {
        ENV_FILE_VARIABLE: env_file or "",
        MASK_EMAILS_VARIABLE: "1" if redactor.mask_emails else "0",
        SALT_VARIABLE: redactor.email_salt,
    }
