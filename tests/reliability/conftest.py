"""Fixtures for the reliability tests: each module starts its own
fusion-server (on free loopback ports) so that its memory, fds and counters
belong to that test alone, and checks at the end that the server, after
everything it went through, still exits 0 on SIGTERM.

The open-files limit is raised here, before any server starts (a server
inherits it): test_slow_clients.py holds over 1000 connections to one server.

Run: /usr/bin/python3 -m pytest tests/reliability -q
"""
import os
import resource
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, HERE)
import harness  # noqa: E402
import overload_support  # noqa: E402

OPEN_FILES = 8192


def _raise_open_files_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = OPEN_FILES if hard == resource.RLIM_INFINITY else min(OPEN_FILES, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


_raise_open_files_limit()


@pytest.fixture(scope="module")
def stubs(tmp_path_factory):
    return harness.call_or_fail(harness.generate_stubs, str(tmp_path_factory.mktemp("stubs")))


@pytest.fixture(scope="module")
def server_args():
    """Extra server flags; a module overrides this fixture to change them."""
    return []


@pytest.fixture(scope="module")
def server_core():
    """A CPU to pin the server to (None: not pinned); a module overrides
    this fixture to keep the server and its load generator apart."""
    return None


@pytest.fixture(scope="module")
def server(tmp_path_factory, server_args, server_core):
    harness.call_or_fail(overload_support.check_bench_binary)
    srv = harness.ServerProcess(extra_args=server_args,
                                log_dir=str(tmp_path_factory.mktemp("server")))
    if server_core is not None:
        srv.args = ["taskset", "-c", str(server_core)] + srv.args
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
