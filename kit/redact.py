"""Redaction of secrets and personal data from everything a report writes.

A ``Redactor`` is built once per report run from the secrets known at that moment (the values of
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AUTH_SECRET`` and every ``*SECRET*``/``*TOKEN*``/
``*PASSWORD*``-named variable, from the process environment and from the app's ``.env.local``) and then
applies, to any text:

1. the known secret values, also in their HTML-, URL-, JSON- and backslash-escaped spellings -> ``***``;
2. any unbroken run of a long known secret's characters that holds ``FRAGMENT_LENGTH`` or more consecutive
   characters of it -> ``***`` (a table display that truncates a session token to ``IQoJb3JpZ2luX2VjE...``
   must not leak its first half);
3. patterns for secrets nobody told us about: a value after a secret-named key (``aws_secret_access_key=``,
   ``"SecretAccessKey": "``, ``X-Amz-Security-Token=``, ``token=`` in a query string, ...), AWS session
   tokens by their prefix, signed tokens (``eyJ...`` base64url parts joined by dots, the format of
   :func:`kit.handler.app.sign_token` and of JWTs), AWS access key ids (the middle masked: ``AKIA…MPLE``);
4. e-mail addresses, unless ``mask_emails`` is False: ``ada@example.com`` -> ``a***@***#3f9a1c``, the
   suffix a short hash salted per redactor, so one report can still tell users apart and no report lets
   anyone look an address up.

Every replacement consumes a whole value: patterns run to the value's end, not to a fixed length, and
overlapping secrets are replaced longest first, so no redaction leaves part of a secret behind. Known
secrets shorter than ``MIN_SECRET_LENGTH`` are not replaced (they would hit ordinary words); their variable
names are listed in ``Redactor.skipped`` so a report can say so.

What this module must not do: touch image data (``image/*`` outputs and attachments are copied as they
are), change a notebook it is given (``redact_notebook`` returns a copy), or read anything but the
environment and the env file ``Redactor.from_environment`` is pointed to.
"""

from __future__ import annotations

import copy
import hashlib
import html
import importlib
import json
import os
import re
import secrets as _random
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kit.target import Secret, mask_access_key_id, read_env_file

REDACTED = "***"
MIN_SECRET_LENGTH = 8
# A run of this many consecutive characters of a known secret counts as that secret (see rule 2 above);
# only secrets at least FRAGMENT_MIN_SECRET long are looked for in pieces.
FRAGMENT_LENGTH = 12
FRAGMENT_MIN_SECRET = 16

