"""Probes: gRPC health, HTTP /healthz and /readyz, /metrics, reflection."""
import re

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


METHOD = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


def _varint(data, pos):
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _fields(data):
    """(field number, wire type, value) of one message level."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 2:
            length, pos = _varint(data, pos)
            yield number, wire, data[pos:pos + length]
            pos += length
        elif wire == 0:
            value, pos = _varint(data, pos)
            yield number, wire, value
        else:
            raise ValueError(f"unexpected wire type {wire}")


def listed_services(response):
    # ServerReflectionResponse.list_services_response = 6,
    # ListServiceResponse.service = 1, ServiceResponse.name = 1.
    names = []
    for number, _, value in _fields(response):
        if number == 6:
            for _, _, service in _fields(value):
                names += [v.decode() for n, _, v in _fields(service) if n == 1]
    return names


def test_reflection_lists_services(channel):
    # Debian's python3-grpcio has no grpc_reflection module: the request and
    # the response are encoded by hand (a few protobuf wire-format bytes).
    call = channel.stream_stream(METHOD, request_serializer=lambda b: b,
                                 response_deserializer=lambda b: b)
    # ServerReflectionRequest{list_services: ""}: field 7, an empty string.
    responses = list(call(iter([b"\x3a\x00"]), timeout=10))
    assert len(responses) == 1
    services = listed_services(responses[0])
    assert harness.SERVICE_NAME in services, services
    assert "grpc.health.v1.Health" in services, services


def test_readyz_lists_each_version_with_its_state_and_warmup(server):
    status, body = harness.http_get(f"http://{server.http_address}/readyz")
    assert status == 200, body
    lines = body.splitlines()
    assert lines[0] == "ready", body
    version_line = re.compile(
        r"^fusion v1: READY \(load [0-9.]+m?s, warm-up [0-9.]+m?s\)$")
    assert any(version_line.match(line) for line in lines[1:]), body
    harness.observe("readyz_body", body.strip().replace("\n", " | "))
