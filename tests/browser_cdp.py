"""Headless Chromium driven over the Chrome DevTools Protocol (CDP), for browser tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")
START_TIMEOUT_S = 30.0  # a cold Chromium start on a busy 2-core machine takes a few seconds
COMMAND_TIMEOUT_S = 30.0


def find_browser() -> str | None:
    """Path of a Chromium or Chrome binary on PATH (or /usr/bin/chromium), None if there is none."""
    for name in BROWSER_NAMES:
        if found := shutil.which(name):
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


class Page:
    """One browser tab: CDP commands over its WebSocket, JavaScript evaluated in the page."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._last_id = 0
        self.exceptions: list[str] = []  # uncaught JavaScript errors seen so far

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Run one CDP command and return its result; events that arrive meanwhile are kept."""
        self._last_id += 1
        self._ws.send(json.dumps({"id": self._last_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv(timeout=COMMAND_TIMEOUT_S))
            if message.get("method") == "Runtime.exceptionThrown":
                details = message["params"]["exceptionDetails"]
                self.exceptions.append(
                    details.get("exception", {}).get("description", str(details))
                )
            if message.get("id") == self._last_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message["result"])

    def evaluate(self, expression: str) -> Any:
        """Value of a JavaScript expression in the page (promises awaited)."""
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, *, timeout_s: float = 10.0) -> Any:
        """Poll a JavaScript expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout_s
        while not (value := self.evaluate(expression)):
            assert time.monotonic() < deadline, (
                f"timed out after {timeout_s} s: {expression} = {value!r}"
            )
            time.sleep(0.05)
        return value

    def goto(self, url: str) -> None:
        """Open a URL (again, if it is open) and wait until its new document has loaded."""
        self.evaluate("window.__cdpOldDocument = true")  # gone once the new document is there
        self.send("Page.navigate", url=url)
        self.wait_for("!window.__cdpOldDocument && document.readyState === 'complete'")

    def type_into(self, selector: str, text: str) -> None:
        """Focus a field, clear it and type `text` as keyboard input."""
        self.evaluate(
            f"(e => {{ e.focus(); e.select(); }})(document.querySelector({json.dumps(selector)}))"
        )
        self.send("Input.insertText", text=text)

    def click(self, selector: str) -> None:
        """A left mouse click in the middle of an element, as a user makes it."""
        x, y = self.evaluate(
            f"(e => {{ e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect();"
            f" return [r.x + r.width / 2, r.y + r.height / 2]; }})"
            f"(document.querySelector({json.dumps(selector)}))"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)


@contextmanager
def headless_browser(binary: str, profile_dir: Path) -> Iterator[Page]:
    """Start headless Chromium with a fresh profile, yield its tab, and always end the browser."""
    # Port 0: Chromium picks a free port and writes it to DevToolsActivePort (no port race).
    args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
            f"--user-data-dir={profile_dir}", "--no-first-run", "--no-default-browser-check",
            "about:blank"]  # fmt: skip
    log_path = profile_dir.parent / f"{profile_dir.name}.log"
    with log_path.open("wb") as log_fh:
        browser = subprocess.Popen(
            args, stdout=log_fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: the renderers end with it
        )  # fmt: skip
    try:
        port_file = profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            assert browser.poll() is None, log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, "Chromium did not open its DevTools port"
            time.sleep(0.05)
        port = int(port_file.read_text().splitlines()[0])  # line 1: port, line 2: browser path
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        (tab,) = [t for t in targets if t["type"] == "page"]
        with connect(tab["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as ws:
            page = Page(ws)
            page.send("Runtime.enable")  # reports uncaught errors as Runtime.exceptionThrown
            yield page
    finally:
        try:
            os.killpg(browser.pid, signal.SIGTERM)
            browser.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(browser.pid, signal.SIGKILL)
            browser.wait()
