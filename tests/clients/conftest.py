"""Fixtures for the tests of the C++ clients (fusion-client, fusion-bench).

They run the real binaries against a real fusion-server started with the
end-to-end harness (tests/e2e/harness.py) on free loopback ports. A missing
binary, bundle or server fails the tests with a message saying what is
missing; nothing is skipped.

Run: /usr/bin/python3 -m pytest tests/clients -q
"""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, HERE)
import harness  # noqa: E402

CLIENT_BIN = os.environ.get(
    "FUSION_CLIENT_BIN", os.path.join(harness.REPO_ROOT, "build", "client", "fusion-client"))
BENCH_BIN = os.environ.get(
    "FUSION_BENCH_BIN", os.path.join(harness.REPO_ROOT, "build", "client", "fusion-bench"))


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "needs_v2_server: needs a fusion-server that answers the Open "
        "Inference Protocol (KServe v2: ModelInfer, ModelStreamInfer, /v2 REST)")


def _binary(path, target):
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} not found or not executable: build it with "
                    f"`cmake --build build --target {target}` (or set "
                    f"{'FUSION_CLIENT_BIN' if target == 'fusion-client' else 'FUSION_BENCH_BIN'})",
                    pytrace=False)
    return path


@pytest.fixture(scope="session")
def client_bin():
    return _binary(CLIENT_BIN, "fusion-client")


@pytest.fixture(scope="session")
def bench_bin():
    return _binary(BENCH_BIN, "fusion-bench")


@pytest.fixture(scope="session")
def golden():
    return harness.call_or_fail(harness.load_golden)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    srv = harness.ServerProcess(log_dir=str(tmp_path_factory.mktemp("server")))
    harness.call_or_fail(srv.start)
    yield srv
    srv.stop()
