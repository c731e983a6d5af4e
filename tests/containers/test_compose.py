"""docker-compose.yml for real: the server and Prometheus come up together
(Prometheus from Debian's package, through deploy/docker/compose.test.yml),
Prometheus scrapes the server, counts the test's requests, evaluates every
Grafana dashboard query, and compose's stop drains the server under load.

Uses Debian's docker-compose 1.29 (`docker compose` v2 is not packaged for
bookworm); the files are v2-compatible. The tests share one compose project
and run in file order; the last one stops the server.
"""
import json
import os
import shutil
import subprocess
import time

import grpc
import pytest

import deploy_checks as dc
import docker_support as ds
import harness
from closed_loop_load import ClosedLoopLoad
from figures import figure
from prometheus_api import PrometheusApi

COMPOSE_FILES = ["docker-compose.yml", "deploy/docker/compose.test.yml"]
DASHBOARD = os.path.join(dc.DEPLOY, "grafana", "dashboards", "fusionserve.json")
# Exported only by CUDA builds (deploy/README.md); unverifiable on a CPU.
GPU_METRICS = {"fusion_gpu_memory_allocated_bytes", "fusion_gpu_memory_reserved_bytes"}
GRAFANA_VARIABLES = {"datasource": "prometheus", "instance": ".*", "model": ".*",
                     "__rate_interval": "2m", "__interval": "5s", "__range": "5m"}
IN_FLIGHT = 100


class ComposeProject:
    def __init__(self, image):
        self.exe = shutil.which("docker-compose")
        self.name = ds.unique_name("fusionserve-compose")
        grpc_port, http_port, prom_port = ds.free_ports(3)
        self.env = dict(os.environ, FUSION_IMAGE=image, FUSION_PUBLISH_ADDRESS="127.0.0.1",
                        FUSION_GRPC_PORT=str(grpc_port), FUSION_HTTP_PORT=str(http_port),
                        PROMETHEUS_PORT=str(prom_port), FUSION_BASE_IMAGE=ds.BASE_IMAGE,
                        # The Prometheus image needs no BuildKit; compose's own
                        # builder needs no buildx.
                        COMPOSE_DOCKER_CLI_BUILD="0", DOCKER_BUILDKIT="0")
        self.grpc_target = f"127.0.0.1:{grpc_port}"
        self.http_base = f"http://127.0.0.1:{http_port}"
        self.prometheus = PrometheusApi(f"http://127.0.0.1:{prom_port}")

    def run(self, *args, timeout=600):
        cmd = [self.exe, "--project-name", self.name, "--project-directory", ds.REPO_ROOT]
        for f in COMPOSE_FILES:
            cmd += ["--file", os.path.join(ds.REPO_ROOT, f)]
        proc = subprocess.run(cmd + list(args), capture_output=True, text=True,
                              timeout=timeout, env=self.env, cwd=ds.REPO_ROOT)
        if proc.returncode != 0:
            raise ds.DockerError(f"docker-compose {' '.join(args)} failed "
                                 f"({proc.returncode}):\n{proc.stdout[-2000:]}"
                                 f"{proc.stderr[-4000:]}")
        return proc.stdout

    def container(self, service):
        return self.run("ps", "--quiet", service).strip()


@pytest.fixture(scope="module")
def project(image):
    if not shutil.which("docker-compose"):
        pytest.fail("docker-compose is not installed (scripts/install-deps.sh installs "
                    "Debian's docker-compose)", pytrace=False)
    p = ComposeProject(image)
    try:
        t0 = time.monotonic()
        p.run("build", "prometheus", timeout=1200)
        figure("compose_prometheus_image_build_s", round(time.monotonic() - t0, 1))
        t0 = time.monotonic()
        p.run("up", "--detach", "--no-build", "fusion-server", "prometheus")
        server = p.container("fusion-server")
        deadline = t0 + 180
        while ds.docker("inspect", "--format", "{{.State.Health.Status}}",
                        server).stdout.strip() != "healthy":
            assert time.monotonic() < deadline, (
                "compose's fusion-server not healthy in 180 s:\n"
                + ds.docker("logs", "--tail", "50", server, check=False).stderr)
            time.sleep(0.25)
        figure("compose_up_to_server_healthy_s", round(time.monotonic() - t0, 2))
        while not p.prometheus.ready():
            assert time.monotonic() < deadline, "Prometheus not ready in 180 s"
            time.sleep(0.25)
        yield p
    finally:
        p.run("down", "--volumes", "--remove-orphans", "--timeout", "30")


def test_prometheus_reports_the_server_target_up(project):
    t0 = time.monotonic()
    state, result = project.prometheus.wait(
        'up{job="fusion-server"}', lambda r: bool(r) and r[0]["value"][1] == "1", timeout=60)
    assert state == "success" and result and result[0]["value"][1] == "1", (
        f"the server's target is not up in Prometheus: {result}")
    assert result[0]["metric"]["instance"] == "fusion-server:9090"
    figure("compose_target_up_after_ready_s", round(time.monotonic() - t0, 2))


