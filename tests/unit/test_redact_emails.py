"""kit.redact's public e-mail and user API: the one pattern (EMAIL), the one masking (mask_email / mask_emails),
user_hash (the handler's) and mask_tokens (a caller's own tokens -> <user HASH>).

Every spelling is checked bare and in the places a report shows it (a sentence, JSON, a URL query, HTML), and
the pattern's edges are checked on both sides."""

from __future__ import annotations

import json
import re

import pytest

from kit.handler import app
from kit.redact import EMAIL, Redactor, mask_email, mask_emails, mask_tokens, user_hash

SALT = "fixed"
ADDRESS = "ada.lovelace@example.com"


def _digest(address: str = ADDRESS) -> str:
    found = re.search(r"#([0-9a-f]{6})", mask_emails(address, SALT))
    assert found, address
    return found.group(1)


# --------------------------------------------------------------------------------------------------------
# Every spelling, bare and in context: masked alike, the at sign kept as it was spelled

SPELLINGS = [
    "@",
    "%40",
    "%2540",
    "%252540",
    "\\u0040",
    "\\\\u0040",
    "&#64;",
    "&#064;",
    "&#x40;",
    "&#X40;",
    "&amp;#64;",
    "&commat;",
    "＠",
]
CONTEXTS = [
    "{}",
    "user {} joined",
    '{{"userId": {{"S": "{}"}}}}',
    "wss://k7d2xq9wme.execute-api.us-east-2.amazonaws.com/prod?token={}&workspaceId=w-1",
    "<td>{}</td>",
    "[{}]",
    "'{}',",
]


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("at", SPELLINGS)
def test_every_spelling_masks_alike_bare_and_in_context(at: str, context: str) -> None:
    spelled = ADDRESS.replace("@", at)
    masked = mask_emails(context.format(spelled), SALT)
    assert masked == context.format(f"a***{at}***#{_digest()}")
    assert "lovelace" not in masked and "example" not in masked


@pytest.mark.parametrize(
    "spelled",
    [
        ADDRESS.replace("@", "%40"),  # urlencode of a query, as the browser hook sends it
        json.dumps(ADDRESS)[1:-1],
        json.dumps(ADDRESS.replace("@", "\\u0040"))[1:-1],  # JSON of a JSON string: the backslash doubled
        "ADA.Lovelace@EXAMPLE.com",  # case does not make another user
        "..." + ADDRESS,  # cut before it: the dots are not part of the address
    ],
)
def test_encodings_of_one_address_hash_alike(spelled: str) -> None:
    assert _digest(spelled) == _digest()


def test_the_hash_is_salted() -> None:
    assert mask_emails(ADDRESS, "run-1") != mask_emails(ADDRESS, "run-2")
    assert mask_emails(ADDRESS, "run-1") == mask_emails(ADDRESS, "run-1")
    assert mask_emails("alan@example.com", "run-1") != mask_emails(ADDRESS, "run-1")


# --------------------------------------------------------------------------------------------------------
# The edges of the pattern: (text, what mask_emails makes of it), with "MASK" standing for the masked address

LOCAL_64 = "x" * 64
LABEL_63 = "l" * 63


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the smallest address, and the top-level domain: letters, 2 to 24 of them, or punycode
        ("a@b.co", "a***@***#MASK"),
        ("a@b.c", "a@b.c"),
        ("a@b.c0", "a@b.c0"),
        ("1@2.34", "1@2.34"),
        (f"a@b.{'c' * 24}", "a***@***#MASK"),
        (f"a@b.{'c' * 25}", f"a@b.{'c' * 25}"),
        ("a@b.xn--4rr70v", "a***@***#MASK"),
        ("user@localhost", "user@localhost"),
        # the local part: 64 characters at most (RFC 5321), dots, plus and hyphen inside
        (f"{LOCAL_64}@b.co", "x***@***#MASK"),
        (f"{LOCAL_64}x@b.co", f"{LOCAL_64}x@b.co"),
        ("a+tag@b.co", "a***@***#MASK"),
        ("a-b.c_d@b.co", "a***@***#MASK"),
        ("-a@b.co", "***@***#MASK"),
        ("@b.co", "@b.co"),
        ("a@", "a@"),
        # the domain: labels of 63 characters at most, 8 of them at most before the top-level one
        (f"a@{LABEL_63}.co", "a***@***#MASK"),
        (f"a@{LABEL_63}l.co", f"a@{LABEL_63}l.co"),
        (f"a@{'b.' * 8}co", "a***@***#MASK"),
        ("a@-b.co", "a@-b.co"),
        # what may follow: punctuation ends the address; a letter, digit, '-' or '_' makes it something else
        ("a@b.co.", "a***@***#MASK."),
        ("a@b.co,c@d.io", "a***@***#MASK,c***@***#MASK"),
        ("<a@b.co>", "<a***@***#MASK>"),
        ("a@b.co%20x", "a***@***#MASK%20x"),
        ("a@b.co&x=1", "a***@***#MASK&x=1"),
        ("a@b.cox1", "a@b.cox1"),
        ("a@b.co-", "a@b.co-"),
        ("a@b.co_x", "a@b.co_x"),
        # what may come before: anything that cannot be part of a local part
        ("mailto:a@b.co", "mailto:a***@***#MASK"),
        ("token=a@b.co", "token=a***@***#MASK"),
        ("x.a@b.co", "x***@***#MASK"),
        # dots that open a run (text cut before the address, a path) stay; the address after them goes
        (".a@b.co", ".a***@***#MASK"),
        ("see ...a@b.co, or", "see ...a***@***#MASK, or"),
        ("..a..b@c.co", "..a***@***#MASK"),
        # cut by a display inside the domain
        ("a@exam...", "a***@***#MASK..."),
        ("a@exam…", "a***@***#MASK…"),
        ("a@exam", "a@exam"),
        # near misses
        ("100%40 of them", "100%40 of them"),
        ("AT&amp;T", "AT&amp;T"),
        ("arn:aws:iam::123456789012:role/x", "arn:aws:iam::123456789012:role/x"),
        ("a at b dot co", "a at b dot co"),
    ],
)
def test_the_edges_of_an_address(text: str, expected: str) -> None:
    masked = re.sub(r"#[0-9a-f]{6}", "#MASK", mask_emails(text, SALT))
    assert masked == expected


