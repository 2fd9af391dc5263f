"""Open report pages in a real browser (Debian's headless Chromium, driven by playwright) and say what ran.

One Chromium for all pages (``chromium()``), a fresh profile, no network beyond the files opened. Playwright's
own browser download is never used: the browser is ``/usr/bin/chromium`` (``make test`` installs it as root).
When it is missing the tests skip with the reason, or fail when ``KIT_REQUIRE_BROWSER=1`` (CI sets it).

For each page ``open_page`` records what a planted payload would do if it ran: calls to ``alert``/``confirm``/
``prompt`` (payloads call ``alert(N)``), dialogs, requests other than the page itself (``<img src=x>``), page
and console errors; and it reads back what the DOM holds: live elements, handler attributes, script links, the
text, images that did not decode, the first text a reader sees, the summary card and the contents' links.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("KIT_CHROMIUM", "/usr/bin/chromium"))
REQUIRE = "KIT_REQUIRE_BROWSER"
ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
# Installed before any script of the page: a payload that runs leaves its number here.
RECORDER = """
window.__kitRan = [];
for (const name of ["alert", "confirm", "prompt", "print", "open"]) {
  window[name] = (...args) => { window.__kitRan.push(name + "(" + args.join(",") + ")"); };
}
"""
# What the DOM holds after load, and after the tasks load queued (a <details ontoggle> fires a task later).
INSPECT = """
async () => {
  await new Promise((done) => setTimeout(done, 0));
  await new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)));
  await Promise.all([...document.images].map((i) => i.decode().catch(() => null)));
  const elements = [...document.querySelectorAll("*")];
  const visible = (e) => {
    const box = e.getBoundingClientRect();
    const style = getComputedStyle(e);
    return box.width > 0 && box.height > 0 && style.visibility !== "hidden" && style.display !== "none";
  };
  // The first text a reader sees: the first visible, non-blank text in document order, and the highest one.
  const texts = [];
  const walker = document.createTreeWalker(document.body || document, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.textContent.trim() && node.parentElement && visible(node.parentElement)) texts.push(node);
  }
  const where = (node) => ({
    text: node.textContent.trim().slice(0, 80),
    top: node.parentElement.getBoundingClientRect().top + window.scrollY,
    in_card: !!node.parentElement.closest("#kit-summary"),
  });
  const card = document.getElementById("kit-summary");
  return {
    console_errors: [],
    first_text: texts.length ? where(texts[0]) : null,
    highest_text: texts.length ? where(texts.reduce((a, b) =>
      a.parentElement.getBoundingClientRect().top <= b.parentElement.getBoundingClientRect().top ? a : b)) : null,
    card_text: card ? card.innerText : "",
    card_tags: card ? [...new Set([...card.querySelectorAll("*")].map((e) => e.localName))].sort() : [],
    contents: [...document.querySelectorAll("#kit-contents a")].map((a) => {
      const id = decodeURIComponent(a.getAttribute("href").slice(1));
      return [a.getAttribute("href"), !!document.getElementById(id)];
    }),
    broken_images: [...document.images].filter((i) => !i.complete || i.naturalWidth === 0)
      .map((i) => i.getAttribute("src").slice(0, 40)),
    ran: window.__kitRan,
    text: document.body ? document.body.innerText : "",
    tags: [...new Set(elements.map((e) => e.localName))].sort(),
    handlers: elements.flatMap((e) =>
      [...e.attributes].filter((a) => a.name.startsWith("on")).map((a) => `${e.localName} ${a.name}=${a.value}`)),
    script_links: [...document.querySelectorAll("a[href], area[href], iframe[src], form[action]")]
      .map((e) => e.href || e.src || e.action)
      .filter((url) => /^\\s*(javascript|data|vbscript):/i.test(url)),
    scripts: [...document.scripts].map((s) => s.src || s.text.slice(0, 200)),
    images: [...document.images].map((i) => i.getAttribute("src").slice(0, 30)),
    output_tags: [...new Set([...document.querySelectorAll(
      ".jp-OutputArea-output *, .jp-RenderedMarkdown *")].map((e) => e.localName))].sort(),
  };
}
"""


@dataclass
class Page:
    """What one page did and holds (see the module docstring)."""

    path: Path
    ran: list[str]
    dialogs: list[str]
    requests: list[str]
    errors: list[str]
    text: str
    tags: list[str]
    handlers: list[str]
    script_links: list[str]
    scripts: list[str]
    images: list[str]
    output_tags: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    first_text: dict[str, Any] | None = None  # the first visible text: its start, top, whether in the card
    highest_text: dict[str, Any] | None = None  # the visible text nearest the top of the page
    card_text: str = ""
    card_tags: list[str] = field(default_factory=list)
    contents: list[tuple[str, bool]] = field(default_factory=list)  # each contents link, its target exists
    broken_images: list[str] = field(default_factory=list)  # images that did not decode (naturalWidth 0)


def require_chromium() -> None:
    """Skip (locally) or fail (``KIT_REQUIRE_BROWSER=1``) when Chromium or playwright is missing."""
    problem = None
    if not CHROMIUM.is_file():
        problem = (
            f"{CHROMIUM} is missing, so no report was opened in a browser: install Debian's chromium "
            "(`make test` does it when run as root)"
        )
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = (
                "playwright is not installed: `pip install -e '.[dev]'` (no `playwright install` needed)"
            )
    if problem is None:
        return
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{problem} ({REQUIRE}=1)")
    pytest.skip(f"BROWSER TEST NOT RUN: {problem}")


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """One headless Chromium with a fresh profile, for every page of a test."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="kit-chromium-") as profile, sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=list(ARGS), offline=True
        )
        try:
            yield context
        finally:
            context.close()


def open_page(context: Any, path: Path, screenshot: Path | None = None) -> Page:
    """Load ``path`` in a new tab of ``context`` and report what ran and what the DOM holds; with
    ``screenshot``, save what a reader sees first there (PNG)."""
    page = context.new_page()
    dialogs: list[str] = []
    requests: list[str] = []
    errors: list[str] = []
    console: list[str] = []
    url = path.resolve().as_uri()

    def on_dialog(dialog: Any) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on(
        "request",
        lambda request: (
            None if request.url == url or request.url.startswith("data:") else requests.append(request.url)
        ),
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: console.append(message.text) if message.type == "error" else None)
    page.add_init_script(RECORDER)
    try:
        page.goto(url, wait_until="load")
        found = page.evaluate(INSPECT)
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot))
    finally:
        page.close()
    found["console_errors"] = console
    found["contents"] = [tuple(pair) for pair in found["contents"]]
    return Page(path=path, dialogs=dialogs, requests=requests, errors=errors, **found)
