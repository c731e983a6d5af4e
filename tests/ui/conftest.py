"""Fixtures for the attention explorer's browser tests.

A real fusion-server (tests/e2e/harness.py starts it on free ports) and
Debian's chromium, headless, driven by chromium-driver over WebDriver
(webdriver.py). The browser tests skip, saying so, only when chromium or
chromedriver is missing (scripts/install-deps.sh installs both; the HTTP
checks still run); a missing server binary or bundle fails them, as in
tests/e2e.

Screenshots of the main states go to tests/ui/artifacts/ (or
$FUSION_UI_ARTIFACTS). FUSION_UI_URL=http://host:port tests a server that
is already running instead of starting one.

Run: /usr/bin/python3 -m pytest tests/ui -q
"""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import harness  # noqa: E402
import webdriver  # noqa: E402

ARTIFACTS = os.environ.get("FUSION_UI_ARTIFACTS", os.path.join(HERE, "artifacts"))


@pytest.fixture(scope="session")
def browser_paths():
    chromium = webdriver.find_chromium()
    chromedriver = webdriver.find_chromedriver()
    if not chromium or not chromedriver:
        pytest.skip("chromium and chromium-driver are needed for the UI tests "
                    "(scripts/install-deps.sh installs them)")
    return chromium, chromedriver


@pytest.fixture(scope="session")
def base_url(tmp_path_factory):
    if os.environ.get("FUSION_UI_URL"):
        yield os.environ["FUSION_UI_URL"].rstrip("/")
        return
    srv = harness.ServerProcess(log_dir=str(tmp_path_factory.mktemp("ui-server")))
    harness.call_or_fail(srv.start)
    yield f"http://{srv.http_address}"
    srv.stop()


@pytest.fixture(scope="session")
def driver(browser_paths, tmp_path_factory):
    chromium, chromedriver = browser_paths
    d = webdriver.Driver(chromium, chromedriver, str(tmp_path_factory.mktemp("chromedriver")))
    yield d
    d.quit()


@pytest.fixture(scope="session")
def artifacts():
    os.makedirs(ARTIFACTS, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def golden():
    return harness.call_or_fail(harness.load_golden)
