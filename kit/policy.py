"""Evaluate an execution role's IAM identity policies for one action on one resource, as AWS does.

Two users: the lab, which enforces the Lambda execution role's policies on the handler's AWS calls (moto
checks DynamoDB actions against resource ``*`` only, so it cannot tell a table grant from an index grant), and
the diagnosis, which reports for each permission the connect handler needs whether the role allows it and
which statement decides. Both must agree, so both use this module.

This module must not do I/O: no boto3, no files, no network, no clock. Callers fetch documents
(``get_role_policy``, ``get_policy_version``, a file) and pass the JSON text or the dict in.

Semantics (identity-based policies; of resource policies only a Lambda function's, for one service
principal, through :func:`resource_policy_decision`; no permission boundaries, SCPs or session policies):

- **Decision**: an explicit Deny in any applicable statement wins; otherwise any applicable Allow; otherwise
  an implicit deny. A statement applies when its action, resource and condition all match.
- **Actions**: ``service:Action``, case-insensitive, with ``*`` and ``?`` wildcards over the whole string
  (``*``, ``dynamodb:*``, ``dynamodb:Put*``). ``NotAction`` matches every action it does not list.
- **Resources**: case-sensitive ARNs with ``*`` and ``?``. AWS documents wildcards as working within a
  colon-separated segment, and a ``*`` that ends a segment as able to expand past colons; so a ``*`` followed
  by ``:`` or ending the pattern matches anything, any other ``*`` matches any run of characters except ``:``
  (``/`` included), and ``?`` matches one character other than ``:``. Hence
  ``…:table/chatgenius-connections`` does not match ``…:table/chatgenius-connections/index/workspaceIndex``
  while ``…:table/chatgenius-connections*`` and ``…/index/*`` do. ``NotResource`` matches every resource it
  does not list. ``fnmatch`` is not used: it reads ``[...]`` as a character class, and Lambda log stream
  names contain ``[$LATEST]``.
- **Policy variables** (``${aws:username}``, ``${key, 'default'}``, and ``${*}``, ``${?}``, ``${$}`` for the
  literal characters) are substituted in Resource, NotResource and condition values from ``context`` (keys
  case-insensitive), only under Version ``2012-10-17``; under ``2008-10-17`` or no Version they are plain
  text, as in IAM. A Resource entry whose variable is not in ``context`` and has no default matches nothing;
  when that can only be decided by a variable that is missing (NotResource, a negated condition operator) the
  statement is not applied, Allow or Deny, and the decision says so.
- **Conditions**: blocks are ANDed, keys within an operator ANDed, values of a key ORed (negated operators:
  the request value must match none). Supported: ``StringEquals``, ``StringNotEquals``,
  ``StringEqualsIgnoreCase``, ``StringNotEqualsIgnoreCase``, ``StringLike``, ``StringNotLike``,
  ``ArnEquals``, ``ArnLike``, ``ArnNotEquals``, ``ArnNotLike`` and ``Bool``, each also with ``IfExists``,
  and ``Null``. A key missing from ``context`` makes a positive operator false and a negated one true;
  ``IfExists`` makes it true. ``context`` holds one string per key, so ``ForAnyValue:``/``ForAllValues:`` are
  evaluated over a one-element set (an absent key: ForAnyValue false, ForAllValues true) and the decision
  notes it. Any other operator (Numeric*, Date*, IpAddress, Binary…) is not evaluated: the statement is
  treated as not applying, for Allow and Deny alike, and ``Decision.reason`` says which statement was skipped
  and why whenever that could have changed the verdict (a skipped Deny under "allowed", a skipped Allow
  under "implicit-deny"). Skipping an Allow can only under-grant; skipping a Deny can over-grant, which is
  why it is never silent. Not guessing keeps the lab and the diagnosis from inventing permissions.
- **Malformed documents** raise :class:`kit.errors.ConfigurationError` (one sentence naming the policy,
  the statement and the fault) unless parsed with ``strict=False``: then every statement is kept, the bad ones
  carry ``problem``, they are never applied, and every decision over them notes it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Final, Literal, NamedTuple
from urllib.parse import unquote

from kit.errors import ConfigurationError

Verdict = Literal["allowed", "explicit-deny", "implicit-deny"]
PolicyDocument = str | Mapping[str, object]
# Checks one Action/Resource entry; returns the fault as a phrase, or None.
_EntryCheck = Callable[[str, str], str | None]

POLICY_VERSION: Final = "2012-10-17"
LEGACY_POLICY_VERSION: Final = "2008-10-17"

_DOCUMENT_KEYS: Final = ("Version", "Id", "Statement")
_STATEMENT_KEYS: Final = (
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
)
_SID = re.compile(r"[A-Za-z0-9]*")

# Condition operators this module evaluates, by their base name (prefix and IfExists removed).
_POSITIVE_OPERATORS: Final = frozenset(
    {"StringEquals", "StringEqualsIgnoreCase", "StringLike", "ArnEquals", "ArnLike", "Bool"}
)
_NEGATED_OPERATORS: Final = frozenset(
    {
        "StringNotEquals",
        "StringNotEqualsIgnoreCase",
        "StringNotLike",
        "ArnNotEquals",
        "ArnNotLike",
    }
)
_SET_PREFIXES: Final = ("ForAnyValue:", "ForAllValues:")

# AWS's AccessDeniedException wording for identity-based policies (in use since 2021). Kept here only.
_DENIAL_MESSAGE: Final = (
    "User: {principal} is not authorized to perform: {action} on resource: {resource} {cause}"
)
_IMPLICIT_DENY_CAUSE: Final = "because no identity-based policy allows the {action} action"
_EXPLICIT_DENY_CAUSE: Final = "with an explicit deny in an identity-based policy"


# --------------------------------------------------------------------------------------------------
# Parsed policies


@dataclass(frozen=True)
class Condition:
    """One key test of a Condition block: ``{"StringLikeIfExists": {"aws:SourceArn": ["arn:…"]}}``."""

    operator: str  # as written, e.g. "StringLikeIfExists" or "ForAnyValue:StringEquals"
    key: str
    values: tuple[str, ...]  # JSON booleans and numbers as IAM reads them: "true", "1"


@dataclass(frozen=True)
class Statement:
    """One statement of a policy, as written; ``problem`` is set when it is malformed (never applied)."""

    policy_name: str
    index: int  # position in the policy's Statement list, from 0
    sid: str | None
    effect: str  # "Allow" or "Deny" unless ``problem`` says otherwise
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_resources: tuple[str, ...]
    conditions: tuple[Condition, ...]
    policy_source: str = ""
    problem: str | None = None

    @property
    def label(self) -> str:
        """Where the statement is, in words: ``policy "p" (inline:p) Statement[0] (Sid "S")``."""
        source = f" ({self.policy_source})" if self.policy_source else ""
        sid = f' (Sid "{self.sid}")' if self.sid else ""
        return f'policy "{self.policy_name}"{source} Statement[{self.index}]{sid}'


@dataclass(frozen=True)
class Policy:
    """A parsed policy document; ``problems`` lists every fault found, in document order."""

    name: str
    statements: tuple[Statement, ...]
    source: str = ""  # "inline:connect-dynamodb", "managed:arn:aws:iam::aws:policy/…", "file:…"
    version: str | None = POLICY_VERSION
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    """The answer for one (action, resource): the verdict, the statement that decided it, and why."""

    action: str
    resource: str
    verdict: Verdict
    statement: Statement | None  # the deciding Deny or Allow; None for an implicit deny
    reason: str  # full sentences, including every note
    notes: tuple[str, ...] = ()  # statements skipped or malformed, set operators approximated

    @property
    def allowed(self) -> bool:
        return self.verdict == "allowed"


# --------------------------------------------------------------------------------------------------
# Parsing


def parse_policy(
    document: PolicyDocument,
    name: str,
    *,
    source: str = "",
    strict: bool = True,
) -> Policy:
    """Parse one identity-policy document (JSON text, URL-encoded JSON, or a dict).

    With ``strict`` (the default) the first fault raises :class:`ConfigurationError`; otherwise the faults
    are kept in ``Policy.problems`` and on the statements, and nothing in the document is dropped.
    """
    where = f'Policy "{name}"' + (f" ({source})" if source else "")
    parsed: object = document
    if isinstance(document, str):
        text = document
        if text.lstrip().startswith("%7B"):
            # The raw IAM API returns documents URL-encoded; boto3 decodes them, other callers may not.
            text = unquote(text)
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            problem = f"{where} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})."
            if strict:
                raise ConfigurationError(problem) from exc
            return Policy(name, (), source, None, (problem,))
    problems: list[str] = []
    if not isinstance(parsed, Mapping):
        problems.append(f"{where} is a JSON {_json_type(parsed)}, not an object.")
        return _finish(Policy(name, (), source, None, tuple(problems)), strict)

    for key in parsed:
        if key not in _DOCUMENT_KEYS:
            problems.append(
                f'{where} has unknown top-level key "{key}"; a policy document takes only '
                "Version, Id and Statement."
            )
    version_value = parsed.get("Version")
    version: str | None = None
    if version_value is not None:
        if version_value in (POLICY_VERSION, LEGACY_POLICY_VERSION):
            version = str(version_value)
        else:
            problems.append(
                f"{where} has Version {json.dumps(version_value)}; IAM accepts "
                f'"{POLICY_VERSION}" or "{LEGACY_POLICY_VERSION}".'
            )
    raw_statements = parsed.get("Statement")
    items: list[object]
    if raw_statements is None:
        problems.append(f"{where} has no Statement.")
        items = []
    elif isinstance(raw_statements, Mapping):
        items = [raw_statements]
    elif isinstance(raw_statements, list):
        items = list(raw_statements)
    else:
        problems.append(
            f"{where} has a Statement that is a JSON {_json_type(raw_statements)}, not an object or a list."
        )
        items = []

    statements: list[Statement] = []
    seen_sids: dict[str, int] = {}
    for index, item in enumerate(items):
        statement = _parse_statement(item, index, name, source, seen_sids)
        statements.append(statement)
        if statement.problem is not None:
            problems.append(statement.problem)
    return _finish(Policy(name, tuple(statements), source, version, tuple(problems)), strict)


def parse_policies(documents: Mapping[str, PolicyDocument], *, strict: bool = True) -> list[Policy]:
    """Parse several documents keyed by their source label, in the mapping's order.

    Labels: ``inline:<name>`` (an inline role policy, named ``<name>``), ``managed:<policy ARN>`` (named by
    the ARN's last path element), or anything else (used as the name too). ``strict`` as in
    :func:`parse_policy`.
    """
    return [
        parse_policy(document, _name_from_source(label), source=label, strict=strict)
        for label, document in documents.items()
    ]


def _finish(policy: Policy, strict: bool) -> Policy:
    if strict and policy.problems:
        raise ConfigurationError(policy.problems[0])
    return policy


def _name_from_source(label: str) -> str:
    kind, separator, rest = label.partition(":")
    if separator and kind == "inline" and rest:
        return rest
    if separator and kind == "managed" and rest:
        return rest.rsplit("/", 1)[-1]
    return label


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if value is None:
        return "null"
    return "object"


def _parse_statement(
    raw: object,
    index: int,
    policy_name: str,
    source: str,
    seen_sids: dict[str, int],
) -> Statement:
    where = f'Policy "{policy_name}"' + (f" ({source})" if source else "") + f" Statement[{index}]"
    if not isinstance(raw, Mapping):
        not_object = f"{where} is a JSON {_json_type(raw)}, not an object."
        return Statement(policy_name, index, None, "", (), (), (), (), (), source, not_object)

    faults: list[str] = []
    sid: str | None = None
    raw_sid = raw.get("Sid")
    if isinstance(raw_sid, str):
        sid = raw_sid
        where += f' (Sid "{sid}")'
        if not _SID.fullmatch(sid):
            faults.append("has a Sid with characters other than ASCII letters and digits")
        if sid and sid in seen_sids:
            faults.append(f"repeats the Sid of Statement[{seen_sids[sid]}]; Sids must be unique")
        elif sid:
            seen_sids[sid] = index
    elif raw_sid is not None:
        faults.append(f"has a Sid that is a JSON {_json_type(raw_sid)}, not a string")

    for key in raw:
        if key in ("Principal", "NotPrincipal"):
            faults.append(f"has a {key}, which identity-based policies do not take")
        elif key not in _STATEMENT_KEYS:
            faults.append(f'has unknown key "{key}"')

    effect_value = raw.get("Effect")
    effect = effect_value if isinstance(effect_value, str) else ""
    if effect_value is None:
        faults.append('has no Effect; it must be "Allow" or "Deny"')
    elif effect_value not in ("Allow", "Deny"):
        faults.append(f'has Effect {json.dumps(effect_value)}; it must be "Allow" or "Deny"')

    actions, not_actions = _parse_pair(raw, "Action", "NotAction", _action_fault, faults)
    resources, not_resources = _parse_pair(raw, "Resource", "NotResource", _resource_fault, faults)
    conditions = _parse_conditions(raw.get("Condition"), faults)

    problem = f"{where} {'; '.join(faults)}." if faults else None
    return Statement(
        policy_name,
        index,
        sid,
        effect,
        actions,
        not_actions,
        resources,
        not_resources,
        conditions,
        source,
        problem,
    )


def _parse_pair(
    raw: Mapping[str, object],
    positive: str,
    negative: str,
    entry_fault: _EntryCheck,
    faults: list[str],
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Read Action/NotAction or Resource/NotResource: exactly one of the two, a string or strings."""
    if positive in raw and negative in raw:
        faults.append(f"has both {positive} and {negative}; a statement takes exactly one")
    elif positive not in raw and negative not in raw:
        faults.append(f"has neither {positive} nor {negative}")
    lists: list[tuple[str, ...]] = []
    for key in (positive, negative):
        value = raw.get(key)
        entries: list[str] = []
        if key in raw:
            candidates = value if isinstance(value, list) else [value]
            if not candidates:
                faults.append(f"has an empty {key} list")
            for candidate in candidates:
                if isinstance(candidate, str):
                    entries.append(candidate)
                    fault = entry_fault(key, candidate)
                    if fault:
                        faults.append(fault)
                else:
                    faults.append(f"has a {key} entry that is a JSON {_json_type(candidate)}, not a string")
        lists.append(tuple(entries))
    return lists[0], lists[1]


def _action_fault(key: str, entry: str) -> str | None:
    if entry == "*" or (":" in entry and entry.index(":") > 0):
        return None
    return f'has {key} "{entry}" without a service prefix (write "service:Action", e.g. "dynamodb:PutItem")'


def _resource_fault(key: str, entry: str) -> str | None:
    if entry == "*" or entry.startswith("arn:"):
        return None
    return f'has {key} "{entry}", which is neither "*" nor an ARN'


def _parse_conditions(raw: object, faults: list[str]) -> tuple[Condition, ...]:
    if raw is None:
        return ()
    shape_fault = "has a Condition that is not an object of operators mapping keys to values"
    if not isinstance(raw, Mapping):
        faults.append(shape_fault)
        return ()
    conditions: list[Condition] = []
    for operator, tests in raw.items():
        if not isinstance(tests, Mapping):
            faults.append(shape_fault)
            continue
        for key, value in tests.items():
            candidates = value if isinstance(value, list) else [value]
            values: list[str] = []
            for candidate in candidates:
                text = scalar_text(candidate)
                if text is None:
                    faults.append(
                        f"has a {operator} value for {key} that is a JSON "
                        f"{_json_type(candidate)}, not a string, number or boolean"
                    )
                else:
                    values.append(text)
            conditions.append(Condition(str(operator), str(key), tuple(values)))
    return tuple(conditions)


def scalar_text(value: object) -> str | None:
    """A JSON scalar as AWS compares it (and carries it) as text: booleans lower-case, numbers as JSON; None
    for anything else (null, an object, an array)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    return None


# --------------------------------------------------------------------------------------------------
# Patterns: text and wildcards after policy variables are substituted


class _Token(NamedTuple):
    kind: Literal["text", "star", "one"]
    text: str = ""


_STAR: Final = _Token("star")
_ONE: Final = _Token("one")
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_DEFAULTED = re.compile(r"\s*([^,\s]+)\s*,\s*'((?:[^']|'')*)'\s*")


class _Unresolved(NamedTuple):
    variable: str  # as written, e.g. "${aws:username}"


def _tokens(pattern: str, context: Mapping[str, str], variables: bool) -> tuple[_Token, ...] | _Unresolved:
    """Split a pattern into text and wildcards, substituting ``${…}`` from ``context`` when enabled."""
    tokens: list[_Token] = []
    position = 0
    for match in _VARIABLE.finditer(pattern) if variables else ():
        tokens.extend(_wildcard_tokens(pattern[position : match.start()]))
        value = _variable_value(match.group(1), context)
        if value is None:
            return _Unresolved(match.group(0))
        tokens.append(_Token("text", value))
        position = match.end()
    tokens.extend(_wildcard_tokens(pattern[position:]))
    return tuple(tokens)


def _wildcard_tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    for piece in re.split(r"([*?])", text):
        if piece == "*":
            tokens.append(_STAR)
        elif piece == "?":
            tokens.append(_ONE)
        elif piece:
            tokens.append(_Token("text", piece))
    return tokens


def _variable_value(inner: str, context: Mapping[str, str]) -> str | None:
    if inner in ("*", "?", "$"):
        return inner
    defaulted = _DEFAULTED.fullmatch(inner)
    key = defaulted.group(1) if defaulted else inner.strip()
    value = context.get(key.lower()) if key else None
    if value is None and defaulted:
        return defaulted.group(2).replace("''", "'")
    return value


@lru_cache(maxsize=4096)
def _arn_regex(tokens: tuple[_Token, ...]) -> re.Pattern[str]:
    """ARN wildcards: a ``*`` ending a colon segment may cross colons; others stay inside the segment."""
    parts: list[str] = []
    for position, token in enumerate(tokens):
        if token.kind == "text":
            parts.append(re.escape(token.text))
        elif token.kind == "one":
            parts.append("[^:]")
        else:
            following = tokens[position + 1] if position + 1 < len(tokens) else None
            ends_segment = following is None or (following.kind == "text" and following.text.startswith(":"))
            parts.append(".*" if ends_segment else "[^:]*")
    return re.compile("".join(parts), re.DOTALL)


@lru_cache(maxsize=4096)
def _glob_regex(tokens: tuple[_Token, ...], ignore_case: bool) -> re.Pattern[str]:
    """Plain wildcards over the whole string, for actions and StringLike."""
    parts = [re.escape(t.text) if t.kind == "text" else ".*" if t.kind == "star" else "." for t in tokens]
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _literal(tokens: tuple[_Token, ...]) -> str:
    return "".join(t.text if t.kind == "text" else "*" if t.kind == "star" else "?" for t in tokens)


def action_matches(pattern: str, action: str) -> bool:
    """Whether an Action entry (``dynamodb:Put*``) covers ``action``; case-insensitive."""
    return _glob_regex(tuple(_wildcard_tokens(pattern)), True).fullmatch(action) is not None


def resource_matches(
    pattern: str,
    resource: str,
    context: Mapping[str, str] | None = None,
    *,
    version: str | None = POLICY_VERSION,
) -> bool:
    """Whether a Resource entry covers ``resource`` (case-sensitive; an unresolved variable: no match)."""
    lowered = {k.lower(): v for k, v in (context or {}).items()}
    tokens = _tokens(pattern, lowered, version == POLICY_VERSION)
    return not isinstance(tokens, _Unresolved) and _arn_regex(tokens).fullmatch(resource) is not None


# --------------------------------------------------------------------------------------------------
# Evaluation


class _NotApplied(Exception):
    """A statement that cannot be decided (unsupported operator, missing variable); carries the note."""


class _Outcome(NamedTuple):
    stage: Literal["applies", "action", "resource", "condition"]
    detail: str = ""  # for a resource or condition miss: what the statement covers instead
    notes: tuple[str, ...] = ()  # for a statement that applies: approximations made on the way


class _Note(NamedTuple):
    """A note and when it matters: a skipped statement only if it could have changed the verdict."""

    kind: Literal["problem", "skipped", "applied"]
    effect: str
    text: str

    def matters_for(self, verdict: Verdict) -> bool:
        if self.kind == "problem":
            return True
        could_change = {"allowed": "Deny", "implicit-deny": "Allow"}
        decided = {"allowed": "Allow", "explicit-deny": "Deny"}
        table = could_change if self.kind == "skipped" else decided
        return table.get(verdict) == self.effect


def evaluate(
    policies: Iterable[Policy],
    action: str,
    resource: str,
    context: Mapping[str, str] | None = None,
) -> Decision:
    """Decide ``action`` on ``resource`` for a principal holding ``policies`` (see the module docstring).

    ``Decision.notes`` (also appended to the reason) name malformed statements, and statements skipped or
    approximated when that could matter for this verdict: a skipped Deny when the verdict is "allowed", a
    skipped Allow when it is "implicit-deny".
    """
    policies = tuple(policies)
    lowered = {key.lower(): value for key, value in (context or {}).items()}
    denies: list[Statement] = []
    allows: list[Statement] = []
    near_misses: list[str] = []
    notes: list[_Note] = []
    for policy in policies:
        notes.extend(_Note("problem", "", f"{problem} It was not applied.") for problem in policy.problems)
        variables = policy.version == POLICY_VERSION
        for statement in policy.statements:
            if statement.problem is not None:
                continue
            try:
                outcome = _match(statement, action, resource, lowered, variables)
            except _NotApplied as skipped:
                notes.append(_Note("skipped", statement.effect, str(skipped)))
                continue
            if outcome.stage == "applies":
                (denies if statement.effect == "Deny" else allows).append(statement)
                notes.extend(_Note("applied", statement.effect, text) for text in outcome.notes)
            elif outcome.stage != "action" and statement.effect == "Allow":
                near_misses.append(f"{_capital(statement.label)} allows {action}, {outcome.detail}.")
            elif outcome.stage == "resource" and "request context" in outcome.detail:
                text = f"{_capital(statement.label)} denies {action}, {outcome.detail}."
                notes.append(_Note("skipped", statement.effect, text))

    subject = f"{action} on {resource}"
    if denies:
        verdict: Verdict = "explicit-deny"
        decider: Statement | None = denies[0]
        reason = f"{subject} is denied explicitly by {denies[0].label}"
        if allows:
            reason += f", which overrides the Allow in {allows[0].label}"
        reason += "."
    elif allows:
        verdict, decider = "allowed", allows[0]
        reason = f"{subject} is allowed by {allows[0].label}."
    else:
        verdict, decider = "implicit-deny", None
        if policies:
            names = ", ".join(f'"{p.name}"' for p in policies)
            count = "policy" if len(policies) == 1 else f"{len(policies)} policies"
            reason = f"No statement in the {count} ({names}) allows {subject}, so it is denied implicitly."
        else:
            reason = f"There are no policies, so {subject} is denied implicitly."
        if near_misses:
            reason += " " + " ".join(near_misses)
    relevant = tuple(note.text for note in notes if note.matters_for(verdict))
    if relevant:
        reason += " " + " ".join(relevant)
    return Decision(action, resource, verdict, decider, reason, relevant)


APIGATEWAY_PRINCIPAL: Final = "apigateway.amazonaws.com"
INVOKE_FUNCTION: Final = "lambda:InvokeFunction"


def resource_policy_decision(
    document: PolicyDocument | None,
    *,
    service: str,
    action: str,
    resource: str,
    context: Mapping[str, str] | None = None,
    name: str = "resource policy",
) -> Decision:
    """Whether a resource policy (a Lambda function's, from ``GetPolicy``) lets AWS service ``service`` do
    ``action`` on ``resource``; ``context`` carries the request's ``aws:SourceArn``/``aws:SourceAccount``.

    Only statements whose ``Principal`` names the service (or ``*``) apply; they are evaluated as
    :func:`evaluate` evaluates identity statements (Deny wins, conditions as there), keeping their place in
    the document in every label. ``document`` None stands for a function with no policy at all (GetPolicy's
    ``ResourceNotFoundException``): nothing grants anything.
    """
    if document is None:
        return Decision(
            action,
            resource,
            "implicit-deny",
            None,
            f"There is no resource policy, so {service} may not {action} on {resource}.",
        )
    parsed: object = document
    if isinstance(document, str):
        try:
            parsed = json.loads(document)
        except json.JSONDecodeError:
            parsed = None
    if not isinstance(parsed, Mapping):
        return evaluate([parse_policy(document, name, strict=False)], action, resource, context)
    raw = parsed.get("Statement")
    items = [raw] if isinstance(raw, Mapping) else (list(raw) if isinstance(raw, list) else [])
    applies = {
        index
        for index, item in enumerate(items)
        if isinstance(item, Mapping) and _names_service(item, service)
    }
    # Principal is what chose the statements; without it each reads as an identity statement would. Lambda
    # statement ids take "-" and "_", which identity Sids do not: kept aside, put back in the labels.
    stripped = [
        {k: v for k, v in item.items() if k not in ("Principal", "NotPrincipal", "Sid")}
        if isinstance(item, Mapping)
        else item
        for item in items
    ]
    whole = parse_policy({**parsed, "Statement": stripped}, name, strict=False)
    sids = [item.get("Sid") if isinstance(item, Mapping) else None for item in items]
    kept = tuple(
        replace(s, sid=str(sids[s.index]) if sids[s.index] is not None else None)
        for s in whole.statements
        if s.index in applies
    )
    policy = Policy(whole.name, kept, whole.source, whole.version, whole.problems)
    decision = evaluate([policy], action, resource, context)
    if decision.verdict == "implicit-deny" and not kept:
        reason = (
            f"No statement of the {name} names {service} as its Principal, so {action} on {resource} is "
            "denied implicitly."
        )
        return Decision(action, resource, "implicit-deny", None, reason, decision.notes)
    return decision


def _names_service(statement: Mapping[str, object], service: str) -> bool:
    """Whether a resource-policy statement's Principal covers the AWS service ``service``."""
    principal = statement.get("Principal")
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return False
    for key in ("Service", "AWS"):
        named = principal.get(key)
        values = [named] if isinstance(named, str) else (named if isinstance(named, list) else [])
        if key == "Service" and service in values:
            return True
        if key == "AWS" and "*" in values:
            return True
    return False


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _match(
    statement: Statement,
    action: str,
    resource: str,
    context: Mapping[str, str],
    variables: bool,
) -> _Outcome:
    if statement.not_actions:
        if any(action_matches(p, action) for p in statement.not_actions):
            return _Outcome("action")
    elif not any(action_matches(p, action) for p in statement.actions):
        return _Outcome("action")

    if statement.not_resources:
        for pattern in statement.not_resources:
            tokens = _tokens(pattern, context, variables)
            if isinstance(tokens, _Unresolved):
                raise _NotApplied(
                    f"{_capital(statement.label)} was not applied: its NotResource uses "
                    f"{tokens.variable}, which the request context does not provide."
                )
            if _arn_regex(tokens).fullmatch(resource):
                return _Outcome("resource", "but its NotResource excludes this resource")
    else:
        unresolved: list[str] = []
        for pattern in statement.resources:
            tokens = _tokens(pattern, context, variables)
            if isinstance(tokens, _Unresolved):
                unresolved.append(tokens.variable)
            elif _arn_regex(tokens).fullmatch(resource):
                break
        else:
            detail = f"but only on {', '.join(statement.resources)}"
            if unresolved:
                missing = ", ".join(dict.fromkeys(unresolved))
                detail += f" (the request context does not provide {missing}, so those match nothing)"
            return _Outcome("resource", detail)

    failed, condition_notes = _conditions_hold(statement, context, variables)
    if failed is not None:
        return _Outcome("condition", f"but its condition {failed} is not met")
    return _Outcome("applies", "", tuple(condition_notes))


def _conditions_hold(
    statement: Statement, context: Mapping[str, str], variables: bool
) -> tuple[str | None, list[str]]:
    """The first failed condition (``"StringEquals aws:SourceAccount"``) or None, and notes.

    Raises _NotApplied when every supported condition holds but one cannot be evaluated, since only then
    would the unsupported one decide.
    """
    notes: list[str] = []
    undecided: str | None = None
    for condition in statement.conditions:
        result = _condition_holds(condition, context, variables)
        if isinstance(result, str):
            undecided = undecided or result
            continue
        if condition.operator.startswith(_SET_PREFIXES):
            notes.append(
                f"{_capital(statement.label)} uses {condition.operator} on {condition.key}; the "
                "request context holds one value per key, so it was evaluated over a one-element set."
            )
        if not result:
            return f"{condition.operator} {condition.key}", notes
    if undecided is not None:
        raise _NotApplied(f"{_capital(statement.label)} was not applied: {undecided}.")
    return None, notes


def _condition_holds(condition: Condition, context: Mapping[str, str], variables: bool) -> bool | str:
    """True/False, or a phrase saying why the condition cannot be evaluated."""
    operator = condition.operator
    set_prefix = next((p for p in _SET_PREFIXES if operator.startswith(p)), "")
    base = operator[len(set_prefix) :]
    if_exists = base.endswith("IfExists") and base != "IfExists"
    if if_exists:
        base = base[: -len("IfExists")]
    request_value = context.get(condition.key.lower())

    if base == "Null" and not if_exists and not set_prefix:
        return any((request_value is None) == (v.lower() == "true") for v in condition.values)
    negated = base in _NEGATED_OPERATORS
    if not negated and base not in _POSITIVE_OPERATORS:
        return (
            f"its condition uses {operator}, which this evaluator does not support, "
            "so the statement is treated as not matching"
        )
    if request_value is None:
        if if_exists:
            return True
        if set_prefix:
            return set_prefix == "ForAllValues:"
        return negated

    matched = False
    for value in condition.values:
        tokens = _tokens(value, context, variables)
        if isinstance(tokens, _Unresolved):
            if negated:
                return (
                    f"its {operator} value for {condition.key} uses {tokens.variable}, which "
                    "the request context does not provide"
                )
            continue
        if _value_matches(base, tokens, request_value):
            matched = True
            break
    return not matched if negated else matched


def _value_matches(base: str, tokens: tuple[_Token, ...], request_value: str) -> bool:
    if base in ("StringLike", "StringNotLike"):
        return _glob_regex(tokens, False).fullmatch(request_value) is not None
    if base.startswith("Arn"):
        return _arn_regex(tokens).fullmatch(request_value) is not None
    if base == "Bool" or base.endswith("IgnoreCase"):
        return _literal(tokens).casefold() == request_value.casefold()
    return _literal(tokens) == request_value


def decision_for_denial_message(decision: Decision, principal_arn: str) -> str:
    """The AccessDeniedException message AWS returns for this denial, word for word.

    ``principal_arn`` is the caller, e.g. ``arn:aws:sts::123456789012:assumed-role/<role>/<session>``.
    Raises ValueError for an allowed decision, which has no denial message.
    """
    if decision.verdict == "allowed":
        raise ValueError(f"{decision.action} on {decision.resource} is allowed; there is no denial.")
    cause = (
        _EXPLICIT_DENY_CAUSE
        if decision.verdict == "explicit-deny"
        else _IMPLICIT_DENY_CAUSE.format(action=decision.action)
    )
    return _DENIAL_MESSAGE.format(
        principal=principal_arn, action=decision.action, resource=decision.resource, cause=cause
    )