@pytest.mark.parametrize(
    "text", ["x" * 100_000, "a." * 50_000, "..a" * 50_000, "." * 100_000 + "a", ("..." + "x" * 60) * 2_000]
)
def test_a_long_run_without_an_at_sign_is_left_alone(text: str) -> None:
    assert mask_emails(text, SALT) == text


# --------------------------------------------------------------------------------------------------------
# One masking: the Redactor's is mask_email's


@pytest.mark.parametrize(
    "text",
    [f"user {ADDRESS.replace('@', at)} joined" for at in SPELLINGS] + ["jösé@bücher.de", "用户@例子.广告"],
)
def test_the_redactor_masks_as_mask_emails_does(text: str) -> None:
    assert Redactor(email_salt=SALT).redact_text(text) == mask_emails(text, SALT)


def test_mask_email_masks_one_match() -> None:
    match = EMAIL.search(f"to {ADDRESS}, now")
    assert match is not None and match.group(0) == ADDRESS
    assert mask_email(match, SALT) == mask_emails(ADDRESS, SALT)
    assert (match.group("local"), match.group("at"), match.group("domain")) == (
        "ada.lovelace",
        "@",
        "example.com",
    )


# --------------------------------------------------------------------------------------------------------
# Users: the handler's hash, and a caller's own tokens


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("alice@example.com", "ff8d9819fc0e"),
        ("probe-0-abcd@example.invalid", "c4227eaa9799"),
        ("ünï@example.com", "f576716fd860"),
        ("\ud800x", "74a7e4a2ddd5"),  # a lone surrogate (a query string can carry one) is hashed, not refused
        ("", "e3b0c44298fc"),
    ],
)
def test_user_hash_is_the_handlers(token: str, expected: str) -> None:
    assert user_hash(token) == expected
    assert user_hash(token) == app.user_hash(token)


BOB, BOB_AU = "bob@example.com", "bob@example.com.au"


@pytest.mark.parametrize(
    ("text", "tokens", "expected"),
    [
        (BOB, [BOB], f"<user {user_hash(BOB)}>"),
        (f"from {BOB} to {BOB}", [BOB], f"from <user {user_hash(BOB)}> to <user {user_hash(BOB)}>"),
        (  # the longest first: bob@example.com.au is not cut after bob@example.com
            json.dumps({"from": BOB, "to": BOB_AU}),
            [BOB, BOB_AU, ""],
            json.dumps({"from": f"<user {user_hash(BOB)}>", "to": f"<user {user_hash(BOB_AU)}>"}),
        ),
        (f"?token={BOB}", [BOB], f"?token=<user {user_hash(BOB)}>"),
        ("nothing to hide", [BOB], "nothing to hide"),
        (BOB, [], BOB),
        (BOB, [""], BOB),
        (
            "bob%40example.com",
            [BOB],
            "bob%40example.com",
        ),  # only the tokens as given: mask_emails does spellings
    ],
)
def test_mask_tokens_replaces_each_token_by_its_user(text: str, tokens: list[str], expected: str) -> None:
    assert mask_tokens(text, tokens) == expected
