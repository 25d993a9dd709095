"""The system's own browsers, headless, opening a page from file:// with the network out of reach.

Chromium (Debian package chromium) is driven by Playwright over its DevTools protocol. Firefox
(Debian package firefox-esr) is driven over WebDriver BiDi, the W3C protocol Firefox serves itself
(``--remote-debugging-port``): Playwright's own Firefox driver needs Playwright's patched Firefox
build, which cannot be downloaded here, and its BiDi mode sends commands that Firefox ESR does not
know; geckodriver has no Debian package. So :class:`FirefoxTab` speaks the few BiDi commands a test
needs (W3C WebDriver BiDi: ``session.new``, ``browsingContext.navigate``, ``script.evaluate``,
``browsingContext.captureScreenshot``, and the ``log.entryAdded`` and ``network.beforeRequestSent``
events) over a plain WebSocket.

Both tabs show the same face to a test: ``evaluate(js)`` (the JSON value of a JavaScript
expression), ``screenshot()`` (the whole document as PNG bytes, one pixel a CSS pixel), and what the
page did: ``console`` (every console message and uncaught error, as (level, text)) and
``requests`` (every URL it asked for).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

# what a report's banner says for each status, as the QA reviewer reads it
STATUS_TEXT = {
    "RELEASE_CANDIDATE": "Release candidate",
    "NOT_RELEASABLE": "Not releasable",
    "INCONCLUSIVE": "Inconclusive",
}
# true once every plotly figure of a page has drawn its SVG
ALL_PLOTS_DRAWN = (
    "() => [...document.querySelectorAll('.plotly-graph-div')].every(d => d.querySelector('svg.main-svg'))"
)

VIEWPORT = {"width": 1320, "height": 1000}
BROWSERS = ("chromium", "firefox")
_EXECUTABLES = {"chromium": ("chromium",), "firefox": ("firefox-esr", "firefox")}


def _as_json(expression: str) -> str:
    # the value (a promise's once settled) as JSON text, which both protocols return as a string
    return f"Promise.resolve({expression}).then(value => JSON.stringify(value))"


class Tab(Protocol):
    console: list[tuple[str, str]]
    requests: list[str]

    def evaluate(self, expression: str) -> Any: ...

    def screenshot(self) -> bytes: ...


def executable(browser: str) -> str | None:
    """The system's ``browser`` (``chromium`` or ``firefox``) on PATH, or None."""
    return next((found for name in _EXECUTABLES[browser] if (found := shutil.which(name))), None)


class ChromiumTab:
    """A Playwright page of the system's Chromium; every request but file:// refused."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.console: list[tuple[str, str]] = []
        self.requests: list[str] = []
        self._context = browser.new_context(viewport=VIEWPORT, offline=True)
        self._context.route(lambda url: not url.startswith("file://"), lambda route: route.abort())
        self._page = self._context.new_page()
        self._page.on("request", lambda request: self.requests.append(request.url))
        self._page.on("console", lambda message: self.console.append((message.type, message.text)))
        self._page.on("pageerror", lambda error: self.console.append(("error", str(error))))
        self._page.goto(path.as_uri(), wait_until="load")

    def evaluate(self, expression: str) -> Any:
        return json.loads(self._page.evaluate(_as_json(expression)))

    def wait_for(self, expression: str) -> None:
        self._page.wait_for_function(expression, timeout=60_000)

    def screenshot(self) -> bytes:
        return self._page.screenshot(full_page=True)

    def close(self) -> None:
        self._context.close()


@contextmanager
def chromium_session() -> Iterator[Any]:
    """The system's Chromium, headless, launched by Playwright (its own browser downloads unused)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable("chromium"), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


# a profile in which Firefox asks nothing of the network: every proxy a closed local port, no
# telemetry, updates, captive-portal or connectivity checks
_FIREFOX_PREFS = {
    "network.proxy.type": 1,
    "network.proxy.http": "127.0.0.1",
    "network.proxy.http_port": 9,
    "network.proxy.ssl": "127.0.0.1",
    "network.proxy.ssl_port": 9,
    "network.proxy.allow_hijacking_localhost": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "app.update.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
}