# Variables whose value is a secret. ACCESS_KEY(?!_ID): AWS_SECRET_ACCESS_KEY yes, AWS_ACCESS_KEY_ID no.
SECRET_NAME = re.compile(
    r"SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE|CREDENTIAL|API_?KEY|ACCESS_KEY(?!_ID)", re.IGNORECASE
)
ACCESS_KEY_ID_NAMES = ("AWS_ACCESS_KEY_ID", "NEXT_PUBLIC_AWS_ACCESS_KEY_ID")
# AWS_WEB_IDENTITY_TOKEN_FILE and the like name where a secret is, not the secret; replacing a path (and, by
# the fragment rule, every URL sharing 12 characters with it) would only blank out the report.
REFERENCE_SUFFIXES = ("_FILE", "_PATH", "_DIR", "_SOCK")

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Quotes as they appear around keys and values in JSON, Python reprs, escaped JSON and HTML.
_QUOTE = r"(?:[\"'`\\]|&quot;|&#x27;|&#39;|&#34;)"
# A value runs until whitespace, a quote, markup or a separator; `%` stays in (URL-encoded values).
_VALUE = r"[^\s\"'`<>&,;(){}\[\]\\|]"
# Anchored at the start of a run of name characters (the lookbehind) and bounded, so a long run of such
# characters costs linear time, not quadratic.
_KEY_NAME = (
    r"(?<![A-Za-z0-9_.-])[A-Za-z0-9_.-]{0,64}?"
    r"(?:secret|password|passwd|token|api[_-]?key|private[_-]?key|credentials?|signature)"
    r"[A-Za-z0-9_.-]{0,64}"
)
# key=value (query strings, env listings, logs); "key": "value" / 'key': 'value' (JSON, dict reprs).
_KEYED_VALUE = re.compile(
    rf"(?P<key>{_KEY_NAME})"
    rf"(?P<sep>{_QUOTE}*[ \t]*=[ \t]*{_QUOTE}*|{_QUOTE}+[ \t]*:[ \t]*{_QUOTE}*|[ \t]*:[ \t]*{_QUOTE}+)"
    rf"(?P<value>{_VALUE}+)",
    re.IGNORECASE,
)
# In code, `token=token` passes a variable: a value made of letters, `_` and `.` only is left alone there.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z_.]*")
# STS session tokens start with the base64 of their version header.
_SESSION_TOKEN = re.compile(r"(?:IQoJb3JpZ2luX2|FwoGZXIvYXdzE)[A-Za-z0-9/+=%]{16,}")
# kit.handler.app.sign_token and JWTs: base64url JSON ("eyJ" is `{"`) and one or two more parts.
_SIGNED_TOKEN = re.compile(r"\beyJ[A-Za-z0-9_-]{6,}(?:\.[A-Za-z0-9_-]{6,}){1,2}")
_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")
# An address, or the start of one a table display cut inside its domain ("ada@exam..."). Local parts are
# bounded (64 characters, as in RFC 5321) so a long run without "@" costs linear time.
_EMAIL = re.compile(
    r"(?P<local>[A-Za-z0-9][A-Za-z0-9._+-]{0,63}+)(?P<at>@|%40|&#64;)"
    r"(?P<domain>[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}(?![A-Za-z0-9-])"
    r"|[A-Za-z0-9.-]{0,253}?(?=\.\.\.|…))"
)
_DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+")


def _variants(secret: str) -> set[str]:
    """The spellings a secret takes in the places a report shows it (HTML, URLs, JSON, reprs)."""
    from urllib.parse import quote, quote_plus

    return {
        secret,
        html.escape(secret),
        html.escape(secret, quote=False),
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        secret.encode("unicode_escape").decode("ascii"),
        secret.replace("/", "\\/"),
    }


