"""kit.report_page: the summary card, the contents, the page around them, and frames as a reader sees them."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import pytest

from kit import report_page
from kit.report_page import CardFacts, FailedPart

PAYLOAD = "<img src=x onerror=alert(1)>"
LAB = {
    "kind": "lab",
    "api_id": "abc123",
    "stage": "prod",
    "table": "chatgenius-connections",
    "region": "us-east-2",
}
LAB["source"] = "lab file /work/main/.kit/lab.json"  # never shown: the card names the target in words


def cause(cause_id: str, *evidence: str, **extra: Any) -> dict[str, Any]:
    root = {
        "id": cause_id,
        "summary": f"summary of {cause_id}",
        "evidence": list(evidence),
        "next_step": "do x",
    }
    return {"root_cause": root, "findings": [], **extra}


def card(diagnosis: dict[str, Any] | None, **facts: Any) -> str:
    return report_page.summary_card(
        CardFacts(
            diagnosis=diagnosis, target=facts.pop("target", LAB), started="2026-12-04T14:00:00+00:00", **facts
        )
    )


def text_of(markup: str) -> str:
    return re.sub(r"<[^>]+>", "", markup)


# --------------------------------------------------------------------------------------------------------
# The verdict


@pytest.mark.parametrize(
    ("diagnosis", "facts", "label", "tone"),
    [
        (cause("put-access-denied", "e"), {}, "ROOT CAUSE", "kit-bad"),
        (cause("not-stored"), {}, "SYMPTOM, NO CAUSE FOUND", "kit-bad"),
        (cause("target-not-found"), {}, "INCONCLUSIVE", "kit-warn"),
        (cause("evidence-missing"), {}, "INCONCLUSIVE", "kit-warn"),
        (cause("none"), {}, "NO ROOT CAUSE FOUND", "kit-good"),
        (cause("a-cause-of-a-newer-kit"), {}, "ROOT CAUSE", "kit-bad"),
        (None, {"diagnosis_expected": True}, "NO DIAGNOSIS: THE RUN FAILED", "kit-bad"),
        (None, {"errors": ["the lab could not start"]}, "NO DIAGNOSIS: THE RUN FAILED", "kit-bad"),
        (None, {}, "NO DIAGNOSIS IN THIS RUN", "kit-neutral"),
    ],
)
def test_the_verdict_is_a_word_and_a_colour(
    diagnosis: dict[str, Any] | None, facts: dict[str, Any], label: str, tone: str
) -> None:
    html = card(diagnosis, **facts)
    assert html.startswith(f'<section id="kit-summary" class="kit-card {tone}"')
    assert f'<dt>Verdict</dt><dd><span class="kit-label {tone}">{label}</span>' in html


def test_the_card_says_the_cause_its_evidence_the_target_and_when() -> None:
    html = card(
        cause("put-access-denied", "implicit-deny: no statement allows PutItem"), scenario="seed", run="r1"
    )
    text = text_of(html)
    assert "put-access-denied" in text and "summary of put-access-denied" in text
    assert "implicit-deny: no statement allows PutItem" in text
    assert (
        "the lab, scenario seed (API abc123, stage prod, table chatgenius-connections, region us-east-2)"
        in text
    )
    assert "2026-12-04 14:00:00 UTC" in text and "r1" in text
    assert "/work/main" not in html and "lab.json" not in html, "the target in words, not where its file is"


def test_no_root_cause_has_no_fix_row() -> None:
    assert "<dt>Fix</dt>" not in card(cause("none"))
    assert "<dt>Fix</dt>" in card(cause("put-access-denied"))


def test_why_there_is_no_diagnosis() -> None:
    assert "the notebook that writes the diagnosis did not write it" in card(None, diagnosis_expected=True)
    assert "the lab could not start" in card(None, errors=["the lab could not start"])
    assert "no notebook of this run writes a diagnosis" in card(None)


# --------------------------------------------------------------------------------------------------------
# The fix and whether it was verified


def proof(**fields: Any) -> dict[str, Any]:
    return {"where": "", "verified": False, "fixed": None, "verdict": "", "why_not": "", **fields}


FIX = {"summary": "Allow dynamodb:PutItem on the table", "applicable": True}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {
                "fix": FIX,
                "proof": proof(where="on the lab", verified=True, fixed=True, verdict="fixed: gone"),
            },
            ("Allow dynamodb:PutItem on the table", "VERIFIED: FIXED", "on the lab: gone"),
        ),
        (
            {
                "fix": FIX,
                "proof": proof(
                    where="on a mirror of acct",
                    verified=True,
                    fixed=False,
                    verdict="not enough: the next cause is x",
                ),
            },
            ("VERIFIED: NOT ENOUGH", "on a mirror of acct: the next cause is x"),
        ),
        (
            {"fix": FIX, "proof": proof(where="on a mirror of acct", why_not="no Java for the lab")},
            ("NOT VERIFIED", "on a mirror of acct: no Java for the lab"),
        ),
        (
            {"fix": FIX, "proof": proof(why_not="this run was told not to (verify_fix=False)")},
            ("NOT VERIFIED", "this run was told not to"),
        ),
        ({}, ("do x", "NOT VERIFIED", "this run did not try to verify the fix")),  # kit diagnose --json
    ],
)
def test_the_fix_and_whether_it_was_verified(extra: dict[str, Any], expected: tuple[str, ...]) -> None:
    fix_row = re.search(r"<dt>Fix</dt><dd>(.*?)</dd>", card(cause("put-access-denied", **extra)))
    assert fix_row is not None
    for words in expected:
        assert words in text_of(fix_row.group(1)), (words, fix_row.group(1))


# --------------------------------------------------------------------------------------------------------
# What failed, and evidence too big to paste


def test_the_card_says_which_part_failed() -> None:
    failed = [
        FailedPart("03_logs", "ValueError", "bad threshold 7", 5),
        FailedPart("04_dynamodb", "DeadKernelError"),
    ]
    text = text_of(card(cause("put-access-denied"), failed=failed))
    assert "FAILED" in text
    assert "03_logs failed at cell In [5] (ValueError: bad threshold 7)" in text
    assert "04_dynamodb failed before any cell ran (DeadKernelError: None)" in text
    assert "Failed" not in text_of(card(cause("put-access-denied")))


def test_the_card_says_what_changed_since_the_previous_run_when_told() -> None:
    changed = '<p class="changes">verdict changed since r0: none → put-access-denied</p>'
    html = card(cause("put-access-denied"), changes=changed)
    assert f"<dt>Since the previous run</dt><dd>{changed}</dd><dt>Target</dt>" in html
    assert "Since the previous run" not in card(cause("put-access-denied"))


def test_oversized_evidence_is_summarised() -> None:
    huge = "x" * 400_000
    html = card(cause("put-access-denied", huge, "two", "three", "four", "five"))
    assert len(html) < 5_000
    assert f"… ({400_000 - report_page.TEXT_SHOWN:,} more characters)" in html
    assert "<li>and 2 more (the diagnosis notebook lists them)</li>" in html
    assert "four" not in text_of(html)


def test_everything_in_the_card_is_text() -> None:
    diagnosis = cause(PAYLOAD, PAYLOAD, fix={"summary": PAYLOAD}, proof=proof(where=PAYLOAD, why_not=PAYLOAD))
    diagnosis["root_cause"]["summary"] = PAYLOAD
    target = {"kind": "aws", "api_id": PAYLOAD, "error": PAYLOAD}
    html = card(diagnosis, target=target, failed=[FailedPart(PAYLOAD, PAYLOAD, PAYLOAD, 1)], run=PAYLOAD)
    assert "<img" not in html and "onerror=alert(1)&gt;" in html
    assert html.count("&lt;img src=x onerror=alert(1)&gt;") >= 8
    assert "<img" not in card(None, errors=[PAYLOAD])


# --------------------------------------------------------------------------------------------------------
# The contents and the page

PAGE = (
    "<html><head><title>t</title></head>"
    '<body class="jp-Notebook"><main>'
    '<h1 id="Diagnose">Diagnose<a class="anchor-link" href="#Diagnose">¶</a></h1>'
    '<h2 id="The-target">The target<a class="anchor-link" href="#The-target">¶</a></h2>'
    "<table><tr><td>source</td><td>/work/main/.kit/lab.json</td></tr>"
    "<tr><td>fail</td><td>pass</td><td>warn</td><td>skip</td><td>failed</td></tr></table>"
    '<h3 id="Root-cause:-&lt;img&gt;">Root cause: <code>&lt;img&gt;</code>'
    '<a class="anchor-link" href="#Root-cause:-&lt;img&gt;">¶</a></h3>'
    '<h2 id="Every-&quot;check&quot;">Every "check"</h2>'
    "</main></body></html>"
)


def test_the_contents_link_the_sections_but_the_title() -> None:
    nav = report_page.table_of_contents(PAGE)
    links = re.findall(r'<li class="kit-toc-(\d)"><a href="([^"]*)">(.*?)</a></li>', nav)
    assert links == [
        ("1", "#The-target", "The target"),
        ("2", "#Root-cause:-&lt;img&gt;", "Root cause: &lt;img&gt;"),
        ("1", "#Every-&quot;check&quot;", "Every &quot;check&quot;"),
    ]
    assert "¶" not in nav


@pytest.mark.parametrize(
    "page",
    ["<main></main>", '<main><h1 id="a">A</h1><h2 id="b">B</h2></main>', '<main><h2 id="b">B</h2></main>'],
)
def test_no_contents_for_fewer_than_two_sections(page: str) -> None:
    assert report_page.table_of_contents(page) == ""


def test_the_page_leads_with_the_card_then_the_contents() -> None:
    page = report_page.decorate_page(PAGE, "<section>CARD</section>", ["/work/main"])
    body = page[page.index("<main>") + len("<main>") :]
    assert body.startswith('<section>CARD</section><nav id="kit-contents"')
    assert page.index("<style>") < page.index("</head>") and ".kit-card" in page
    assert "/work/main" not in page and "<td>lab.json</td>" in page
    assert '<td class="kit-verdict kit-bad">fail</td>' in page
    assert '<td class="kit-verdict kit-good">pass</td>' in page
    assert '<td class="kit-verdict kit-warn">warn</td>' in page
    assert '<td class="kit-verdict kit-neutral">skip</td>' in page
    assert "<td>failed</td>" in page, "only a cell that is exactly a verdict"
    assert not re.search(r"(?:https?:)?//|url\(|@import|@font-face", report_page.STYLE), (
        "nothing from outside"
    )


def test_a_page_without_main_gets_the_card_after_body() -> None:
    page = report_page.decorate_page('<html><head></head><body class="x"><p>a</p></body></html>', "<b>C</b>")
    assert '<body class="x"><b>C</b><p>a</p>' in page


# --------------------------------------------------------------------------------------------------------
# Frames


def cells(markup: str) -> list[str]:
    return re.findall(r"<t[dh](?:\s[^>]*)?>(.*?)</t[dh]>", markup, re.DOTALL)


@pytest.mark.parametrize(
    "missing",
    [
        pd.array([None], dtype="string"),
        pd.array([None], dtype="Int64"),
        [None],
        [float("nan")],
        [pd.NaT],
        pd.array([None], dtype="boolean"),
    ],
)
def test_missing_values_are_empty_cells(missing: Any) -> None:
    markup = report_page.frame_html(pd.DataFrame({"a": missing}))
    assert cells(markup) == ["a", ""]
    assert "NA" not in markup and "None" not in markup and "NaN" not in markup and "NaT" not in markup


@pytest.mark.parametrize(
    ("frame", "index_shown"),
    [
        (pd.DataFrame({"a": [1, 2]}), False),
        (pd.DataFrame({"a": [1, 2, 3]}).iloc[[0, 2]], False),  # what is left after a filter
        (pd.DataFrame({"a": [1]}, index=pd.Index(["kind"])), True),  # Series(describe()).to_frame()
        (pd.DataFrame({"a": [1]}, index=pd.Index([7], name="cell")), True),
        (pd.DataFrame({"a": [1]}, index=pd.DatetimeIndex(["2026-01-01"])), True),
    ],
)
def test_the_index_is_shown_when_it_means_something(frame: pd.DataFrame, index_shown: bool) -> None:
    assert ("<tbody>\n    <tr>\n      <th>" in report_page.frame_html(frame)) is index_shown


def test_cells_are_escaped_left_aligned_and_cut() -> None:
    frame = pd.DataFrame({"<b>h</b>": [PAYLOAD, "y" * 5000]})
    with pd.option_context("display.max_colwidth", 50):
        markup = report_page.frame_html(frame)
    assert "<img" not in markup and "&lt;b&gt;h&lt;/b&gt;" in markup
    assert "text-align: right" not in markup
    assert f"<td>{'y' * 49}…</td>" in markup
    with pd.option_context("display.max_colwidth", None):
        assert f"<td>{'y' * (report_page.CELL_SHOWN - 1)}…</td>" in report_page.frame_html(frame)
    item = {"M": {"blob": {"S": "z" * 400_000}}}  # a 400 KB item's attribute, as a map
    with pd.option_context("display.max_colwidth", 50):
        assert len(report_page.frame_html(pd.DataFrame({"raw": [item, [item]]}))) < 1_000


def test_a_long_frame_shows_its_ends_and_its_length() -> None:
    frame = pd.DataFrame({"n": range(1_000)})
    with pd.option_context("display.max_rows", 60, "display.min_rows", 10):
        markup = report_page.frame_html(frame)
    assert cells(markup) == ["n", "0", "1", "2", "3", "4", "995", "996", "997", "998", "999"]
    assert "1,000 rows × 1 columns: the first and last 5 shown" in markup
    with pd.option_context("display.max_rows", 2000):
        assert len(cells(report_page.frame_html(frame))) == 1_001


# --------------------------------------------------------------------------------------------------------
# Outputs too long for a page


def notebook_with(*outputs: Any) -> Any:
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = list(outputs)
    nb.cells = [cell, nbformat.v4.new_markdown_cell("# prose")]
    return nb


def test_a_million_log_lines_printed_are_cut() -> None:
    import nbformat

    lines = "".join(f"2026-01-01 line {n}\n" for n in range(1_000_000))
    nb = report_page.summarise_outputs(notebook_with(nbformat.v4.new_output("stream", text=lines)), 1_000)
    text = nb.cells[0].outputs[0]["text"]
    assert text.startswith("2026-01-01 line 0\n") and len(text) < 1_200
    assert f"… {len(lines) - 1_000:,} more characters not shown here (the .ipynb holds them)" in text


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"text/html": "<td>" + "v" * 5_000 + "</td>", "text/plain": "v" * 5_000}, {"text/plain": "v" * 100}),
        (
            {"text/html": "<td>" + "v" * 5_000 + "</td>"},
            {"text/plain": "(an output of 5,009 characters, too long"},
        ),
        ({"text/markdown": "m" * 5_000}, {"text/markdown": "m" * 100 + "\n\n… 4,900 more characters"}),
        (
            {"text/html": "<b>short</b>", "text/plain": "short"},
            {"text/html": "<b>short</b>", "text/plain": "short"},
        ),
        ({"image/png": "iVBOR" * 5_000}, {"image/png": "iVBOR" * 5_000}),  # figures are left whole
    ],
)
def test_a_long_output_is_summarised(data: dict[str, str], expected: dict[str, str]) -> None:
    import nbformat

    output = nbformat.v4.new_output("display_data", data=data)
    shown = report_page.summarise_outputs(notebook_with(output), 100).cells[0].outputs[0]["data"]
    assert set(shown) == set(expected)
    for mime, start in expected.items():
        assert shown[mime].startswith(start) and len(shown[mime]) < max(200, len(start) + 100), mime


def test_a_long_traceback_keeps_its_last_lines() -> None:
    import nbformat

    error = nbformat.v4.new_output("error", ename="E", evalue="v", traceback=["a" * 60, "b" * 60, "c" * 60])
    shown = report_page.summarise_outputs(notebook_with(error), 130).cells[0].outputs[0]
    assert shown["traceback"] == ["b" * 60, "c" * 60]
