"""Fixtures for the soak test: a fusion-server of its own (its memory and fds
are what the test watches), stopped with SIGTERM at the end and required to
exit 0.

Run: /usr/bin/python3 -m pytest tests/soak -q     (SOAK_SECONDS=600 for 10 min)
"""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, os.path.join(HERE, "..", "reliability"))
sys.path.insert(0, HERE)
import harness  # noqa: E402
import overload_support  # noqa: E402


@pytest.fixture(scope="module")
def stubs(tmp_path_factory):
    return harness.call_or_fail(harness.generate_stubs, str(tmp_path_factory.mktemp("stubs")))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    harness.call_or_fail(overload_support.check_bench_binary)
    srv = harness.ServerProcess(log_dir=str(tmp_path_factory.mktemp("server")))
    harness.call_or_fail(srv.start)
    yield srv
    rc = srv.stop()
    assert rc == 0, f"the server exited {rc} on SIGTERM\n--- log tail ---\n{srv.log_tail()}"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if overload_support.FIGURES:
        terminalreporter.section("fusionserve overload figures")
        for key, value in overload_support.FIGURES.items():
            terminalreporter.write_line(f"{key}: {value}")
        overload_support.FIGURES.clear()  # the other folder's conftest prints too
