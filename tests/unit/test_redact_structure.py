"""kit.redact_structure and kit.redact_display: values masked by where they sit (names, columns, pairs, HTML
table cells), and every frame a kernel displays redacted before pandas renders it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

from kit import redact_display
from kit.redact import Redactor
from kit.redact_structure import (
    is_secret_name,
    is_secret_variable,
    redact_frame,
    redact_mapping,
    redact_pipe_tables,
    redact_tables,
)


def shout(text: str) -> str:
    """A stand-in for the text redactor, so the tests see which strings went through it."""
    return text.replace("ada", "ADA").replace("c1", "C1").replace("note", "NOTE")


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("SecretAccessKey", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("aws_session_token", True),
        ("X-Amz-Security-Token", True),
        ("x-api-key", True),
        ("apiKey", True),
        ("NEXTAUTH_SECRET", True),
        ("dbpassword", True),  # a stem inside one word
        ("Authorization", True),
        ("client_secret", True),
        ("private_key", True),
        ("Cookie", True),
        ("secret", True),
        ("token", True),
        # describing a secret, not holding one
        ("AccessKeyId", False),
        ("access_key_id", False),
        ("credential_source", False),
        ("token_kind", False),
        ("max_token_length", False),
        ("password__type", False),
        ("SecretArn", False),
        ("TokenExpiration", False),
        ("has_token", False),
        ("authorizationType", False),
        # not about secrets at all
        ("TOKENIZERS_PARALLELISM", False),
        ("connectionId", False),
        ("hash_key", False),
        ("Sec-WebSocket-Key", False),
        ("Authorizer", False),
        ("SignedHeaders", False),
        ("", False),
        (None, False),
        (3, False),
    ],
)
def test_names_are_judged_by_their_words(name: object, secret: bool) -> None:
    assert is_secret_name(name) is secret


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        # the variable stems, each spelling
        ("AUTH_SECRET", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("AWS_SESSION_TOKEN", True),
        ("DB_PASSWORD", True),
        ("MYSQL_PASSWD", True),
        ("PRIVATE_PEM", True),
        ("GOOGLE_CREDENTIALS", True),
        ("API_KEY", True),
        ("STRIPE_APIKEY", True),
        ("next_public_api_key", True),
        # judged by their words (kit.redact_structure.is_secret_name)
        ("DB_PWD", True),
        ("SIGNING_KEY", True),
        ("NEXTAUTH_SECRET", True),
        # where a secret is, not the secret
        ("AWS_WEB_IDENTITY_TOKEN_FILE", False),
        ("GOOGLE_APPLICATION_CREDENTIALS_PATH", False),
        ("SECRETS_DIR", False),
        ("SSH_AUTH_SOCK", False),
        # a key's id, and keys that are no secret
        ("AWS_ACCESS_KEY_ID", False),
        ("PARTITION_KEY", False),
        ("TABLE_NAME", False),
        ("AUTH_MODE", False),
        ("", False),
    ],
)
def test_a_variable_is_secret_by_its_name(name: str, secret: bool) -> None:
    assert is_secret_variable(name) is secret


# --------------------------------------------------------------------------------------------------------
# JSON-like values


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"password": "x", "user": "ada"}, {"password": "***", "user": "ADA"}),
        ({"password": {"S": "x"}, "n": {"N": "3"}}, {"password": {"S": "***"}, "n": {"N": "3"}}),
        ({"token": 1234, "ok": True, "none": None}, {"token": "***", "ok": True, "none": None}),
        ({"credentials": {"AccessKeyId": "a", "Expiration": 9}}, {"credentials": {"AccessKeyId": "***", "Expiration": "***"}}),
        ({"secret": ["a", {"ada": "c"}]}, {"secret": ["***", {"ADA": "***"}]}),  # keys go through text too
        ({"secret": "", "token": None}, {"secret": "", "token": None}),  # nothing there stays nothing
        ({"Name": "DB_PASSWORD", "Value": "v"}, {"Name": "DB_PASSWORD", "Value": "***"}),
        ({"attribute": "token", "value": {"S": "v"}}, {"attribute": "token", "value": {"S": "***"}}),
        ({"Name": "REGION", "Value": "ada"}, {"Name": "REGION", "Value": "ADA"}),
        ({"credential_source": "ada", "check": "email-as-token"}, {"credential_source": "ADA", "check": "email-as-token"}),
    ],
)  # fmt: skip
def test_mappings_are_masked_under_secret_keys(value: object, expected: object) -> None:
    assert redact_mapping(value, shout) == expected


# --------------------------------------------------------------------------------------------------------
# Frames


def test_a_secret_named_column_is_masked_and_nothing_else_changes() -> None:
    frame = pd.DataFrame(
        {
            "connectionId": pd.array(["c1", "c2"], dtype="string"),
            "password": pd.array(["pw1", None], dtype="string"),
            "password__type": pd.array(["S", None], dtype="string"),
            "token": pd.array([1234, 5678], dtype="Int64"),
            "n": [1, 2],
        }
    )
    frame.attrs["problems"] = ["p"]
    out = redact_frame(frame, shout)
    assert out["password"].tolist()[0] == "***" and pd.isna(out["password"].tolist()[1])
    assert out["token"].tolist() == ["***", "***"]  # a number under a secret name goes too
    assert out["connectionId"].tolist() == ["C1", "c2"] and out["password__type"].tolist()[0] == "S"
    assert str(out["connectionId"].dtype) == "string" and str(out["n"].dtype) == "int64"
    assert out.attrs == {"problems": ["p"]}
    assert frame["password"].tolist()[0] == "pw1", "the frame given is not changed"


@pytest.mark.parametrize(
    ("frame", "masked", "kept"),
    [
        # an items frame in long form: the attribute's name in one cell, its value in another
        (pd.DataFrame({"attribute": ["connectionId", "password"], "value": ["c1", "pw"]}), [(1, "value")], [(0, "value")]),
        (pd.DataFrame({"Name": ["DB_PASSWORD", "REGION"], "Value": ["pw", "us"]}), [(0, "Value")], [(1, "Value")]),
        (pd.DataFrame({"key": ["token"], "other": ["kept"], "value": ["v"]}), [(0, "value")], [(0, "other")]),
        # a configuration shown as a one-column frame: the names are the index
        (pd.Series({"AUTH_SECRET": "s", "AWS_REGION": "us"}, name="value").to_frame(), [("AUTH_SECRET", "value")], [("AWS_REGION", "value")]),
        # a name column without a value column is left alone
        (pd.DataFrame({"name": ["password"], "status": ["set"]}), [], [(0, "status")]),
    ],
)  # fmt: skip
def test_values_beside_a_secret_name_are_masked(
    frame: pd.DataFrame, masked: list[tuple[object, str]], kept: list[tuple[object, str]]
) -> None:
    out = redact_frame(frame, str)
    for row, column in masked:
        assert out.loc[row, column] == "***"
    for row, column in kept:
        assert out.loc[row, column] == frame.loc[row, column]


def test_a_series_and_multiindex_columns() -> None:
    series = pd.Series({"token": "abc", "region": "us"}, name="value")
    out = redact_frame(series, str)
    assert out.to_dict() == {"token": "***", "region": "us"} and out.name == "value"
    wide = pd.DataFrame(
        [["a", "b"]], columns=pd.MultiIndex.from_tuples([("item", "password"), ("item", "id")])
    )
    assert redact_frame(wide, str).iloc[0].tolist() == ["***", "b"]


def test_rows_limits_the_text_pass_but_never_the_masks() -> None:
    frame = pd.DataFrame({"n": [f"note {i}" for i in range(10)], "secret": [f"s{i}" for i in range(10)]})
    out = redact_frame(frame, shout, rows=2)
    assert [i for i, note in enumerate(out["n"]) if note.startswith("NOTE")] == [0, 1, 8, 9]
    assert out["secret"].tolist() == ["***"] * 10


def test_a_categorical_column_keeps_its_redacted_text() -> None:
    frame = pd.DataFrame({"memo": pd.Categorical(["ada here", "ok"])})
    assert redact_frame(frame, shout)["memo"].tolist() == ["ADA here", "ok"]


def test_labels_and_structured_cells_go_through_text() -> None:
    frame = pd.DataFrame({"ada@example.com": [{"token": "t", "ada": 1}]}, index=["ada-row"])
    out = redact_frame(frame, shout)
    assert list(out.columns) == ["ADA@example.com"] and list(out.index) == ["ADA-row"]
    assert out.iloc[0, 0] == {"token": "***", "ADA": 1}


# --------------------------------------------------------------------------------------------------------
# HTML tables


def test_html_tables_are_masked_by_header_row_header_and_pairs() -> None:
    wide = pd.DataFrame({"connectionId": ["c1"], "password": ["pw-1"], "n": [None]}).to_html()
    long = pd.DataFrame({"attribute": ["token", "status"], "value": ["tk-1", "online"]}).to_html()
    config = pd.Series({"DB_PASSWORD": "db-1", "AWS_REGION": "us-east-2"}, name="value").to_frame().to_html()
    out = redact_tables(wide + long + config)
    for secret in ("pw-1", "tk-1", "db-1"):
        assert secret not in out
    for kept in ("c1", "online", "us-east-2", "<th>password</th>", "<td>token</td>", "<th>DB_PASSWORD</th>"):
        assert kept in out
    assert out.count("<td>***</td>") == 3


def test_html_table_spans_absent_values_and_other_markup() -> None:
    table = (
        "<p>password: see the table</p><table><tr><th colspan='2'>credentials</th><th>id</th></tr>"
        "<tr><td>a</td><td>b</td><td>c</td></tr><tr><td>NaN</td><td>&lt;NA&gt;</td><td>d</td></tr></table>"
    )
    assert redact_tables(table) == (
        "<p>password: see the table</p><table><tr><th colspan='2'>credentials</th><th>id</th></tr>"
        "<tr><td>***</td><td>***</td><td>c</td></tr><tr><td>NaN</td><td>&lt;NA&gt;</td><td>d</td></tr></table>"
    )
    assert redact_tables("<p>no table</p>") == "<p>no table</p>"


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            "|    | attribute | value |\n|---:|:---|:---|\n|  0 | password | hunter 2 |\n|  1 | status | ok |",
            "|    | attribute | value |\n|---:|:---|:---|\n| 0 | password | *** |\n|  1 | status | ok |",
        ),
        ("token | n\n--- | ---\nt-1 | 2\nnan | 3", "token | n\n--- | ---\n*** | 2\nnan | 3"),
        (
            "| name | note |\n|---|---|\n| password | kept |",
            "| name | note |\n|---|---|\n| password | kept |",
        ),
        ("password | b\n---\nx | y", "password | b\n---\nx | y"),  # a heading over text, not a table
    ],
)
def test_markdown_tables_are_masked_like_html_ones(table: str, expected: str) -> None:
    assert redact_pipe_tables(f"before\n{table}\n\nafter") == f"before\n{expected}\n\nafter"


def test_markup_and_notebook_html_outputs_get_the_table_rule() -> None:
    redactor = Redactor(email_salt="fixed")
    html = pd.DataFrame({"secret": ["unknown-to-the-kit"]}).to_html()
    assert "unknown-to-the-kit" not in redactor.redact_markup(html)
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": html, "text/plain": "frame"})]
    nb.cells = [cell]
    assert "unknown-to-the-kit" not in nbformat.writes(redactor.redact_notebook(nb))


# --------------------------------------------------------------------------------------------------------
# The kernel's display formatters


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    shell = InteractiveShell.instance()
    redact_display.load_ipython_extension(shell)
    try:
        yield shell
    finally:  # pandas' own __repr__ again, for the tests that follow in this process
        redact_display.unload_ipython_extension(shell)
    assert "pw-unknown-1" in str(pd.DataFrame({"secret": ["pw-unknown-1"]}))


def test_every_displayed_frame_is_redacted_as_text_and_html(shell: InteractiveShell) -> None:
    frame = pd.DataFrame({"attribute": ["password"], "value": ["pw-unknown-1"], "u": ["ada@example.com"]})
    for shown in (frame, frame["value"].rename("secret")):
        data, _ = shell.display_formatter.format(shown)
        for mime, text in data.items():
            assert "pw-unknown-1" not in text and "ada@example.com" not in text, mime
            assert "***" in text
    assert "pw-unknown-1" not in str(frame)  # print(frame)
    assert "pw-unknown-1" not in f"{frame.set_index('attribute')['value']}"
    assert frame.loc[0, "value"] == "pw-unknown-1", "the notebook's own frame is not changed"


def test_a_long_frame_is_redacted_where_it_is_shown(shell: InteractiveShell) -> None:
    frame = pd.DataFrame({"note": [f"row {i} token=t{i}" for i in range(500)]})
    with pd.option_context("display.max_rows", 20, "display.min_rows", 10):
        data, _ = shell.display_formatter.format(frame)
    assert "token=***" in data["text/html"] and "token=t0" not in data["text/html"]
    assert "token=t499" not in data["text/plain"] and "500 rows" in data["text/plain"]


def test_kernel_settings_configure_the_kernels(tmp_path: Path) -> None:
    redactor = Redactor(mask_emails=False, email_salt="salt-0123456789")
    settings = redact_display.kernel_settings(tmp_path, redactor, "/x/.env.local")
    assert settings == {
        redact_display.ENV_FILE_VARIABLE: "/x/.env.local",
        redact_display.MASK_EMAILS_VARIABLE: "0",
        redact_display.SALT_VARIABLE: "salt-0123456789",
    }
    config = (tmp_path / "profile_default" / redact_display.KERNEL_CONFIG).read_text()
    assert 'extensions = ["kit.redact_display"]' in config


def test_the_kernel_redactor_follows_the_report(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / ".env.local"
    env_file.write_text("DB_PASSWORD=from-the-env-file-1\n")
    monkeypatch.setenv(redact_display.ENV_FILE_VARIABLE, str(env_file))
    monkeypatch.setenv(redact_display.MASK_EMAILS_VARIABLE, "0")
    monkeypatch.setenv(redact_display.SALT_VARIABLE, "salt-0123456789")
    redact_display.kernel_redactor.cache_clear()
    try:
        redactor = redact_display.kernel_redactor()
        assert redactor.redact_text("x from-the-env-file-1 ada@example.com") == "x *** ada@example.com"
        assert redactor.email_salt == "salt-0123456789"
    finally:
        redact_display.kernel_redactor.cache_clear()