class Redactor:
    """Replaces secrets and (optionally) e-mail addresses in text, JSON-like values and notebooks.

    ``secrets`` are values to remove wherever they appear (``Secret`` objects are revealed here and only
    here); ``access_key_ids`` are shown masked (``AKIA…MPLE``) rather than removed. ``skipped`` names the
    variables whose value was too short to replace safely.
    """

    def __init__(
        self,
        secrets: Iterable[str | Secret] = (),
        *,
        mask_emails: bool = True,
        access_key_ids: Iterable[str] = (),
        skipped: Iterable[str] = (),
        email_salt: str | None = None,
    ) -> None:
        self.mask_emails = mask_emails
        self.skipped = tuple(skipped)
        self._salt = email_salt if email_salt is not None else _random.token_hex(8)
        values = {s.reveal() if isinstance(s, Secret) else s for s in secrets}
        values = {v for v in values if len(v) >= MIN_SECRET_LENGTH}
        self.secret_count = len(values)

        replacements: dict[str, str] = {}
        for key_id in access_key_ids:
            if len(key_id) >= MIN_SECRET_LENGTH:
                for variant in _variants(key_id):
                    replacements.setdefault(variant, mask_access_key_id(key_id))
        for value in values:
            for variant in _variants(value):
                replacements[variant] = REDACTED  # a secret wins over a key id with the same spelling
        self._replacements = replacements
        # Longest first: at one position the longest secret wins, so a secret that starts with another
        # is never cut after the shorter one.
        ordered = sorted(replacements, key=len, reverse=True)
        self._literal = re.compile("|".join(map(re.escape, ordered))) if ordered else None

        long_secrets = [v for v in values if len(v) >= FRAGMENT_MIN_SECRET]
        self._grams = {
            value[i : i + FRAGMENT_LENGTH]
            for value in long_secrets
            for i in range(len(value) - FRAGMENT_LENGTH + 1)
        }
        alphabet = {ch for value in long_secrets for ch in value if not ch.isspace()}
        self._runs = (
            re.compile("[" + "".join(re.escape(ch) for ch in sorted(alphabet)) + f"]{{{FRAGMENT_LENGTH},}}")
            if alphabet
            else None
        )

    def __repr__(self) -> str:
        return f"Redactor(secrets={self.secret_count}, mask_emails={self.mask_emails})"

    # -- construction from what the run knows ---------------------------------------------------------------

    @classmethod
    def from_environment(
        cls,
        environ: Mapping[str, str] | None = None,
        env_file: str | os.PathLike[str] | None = None,
        *,
        mask_emails: bool = True,
        extra: Iterable[str | Secret] = (),
        email_salt: str | None = None,
    ) -> Redactor:
        """A redactor for the secrets in ``environ`` (default ``os.environ``) and in ``env_file``.

        A missing or unreadable env file is a ``ConfigurationError`` (from :func:`kit.target.read_env_file`).
        """
        sources: list[Mapping[str, str]] = [os.environ if environ is None else environ]
        if env_file is not None:
            sources.append(read_env_file(Path(env_file)).values)
        found: list[str | Secret] = list(extra)
        key_ids: list[str] = []
        skipped: list[str] = []
        for source in sources:
            for name, value in source.items():
                if name in ACCESS_KEY_ID_NAMES:
                    key_ids.append(value)
                elif SECRET_NAME.search(name) and value and not name.upper().endswith(REFERENCE_SUFFIXES):
                    if len(value) < MIN_SECRET_LENGTH:
                        skipped.append(name)
                    else:
                        found.append(value)
        return cls(
            found,
            mask_emails=mask_emails,
            access_key_ids=key_ids,
            skipped=sorted(set(skipped)),
            email_salt=email_salt,
        )

    # -- text ---------------------------------------------------------------------------------------------

    def redact_text(self, text: str, *, code: bool = False) -> str:
        """``text`` with every secret and (if ``mask_emails``) every e-mail address replaced.

        ``code=True`` is for notebook sources: ``name=identifier`` there passes a variable, not a secret.
        Text with ANSI colour codes (tracebacks) is checked with the codes removed, because a colour change
        can split a secret; when something had to be replaced, the text comes back without colours.
        """
        if "\x1b[" in text:
            plain = _ANSI.sub("", text)
            redacted = self._redact_plain(plain, code=code)
            return text if redacted == plain else redacted
        return self._redact_plain(text, code=code)

    def _redact_plain(self, text: str, *, code: bool) -> str:
        if self._literal is not None:
            text = self._literal.sub(lambda m: self._replacements[m.group(0)], text)
        text = _SESSION_TOKEN.sub(REDACTED, text)
        if self._grams:
            text = self._redact_fragments(text)
        text = _KEYED_VALUE.sub(lambda m: self._keyed(m, code=code), text)
        text = _SIGNED_TOKEN.sub(REDACTED, text)
        text = _ACCESS_KEY_ID.sub(lambda m: mask_access_key_id(m.group(0)), text)
        if self.mask_emails:
            text = _EMAIL.sub(self._email, text)
        return text

    def _redact_fragments(self, text: str) -> str:
        """Replace every run of secret-alphabet characters that holds a piece of a known long secret.

        The whole run goes, not only the matching piece: what sits next to a piece of a secret in an unbroken
        run of its characters is more of that secret (or of a token just like it).
        """
        assert self._runs is not None
        grams, size = self._grams, FRAGMENT_LENGTH

        def run(match: re.Match[str]) -> str:
            chunk = match.group(0)
            hit = any(chunk[i : i + size] in grams for i in range(len(chunk) - size + 1))
            return REDACTED if hit else chunk

        return self._runs.sub(run, text)

    @staticmethod
    def _keyed(match: re.Match[str], *, code: bool) -> str:
        value = match.group("value")
        called = match.string[match.end() : match.end() + 1] == "("  # `token = query.get("token")`
        if value.strip("*") == "" or ((code or called) and _IDENTIFIER.fullmatch(value)):
            return match.group(0)
        return f"{match.group('key')}{match.group('sep')}{REDACTED}"

    def _email(self, match: re.Match[str]) -> str:
        address = f"{match.group('local')}@{match.group('domain')}".lower()
        digest = hashlib.sha256(f"{self._salt}:{address}".encode()).hexdigest()[:6]
        return f"{match.group('local')[0].lower()}{REDACTED}{match.group('at')}{REDACTED}#{digest}"

    def redact_markup(self, markup: str) -> str:
        """HTML (or any text) with ``data:`` URIs kept byte for byte and everything else redacted."""
        pieces: list[str] = []
        last = 0
        for uri in _DATA_URI.finditer(markup):
            pieces += [self.redact_text(markup[last : uri.start()]), uri.group(0)]
            last = uri.end()
        pieces.append(self.redact_text(markup[last:]))
        return "".join(pieces)

    # -- structures ---------------------------------------------------------------------------------------

    def redact_value(self, value: Any) -> Any:
        """A JSON-like value (dicts, lists, strings, numbers) with every string, keys included, redacted."""
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, Mapping):
            return {
                self.redact_value(k) if isinstance(k, str) else k: self.redact_value(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.redact_value(v) for v in value]
        return value

    def redact_notebook(self, nb: Any) -> Any:
        """A redacted copy of an ``nbformat`` notebook: sources, every output, metadata; images untouched."""
        redacted = copy.deepcopy(nb)
        for cell in redacted.get("cells", []):
            code = cell.get("cell_type") == "code"
            if "source" in cell:
                cell["source"] = self.redact_text(_joined(cell["source"]), code=code)
            if "metadata" in cell:
                cell["metadata"] = _as_node(cell["metadata"], self.redact_value(cell["metadata"]))
            for output in cell.get("outputs", []):
                self._redact_output(output)
            # attachments are images (or other binary data): left as they are
        if "metadata" in redacted:
            redacted["metadata"] = _as_node(redacted["metadata"], self.redact_value(redacted["metadata"]))
        return redacted

    def _redact_output(self, output: Any) -> None:
        kind = output.get("output_type")
        if kind == "stream" and "text" in output:
            output["text"] = self.redact_text(_joined(output["text"]))
        elif kind == "error":
            output["ename"] = self.redact_text(str(output.get("ename", "")))
            output["evalue"] = self.redact_text(str(output.get("evalue", "")))
            output["traceback"] = [self.redact_text(line) for line in output.get("traceback", [])]
        data: Any = output.get("data")
        if isinstance(data, dict):
            for mime in list(data):
                if mime.startswith("image/"):
                    continue
                content = data[mime]
                if isinstance(content, str | list) and not mime.endswith("json"):
                    data[mime] = self.redact_text(_joined(content))
                else:
                    data[mime] = _as_node(content, self.redact_value(content))
        if "metadata" in output:
            output["metadata"] = _as_node(output["metadata"], self.redact_value(output["metadata"]))


def _joined(text: str | list[str]) -> str:
    """nbformat allows multi-line strings as lists of lines; the text is the same joined."""
    return text if isinstance(text, str) else "".join(text)


def _as_node(original: Any, value: Any) -> Any:
    """Keep ``NotebookNode`` (attribute access) where the original was one."""
    if type(original).__name__ == "NotebookNode":
        nbformat: Any = importlib.import_module("nbformat")
        return nbformat.from_dict(value)
    return value