def test_fusion_requests_total_rises_after_requests(project, stubs, golden):
    query = "sum(fusion_requests_total)"
    before = project.prometheus.scalar(query) or 0.0
    requests = 2 * len(golden)
    with grpc.insecure_channel(project.grpc_target) as channel:
        stub = stubs.scoring_pb2_grpc.ScoringServiceStub(channel)
        for i in range(requests):
            stub.Score(harness.request_from_golden(stubs, golden[i % len(golden)]), timeout=30)
    t0 = time.monotonic()
    state, result = project.prometheus.wait(
        query, lambda r: bool(r) and float(r[0]["value"][1]) >= before + requests, timeout=60)
    after = float(result[0]["value"][1]) if state == "success" and result else None
    figure("compose_requests_total", {"before": before, "after": after, "sent": requests,
                                      "seen_after_s": round(time.monotonic() - t0, 2)})
    assert after is not None and after >= before + requests, (
        f"Prometheus' {query} went from {before} to {after} after {requests} requests")


def test_every_dashboard_metric_is_in_a_real_scrape(project):
    """Each metric name in every Grafana expression appears in the running
    server's /metrics (the CUDA-only GPU gauges excepted)."""
    status, body = harness.http_get(f"{project.http_base}/metrics", timeout=5)
    assert status == 200
    exported = dc.exposition_names(body)
    with open(DASHBOARD, encoding="utf-8") as f:
        expressions = dc.grafana_expressions(json.load(f))
    assert expressions
    unknown = {}
    for where, expr in expressions:
        names = dc.promql_metric_names(expr)
        assert names, f"{where}: no metric name in {expr!r}"
        if names - exported - GPU_METRICS:
            unknown[where] = sorted(names - exported - GPU_METRICS)
    assert not unknown, f"dashboard metrics the server does not export: {unknown}"
    figure("dashboard_expressions_checked", len(expressions))


def test_every_dashboard_query_returns_data(project, stubs, golden, golden_requests):
    """Compose's Prometheus evaluates every dashboard query (variables at
    "All") to at least one series while traffic runs, one request of it
    refused; the GPU ones to none (CPU build). The traffic is this test's
    own: the panels' rates look 2 minutes back, and on a slow run the
    earlier tests' requests were older than that."""
    with open(DASHBOARD, encoding="utf-8") as f:
        expressions = dc.grafana_expressions(json.load(f))
    with grpc.insecure_channel(project.grpc_target) as channel:
        stub = stubs.scoring_pb2_grpc.ScoringServiceStub(channel)
        bad = harness.request_from_golden(stubs, golden[0], by_ids=True)
        bad.token_ids[0] = 10**6  # outside the vocabulary: INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as refused:
            stub.Score(bad, timeout=30)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value
    load = ClosedLoopLoad(project.grpc_target, stubs.scoring_pb2_grpc.ScoringServiceStub,
                          golden_requests, in_flight=4).start()
    try:
        assert load.wait_for_ok(20, timeout=60), load.outcomes.summary()
        errors, empty = _evaluate_dashboard(project, expressions)
    finally:
        load.stop()
    assert not errors, "Prometheus rejects:\n" + "\n".join(errors)
    assert not empty, "no data:\n" + "\n".join(empty)


def _evaluate_dashboard(project, expressions):
    """(queries Prometheus rejects, queries without data), each named by its
    panel."""

    def has_data(result):
        return any(r["value"][1] not in ("NaN", "+Inf", "-Inf") for r in result)

    errors, empty = [], []
    for where, expr in expressions:
        promql = dc.substitute_grafana_variables(expr, GRAFANA_VARIABLES)
        gpu = bool(dc.promql_metric_names(expr) & GPU_METRICS)
        state, result = project.prometheus.wait(promql, has_data, timeout=0 if gpu else 30)
        if state != "success":
            errors.append(f"{where}: {promql}: {result}")
        elif not gpu and not has_data(result):
            empty.append(f"{where}: {promql}")
    return errors, empty


def test_compose_stop_under_load_loses_no_request(project, stubs, golden_requests):
    """`docker-compose stop` (SIGTERM, stop_grace_period 30 s) with 100
    requests in flight: as under `docker stop`, every request ends OK or
    UNAVAILABLE before it started, and the server exits 0."""
    server = project.container("fusion-server")
    load = ClosedLoopLoad(project.grpc_target, stubs.scoring_pb2_grpc.ScoringServiceStub,
                          golden_requests, in_flight=IN_FLIGHT).start()
    try:
        assert load.wait_for_ok(2 * IN_FLIGHT, timeout=60), load.outcomes.summary()
        t0, stop_issued = time.monotonic(), time.time()
        project.run("stop", "fusion-server", timeout=120)
        stop_s = time.monotonic() - t0
        time.sleep(1.0)
    finally:
        outcomes = load.stop()
    summary = outcomes.summary()
    exit_code = int(ds.docker("inspect", "--format", "{{.State.ExitCode}}",
                              server).stdout.strip())
    logs = ds.docker("logs", "--tail", "40", server, check=False)
    exited_after_s = ds.finished_at(server) - stop_issued
    figure("compose_stop_drain", dict(summary, stop_s=round(stop_s, 2), exit_code=exit_code,
                                      server_exited_after_s=round(exited_after_s, 2),
                                      server_log=ds.drain_log_lines(logs.stdout + logs.stderr)))
    assert summary["cancelled"] == 0 and not outcomes.lost(), (
        f"requests lost under compose stop: {outcomes.lost()}\nall: {summary}\n"
        f"{logs.stdout}{logs.stderr}")
    assert exit_code == 0, f"exit code {exit_code}\n{logs.stdout}{logs.stderr}"
    assert exited_after_s < 30, f"the server exited {exited_after_s:.1f} s after the stop: " \
        "past stop_grace_period"