class FirefoxSession:
    """The system's Firefox, headless, with a fresh offline profile, driven over WebDriver BiDi."""

    def __init__(self, timeout_s: float = 120.0) -> None:
        import websocket  # websocket-client, a test dependency

        self._profile = tempfile.TemporaryDirectory(prefix="rapidrelease-firefox-")
        (Path(self._profile.name) / "user.js").write_text(
            "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in _FIREFOX_PREFS.items()),
            encoding="utf-8",
        )
        command = [str(executable("firefox")), "--headless", "--no-remote", "--profile", self._profile.name]
        self._process = subprocess.Popen(
            [*command, "--remote-debugging-port=0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        address, said = None, []
        assert self._process.stderr is not None
        for line in self._process.stderr:  # Firefox names its port on stderr once it listens
            said.append(line)
            found = re.search(r"WebDriver BiDi listening on (ws://\S+)", line)
            if found:
                address = found.group(1)
                break
        if address is None:
            self._process.kill()
            raise RuntimeError(f"Firefox did not start its WebDriver BiDi server: {''.join(said)[-2000:]}")
        # Firefox refuses a handshake that carries an Origin header
        self._socket = websocket.create_connection(
            f"{address}/session", timeout=timeout_s, suppress_origin=True
        )
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.version = self.send("session.new", capabilities={})["capabilities"]["browserVersion"]

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """The result of one BiDi command; events that arrive meanwhile are kept in ``events``."""
        self._next_id += 1
        self._socket.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv())
            if message.get("id") == self._next_id:
                if message.get("type") == "error":
                    raise RuntimeError(f"{method}: {message['error']}: {message['message']}")
                return message["result"]
            if message.get("type") == "event":
                self.events.append(message)

    def close(self) -> None:
        try:
            self.send("session.end")
        finally:
            self._socket.close()
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
            self._profile.cleanup()


class FirefoxTab:
    """A new tab of a :class:`FirefoxSession` that has opened ``path``."""

    def __init__(self, session: FirefoxSession, path: Path) -> None:
        self._session = session
        self._context = session.send("browsingContext.create", type="tab")["context"]
        session.send(
            "session.subscribe",
            events=["log.entryAdded", "network.beforeRequestSent"],
            contexts=[self._context],
        )
        session.send("browsingContext.setViewport", context=self._context, viewport=VIEWPORT)
        self._first_event = len(session.events)
        session.send("browsingContext.navigate", context=self._context, url=path.as_uri(), wait="complete")

    def _events(self, method: str) -> list[dict[str, Any]]:
        # a network event names its tab in ``context``, a log entry in ``source.context``
        found = [e["params"] for e in self._session.events[self._first_event :] if e["method"] == method]
        return [e for e in found if (e.get("context") or e.get("source", {}).get("context")) == self._context]

    @property
    def console(self) -> list[tuple[str, str]]:
        return [(e["level"], e.get("text") or "") for e in self._events("log.entryAdded")]

    @property
    def requests(self) -> list[str]:
        return [e["request"]["url"] for e in self._events("network.beforeRequestSent")]

    def evaluate(self, expression: str) -> Any:
        answer = self._session.send(
            "script.evaluate",
            expression=_as_json(expression),
            target={"context": self._context},
            awaitPromise=True,
        )
        if answer["type"] != "success":
            raise RuntimeError(f"{expression}: {answer.get('exceptionDetails', answer)}")
        return json.loads(answer["result"]["value"])

    def wait_for(self, expression: str, timeout_s: float = 60.0) -> None:
        # a promise that settles when the expression holds, polled each animation frame
        self.evaluate(
            f"new Promise((ok, fail) => {{ const end = Date.now() + {timeout_s * 1000:.0f};"
            f" const poll = () => ({expression})() ? ok(true) : Date.now() > end ? fail('timeout')"
            " : requestAnimationFrame(poll); poll(); })"
        )

    def screenshot(self) -> bytes:
        answer = self._session.send(
            "browsingContext.captureScreenshot", context=self._context, origin="document"
        )
        return base64.b64decode(answer["data"])

    def close(self) -> None:
        self._session.send("browsingContext.close", context=self._context)
