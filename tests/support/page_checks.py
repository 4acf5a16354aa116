"""What every browser journey holds each page to: no console error, no failed request, no CSP
violation, no serious accessibility problem (axe-core, from npm) - and a screenshot of it.

Screenshots go to .artifacts/screenshots/ (git-ignored); a few are copied by hand into
docs/screenshots/ for the README.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / ".artifacts" / "screenshots"
BLOCKING_IMPACTS = ("serious", "critical")

# Chromium reports a CSP refusal on the console too; this makes sure it reads as an error even
# where the browser would only warn (an init script runs outside the page's CSP).
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`);
});
"""
# htmx marks a request in flight (.htmx-request) and content being swapped in or settling
# (.htmx-swapping, .htmx-added, .htmx-settling); it binds new content's triggers before it settles.
HTMX_IDLE = """() => !document.querySelector(
  ".htmx-request, .htmx-swapping, .htmx-added, .htmx-settling"
)"""
AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ")),
  }));
}"""


@dataclass
class PageWatch:
    """Listens to one page from its first request; `check(name)` asserts and screenshots."""

    page: Any
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.context.add_init_script(CSP_LISTENER)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("requestfailed", self._request_failed)
        self.page.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(f"console: {message.text}")

    def _request_failed(self, request: Any) -> None:
        # htmx aborts a request whose element was swapped away, and a download ends its
        # navigation: both are the browser's choice, not a failure of the server.
        if request.failure != "net::ERR_ABORTED":
            self.problems.append(
                f"request failed: {request.method} {request.url} {request.failure}"
            )

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.problems.append(
                f"HTTP {response.status}: {response.request.method} {response.url}"
            )

    def accessibility_violations(self) -> list[dict[str, Any]]:
        if not self.page.evaluate("typeof axe === 'object'"):
            # Evaluated by the driver (not a <script>), so the strict CSP needs no exception.
            self.page.evaluate(AXE.read_text())
        return [v for v in self.page.evaluate(AXE_RUN) if v["impact"] in BLOCKING_IMPACTS]

    def check(self, name: str) -> None:
        """This page, as it is now: screenshot, then no problem so far, no serious violation."""
        self.page.wait_for_load_state("networkidle")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
        violations = self.accessibility_violations()
        assert not self.problems, f"{name}: " + "\n".join(self.problems)
        assert not violations, f"{name}: " + json.dumps(violations, indent=1)


PHONE_WIDTH, PHONE_HEIGHT = 390, 844


def assert_fits_phone_width(page: Any) -> None:
    """At a phone's 390 px the page scrolls only down, never sideways; the viewport is
    restored afterwards. One pixel of slack for sub-pixel rounding."""
    before = page.viewport_size
    page.set_viewport_size({"width": PHONE_WIDTH, "height": PHONE_HEIGHT})
    try:
        scroll_width = page.evaluate("document.scrollingElement.scrollWidth")
        wide = page.evaluate(
            """(limit) => [...document.querySelectorAll("body *")]
                .filter((element) => element.getBoundingClientRect().right > limit)
                .slice(0, 5)
                .map((element) => element.tagName.toLowerCase()
                    + (element.id ? "#" + element.id : "")
                    + (element.className && typeof element.className === "string"
                        ? "." + element.className.trim().split(/\\s+/).join(".") : ""))""",
            PHONE_WIDTH + 1,
        )
        assert scroll_width <= PHONE_WIDTH + 1, (
            f"{page.url} is {scroll_width} px wide at {PHONE_WIDTH} px; wider elements: {wide}"
        )
    finally:
        if before is not None:
            page.set_viewport_size(before)


def htmx_settled(page: Any) -> None:
    """Wait until htmx has no request in flight and has settled what it swapped in. An event on
    content that is visible but not yet processed is lost: a select changed right after its form
    was swapped in kept the old list (seen once in CI)."""
    page.wait_for_function(HTMX_IDLE)
