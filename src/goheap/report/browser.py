"""Render an HTML file in headless Chromium: a PNG screenshot and every console error.

Used by the report's tests and by ``docs/make_report_png.py`` (the README's picture), so
both see the report as a reader's browser shows it. Chromium is driven over the DevTools
protocol on a pipe (``--remote-debugging-pipe``: JSON messages ending in NUL on file
descriptors 3 and 4), so nothing but Chromium itself is needed: no driver, no port.

Console errors are what a reader's DevTools console would show in red: ``console.error``
and failed assertions, uncaught exceptions, and the browser's own error entries (a
resource that failed to load, for instance).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BrowserError", "Rendered", "find_chromium", "render", "save_screenshot"]

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class BrowserError(RuntimeError):
    """Chromium could not be started, or did not answer in time."""


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) executable: $CHROMIUM, else the first on PATH; None if none."""
    env = os.environ.get("CHROMIUM")
    if env:
        return shutil.which(env) or (env if os.access(env, os.X_OK) else None)
    for name in _CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class Rendered:
    """What one page load gave."""

    png: bytes  # the screenshot
    console_errors: list[str] = field(default_factory=list)
    console_messages: list[str] = field(default_factory=list)  # everything logged, errors included
    title: str = ""
    width: int = 0  # CSS pixels of the whole page
    height: int = 0
    value: object = None  # what ``evaluate`` returned


def _flags(user_data_dir: str) -> list[str]:
    flags = [
        "--headless",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        "--mute-audio",
        f"--user-data-dir={user_data_dir}",
        "--remote-debugging-pipe",
    ]
    if os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    return flags


class _Pipe:
    """The DevTools protocol over Chromium's pipe: numbered calls, events kept in order."""

    def __init__(self, proc: subprocess.Popen, write_fd: int, read_fd: int, timeout_s: float):
        self.proc = proc
        self.write_fd = write_fd
        self.read_fd = read_fd
        self.timeout_s = timeout_s
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self.write_fd, data) :]
        except BrokenPipeError:
            raise BrowserError(f"Chromium exited (status {self.proc.poll()}) before {method}") from None
        return self.next_id

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        want = self.send(method, params, session)
        while True:
            msg = self._read()
            if msg.get("id") == want:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error'].get('message', msg['error'])}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_for(self, method: str, session: str | None = None) -> dict:
        for i, msg in enumerate(self.events):
            if msg.get("method") == method and msg.get("sessionId") == session:
                return self.events.pop(i)
        while True:
            msg = self._read()
            if msg.get("method") == method and msg.get("sessionId") == session:
                return msg
            if "method" in msg:
                self.events.append(msg)

    def _read(self) -> dict:
        deadline = time.monotonic() + self.timeout_s
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"Chromium did not answer within {self.timeout_s:.0f} s")
            ready, _, _ = select.select([self.read_fd], [], [], left)
            if ready:
                chunk = os.read(self.read_fd, 1 << 20)
                if not chunk:
                    raise BrowserError(f"Chromium closed the DevTools pipe (exit status {self.proc.poll()})")
                self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)


def _pipe_above_stdio() -> tuple[int, int]:
    """os.pipe(), with both ends moved to descriptors >= 10 (close-on-exec).

    Where the process runs without stdin (or stdout), a fresh pipe could get descriptor 0,
    which the child's own stdio set-up would overwrite, or 3 and 4, which it needs.
    """
    ends = []
    for fd in os.pipe():
        ends.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10))
        os.close(fd)
    return ends[0], ends[1]


def _console_text(params: dict) -> str:
    parts = []
    for arg in params.get("args", []):
        parts.append(str(arg.get("value", arg.get("description", arg.get("type", "")))))
    return " ".join(parts)


