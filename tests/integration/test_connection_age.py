"""--max_connection_age makes clients reconnect (so DNS round_robin clients
see new replicas) without failing a single request."""
import subprocess
import time

import grpc
import pytest

import harness


def _client_ports(server_port):
    """Local ports of established TCP connections to the server's port."""
    out = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( dport = :{server_port} )"],
        capture_output=True, text=True, check=True).stdout
    return {line.split()[2].rsplit(":", 1)[1] for line in out.splitlines() if line}


@pytest.fixture
def server(stubs, tmp_path):
    srv = harness.ServerProcess(log_dir=str(tmp_path),
                                extra_args=["--max_connection_age=1s"])
    harness.call_or_fail(srv.start)
    yield srv
    srv.stop()


def test_connections_are_recycled_and_no_request_fails(server, stubs, golden):
    channel = grpc.insecure_channel(server.grpc_address)
    stub = stubs.scoring_pb2_grpc.ScoringServiceStub(channel)
    ports, failures = set(), []
    deadline = time.monotonic() + 5
    i = 0
    while time.monotonic() < deadline:
        request = harness.request_from_golden(stubs, golden[i % len(golden)],
                                              request_id=f"age-{i}")
        try:
            stub.Score(request, timeout=10)
        except grpc.RpcError as error:
            failures.append(error.code().name)
        ports |= _client_ports(server.grpc_port)
        i += 1
        time.sleep(0.05)
    channel.close()
    assert not failures, failures
    # Connections live ~1 s (plus jitter): 5 s of traffic sees several.
    assert len(ports) >= 3, f"client ports seen: {sorted(ports)}"
