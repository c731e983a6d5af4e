"""Probes: gRPC health, HTTP /healthz and /readyz, /metrics, reflection."""
import grpc
import pytest

import harness


@pytest.mark.parametrize("service", ["", harness.SERVICE_NAME])
def test_grpc_health_serving(stubs, health_stub, service):
    h = stubs.health_pb2
    resp = health_stub.Check(h.HealthCheckRequest(service=service), timeout=10)
    assert resp.status == h.HealthCheckResponse.SERVING


def test_grpc_health_unknown_service(stubs, health_stub):
    h = stubs.health_pb2
    with pytest.raises(grpc.RpcError) as ei:
        health_stub.Check(h.HealthCheckRequest(service="no.such.Service"), timeout=10)
    assert ei.value.code() == grpc.StatusCode.NOT_FOUND, ei.value


def test_grpc_health_watch_first_message(stubs, health_stub):
    h = stubs.health_pb2
    call = health_stub.Watch(h.HealthCheckRequest(service=harness.SERVICE_NAME), timeout=10)
    first = next(call)
    call.cancel()
    assert first.status == h.HealthCheckResponse.SERVING


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_http_probes(server, path):
    status, body = harness.http_get(f"http://{server.http_address}{path}")
    assert status == 200, f"GET {path}: {status} {body!r}"


def test_http_metrics(server, stub, stubs, golden):
    stub.Score(harness.request_from_golden(stubs, golden[0]), timeout=30)
    status, body = harness.http_get(f"http://{server.http_address}/metrics")
    assert status == 200, f"GET /metrics: {status}"
    names = sorted({line.split("{")[0].split(" ")[0] for line in body.splitlines()
                    if line.startswith("fusion_")})
    harness.observe("metrics_families", len(names))
    assert names, "no fusion_* metrics in /metrics"


def test_reflection_lists_services(channel):
    try:
        from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
    except ImportError:
        pytest.skip("grpc_reflection is not installed (Debian's python3-grpcio does not ship "
                    "it; no pip here), so server reflection is not checked from Python")
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    req = reflection_pb2.ServerReflectionRequest(list_services="")
    resp = next(stub.ServerReflectionInfo(iter([req]), timeout=10))
    services = {s.name for s in resp.list_services_response.service}
    assert harness.SERVICE_NAME in services, services
    assert "grpc.health.v1.Health" in services, services