def render(
    path: str | os.PathLike[str],
    *,
    width: int = 1200,
    height: int = 900,
    full_page: bool = True,
    chromium: str | None = None,
    timeout_s: float = 60.0,
    settle_s: float = 0.3,
    evaluate: str | None = None,
) -> Rendered:
    """Load the HTML file at ``path`` in a fresh headless Chromium; screenshot it, collect console errors.

    The window is ``width`` x ``height`` CSS pixels; with ``full_page`` the screenshot
    covers the whole page, however tall. ``evaluate``: a JavaScript expression run once
    the page has loaded, before the screenshot; its value (JSON) is :attr:`Rendered.value`.
    Raises :class:`BrowserError` when no Chromium is found (see :func:`find_chromium`) or
    it fails.
    """
    exe = chromium or find_chromium()
    if exe is None:
        raise BrowserError("no Chromium found (install chromium, or set $CHROMIUM)")
    url = Path(path).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="goheap-chromium-") as profile:
        to_browser_r, to_browser_w = _pipe_above_stdio()
        from_browser_r, from_browser_w = _pipe_above_stdio()

        def child_fds() -> None:
            # The protocol's fixed descriptors: the browser reads fd 3 and writes fd 4. dup2
            # makes them inheritable; every other descriptor of ours is close-on-exec.
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        proc = subprocess.Popen(
            [exe, *_flags(profile), f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,  # closing would happen after child_fds and take fds 3 and 4 too
            preexec_fn=child_fds,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        pipe = _Pipe(proc, to_browser_w, from_browser_r, timeout_s)
        try:
            return _render(pipe, url, width, height, full_page, settle_s, evaluate)
        finally:
            try:
                pipe.send("Browser.close")
            except (OSError, BrowserError):
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            os.close(to_browser_w)
            os.close(from_browser_r)


def _render(pipe: _Pipe, url: str, width: int, height: int, full_page: bool, settle_s: float, evaluate: str | None) -> Rendered:
    target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log"):
        pipe.call(f"{domain}.enable", session=session)
    pipe.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)
    nav = pipe.call("Page.navigate", {"url": url}, session)
    if nav.get("errorText"):
        raise BrowserError(f"could not open {url}: {nav['errorText']}")
    pipe.wait_for("Page.loadEventFired", session)
    value = None
    if evaluate is not None:
        value = pipe.call("Runtime.evaluate", {"expression": evaluate, "returnByValue": True}, session)["result"].get("value")
    time.sleep(settle_s)  # let late console messages arrive
    title = pipe.call("Runtime.evaluate", {"expression": "document.title", "returnByValue": True}, session)
    size = pipe.call(
        "Runtime.evaluate",
        {"expression": "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]", "returnByValue": True},
        session,
    )
    page_w, page_h = size["result"]["value"]
    if full_page:
        pipe.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": int(page_h), "deviceScaleFactor": 1, "mobile": False}, session)
    shot = pipe.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": full_page}, session)

    errors: list[str] = []
    messages: list[str] = []
    for msg in pipe.events:
        if msg.get("sessionId") != session:
            continue
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = f"console.{params.get('type')}: {_console_text(params)}"
            messages.append(text)
            if params.get("type") in ("error", "assert"):
                errors.append(text)
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "exception")
            messages.append(text)
            errors.append(f"uncaught: {text}")
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            text = f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip()
            messages.append(text)
            if entry.get("level") == "error":
                errors.append(text)
    return Rendered(
        png=base64.b64decode(shot["data"]),
        console_errors=errors,
        console_messages=messages,
        title=str(title.get("result", {}).get("value", "")),
        width=int(page_w),
        height=int(page_h),
        value=value,
    )


def save_screenshot(path: str | os.PathLike[str], out: str | os.PathLike[str], *, width: int, height: int) -> str:
    """The top ``width`` x ``height`` of the page at ``path``, saved as a PNG to ``out`` (the
    README's pictures); raises BrowserError if the page logs a console error. Returns a
    line saying what was written."""
    page = render(path, width=width, height=height, full_page=False)
    if page.console_errors:
        raise BrowserError(f"{path} has console errors: {page.console_errors}")
    Path(out).write_bytes(page.png)
    return f"{out}: {width}x{height} of a {page.width}x{page.height} page, {len(page.png):,} bytes"
