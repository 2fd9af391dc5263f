"""kit.redact: every kind of secret out, e-mails masked or kept by the flag, no partial secret, images untouched."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kit.credentials import Secret
from kit.handler.app import sign_token
from kit.redact import FRAGMENT_LENGTH, REDACTED, Redactor

SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
SESSION_TOKEN = (
    "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMiJHMEUCIQDq8Zt3Rk0PwXv+"
    "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG9mcmVkcGx1Z2h4eXp6eQ=="
)
AUTH_SECRET = "auth-secret-for-unit-tests-0001"
ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SIGNED = sign_token("ada@example.com", AUTH_SECRET, 1_900_000_000)
EMAIL = "ada.lovelace@analytical-engines.co.uk"


@pytest.fixture
def redactor() -> Redactor:
    return Redactor(
        [SECRET_KEY, Secret(SESSION_TOKEN), AUTH_SECRET],
        access_key_ids=[ACCESS_KEY_ID],
        email_salt="fixed",
    )


def fragments(secret: str, size: int = FRAGMENT_LENGTH) -> list[str]:
    return [secret[i : i + size] for i in range(len(secret) - size + 1)]


def assert_no_piece_of(secret: str, text: str) -> None:
    assert secret not in text
    leaked = [piece for piece in fragments(secret) if piece in text]
    assert not leaked, f"{len(leaked)} fragments of a secret survived, e.g. {leaked[0]!r}"


# --------------------------------------------------------------------------------------------------------
# Known secrets and the patterns, one row per kind


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # known values, wherever they appear
        (f"secret is {SECRET_KEY} here", "secret is *** here"),
        (f"AUTH_SECRET={AUTH_SECRET}", "AUTH_SECRET=***"),
        (f"url?sig={SECRET_KEY.replace('/', '%2F')}&x=1", "url?sig=***&x=1"),
        (json.dumps({"k": SECRET_KEY}), '{"k": "***"}'),
        # AWS secret keys after their keys, known or not
        ("aws_secret_access_key = abcdEFGHijklMNOPqrstUVWXyz0123456789/+ab", "aws_secret_access_key = ***"),
        ('{"SecretAccessKey": "abcdEFGHijklMNOPqrstUVWXyz0123456789/+ab"}', '{"SecretAccessKey": "***"}'),
        ("{'aws_secret_access_key': 'x9x9x9x9x9x9x9x9'}", "{'aws_secret_access_key': '***'}"),
        # session tokens after their keys, and by their prefix
        ('"SessionToken": "FwoGZXIvYXdzEBYaDHVuaXR0ZXN0dG9rZW4="', '"SessionToken": "***"'),
        (
            "X-Amz-Security-Token=FwoGZXIvYXdzEBYaDHVuaXR0ZXN0%2Bdg%3D%3D&X-Amz-Date=1",
            "X-Amz-Security-Token=***&X-Amz-Date=1",
        ),
        ("AWS_SESSION_TOKEN=abcdefghijklmnop0123", "AWS_SESSION_TOKEN=***"),
        ("bare IQoJb3JpZ2luX2VjEAAaCXVzLWVhc3QtMiJHMEUCIQD end", "bare *** end"),
        # access key ids: the middle masked
        (f"key {ACCESS_KEY_ID} used", "key AKIA…MPLE used"),
        ("ASIAZZZZYYYYXXXXWWWW and AKIA0123456789ABCDEF", "ASIA…WWWW and AKIA…CDEF"),
        # signed tokens of kit.handler.app's format, in a query string and alone
        (
            f"wss://x.example/prod?token={SIGNED}&workspaceId=w-1",
            "wss://x.example/prod?token=***&workspaceId=w-1",
        ),
        (f"Authorization: Bearer {SIGNED}", "Authorization: Bearer ***"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXBhcnQ", "jwt ***"),
        # the seed's token is the e-mail itself
        ("GET /prod?token=ada%40example.com&workspaceId=w1", "GET /prod?token=***&workspaceId=w1"),
        # other secret-named keys
        ("DATABASE_PASSWORD=hunter2hunter2", "DATABASE_PASSWORD=***"),
        ('"api_key": "k-1234567890"', '"api_key": "***"'),
        ("X-Amz-Signature=" + "ab12" * 16, "X-Amz-Signature=***"),
    ],
)
def test_each_kind_of_secret_is_replaced(redactor: Redactor, text: str, expected: str) -> None:
    assert redactor.redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "the $connect route invokes chatgenius-websocket in us-east-2",
        "arn:aws:lambda:us-east-2:123456789012:function:chatgenius-websocket",
        "commit 1bc3df5a63f91c7bb5e13e44df293c3a4a2030a5",  # 40 hex characters, not a key
        "AUTH_SECRET is required when AUTH_MODE=signed",  # prose, not a value
        "table chatgenius-connections, index workspaceIndex, 3 items",
        "token=*** already redacted",
        'token = query.get("token")  # source code shown as output',
        "",
    ],
)
def test_ordinary_text_is_left_alone(redactor: Redactor, text: str) -> None:
    assert redactor.redact_text(text) == text


@pytest.mark.parametrize(
    "source",
    [
        "probe.run_probe(target, token=token, secret=settings.auth_secret)",
        "credentials = Credentials(key_id, secret_access_key=secret_access_key)",
    ],
)
def test_code_passing_variables_is_left_alone(redactor: Redactor, source: str) -> None:
    assert redactor.redact_text(source, code=True) == source


def test_a_literal_in_code_is_still_replaced(redactor: Redactor) -> None:
    assert redactor.redact_text('AUTH_SECRET = "abc123def456"', code=True) == 'AUTH_SECRET = "***"'
    assert redactor.redact_text(f'x = "{AUTH_SECRET}"', code=True) == 'x = "***"'


# --------------------------------------------------------------------------------------------------------
# E-mail addresses


@pytest.mark.parametrize(
    "text",
    [
        f"user {EMAIL} connected",
        f"userId={EMAIL.replace('@', '%40')}",
        f"<td>{EMAIL}</td>",
        f'{{"userId": {{"S": "{EMAIL}"}}}}',
    ],
)
def test_emails_are_masked_when_asked(text: str) -> None:
    masked = Redactor(mask_emails=True, email_salt="s").redact_text(text)
    assert EMAIL not in masked and "lovelace" not in masked and "analytical" not in masked
    assert "a***" in masked


def test_emails_are_kept_when_not(redactor: Redactor) -> None:
    kept = Redactor([AUTH_SECRET], mask_emails=False)
    assert kept.redact_text(f"user {EMAIL} connected") == f"user {EMAIL} connected"
    assert kept.redact_text(f"x {AUTH_SECRET}") == "x ***"  # secrets go either way


def test_one_address_masks_the_same_way_within_a_run_and_two_differ() -> None:
    redactor = Redactor(email_salt="run-1")
    first = redactor.redact_text("ada@example.com")
    assert first == redactor.redact_text("ADA@example.com") == redactor.redact_text("ada@example.com")
    assert first != redactor.redact_text("alan@example.com")
    assert first != Redactor(email_salt="run-2").redact_text("ada@example.com")  # salted per run


# --------------------------------------------------------------------------------------------------------
# Never a partial secret


@pytest.mark.parametrize(
    "shown",
    [
        SESSION_TOKEN[:47] + "...",  # pandas' truncation of a long cell
        "…" + SESSION_TOKEN[-30:],
        SESSION_TOKEN[20:60],
        SECRET_KEY[:20] + "\n" + SECRET_KEY[20:],  # wrapped over two lines
        "\x1b[0;31m" + AUTH_SECRET[:10] + "\x1b[0m" + AUTH_SECRET[10:],  # split by a colour change
    ],
)
def test_pieces_of_a_known_secret_go_too(redactor: Redactor, shown: str) -> None:
    out = redactor.redact_text(f"value: {shown} end")
    for secret in (SESSION_TOKEN, SECRET_KEY, AUTH_SECRET):
        assert_no_piece_of(secret, out)
    assert REDACTED in out


def test_overlapping_secrets_are_replaced_longest_first() -> None:
    short, long = "prefix-secret-00", "prefix-secret-00-and-more-42"
    redactor = Redactor([short, long])
    assert redactor.redact_text(f"a {long} b {short} c") == "a *** b *** c"


def test_patterns_consume_the_whole_value(redactor: Redactor) -> None:
    value = "abc/def+ghi=jkl%2Fmno-pqr_stu.vwx" * 3
    for text in (f"aws_secret_access_key={value}", f"X-Amz-Security-Token={value}", f"token={value}"):
        out = redactor.redact_text(text + "&next=1")
        assert out.endswith("=***&next=1"), out


@settings(max_examples=60, deadline=None)
@given(
    secret=st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", min_size=20, max_size=80
    ),
    before=st.text(max_size=30),
    after=st.text(max_size=30),
    cut=st.integers(min_value=0, max_value=8),
)
def test_no_piece_of_a_known_secret_survives(secret: str, before: str, after: str, cut: int) -> None:
    redactor = Redactor([secret])
    for shown in (secret, secret[cut:], secret[: len(secret) - cut] + "...", f'"{secret}"'):
        assert_no_piece_of(secret, redactor.redact_text(before + shown + after))


# --------------------------------------------------------------------------------------------------------
# Where secrets come from


def test_from_environment_reads_secret_named_variables_and_the_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env.local"
    env_file.write_text(
        "AWS_REGION=us-east-2\n"
        "AWS_ACCESS_KEY_ID=AKIAENVFILE000000001\n"
        "AWS_SECRET_ACCESS_KEY=env-file-secret-key-0000000000000000000\n"
        'NEXTAUTH_SECRET="nextauth secret with spaces"\n'
        "TABLE_NAME=chatgenius-connections\n"
        "DB_PWD=db-pwd-by-its-short-name-0004\n"
    )
    environ = {
        "AWS_SESSION_TOKEN": "process-session-token-0001",
        "GITHUB_TOKEN": "ghp_processtoken0002",
        "DB_PASSWORD": "short",
        "PATH": "/usr/bin:/bin",
        "TOKENIZERS_PARALLELISM": "false",
        "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
    }
    redactor = Redactor.from_environment(environ, env_file, extra=[Secret("extra-secret-0003")])
    text = (
        "process-session-token-0001 ghp_processtoken0002 env-file-secret-key-0000000000000000000 "
        "nextauth secret with spaces extra-secret-0003 db-pwd-by-its-short-name-0004 AKIAENVFILE000000001 "
        "us-east-2 "
        "chatgenius-connections /usr/bin:/bin false https://dynamodb.us-east-2.amazonaws.com"
    )
    assert redactor.redact_text(text) == (
        "*** *** *** *** *** *** AKIA…0001 us-east-2 chatgenius-connections /usr/bin:/bin false "
        "https://dynamodb.us-east-2.amazonaws.com"
    )
    assert redactor.skipped == ("DB_PASSWORD", "TOKENIZERS_PARALLELISM")  # too short to replace safely
    assert "process-session" not in repr(redactor)


def test_a_missing_env_file_is_a_configuration_error(tmp_path: Path) -> None:
    from kit.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="does not exist"):
        Redactor.from_environment({}, tmp_path / "nope.env")


# --------------------------------------------------------------------------------------------------------
# Notebooks and JSON values


PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + SECRET_KEY.encode() + b"ada@example.com").decode()


def _notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"parameters": {"env_file": "/x/.env.local", "auth": AUTH_SECRET}}
    markdown = nbformat.v4.new_markdown_cell(f"Contact {EMAIL}; ![fig](attachment:fig.png)")
    markdown.attachments = {"fig.png": {"image/png": PNG}}
    code = nbformat.v4.new_code_cell(f'token = "{SIGNED}"\nprobe(token=token)')
    code.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=f"secret {SECRET_KEY}\n"),
        nbformat.v4.new_output(
            "execute_result",
            data={
                "text/plain": f"0  {SESSION_TOKEN[:40]}...",
                "text/html": f"<td>{EMAIL}</td><td>{AUTH_SECRET}</td>",
                "text/markdown": f"**{AUTH_SECRET}**",
                "application/json": {EMAIL: {"token": SIGNED, "n": 3, "ok": True}},
            },
            execution_count=1,
        ),
        nbformat.v4.new_output(
            "display_data",
            data={
                "image/png": PNG,
                "image/svg+xml": f"<svg><title>{AUTH_SECRET}</title></svg>",
                "text/plain": "<Figure>",
            },
            metadata={"image/png": {"width": 600}},
        ),
        nbformat.v4.new_output(
            "error",
            ename="ClientError",
            evalue=f"denied for {EMAIL} with {ACCESS_KEY_ID}",
            traceback=["\x1b[0;31mClientError\x1b[0m: " + AUTH_SECRET[:9] + "\x1b[1m" + AUTH_SECRET[9:]],
        ),
    ]
    nb.cells = [markdown, code]
    return nb


def test_a_notebook_is_redacted_everywhere_but_its_images(redactor: Redactor) -> None:
    nb = _notebook()
    original = copy.deepcopy(nb)
    out = redactor.redact_notebook(nb)
    assert nb == original, "redact_notebook must return a copy"

    svg = original.cells[1].outputs[2].data["image/svg+xml"]
    text = nbformat.writes(out).replace(PNG, "").replace(json.dumps(svg)[1:-1], "")
    for secret in (SECRET_KEY, SESSION_TOKEN, AUTH_SECRET, SIGNED):
        assert_no_piece_of(secret, text)
    assert EMAIL not in text and ACCESS_KEY_ID not in text
    assert "AKIA…MPLE" in text

    markdown, code = out.cells
    assert markdown.attachments["fig.png"]["image/png"] == PNG
    assert code.source == 'token = "***"\nprobe(token=token)'
    stream, result, figure, error = code.outputs
    assert stream.text == "secret ***\n"
    assert result.data["text/plain"] == "0  ***..."
    assert result.data["application/json"][next(iter(result.data["application/json"]))] == {
        "token": "***",
        "n": 3,
        "ok": True,
    }
    assert figure.data["image/png"] == PNG  # byte for byte, even with a secret inside the data
    assert figure.data["image/svg+xml"] == svg  # image data is never touched, SVG included
    assert figure.metadata == {"image/png": {"width": 600}}
    assert error.traceback == ["ClientError: ***"]
    assert out.metadata.papermill.parameters == {"env_file": "/x/.env.local", "auth": "***"}


def test_a_redacted_notebook_is_valid_and_round_trips(redactor: Redactor, tmp_path: Path) -> None:
    out = redactor.redact_notebook(_notebook())
    nbformat.validate(out)
    path = tmp_path / "out.ipynb"
    nbformat.write(out, str(path))
    again = nbformat.read(str(path), as_version=4)
    assert again == out
    assert redactor.redact_notebook(again) == again  # redacting twice changes nothing


def test_multiline_lists_are_read_as_text(redactor: Redactor) -> None:
    nb = nbformat.from_dict(
        {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {},
            "cells": [
                {
                    "cell_type": "code",
                    "id": "c1",
                    "metadata": {},
                    "execution_count": 1,
                    "source": ["x = 1\n", "y = 2"],
                    "outputs": [
                        {
                            "output_type": "stream",
                            "name": "stdout",
                            "text": ["a ", SECRET_KEY[:20], SECRET_KEY[20:]],
                        }
                    ],
                }
            ],
        }
    )
    out = redactor.redact_notebook(nb)
    assert out.cells[0].outputs[0].text == "a ***"
    assert out.cells[0].source == "x = 1\ny = 2"


def test_values_keys_included(redactor: Redactor) -> None:
    value = {"root_cause": {"evidence": [f"put by {EMAIL} denied", 3, None]}, EMAIL: (AUTH_SECRET,)}
    out = redactor.redact_value(value)
    dumped = json.dumps(out)
    assert EMAIL not in dumped and AUTH_SECRET not in dumped
    assert out["root_cause"]["evidence"][1:] == [3, None]


def test_markup_keeps_data_uris_byte_for_byte(redactor: Redactor) -> None:
    page = f'<p>{AUTH_SECRET} {EMAIL}</p><img src="data:image/png;base64,{PNG}"><p>{SECRET_KEY}</p>'
    out = redactor.redact_markup(page)
    assert f"data:image/png;base64,{PNG}" in out
    assert AUTH_SECRET not in out.replace(PNG, "") and SECRET_KEY not in out.replace(PNG, "")
    assert EMAIL not in out


def test_html_escaped_secrets_are_found() -> None:
    secret = 'p&ss<w>rd"0123456'
    redactor = Redactor([secret])
    assert redactor.redact_markup("<td>p&amp;ss&lt;w&gt;rd&quot;0123456</td>") == "<td>***</td>"


def test_a_megabyte_of_output_with_long_runs_is_redacted(redactor: Redactor) -> None:
    # Long runs of name and separator characters are where a backtracking pattern would go quadratic; the
    # suite's timeout bounds this, never a timed assertion (speed is the benchmarks' business).
    text = ("INFO connect ok connectionId=abcDEF123= workspace w-1 user ada@example.com\n" * 14000)[
        :1_000_000
    ]
    out = redactor.redact_text(text + "x" * 50_000 + "-._" * 20_000)
    assert "ada@example.com" not in out
