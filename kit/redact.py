"""Redaction of secrets and personal data from everything a report writes.

A ``Redactor`` is built once per report run from the secrets known at that moment (the values of
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AUTH_SECRET`` and every ``*SECRET*``/``*TOKEN*``/
``*PASSWORD*``-named variable, from the process environment and from the app's ``.env.local``) and then
applies, to any text:

1. the known secret values, also in their HTML-, URL- (once and twice), JSON- and backslash-escaped
   spellings, and in base64 wherever they sit inside the encoded text (:func:`base64_cores`: a Basic
   credential's ``user:secret``, a JSON payload) -> ``***``;
2. any unbroken run of a long known secret's characters that holds ``FRAGMENT_LENGTH`` or more consecutive
   characters of it -> ``***`` (a table display that truncates a session token to ``IQoJb3JpZ2luX2VjE...``
   must not leak its first half);
3. secrets nobody told us about, by shape: AWS session tokens by their prefix (``IQoJ…``, ``AgoJ…``,
   ``FwoG…``), the password of ``https://user:password@host``, the credential after an HTTP authorization
   scheme (``Authorization: Bearer ***``, ``Basic ***``; the scheme stays), signed tokens (``eyJ...``
   base64url parts joined by dots, the format of :func:`kit.handler.app.sign_token` and of JWTs), AWS access
   key ids (the middle masked: ``AKIA…MPLE``);
4. secrets by where they sit: the value after a key whose name says secret
   (:func:`kit.redact_structure.is_secret_name`: ``password: x``, ``SecretAccessKey=v``, ``"x-api-key":
   "k k"``, ``token=`` in a query string, a nested ``{'password': {'S': '***'}}``), and the value field of
   a name/value pair whose name says so (``{"Name": "DB_PASSWORD", "Value": "***"}``);
5. e-mail addresses, unless ``mask_emails`` is False: ``ada@example.com`` -> ``a***@***#3f9a1c``, the
   suffix a short hash salted per redactor, so one report can still tell users apart and no report lets
   anyone look an address up; every spelling of an address (``%40``, ``%2540``, ``\\u0040``, ``&#64;``,
   Unicode or punycode domains) is found and hashes alike.

E-mail addresses and users are masked here and nowhere else in the kit, also outside a ``Redactor``:

    EMAIL                      the pattern of an address in every spelling above (groups local, at, domain)
    mask_email(match, salt)    one address it found -> ``a***@***#3f9a1c``; mask_emails(text, salt) every one
    user_hash(token)           the 12 hex digits the handler logs for a user (kit.handler.app.user_hash)
    mask_tokens(text, tokens)  the tokens a caller sent itself -> ``<user HASH>`` (the probe's e-mails)

(The handler keeps its own ``user_hash`` and e-mail check: it deploys alone, with no ``kit`` beside it.)

Frames, JSON-like values, HTML and Markdown tables are also redacted by structure
(:mod:`kit.redact_structure`): a ``password`` column, a row whose name cell says ``token``. The kernels of a
report apply that to every frame they display (:mod:`kit.redact_display`), before a frame becomes text.

Every replacement consumes a whole value: patterns run to the value's end (a quoted one to its closing
quote), not to a fixed length, and overlapping secrets are replaced longest first, so no redaction leaves
part of a secret behind. Known secrets shorter than ``MIN_SECRET_LENGTH`` are not replaced (they would hit
ordinary words); their variable names are listed in ``Redactor.skipped`` so a report can say so.

What this module must not do: touch image data (``image/*`` outputs and attachments are copied as they
are), change a notebook it is given (``redact_notebook`` returns a copy), or read anything but the
environment and the env file ``Redactor.from_environment`` is pointed to.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import html
import importlib
import json
import os
import re
import secrets as _random
import string
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kit.credentials import Secret, mask_access_key_id
from kit.env_file import read_env_file
from kit.redact_structure import (
    NAME_FIELDS,
    REDACTED,
    VALUE_FIELDS,
    field_name,
    is_secret_name,
    is_secret_variable,
    redact_frame,
    redact_mapping,
    redact_pipe_tables,
    redact_tables,
)

MIN_SECRET_LENGTH = 8
# A run of this many consecutive characters of a known secret counts as that secret (see rule 2 above);
# only secrets at least FRAGMENT_MIN_SECRET long are looked for in pieces.
FRAGMENT_LENGTH = 12
FRAGMENT_MIN_SECRET = 16

ACCESS_KEY_ID_NAMES = ("AWS_ACCESS_KEY_ID", "NEXT_PUBLIC_AWS_ACCESS_KEY_ID")

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Quotes as they appear around keys and values in JSON, Python reprs, escaped JSON and HTML.
_QUOTE = r"(?:[\"'`\\]|&quot;|&#x27;|&#39;|&#34;)"
# The quote that opens a value: a quote after any backslashes (escaped JSON inside JSON), or an entity.
_OPEN = r"(?:\\{0,3}[\"'`]|&quot;|&#x27;|&#39;|&#34;)"
# An unquoted value runs until whitespace, a quote, markup or a separator; `%` stays in (URL-encoded values).
_VALUE = re.compile(r"[^\s\"'`<>&,;(){}\[\]\\|]+")
# Where a key may name a secret: one of these stems, inside a run of name characters that
# kit.redact_structure.is_secret_name then judges. Looking for the stems first keeps a megabyte of ordinary
# text cheap.
_KEY_STEM = re.compile(r"secret|passw|pwd|token|cred|signature|authoriz|cookie|key")  # in lower case text
# Lower-casing only ASCII keeps every position where it was (str.lower can make a text longer).
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_NAME_REST = re.compile(r"[\w.-]*")
MAX_KEY_LENGTH = 128
# A name/value pair in text: the field before a secret name, and the fields after it in the same object.
_NAME_FIELD_BEFORE = re.compile(rf"(?P<field>[\w-]{{1,32}}){_QUOTE}*[ \t]*[:=][ \t]*{_OPEN}?\Z")
_FIELD = re.compile(rf"(?<![\w-])(?P<field>[\w-]{{1,32}}){_QUOTE}*[ \t]*(?:(?<![=!<>])=(?!=)|(?<!:):(?!:))")
PAIR_DISTANCE = 200
# After a key: = (query strings, env listings), : (YAML, headers, logs), in any mix of quotes (JSON, reprs,
# escaped JSON, HTML); `==` (a comparison) and `::` (a path) are not separators.
_SEPARATOR = re.compile(
    rf"{_QUOTE}*[ \t]*(?:(?<![=!<>])=(?!=)|(?<!:):(?!:))[ \t]*(?P<open>{_OPEN})?", re.IGNORECASE
)
QUOTED_VALUE_LIMIT = 4096  # a quoted value longer than this on one line is read as unquoted
# In code, `token=token` passes a variable: a value made of letters, `_` and `.` only is left alone there.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z_.]*")
# Type names after an unquoted `name: ` are annotations (`token: str | None` in a traceback), not values.
_TYPE_WORDS = frozenset(
    {"str", "bytes", "int", "bool", "None", "Optional", "Any", "Secret", "string", "number", "boolean",
     "null"}
)  # fmt: skip
# HTTP authorization schemes. After an Authorization header any credential goes; elsewhere only Bearer and
# Basic, with a credential that is not a word ("Basic authentication" is prose). SigV4's scheme is listed so
# that it stays; its Credential= and Signature= are keyed values.
_SCHEMES = ("bearer", "basic", "token", "negotiate", "ntlm", "apikey", "jwt", "ssws", "aws4-hmac-sha256")
_AUTHORIZATION = re.compile(  # the lookahead lets the scan skip most positions at once
    rf"\b(?=[bBtTnNaAjJsS])(?P<scheme>{'|'.join(_SCHEMES)})(?P<space>[ \t]+)"
    r"(?P<credential>[A-Za-z0-9._~+/%-]+=*)",
    re.IGNORECASE,
)
_AUTHORIZATION_LEAD = re.compile(rf"authorization{_QUOTE}*[ \t]*[:=][ \t]*{_OPEN}?\Z", re.IGNORECASE)
_WORD_SHAPE = re.compile(r"[A-Z]?[a-z]+")
_SCHEME_PREFIX = re.compile(rf"(?P<scheme>{'|'.join(_SCHEMES)})(?P<space>[ \t]+)\S", re.IGNORECASE)
# https://user:password@host: the password goes, the user and host stay.
_URL_PASSWORD = re.compile(r"(?P<lead>://[^\s/:@]{1,128}:)(?P<password>[^\s/@]{1,256})(?=@)")
# STS session tokens are base64 of a version byte, "\n", a name's length and the name ("aws", "er/aws",
# "origin_ec"...): IQoJb3JpZ2luX2Vj, AgoJb3JpZ2luX2Vj, FwoGZXIvYXdz, FQoGZXIvYXdz, AQoDYXdz... The body runs
# over base64 characters, their URL-encodings and JSON's `\/`.
_SESSION_TOKEN = re.compile(
    r"[A-Za-z0-9+/][AQgw]o[DGJ](?:YXdz|ZXIvYXdz|b3JpZ2luX2)(?:[A-Za-z0-9+/=]|%[0-9A-Fa-f]{2}|\\/)*"
)
# kit.handler.app.sign_token and JWTs: base64url JSON ("eyJ" is `{"`) and one or two more parts.
_SIGNED_TOKEN = re.compile(r"\beyJ[A-Za-z0-9_-]{6,}(?:\.[A-Za-z0-9_-]{6,}){1,2}")
_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")
# E-mail addresses as they are spelled in text, URLs (%40, %2540), JSON (\u0040) and HTML (&#64;, &#x40;,
# &commat;), with Unicode local parts and IDN domains (Unicode or punycode, also percent- or \u-encoded).
_AT = r"(?:@|%(?:25)*40|\\{1,3}u0040|&(?:amp;)*(?:#0*64|#[xX]0*40|commat);|＠)"
_ENCODED_CHAR = r"%(?!40|25)[0-9A-Fa-f]{2}|\\u(?!0040)[0-9A-Fa-f]{4}"
_LABEL = rf"(?:[^\W_]|{_ENCODED_CHAR})(?:[\w-]|{_ENCODED_CHAR}){{0,62}}"
# EMAIL: an address, or the start of one a table display cut inside its domain ("ada@exam..."). Local parts
# start where a run of their characters starts (the lookbehind), after the dots that may open the run
# ("...ada@example.com": the dots are the group `lead`, kept as they are), and are bounded (64 characters, as
# in RFC 5321), so a long run without an at sign costs linear time. No possessive quantifier: CPython 3.11.2
# (Debian 12's) mismatches a possessive repeat of this group, and none of the local part's characters can
# start an at sign, so backtracking finds nothing a possessive repeat would not.
EMAIL = re.compile(
    rf"(?<![\w.+%-])(?P<lead>\.*)(?P<local>(?:[\w+-]|{_ENCODED_CHAR})(?:[\w.+-]|{_ENCODED_CHAR}){{0,63}})(?P<at>{_AT})"
    rf"(?P<domain>(?:{_LABEL}\.){{1,8}}(?:[^\W\d_]{{2,24}}|xn--[A-Za-z0-9-]{{1,59}})(?![\w-])"
    rf"|(?:[\w.-]|{_ENCODED_CHAR}){{0,253}}?(?=\.\.\.|…))"
)
_ESCAPED_UNICODE = re.compile(r"\\+u([0-9A-Fa-f]{4})")
_DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+")
# A run of base64 text (standard or URL-safe, maybe URL-encoded): where a known secret's base64 is replaced.
_BASE64_RUN = re.compile(r"(?:[A-Za-z0-9+/_-]|%[0-9A-Fa-f]{2})+=*(?:%3[Dd])*")
MIN_BASE64_CORE = 8
EMAIL_CACHE_SIZE = 10_000


def _variants(secret: str) -> set[str]:
    """The spellings a secret takes in the places a report shows it (HTML, URLs, JSON, reprs); its base64
    is found by :func:`base64_cores`."""
    from urllib.parse import quote, quote_plus

    return {
        secret,
        html.escape(secret),
        html.escape(secret, quote=False),
        quote(secret, safe=""),
        quote(quote(secret, safe=""), safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        secret.encode("unicode_escape").decode("ascii"),
        secret.replace("/", "\\/"),
    }


def base64_cores(secret: str) -> set[str]:
    """What the base64 of any text holding ``secret`` contains, wherever the secret starts in it.

    Base64 turns 3 bytes into 4 characters, so a secret inside a longer value (``user:secret`` in a Basic
    credential, a JSON document) is encoded one of three ways, by its offset modulo 3. For each, the
    characters whose 6 bits all come from the secret are the same whatever surrounds it: those are the cores
    (standard and URL-safe alphabets, and URL-encoded).
    """
    from urllib.parse import quote

    raw = secret.encode()
    cores: set[str] = set()
    for offset in range(3):
        first = -(-8 * offset // 6)  # the first character whose bits are all the secret's
        stop = (8 * offset + 8 * len(raw)) // 6
        if stop - first < MIN_BASE64_CORE:
            continue
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            core = encode(b"\0" * offset + raw + b"\0\0\0").decode()[first:stop]
            cores |= {core, quote(core, safe="")}
    return cores


# --------------------------------------------------------------------------------------------------
# E-mail addresses and users: the one place the kit masks them


def mask_email(match: re.Match[str], salt: str) -> str:
    """One address :data:`EMAIL` found, masked: ``ada@example.com`` -> ``a***@***#3f9a1c``.

    The suffix is the first 6 hex digits of a SHA-256 of ``salt`` and the address as written in plain text,
    lower-cased, so every spelling of one address (``%40``, ``\\u0040``, an IDN domain in Unicode or
    punycode) masks the same way within one salt, and nobody without the salt can look an address up. The
    at sign stays as it was spelled, and dots before the address (``...ada@``) stay, so a URL or a JSON
    string stays well formed.
    """
    local, domain = _decoded(match.group("local")), _decoded(match.group("domain"))
    with contextlib.suppress(UnicodeError):
        domain = domain.encode("idna").decode("ascii")
    digest = hashlib.sha256(f"{salt}:{local}@{domain}".lower().encode()).hexdigest()[:6]
    first = local[:1].lower() if local[:1].isalnum() else ""
    return f"{match.group('lead')}{first}{REDACTED}{match.group('at')}{REDACTED}#{digest}"


def mask_emails(text: str, salt: str) -> str:
    """``text`` with every e-mail address, in every spelling :data:`EMAIL` knows, masked (:func:`mask_email`);
    nothing else changes. A :class:`Redactor` does this and removes secrets too."""
    return EMAIL.sub(lambda match: mask_email(match, salt), text)


def user_hash(token: str) -> str:
    """A short, stable stand-in for a user: the first 12 hex digits of the SHA-256 of ``token`` (UTF-8, lone
    surrogates kept), exactly as :func:`kit.handler.app.user_hash` logs it, so rows join with log lines.

    Unsalted on purpose (the handler cannot know a report's salt): it hides a token from a casual reader,
    not from someone who can guess it.
    """
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def mask_tokens(text: str, tokens: Iterable[str]) -> str:
    """``text`` with every occurrence of each known token replaced by ``<user HASH>`` (:func:`user_hash`).

    For the tokens a caller sent itself (the probe's e-mail addresses, which a broadcast quotes back): the
    longest first, so a token that starts with another is never cut after the shorter one; empty ones are
    ignored.
    """
    for token in sorted({t for t in tokens if t}, key=len, reverse=True):
        text = text.replace(token, f"<user {user_hash(token)}>")
    return text


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
        self._emails: dict[str, str] = {}
        values = {s.reveal() if isinstance(s, Secret) else s for s in secrets}
        values = {v for v in values if len(v) >= MIN_SECRET_LENGTH}
        self.secret_count = len(values)

        replacements: dict[str, str] = {}
        for key_id in access_key_ids:
            if len(key_id) >= MIN_SECRET_LENGTH:
                for variant in _variants(key_id):
                    replacements.setdefault(variant, mask_access_key_id(key_id))
        # The salt is a secret too: with it, anyone could look a masked address up in a list of addresses.
        for value in (*values, *([self._salt] if len(self._salt) >= MIN_SECRET_LENGTH else [])):
            for variant in _variants(value):
                replacements[variant] = REDACTED  # a secret wins over a key id with the same spelling
        self._replacements = replacements
        # Longest first: at one position the longest secret wins, so a secret that starts with another
        # is never cut after the shorter one.
        ordered = sorted(replacements, key=len, reverse=True)
        self._literal = re.compile("|".join(map(re.escape, ordered))) if ordered else None

        cores = {core for value in values for core in base64_cores(value)}
        ordered_cores = sorted(cores, key=len, reverse=True)
        self._base64 = re.compile("|".join(map(re.escape, ordered_cores))) if ordered_cores else None

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

    @property
    def email_salt(self) -> str:
        """The salt of the e-mail hashes, for the kernels of the same run (:mod:`kit.redact_display`)."""
        return self._salt

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

        A missing or unreadable env file is a ``ConfigurationError`` (from
        :func:`kit.env_file.read_env_file`).
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
                elif value and is_secret_variable(name):
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
        text = redact_pipe_tables(text)
        if self._literal is not None:
            text = self._literal.sub(lambda m: self._replacements[m.group(0)], text)
        if self._base64 is not None and self._base64.search(text):
            text = _BASE64_RUN.sub(self._encoded_secret, text)
        text = _SESSION_TOKEN.sub(REDACTED, text)
        if self._grams:
            text = self._redact_fragments(text)
        text = _URL_PASSWORD.sub(lambda m: m.group("lead") + REDACTED, text)
        text = _AUTHORIZATION.sub(_authorization, text)
        text = _redact_keyed(text, code=code)
        text = _SIGNED_TOKEN.sub(REDACTED, text)
        text = _ACCESS_KEY_ID.sub(lambda m: mask_access_key_id(m.group(0)), text)
        if self.mask_emails:
            text = EMAIL.sub(self._email, text)
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

    def _encoded_secret(self, match: re.Match[str]) -> str:
        """A run of base64 text that holds a known secret's base64 (see :func:`base64_cores`) goes whole."""
        assert self._base64 is not None
        return REDACTED if self._base64.search(match.group(0)) else match.group(0)

    def _email(self, match: re.Match[str]) -> str:
        # Logs repeat the same few addresses: each spelling is hashed once per redactor.
        masked = self._emails.get(match.group(0))
        if masked is None:
            masked = mask_email(match, self._salt)
            if len(self._emails) < EMAIL_CACHE_SIZE:
                self._emails[match.group(0)] = masked
        return masked

    def redact_markup(self, markup: str) -> str:
        """HTML (or any text) with ``data:`` URIs kept byte for byte and everything else redacted; the cells
        of tables are redacted by structure first (:func:`kit.redact_structure.redact_tables`)."""
        markup = redact_tables(markup)
        pieces: list[str] = []
        last = 0
        for uri in _DATA_URI.finditer(markup):
            pieces += [self.redact_text(markup[last : uri.start()]), uri.group(0)]
            last = uri.end()
        pieces.append(self.redact_text(markup[last:]))
        return "".join(pieces)

    # -- structures ---------------------------------------------------------------------------------------

    def redact_value(self, value: Any) -> Any:
        """A JSON-like value (dicts, lists, strings, numbers) with every string, keys included, redacted, and
        every value under a secret-named key masked (:func:`kit.redact_structure.redact_mapping`)."""
        return redact_mapping(value, self.redact_text)

    def redact_frame(self, frame: Any, *, rows: int | None = None) -> Any:
        """A redacted copy of a DataFrame or Series: by structure, and every text cell and label as text
        (:func:`kit.redact_structure.redact_frame`; ``rows`` limits the text pass to what a display shows)."""
        return redact_frame(frame, self.redact_text, rows=rows)

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
                if mime == "text/html":
                    data[mime] = self.redact_markup(_joined(content))
                elif isinstance(content, str | list) and not mime.endswith("json"):
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


def _decoded(text: str) -> str:
    """An address part as plain text: URL-encoding (even twice), ``\\u`` escapes and HTML entities undone."""
    from urllib.parse import unquote

    for _ in range(3):
        plain = unquote(text)
        if plain == text:
            break
        text = plain
    text = _ESCAPED_UNICODE.sub(lambda m: chr(int(m.group(1), 16)), text)
    return html.unescape(text)


def _authorization(match: re.Match[str]) -> str:
    """``Authorization: Bearer ***``: the scheme stays (it is evidence), the credential goes.

    Outside an Authorization header only Bearer and Basic count, with a credential that is not a word.
    """
    credential = match.group("credential")
    lead = _AUTHORIZATION_LEAD.search(match.string, max(0, match.start() - 40), match.start())
    if match.group("scheme").lower() == "aws4-hmac-sha256":
        return match.group(0)  # its Credential= and Signature= are keyed values; the rest is evidence
    if lead is None and (
        match.group("scheme").lower() not in ("bearer", "basic")
        or len(credential) < MIN_SECRET_LENGTH
        or _WORD_SHAPE.fullmatch(credential)
    ):
        return match.group(0)
    if credential.strip("*") == "":
        return match.group(0)
    return f"{match.group('scheme')}{match.group('space')}{REDACTED}"


def _redact_keyed(text: str, *, code: bool) -> str:
    """Every value after a secret-named key (:func:`kit.redact_structure.is_secret_name`) replaced.

    A quoted value runs to its closing quote (spaces included), an unquoted one to the next space, quote or
    separator. Left alone: values already masked, annotations (``token: str``), in code (``code=True``) and
    before a call a name passed as a variable (``token=token``, ``token = query.get(...)``), and the scheme
    of an Authorization value (the credential after it is :func:`_authorization`'s).
    """
    pieces: list[str] = []
    last = name_end = 0
    for stem in _KEY_STEM.finditer(text.translate(_ASCII_LOWER)):
        if stem.start() < max(last, name_end):  # inside a value replaced, or a name already judged
            continue
        key_start = stem.start()
        while key_start > 0 and (text[key_start - 1].isalnum() or text[key_start - 1] in "_.-"):
            key_start -= 1
        name_end = _NAME_REST.match(text, stem.end()).end()  # type: ignore[union-attr]  # matches ""
        if name_end - key_start > MAX_KEY_LENGTH or not is_secret_name(text[key_start:name_end]):
            continue
        match = _SEPARATOR.match(text, name_end) or _paired_value(text, key_start, name_end)
        if match is None or (text[key_start - 1 : key_start] in (":", "/") and ":" in match.group(0)):
            continue  # a segment of an ARN or a URL's host (arn:aws:secretsmanager:us-east-2:...), not a key
        if match.group("open") is None and text[match.end() : match.end() + 1] in ("{", "["):
            end = _nested_end(text, match.end())
            pieces += [text[last : match.end()], _mask_scalars(text[match.end() : end])]
            last = name_end = end
            continue
        span = _value_span(text, match)
        if span is None:
            continue
        start, end = span
        quoted = match.group("open") is not None
        if quoted:
            scheme = _SCHEME_PREFIX.match(text, start, end)
            start = scheme.end("space") if scheme else start
        elif _SCHEME_PREFIX.match(text, start):
            continue  # `Authorization: Bearer ***`: the credential was _authorization's; the scheme stays
        value = text[start:end]
        # `token = query.get("token")` (code, even shown in a log) calls a method and names no secret; a bare
        # word before "(" may be the value itself: `password: Summer(2024)` is a password.
        called = text[end : end + 1] == "(" and "." in value
        if not (quoted or called or code) and text[end : end + 1] == "(":
            closing = text.find(")", end, text.find("\n", end) % (len(text) + 1))
            if closing >= 0:  # the parenthesised part is the value's too: `Summer(2024)` goes whole
                end = closing + 1
                value = text[start:end]
        if (
            value.strip("*") == ""
            or (not quoted and value in _TYPE_WORDS)
            or ((code or called) and not quoted and _IDENTIFIER.fullmatch(value))
        ):
            continue
        pieces += [text[last:start], REDACTED]
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def _paired_value(text: str, name_start: int, name_end: int) -> re.Match[str] | None:
    """``{"Name": "DB_PASSWORD", "Value": "..."}``: when a secret name is the value of a name field, the
    separator of the value field that follows it in the same object (as :data:`_SEPARATOR` would match)."""
    before = _NAME_FIELD_BEFORE.search(text, max(0, name_start - 48), name_start)
    if before is None or field_name(before.group("field")) not in NAME_FIELDS:
        return None
    limit = min(len(text), name_end + PAIR_DISTANCE)
    for field in _FIELD.finditer(text, name_end, limit):
        if "}" in text[name_end : field.start()] or "\n" in text[name_end : field.start()]:
            return None
        if field_name(field.group("field")) in VALUE_FIELDS:
            return _SEPARATOR.match(text, field.end("field"))
    return None


def _value_span(text: str, match: re.Match[str]) -> tuple[int, int] | None:
    """Where the value after a key and its separator starts and ends; None when there is none."""
    start = match.end()
    opener = match.group("open")
    if opener is not None:
        end = _closing(text, start, opener)
        if end is not None:
            return (start, end) if end > start else None
    value = _VALUE.match(text, start)
    return (start, value.end()) if value else None


# A quoted string in a repr, JSON, escaped JSON or HTML; a number; a key is a string followed by a colon.
_QUOTED = re.compile(r"(?P<quote>\\?\"|'|&quot;|&#x27;|&#39;|&#34;)(?P<body>.*?)(?P=quote)(?P<key>[ \t]*:)?")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")


def _nested_end(text: str, start: int) -> int:
    """Where the bracketed value opening at ``start`` closes (quoted brackets skipped), else the line ends."""
    limit = text.find("\n", start)
    limit = min(len(text) if limit < 0 else limit, start + QUOTED_VALUE_LIMIT)
    depth = 0
    position = start
    while position < limit:
        quoted = _QUOTED.match(text, position, limit)
        if quoted is not None:
            position = quoted.end("body") + len(quoted.group("quote"))
            continue
        char = text[position]
        if char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return position + 1
        position += 1
    return limit


def _mask_scalars(nested: str) -> str:
    """``{'S': 'hunter2'}`` → ``{'S': '***'}``: every string but the keys, and every number, masked."""

    def string(match: re.Match[str]) -> str:
        if match.group("key") is not None or match.group("body").strip("*") == "":
            return match.group(0)
        return f"{match.group('quote')}{REDACTED}{match.group('quote')}"

    pieces: list[str] = []
    last = 0
    for quoted in _QUOTED.finditer(nested):
        pieces += [_NUMBER.sub(REDACTED, nested[last : quoted.start()]), string(quoted)]
        last = quoted.end()
    pieces.append(_NUMBER.sub(REDACTED, nested[last:]))
    return "".join(pieces)


def _closing(text: str, start: int, opener: str) -> int | None:
    """The position of the quote that closes a value opened by ``opener``, on the same line."""
    limit = text.find("\n", start)
    limit = min(len(text) if limit < 0 else limit, start + QUOTED_VALUE_LIMIT)
    if opener not in ('"', "'", "`"):  # an escaped quote or an entity closes with the same spelling
        found = text.find(opener, start, limit)
        return None if found < 0 else found
    position = start
    while position < limit:
        char = text[position]
        if char == "\\":
            position += 2
        elif char == opener:
            return position
        else:
            position += 1
    return None
