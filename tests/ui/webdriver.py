"""A minimal W3C WebDriver client for Debian's chromium-driver (no Selenium).

Only what the UI tests use: a headless session, navigation, script
execution, elements, keys, screenshots, and chromedriver's browser log. Every
wait is bounded (wait_for polls).
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Optional

ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"
KEYS = {"ArrowUp": "\ue013", "ArrowDown": "\ue015", "ArrowLeft": "\ue012",
        "ArrowRight": "\ue014", "Enter": "\ue007", "Tab": "\ue004"}


class WebDriverError(RuntimeError):
    pass


def _executable(path: Optional[str]) -> Optional[str]:
    return path if path and os.access(path, os.X_OK) else None


def find_chromium() -> Optional[str]:
    """$CHROMIUM_BIN if set, else Debian's chromium on PATH."""
    if "CHROMIUM_BIN" in os.environ:
        return _executable(os.environ["CHROMIUM_BIN"])
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def find_chromedriver() -> Optional[str]:
    """$CHROMEDRIVER_BIN if set, else chromedriver on PATH."""
    if "CHROMEDRIVER_BIN" in os.environ:
        return _executable(os.environ["CHROMEDRIVER_BIN"])
    return shutil.which("chromedriver")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Element:
    def __init__(self, driver: "Driver", ref: str):
        self.driver = driver
        self.ref = ref

    def click(self) -> None:
        self.driver._cmd("POST", f"/element/{self.ref}/click", {})

    def send_keys(self, text: str) -> None:
        self.driver._cmd("POST", f"/element/{self.ref}/value", {"text": text})

    def clear(self) -> None:
        self.driver._cmd("POST", f"/element/{self.ref}/clear", {})


class Driver:
    """chromedriver + one headless chromium session."""

    def __init__(self, chromium: str, chromedriver: str, log_dir: str,
                 width: int = 1400, height: int = 1000):
        self.port = _free_port()
        self.log_path = os.path.join(log_dir, "chromedriver.log")
        self.profile = tempfile.mkdtemp(prefix="fusion-ui-chromium-")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [chromedriver, f"--port={self.port}", "--allowed-ips=127.0.0.1"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"
        self.session = None
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(self.base + "/status", timeout=1) as r:
                    if json.load(r)["value"].get("ready"):
                        break
            except (OSError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.quit()
                raise WebDriverError(f"chromedriver did not start (log: {self.log_path})")
            time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-first-run",
                         "--disable-extensions", f"--user-data-dir={self.profile}",
                         f"--window-size={width},{height}"],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
            "timeouts": {"script": 10000, "pageLoad": 15000, "implicit": 0},
        }}}
        try:
            value = self._post("/session", caps)
        except WebDriverError:
            self.quit()
            raise
        self.session = value["sessionId"]

    # --- protocol ----------------------------------------------------------

    def _post(self, path: str, body: Any, method: str = "POST") -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.load(r)["value"]
        except urllib.error.HTTPError as e:
            try:
                detail = json.load(e)["value"]
            except ValueError:
                detail = e.reason
            raise WebDriverError(f"{method} {path}: {detail}") from None

    def _cmd(self, method: str, path: str, body: Any = None) -> Any:
        return self._post(f"/session/{self.session}{path}", body, method)

    # --- API ---------------------------------------------------------------

    def get(self, url: str) -> None:
        self._cmd("POST", "/url", {"url": url})

    def js(self, script: str, *args: Any) -> Any:
        """Runs `script` as a function body with `arguments`; returns its value."""
        return self._cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def find(self, css: str) -> Element:
        value = self._cmd("POST", "/element", {"using": "css selector", "value": css})
        return Element(self, value[ELEMENT_KEY])

    def set_window_size(self, width: int, height: int) -> None:
        self._cmd("POST", "/window/rect", {"width": width, "height": height})

    def screenshot(self, path: str) -> None:
        png = base64.b64decode(self._cmd("GET", "/screenshot"))
        with open(path, "wb") as f:
            f.write(png)

    def browser_log(self) -> list:
        """The console's messages since the last call (chromedriver extension)."""
        return self._cmd("POST", "/se/log", {"type": "browser"})

    def wait_for(self, predicate: Callable[[], Any], what: str, timeout: float = 20.0,
                 interval: float = 0.05) -> Any:
        deadline = time.monotonic() + timeout
        last = None
        while True:
            last = predicate()
            if last:
                return last
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} "
                                     f"(last: {last!r})")
            time.sleep(interval)

    def quit(self) -> None:
        if self.session:
            try:
                self._post(f"/session/{self.session}", None, "DELETE")
            except (WebDriverError, OSError):
                pass
            self.session = None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
