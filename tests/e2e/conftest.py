"""Fixtures for fusionserve's end-to-end tests.

One server process is shared by the whole session (started on free ports,
ready when GET /readyz answers 200, stopped with SIGTERM at the end); the
graceful-shutdown test starts its own. A missing binary or bundle makes the
tests fail (never skip) with a message that says what is missing.

Run: /usr/bin/python3 -m pytest tests/e2e -q
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


@pytest.fixture(scope="session")
def stubs(tmp_path_factory):
    return harness.call_or_fail(harness.generate_stubs, str(tmp_path_factory.mktemp("stubs")))


@pytest.fixture(scope="session")
def pb(stubs):
    return stubs.scoring_pb2


@pytest.fixture(scope="session")
def model_config(stubs):
    return harness.call_or_fail(harness.load_config, stubs)


@pytest.fixture(scope="session")
def feature_names(model_config):
    return [f.name for f in model_config.features]


@pytest.fixture(scope="session")
def golden():
    return harness.call_or_fail(harness.load_golden)


@pytest.fixture(scope="session")
def server(stubs, tmp_path_factory):
    srv = harness.ServerProcess(log_dir=str(tmp_path_factory.mktemp("server")))
    harness.call_or_fail(srv.start)
    harness.observe("server_ready_after_s", round(srv.ready_after_s, 2))
    harness.observe("server_log", srv.log_path)
    yield srv
    rc = srv.stop()
    harness.observe("shared_server_exit_code", rc)


@pytest.fixture(scope="session")
def channel(server):
    import grpc
    ch = grpc.insecure_channel(server.grpc_address)
    try:
        grpc.channel_ready_future(ch).result(timeout=15)
    except grpc.FutureTimeoutError:
        pytest.fail(f"gRPC channel to {server.grpc_address} not ready in 15 s although "
                    f"/readyz said 200\n--- log tail ---\n{server.log_tail()}",
                    pytrace=False)
    yield ch
    ch.close()


@pytest.fixture(scope="session")
def stub(stubs, channel):
    return stubs.scoring_pb2_grpc.ScoringServiceStub(channel)


@pytest.fixture(scope="session")
def health_stub(stubs, channel):
    return stubs.health_pb2_grpc.HealthStub(channel)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if harness.OBSERVATIONS:
        terminalreporter.section("fusionserve e2e observations")
        for k, v in harness.OBSERVATIONS.items():
            terminalreporter.write_line(f"{k}: {v}")
