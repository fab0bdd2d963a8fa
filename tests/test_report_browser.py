"""The HTML report in real headless Chromium, driven through the DevTools protocol (console, network, DOM).

Console messages, uncaught exceptions, log errors and failed loads are collected from the DevTools event
stream (Runtime / Log / Network domains), so "no console errors" is checked, not guessed; a control page with
a deliberate error proves the check can fail. The screenshot is kept under reports/_test_artifacts/.
"""

import base64
import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import websocket

from robustbench_vit.report.build import build_report
from robustbench_vit.store import Results
from tests.study_fixtures import write_study

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[1] / "reports" / "_test_artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (Debian: chromium)")]


class Chromium:
    """A headless Chromium with a DevTools websocket to its first page; records every event it receives."""

    def __init__(self, tmp: Path) -> None:
        """Start the browser (remote debugging on a free port) and connect to its page."""
        log = tmp / "chromium.log"
        self._log = log.open("w")
        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}",
                                      "--remote-debugging-port=0", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=self._log)
        deadline, port = time.time() + 60, None
        while port is None and time.time() < deadline and self.proc.poll() is None:
            m = re.search(r"DevTools listening on ws://[\d.]+:(\d+)/", log.read_text())
            port = m and m.group(1)
            time.sleep(0.1)
        assert port, f"Chromium did not start: {log.read_text()[-2000:]}"
        pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        ws_url = next(p["webSocketDebuggerUrl"] for p in pages if p["type"] == "page")
        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.events: list[dict] = []
        self._id = 0
        self.width = 1280  # the viewport's width in CSS pixels (open sets it)

    def call(self, method: str, **params) -> dict:
        """Send one DevTools command and return its result (events meanwhile are recorded)."""
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                assert "error" not in msg, msg
                return msg.get("result", {})
            self.events.append(msg)

    def open(self, path: Path, width: int = 1280, height: int = 4000) -> None:
        """Load a file with console, log and network recording on, in a viewport of width × height CSS pixels (a
        phone's, with its viewport meta tag honoured, below 600); wait for the load event and a little after."""
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.call(f"{domain}.enable")
        self.width = width
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=width < 600)
        self.call("Page.navigate", url=path.resolve().as_uri())
        deadline = time.time() + 60
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events) and time.time() < deadline:
            self.events.append(json.loads(self.ws.recv()))
        self.ws.settimeout(1.0)
        try:
            while True:
                self.events.append(json.loads(self.ws.recv()))
        except websocket.WebSocketTimeoutException:
            self.ws.settimeout(60)

    def problems(self) -> list[str]:
        """Every console message, uncaught exception, logged error and failed load seen so far."""
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled":
                out.append(f"console.{p['type']}: {[a.get('value') for a in p.get('args', [])]}")
            elif m == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
            elif m == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
                out.append(f"log {p['entry']['level']}: {p['entry']['text']}")
            elif m == "Network.loadingFailed":
                out.append(f"load failed: {p.get('errorText')}")
        return out

    def requests(self) -> list[str]:
        """URLs of every request the page made."""
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def evaluate(self, expression: str):
        """Evaluate JavaScript in the page and return its value."""
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"]["value"]

    def screenshot(self, out: Path) -> Path:
        """A full-page PNG screenshot."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": self.width,
                               "height": min(size["height"], 16000), "scale": 1})
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(shot["data"]))
        return out

    def close(self) -> None:
        """Close the connection and stop the browser we started."""
        self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


@pytest.fixture
def browser(tmp_path):
    """One headless Chromium per test."""
    b = Chromium(tmp_path)
    yield b
    b.close()


def test_the_check_catches_console_errors_and_failed_loads(browser, tmp_path):
    page = tmp_path / "control.html"
    page.write_text('<!DOCTYPE html><html><head><link rel="stylesheet" href="missing.css"></head>'
                    '<body><script>console.error("boom"); nothere();</script></body></html>')
    browser.open(page)
    found = " | ".join(browser.problems())
    assert "console.error: ['boom']" in found and "nothere" in found and "load failed" in found


def test_report_renders_without_errors_with_every_figure(browser, tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    write_study(url, "browser_demo", points=16, failed=1)
    html = build_report("browser_demo", Results.of(storage=url), out_dir=tmp_path / "report")["html"]
    browser.open(html)
    assert browser.problems() == []
    assert all(u.startswith(("file://", "data:")) for u in browser.requests()), browser.requests()
    dom = browser.evaluate("""({
        stated: +document.getElementById('figures').dataset.figures,
        figures: document.querySelectorAll('figure.report-figure').length,
        rendered: [...document.querySelectorAll('figure.report-figure svg')].filter(s => {
            const r = s.getBoundingClientRect(); return r.width > 400 && r.height > 150; }).length,
        toc: document.querySelectorAll('nav a[href^="#fig-"]').length,
        verdict: document.querySelector('#verdict .verdict').innerText,
        tables: document.querySelectorAll('table').length,
    })""")
    assert dom["stated"] == dom["figures"] == dom["rendered"] == dom["toc"] >= 8, dom
    assert "vit_c_micro is more robust than vit_p_micro" in dom["verdict"] and dom["tables"] >= 4
    shot = browser.screenshot(ARTIFACTS / "report_browser.png")
    print(f"screenshot: {shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
