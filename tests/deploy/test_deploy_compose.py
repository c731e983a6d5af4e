"""docker-compose.yml, validated offline with Debian's docker-compose 1.29
(`config` needs no daemon) and checked against the server and the files it
mounts; the Prometheus config with promtool."""
import os
import shutil
import subprocess

import pytest
import yaml

import deploy_checks as dc

COMPOSE_FILE = os.path.join(dc.REPO_ROOT, "docker-compose.yml")


@pytest.fixture(scope="module")
def compose_config():
    """The file as docker-compose resolves it (`config` validates the schema
    and exits non-zero on any error)."""
    exe = shutil.which("docker-compose")
    if not exe:
        pytest.skip("docker-compose is not installed (scripts/install-deps.sh installs "
                    "Debian's docker-compose); `docker-compose config` not run")
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent/docker.sock")
    proc = subprocess.run([exe, "-f", COMPOSE_FILE, "config"], capture_output=True,
                          text=True, timeout=60, cwd=dc.REPO_ROOT, env=env)
    assert proc.returncode == 0, f"docker-compose config failed:\n{proc.stderr}"
    return yaml.safe_load(proc.stdout)


def test_services(compose_config):
    assert {"fusion-server", "prometheus", "grafana"} <= set(compose_config["services"])


def test_fusion_server_service(compose_config, server_help):
    svc = compose_config["services"]["fusion-server"]
    assert svc["build"]["dockerfile"] == "deploy/docker/Dockerfile"
    assert os.path.exists(os.path.join(svc["build"]["context"], svc["build"]["dockerfile"]))
    args = svc.get("command") or []
    flags = dict(server_help.defaults, **dc.flag_values(args))
    assert set(dc.flag_values(args)) <= server_help.names
    grace = dc.parse_absl_duration(svc.get("stop_grace_period", "10s"))
    drain = dc.parse_absl_duration(flags["drain_delay"])
    shutdown = dc.parse_absl_duration(flags["shutdown_timeout"])
    assert grace > drain + shutdown, (
        f"stop_grace_period {grace} s <= drain_delay {drain} + shutdown_timeout {shutdown}")
    assert svc.get("stop_signal", "SIGTERM") == "SIGTERM"
    targets = {_published(p)[1] for p in svc["ports"]}
    assert {dc.split_host_port(flags["grpc_address"])[1],
            dc.split_host_port(flags["http_address"])[1]} <= targets
    assert flags["model_repository"] == "/srv/models", "the image's bundle is at /srv/models"


def _published(port):
    """(host ip, container port) of a `ports` entry as `config` prints it:
    "IP:HOST:CONTAINER/tcp" or the long form."""
    if isinstance(port, dict):
        return port.get("host_ip", ""), int(port["target"])
    spec = port.split("/")[0].split(":")
    return (spec[0] if len(spec) == 3 else ""), int(spec[-1])


def test_every_port_is_published_on_loopback_by_default(compose_config):
    """Prometheus and Grafana have no real authentication: nothing listens
    beyond 127.0.0.1 unless FUSION_PUBLISH_ADDRESS says so."""
    for name, svc in compose_config["services"].items():
        for port in svc.get("ports", []):
            assert _published(port)[0] == "127.0.0.1", f"{name} publishes {port}"


def _mounts(service):
    """{container path: host path} of a service's bind mounts."""
    out = {}
    for v in service.get("volumes", []):
        if isinstance(v, str):
            parts = v.split(":")
            out[parts[1]] = parts[0]
        elif v.get("type", "bind") == "bind":
            out[v["target"]] = v["source"]
    return out


def test_prometheus_scrapes_the_server(compose_config):
    services = compose_config["services"]
    mounts = _mounts(services["prometheus"])
    host = mounts.get("/etc/prometheus/prometheus.yml")
    assert host and os.path.samefile(host, os.path.join(dc.DEPLOY, "prometheus", "prometheus.yml"))
    with open(host, encoding="utf-8") as f:
        prom = yaml.safe_load(f)
    targets = [t for job in prom["scrape_configs"] for sc in job.get("static_configs", [])
               for t in sc["targets"]]
    http_port = dc.split_host_port(dc.flag_values(
        services["fusion-server"]["command"])["http_address"])[1]
    assert f"fusion-server:{http_port}" in targets, targets
    promtool = shutil.which("promtool")
    if promtool:
        proc = subprocess.run([promtool, "check", "config", host], capture_output=True,
                              text=True, timeout=30)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_grafana_provisioning_is_mounted(compose_config):
    grafana = compose_config["services"]["grafana"]
    mounts = _mounts(grafana)
    prov = mounts.get("/etc/grafana/provisioning")
    dashboards = mounts.get("/var/lib/grafana/dashboards")
    assert prov and os.path.isdir(prov) and dashboards and os.path.isdir(dashboards)
    with open(os.path.join(prov, "datasources", "prometheus.yml"), encoding="utf-8") as f:
        (ds,) = yaml.safe_load(f)["datasources"]
    assert ds["type"] == "prometheus"
    assert ds["url"] == "http://prometheus:9090", "Grafana reaches Prometheus on its in-network port"
    with open(os.path.join(prov, "dashboards", "fusionserve.yml"), encoding="utf-8") as f:
        (provider,) = yaml.safe_load(f)["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    assert os.path.exists(os.path.join(dashboards, "fusionserve.json"))
    home = grafana.get("environment", {}).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        assert os.path.exists(os.path.join(dashboards, os.path.basename(home)))
