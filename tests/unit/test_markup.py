"""kit.markup: evidence is data. Markdown built from hostile strings renders as those strings and nothing else
(checked through nbconvert's own Markdown renderer, the one the reports use); the HTML sanitiser keeps the
report's markup and defuses everything else; figure labels are never mathtext."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nbconvert.filters.markdown_mistune import markdown2html_mistune

from kit import notebook, plots, redact_display
from kit.diagnose.findings import FINDING_COLUMNS, Diagnosis
from kit.markup import figure_text, markdown_code, markdown_text, sanitize_html

matplotlib.use("Agg")

# Each place hostile text can take over a page, and the spellings that have done it elsewhere.
PAYLOADS = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(2)</script>",
    "[click](javascript:alert(3))",
    '"><svg onload=alert(4)>',
    '![x](x" onerror="alert(5))',
    "![x](javascript:alert(5))",
    "`</code><img src=x onerror=alert(6)>`",
    "$<img src=x onerror=alert(7)>$",
    "<javascript:alert(8)>",
    "<a href='javascript:alert(9)'>x</a>",
    "[d](data:text/html;base64,PHNjcmlwdD5hbGVydCgxMCk8L3NjcmlwdD4=)",
    "<a href=vbscript:msgbox(11)>v</a>",
    "<details open ontoggle=alert(12)>",
    "<iframe srcdoc='<script>alert(13)</script>'></iframe>",
    "&lt;img src=x onerror=alert(14)&gt;",
    "\\<img src=x onerror=alert(15)\\>",
    "<!--><img src=x onerror=alert(16)>-->",
    "[x]: javascript:alert(17)\n[x]",
    "<style>*{display:none}</style>",
]
# Markdown that would change the structure around the value.
STRUCTURE = [
    "# heading",
    "- list",
    "+ list",
    "1. ordered",
    "12) ordered",
    "> quote",
    "    indented code",
    "```\nfence\n```",
    "~~~\nfence\n~~~",
    "a | b\n--- | ---\nc | d",
    "term\n: definition",
    "- [ ] task",
    "---",
    "===",
    "*emphasis* _emphasis_ **strong** __strong__ ~~struck~~ ~struck~",
    "$x$ and $$y$$ and \\\\(z\\\\) and \\\\[w\\\\] and \\begin{equation}v\\end{equation}",
    "https://example.com/x and www.example.com and ada@example.com",
    "trailing backslash \\",
    "hard  \nbreak",
    "&amp; &copy; &#60;",
]
# Where the notebooks put a value: (Markdown before it, Markdown after it)
CONTEXTS = [("", ""), ("- ", ""), ("**Evidence:** ", " (seen)"), ("# Root cause ", "")]


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the text, of a rendered fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "br":
            self.text.append("\n")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html_text: str) -> _Elements:
    parsed = _Elements()
    parsed.feed(html_text)
    parsed.close()
    return parsed


def _as_shown(value: str) -> str:
    """The text a reader should see: each line stripped (HTML does not show the spaces), in order."""
    return "\n".join(line.strip() for line in re.split(r"\r\n|\r|\n", value.strip()))


def _check_renders_as_text(value: str, before: str, after: str) -> None:
    """``before + markdown_text(value) + after`` renders as the context alone would, with the value's text in
    place: the same elements (a ``<br>`` for each line break), no attribute from the value, nothing lost."""
    placeholder = "PLACEHOLDER"
    template = _parse(markdown2html_mistune(before + placeholder + after))
    rendered = markdown2html_mistune(before + markdown_text(value) + after)
    parsed = _parse(rendered)
    assert [tag for tag, _ in parsed.tags if tag != "br"] == [tag for tag, _ in template.tags], (
        value,
        rendered,
    )
    for (tag, attributes), (_, expected) in zip(
        (t for t in parsed.tags if t[0] != "br"), template.tags, strict=True
    ):
        if tag in ("h1", "a"):  # a heading's id and anchor link are made from its text
            assert set(attributes) == set(expected), rendered
        else:
            assert attributes == expected, (value, rendered)
    assert sum(tag == "br" for tag, _ in parsed.tags) == _as_shown(value).count("\n"), (value, rendered)
    expected_text = "".join(template.text).replace(placeholder, _as_shown(value))
    assert "".join(parsed.text).strip() == expected_text.strip(), (value, rendered)


@pytest.mark.parametrize(("before", "after"), CONTEXTS, ids=["paragraph", "list", "inline", "heading"])
@pytest.mark.parametrize("value", PAYLOADS + STRUCTURE)
def test_markdown_text_renders_as_exactly_its_text(value: str, before: str, after: str) -> None:
    _check_renders_as_text(value, before, after)


MARKDOWN_SIGNIFICANT = "\\`*_[](){}<>#+-=.!|~$&:;'\"/@%^ \t\n\r1aZ_é"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=MARKDOWN_SIGNIFICANT, max_size=40))
def test_markdown_text_renders_any_text_as_itself(value: str) -> None:
    _check_renders_as_text(value, "- ", "")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # always escaped
        ("<b>&", "&lt;b&gt;&amp;"),
        ("a*b", "a\\*b"),
        ("[a](b)", "\\[a\\]\\(b\\)"),
        ("`a`", "\\`a\\`"),
        ("a\\b", "a\\\\b"),
        ("{a}|~$", "\\{a\\}\\|\\~\\$"),
        # underscores: only one that could open emphasis
        ("a_b", "a_b"),
        ("a_", "a_"),
        ("_a", "\\_a"),
        ("a._b", "a.\\_b"),
        ("a__b", "a_\\_b"),
        ("é_b", "é_b"),
        # a line's first character
        ("-a", "\\-a"),
        ("a-b", "a-b"),
        ("+a", "\\+a"),
        ("=a", "\\=a"),
        ("#a", "\\#a"),
        ("a#b", "a#b"),
        (":a", "\\:a"),
        ("1. a", "1\\. a"),
        ("123456789. a", "123456789\\. a"),
        ("1234567890. a", "1234567890. a"),  # ten digits are no list marker
        ("a1. b", "a1. b"),
        ("1.5", "1\\.5"),
        # autolinks
        ("https://a.b/c", "https\\://a.b/c"),
        ("a:b", "a:b"),
        ("a: //b", "a: //b"),
        ("www.a.b", "www\\.a.b"),
        ("WwW.a", "WwW\\.a"),
        ("awww.a", "awww.a"),
        ("a www.b", "a www\\.b"),
        ("www", "www"),
        # whitespace and line breaks
        ("  a  ", "a"),
        ("a\nb", "a<br/>b"),
        ("a\r\nb", "a<br/>b"),
        ("a\rb", "a<br/>b"),
        ("a\n  -b", "a<br/>\\-b"),
        ("", ""),
    ],
)
def test_markdown_text_escapes(value: str, expected: str) -> None:
    assert markdown_text(value) == expected


# kit.redact finds secrets in the escaped Markdown of the executed notebook, so the characters tokens, keys,
# ARNs and e-mail addresses are made of keep their spelling there.
@pytest.mark.parametrize(
    "value",
    [
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+abc=",
        "AKIAIOSFODNN7EXAMPLE",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZGEifQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        "AWS_SECRET_ACCESS_KEY=abc/def+g==",
        "token=ada%40example.com",
        "workspaceId=ws_1",
        "ada.lovelace+kit@example.com",
        "arn:aws:dynamodb:us-east-2:123456789012:table/chatgenius-connections/index/workspaceIndex",
        "L0SM9cOFvHcCIhw=",
    ],
)
def test_markdown_text_keeps_secret_shaped_strings_as_they_are(value: str) -> None:
    assert markdown_text(value) == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("put-access-denied", "` put-access-denied `"),
        ("a`b", "`` a`b ``"),
        ("``x```", "```` ``x``` ````"),
        ("`", "`` ` ``"),
        ("a\nb", "` a b `"),
    ],
)
def test_markdown_code_fences_past_every_backtick(value: str, expected: str) -> None:
    assert markdown_code(value) == expected


@pytest.mark.parametrize("value", [*PAYLOADS, "``x`` `y`", " padded ", "$a$"])
def test_markdown_code_renders_its_text_verbatim(value: str) -> None:
    parsed = _parse(markdown2html_mistune("x " + markdown_code(value) + " y"))
    assert [tag for tag, _ in parsed.tags] == ["p", "code"]
    assert "".join(parsed.text).strip() == f"x {' '.join(value.splitlines())} y"


# --------------------------------------------------------------------------------------------------------
# The notebooks' Markdown


def _diagnosis(evidence: list[str], *, check: str, step: str) -> Diagnosis:
    findings = pd.DataFrame(
        [
            {
                "check": check,
                "question": "?",
                "verdict": "fail",
                "cause": "x",
                "evidence": evidence[0],
                "next_step": step,
            }
        ]
    ).astype(FINDING_COLUMNS)
    cause = {"id": "put-access-denied", "summary": step, "evidence": evidence, "next_step": step}
    return Diagnosis(root_cause=cause, findings=findings)


ALLOWED_IN_DIAGNOSIS = {"h3", "a", "code", "p", "strong", "ul", "li", "br"}


@pytest.mark.parametrize("hide", [True, False])
def test_the_diagnosis_markdown_shows_evidence_as_text(hide: bool) -> None:
    step = "Fix [it](javascript:alert(1)) $now$ <b>"
    diagnosis = _diagnosis(PAYLOADS, check="<b>check</b>", step=step)

    cause = _parse(markdown2html_mistune(notebook.root_cause_markdown(diagnosis, hide=hide)))
    assert {tag for tag, _ in cause.tags} <= ALLOWED_IN_DIAGNOSIS
    assert [attributes["href"] for tag, attributes in cause.tags if tag == "a"] == [
        "#Root-cause:-put-access-denied"
    ]
    shown = "".join(cause.text)
    for payload in PAYLOADS:
        assert _as_shown(payload) in shown
    assert shown.count(step) == 2  # summary and next step

    steps = _parse(markdown2html_mistune(notebook.next_steps_markdown(diagnosis, hide=hide)))
    assert [tag for tag, _ in steps.tags] == ["ul", "li", "strong"]
    assert "".join(steps.text).strip() == f"<b>check</b> (fail): {step}"


def test_the_diagnosis_markdown_masks_before_it_escapes() -> None:
    diagnosis = _diagnosis(["token ada_l@example.com denied"], check="iam-put", step="ask ada_l@example.com")
    masked = notebook.root_cause_markdown(diagnosis)
    # kit.redact's mask (first letter, the domain hidden, a salted hash), then escaped: the stars are text.
    assert "a\\*\\*\\*@\\*\\*\\*#" in masked and "ada_l" not in masked and "example.com" not in masked
    assert "ada_l@example.com" in notebook.root_cause_markdown(diagnosis, hide=False)


# --------------------------------------------------------------------------------------------------------
# Figures


@pytest.mark.parametrize(
    ("value", "expected"), [("$connect", "\\$connect"), ("$a$", "\\$a\\$"), ("a", "a"), (3, "3")]
)
def test_figure_text_escapes_dollars(value: object, expected: str) -> None:
    assert figure_text(value) == expected


HOSTILE_LABEL = "$\\notacommand{<img src=x onerror=alert(1)>}$"


def _draws(figure: object) -> None:
    figure.savefig(io.BytesIO(), format="png")  # type: ignore[attr-defined]


def test_plots_draw_hostile_labels_as_text() -> None:
    now = pd.Timestamp("2026-01-01T00:00:00Z")
    lifecycle = pd.DataFrame(
        {
            "connection_id": [HOSTILE_LABEL, "ok="],
            "connect_ts": [now, now],
            "disconnect_ts": [now + pd.Timedelta(seconds=1), pd.NaT],
            "connect_status": [200, 200],
            "item_written": [False, True],
        }
    )
    figure = plots.connection_timeline(lifecycle)
    _draws(figure)
    labels = [label.get_text() for label in figure.axes[0].get_yticklabels()]
    assert labels == [figure_text(HOSTILE_LABEL), "ok="]

    parsed = pd.DataFrame(
        {"ts": [now, now], "route_key": [HOSTILE_LABEL, "$connect"], "http_status": [HOSTILE_LABEL, "200"]}
    )
    _draws(plots.routes_over_time(parsed))
    invocations = pd.DataFrame({"start_ts": [now], "duration_ms": [3.0], "status": [HOSTILE_LABEL]})
    _draws(plots.durations_plot(invocations))
    permissions = pd.DataFrame(
        {
            "action": ["dynamodb:PutItem"],
            "resource": [f"arn:aws:dynamodb:us-east-2:1:table/{HOSTILE_LABEL}"],
            "decision": ["allowed"],
            "statement": [f'Statement[0] Sid "{HOSTILE_LABEL}"'],
        }
    )
    _draws(plots.permission_heatmap(permissions))
    coverage = pd.DataFrame({"in_index": [False], "why_not": [HOSTILE_LABEL]})
    _draws(plots.index_coverage_plot(coverage))
    probe = pd.DataFrame({"step": [HOSTILE_LABEL], "latency_ms": [1.0], "ok": [True], "client": [0]})
    _draws(plots.latency_plot(probe))


# --------------------------------------------------------------------------------------------------------
# The HTML sanitiser (nbconvert's clean_html in the reports)


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        # kept: what the notebooks' outputs and Markdown are made of
        (
            "<p>a <em>b</em> <strong>c</strong> <code>d</code></p>",
            "<p>a <em>b</em> <strong>c</strong> <code>d</code></p>",
        ),
        (
            '<h2 id="x">T<a class="anchor-link" href="#x">¶</a></h2>',
            '<h2 id="x">T<a class="anchor-link" href="#x">¶</a></h2>',
        ),
        ('<a href="https://docs.aws.amazon.com/x">d</a>', '<a href="https://docs.aws.amazon.com/x">d</a>'),
        ('<a href="mailto:a@b.c">m</a>', '<a href="mailto:a@b.c">m</a>'),
        (
            '<table border="1" class="dataframe"><thead><tr style="text-align: right;"><th halign="left" colspan="2">a</th></tr></thead></table>',
            '<table border="1" class="dataframe"><thead><tr style="text-align: right;"><th halign="left" colspan="2">a</th></tr></thead></table>',
        ),
        (
            '<span style="color:red; font-family:Helvetica Neue, Arial; font-size:2em;">An Exception</span>',
            '<span style="color:red; font-family:Helvetica Neue, Arial; font-size:2em;">An Exception</span>',
        ),
        (
            '<div class="highlight"><pre><span class="k">def</span></pre></div>',
            '<div class="highlight"><pre><span class="k">def</span></pre></div>',
        ),
        ("<ul><li>a<br>b</li></ul><hr><del>x</del>", "<ul><li>a<br>b</li></ul><hr><del>x</del>"),
        # dropped: pandas' scoped style (with its CSS), comments
        (
            "<div><style scoped>.dataframe { color: red }</style><table></table></div>",
            "<div><table></table></div>",
        ),
        ("a<!-- c -->b", "ab"),
        # links without a safe scheme keep their text, lose the href
        ('<a href="javascript:alert(1)">j</a>', "<a>j</a>"),
        ('<a href="JaVaScRiPt:alert(1)">j</a>', "<a>j</a>"),
        ('<a href="java\tscript:alert(1)">j</a>', "<a>j</a>"),
        ('<a href=" javascript:alert(1)">j</a>', "<a>j</a>"),
        ('<a href="&#106;avascript:alert(1)">j</a>', "<a>j</a>"),
        ('<a href="data:text/html,<script>alert(1)</script>">d</a>', "<a>d</a>"),
        ('<a href="vbscript:msgbox(1)">v</a>', "<a>v</a>"),
        # event handlers and unknown attributes go, the element stays
        ('<p onclick="alert(1)" data-x="y">p</p>', "<p>p</p>"),
        (
            '<span style="background-image: url(javascript:alert(1)); display: none; color: red;">s</span>',
            '<span style="color: red;">s</span>',
        ),
        # any other tag is shown as text
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("<svg onload=alert(1)>", "&lt;svg onload=alert(1)&gt;"),
        (
            "<iframe src=javascript:alert(1)></iframe>",
            "&lt;iframe src=javascript:alert(1)&gt;&lt;/iframe&gt;",
        ),
        (
            "<details open ontoggle=alert(1)>x</details>",
            "&lt;details open ontoggle=alert(1)&gt;x&lt;/details&gt;",
        ),
        (
            "<form action=javascript:alert(1)><button>b</button></form>",
            "&lt;form action=javascript:alert(1)&gt;&lt;button&gt;b&lt;/button&gt;&lt;/form&gt;",
        ),
        ("<object data=javascript:alert(1)>", "&lt;object data=javascript:alert(1)&gt;"),
        (
            "<meta http-equiv=refresh content='0;url=javascript:alert(1)'>",
            "&lt;meta http-equiv=refresh content='0;url=javascript:alert(1)'&gt;",
        ),
        ("<base href=javascript:alert(1)//>", "&lt;base href=javascript:alert(1)//&gt;"),
    ],
)
def test_sanitize_html(fragment: str, expected: str) -> None:
    assert sanitize_html(fragment) == expected


DANGEROUS_TAGS = {
    "script",
    "img",
    "svg",
    "iframe",
    "object",
    "embed",
    "form",
    "details",
    "style",
    "meta",
    "base",
    "link",
    "math",
    "video",
    "audio",
    "input",
    "button",
}


@pytest.mark.parametrize("payload", PAYLOADS)
def test_sanitize_html_defuses_raw_payloads(payload: str) -> None:
    """Whatever reaches the export unescaped comes out without a live element, handler or script link."""
    for fragment in (
        payload,
        markdown2html_mistune(payload),
        f"<div>{payload}</div>",
        f"<table><tr><td>{payload}</td></tr></table>",
    ):
        parsed = _parse(sanitize_html(fragment))
        for tag, attributes in parsed.tags:
            assert tag not in DANGEROUS_TAGS, (fragment, tag)
            assert not any(name.startswith("on") for name in attributes), (fragment, attributes)
            href = (attributes.get("href") or "").strip().lower()
            assert not href.startswith(("javascript:", "data:", "vbscript:")), (fragment, href)


def test_sanitize_html_accepts_bytes() -> None:
    assert sanitize_html(b"<b>x</b><x>") == "<b>x</b>&lt;x&gt;"


# --------------------------------------------------------------------------------------------------------
# The export: kit.report renders through the sanitiser, so markup a notebook forgot to escape stays inert


def _notebook_with_raw_payloads() -> object:
    import nbformat

    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    table = pd.DataFrame({"connectionId": PAYLOADS})._repr_html_()
    outputs = [
        nbformat.v4.new_output(
            "display_data", data={"text/markdown": "\n\n".join(PAYLOADS), "text/plain": "md"}
        ),
        nbformat.v4.new_output(
            "display_data", data={"text/html": "<div>" + "".join(PAYLOADS) + "</div>" + table}
        ),
        nbformat.v4.new_output(
            "display_data", data={"application/javascript": "alert(99)", "text/plain": "js"}
        ),
        nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "figure"}),
        nbformat.v4.new_output("stream", name="stdout", text="\n".join(PAYLOADS)),
    ]
    cell = nbformat.v4.new_code_cell("display(x)", outputs=outputs, execution_count=1)
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# Title\n\n" + PAYLOADS[0]), cell]
    )
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


@pytest.mark.parametrize("code", [True, False], ids=["with code", "report"])
def test_the_export_sanitises_markup_the_notebook_did_not_escape(code: bool) -> None:
    from kit.report import render_html

    page = render_html(_notebook_with_raw_payloads(), title="t", code=code)
    body = _parse(page[page.index("<body") :])
    for tag, attributes in body.tags:
        assert tag not in DANGEROUS_TAGS - {"img"}, tag
        assert not any(name.startswith("on") for name in attributes), (tag, attributes)
        assert not (attributes.get("href") or "").lower().startswith(("javascript:", "data:", "vbscript:"))
    # The template's own scripts stay (MathJax's configuration, the theme); none from the notebook.
    assert not [s for s in re.findall(r"<script\b[^>]*>(.*?)</script>", page, re.DOTALL) if "alert(" in s]
    images = [attributes.get("src") or "" for tag, attributes in body.tags if tag == "img"]
    assert len(images) == 1 and images[0].startswith("data:image/png;base64,iVBOR"), images
    # What the report is made of is still there, and each payload reads as text.
    assert '<table border="1" class="dataframe">' in page and '<h1 id="Title">' in page
    text = "".join(body.text)
    for payload in PAYLOADS[:2]:
        assert payload in text


INDEX_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "p", "table", "tr", "th", "td", "a"}


@pytest.mark.parametrize("folder", ["javascript:alert(1)", "<img src=x onerror=alert(1)>", "a#b?c"])
def test_index_links_stay_relative_and_inert(tmp_path: Path, folder: str) -> None:
    from kit.report_index import build_index

    (tmp_path / folder).mkdir()  # a run folder without summary.json: listed as incomplete, with its link
    parsed = _parse(build_index(tmp_path).read_text())
    hrefs = [attributes["href"] for tag, attributes in parsed.tags if tag == "a"]
    assert hrefs and all(href.startswith("./") and "#" not in href and "?" not in href for href in hrefs), (
        hrefs
    )
    assert {tag for tag, _ in parsed.tags} <= INDEX_TAGS
    assert folder in "".join(parsed.text)


def test_secrets_are_masked_before_escaping_even_when_emails_are_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "Tr0ub4dor$$(x)&3*zz_9"  # Markdown's characters: escaped first, it would be spelled otherwise
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    redact_display.kernel_redactor.cache_clear()
    try:
        diagnosis = _diagnosis([f"key {secret} for ada_l@example.com"], check="iam-put", step="rotate it")
        shown = notebook.root_cause_markdown(diagnosis, hide=False)
    finally:
        redact_display.kernel_redactor.cache_clear()
    assert "ada_l@example.com" in shown  # asked to show e-mails
    assert "Tr0ub4dor" not in shown and "key \\*\\*\\* for" in shown, shown
