"""The Docker CLI for the container tests: the engine check, image builds,
containers started with their ports published on 127.0.0.1 only, their
health, stop and exit code, and the removal of everything a test started.

Nothing here depends on pytest. Every container and compose project a test
starts carries the label LABEL, so `docker ps -a --filter label=...` finds
what an interrupted run left behind.
"""
import json
import os
import shutil
import subprocess
import time
import uuid
from typing import Dict, List, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
LABEL = "org.fusionserve.test=tests/containers"
# The image the tests build from this checkout (deploy/docker/build-image.sh):
# a tag of this run's own, so that runs from two checkouts at once do not
# retag each other's image; removed at the end (the layers stay cached).
TEST_IMAGE = os.environ.get("FUSION_TEST_IMAGE") or f"fusionserve:test-{os.getpid()}"
BASE_IMAGE = os.environ.get("FUSION_BASE_IMAGE", "fusionserve/debian:bookworm")
# The Debian Prometheus image of deploy/docker/compose.test.yml.
PROMETHEUS_IMAGE = "fusionserve/prometheus:debian"


class DockerError(RuntimeError):
    """A docker command failed; the message holds its output."""


def docker_cli() -> Optional[str]:
    return shutil.which("docker")


def engine_problem() -> Optional[str]:
    """None when a Docker engine answers, else why not (for a skip reason)."""
    cli = docker_cli()
    if not cli:
        return "no docker CLI on PATH (scripts/docker-engine.sh installs Debian's docker.io)"
    try:
        proc = subprocess.run([cli, "info", "--format", "{{.ServerVersion}}"],
                              capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 20 s"
    if proc.returncode != 0:
        return ("no Docker engine reachable (`docker info`: "
                f"{proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}"
                "); start one with scripts/docker-engine.sh")
    return None


def docker(*args: str, timeout: float = 120, check: bool = True,
           env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([docker_cli() or "docker", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise DockerError(f"docker {' '.join(args)} failed ({proc.returncode}):\n"
                          f"{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
    return proc


def run_script(path: str, *args: str, timeout: float, log_path: str,
               env: Optional[Dict[str, str]] = None) -> float:
    """Runs one of the repository's scripts, its output to log_path; returns
    its wall time in seconds."""
    t0 = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.run([os.path.join(REPO_ROOT, path), *args], stdout=log,
                              stderr=subprocess.STDOUT, cwd=REPO_ROOT, timeout=timeout,
                              env=dict(os.environ, **(env or {})))
    if proc.returncode != 0:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            tail = f.read()[-4000:]
        raise DockerError(f"{path} {' '.join(args)} failed ({proc.returncode}):\n{tail}")
    return time.monotonic() - t0


def image_size_bytes(image: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", image).stdout.strip())


def unique_name(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def free_ports(n: int) -> List[int]:
    """n distinct free TCP ports on 127.0.0.1."""
    import socket
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


# The server's flags in every test container: the image's CMD, the drain
# timing of docker-compose.yml, and fp32 (the tests compare with golden.jsonl
# within 1e-4, which bf16 - AUTO's choice for large batches on some CPUs -
# does not keep; tests/e2e does the same).
SERVER_ARGS = ["--model_repository=/srv/models", "--grpc_address=0.0.0.0:50051",
               "--http_address=0.0.0.0:9090", "--device=cpu", "--precision=fp32",
               "--drain_delay=2s", "--shutdown_timeout=20s"]
# docker stop's grace: more than drain_delay + shutdown_timeout.
STOP_GRACE_S = 30


class Container:
    """One fusion-server container as a platform would run it: read-only root
    file system with a tmpfs on /tmp, no capabilities, no privilege gain, the
    image's unprivileged user, gRPC and HTTP published on 127.0.0.1 only."""

    def __init__(self, image: str, name_prefix: str = "fusionserve-test",
                 args: Sequence[str] = SERVER_ARGS, cpus: Optional[float] = None):
        self.image = image
        self.name = unique_name(name_prefix)
        self.grpc_port, self.http_port = free_ports(2)
        self.args = list(args)
        self.cpus = cpus
        self.started_at: Optional[float] = None

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> "Container":
        cmd = ["run", "--detach", "--name", self.name, "--label", LABEL,
               "--read-only", "--tmpfs", "/tmp:rw,nosuid,nodev,size=64m",
               "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
               "--publish", f"127.0.0.1:{self.grpc_port}:50051",
               "--publish", f"127.0.0.1:{self.http_port}:9090"]
        if self.cpus:
            cmd += ["--cpus", str(self.cpus)]
        self.started_at = time.monotonic()
        docker(*cmd, self.image, *self.args)
        return self

    def inspect(self) -> dict:
        return json.loads(docker("inspect", self.name).stdout)[0]

    def state(self) -> dict:
        return self.inspect()["State"]

    def wait_healthy(self, timeout: float = 180) -> float:
        """Seconds from `docker run` to the HEALTHCHECK's first "healthy"."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state()
            if not state["Running"]:
                raise DockerError(f"{self.name} exited ({state['ExitCode']}) before it was "
                                  f"healthy:\n{self.logs()}")
            health = state.get("Health", {}).get("Status")
            if health == "healthy":
                return time.monotonic() - self.started_at
            if health == "unhealthy":
                raise DockerError(f"{self.name} is unhealthy: "
                                  f"{state['Health'].get('Log', [])[-3:]}\n{self.logs()}")
            time.sleep(0.25)
        raise DockerError(f"{self.name} not healthy after {timeout:.0f} s:\n{self.logs()}")

    def exec(self, *cmd: str, user: Optional[str] = None,
             check: bool = True) -> subprocess.CompletedProcess:
        args = ["exec"] + (["--user", user] if user else []) + [self.name, *cmd]
        return docker(*args, check=check)

    def stop(self, grace_s: int = STOP_GRACE_S) -> float:
        """`docker stop`; returns its wall time in seconds."""
        t0 = time.monotonic()
        docker("stop", "--time", str(grace_s), self.name, timeout=grace_s + 60)
        return time.monotonic() - t0

    def exit_code(self) -> int:
        return int(self.state()["ExitCode"])

    def logs(self, tail: int = 60) -> str:
        proc = docker("logs", "--tail", str(tail), self.name, check=False)
        return proc.stdout + proc.stderr

    def remove(self) -> None:
        docker("rm", "--force", "--volumes", self.name, check=False)


def finished_at(container: str) -> float:
    """When the container's process exited, as a Unix time."""
    import datetime
    text = docker("inspect", "--format", "{{.State.FinishedAt}}", container).stdout.strip()
    whole, _, frac = text.rstrip("Z").partition(".")
    stamp = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc)
    return stamp.timestamp() + float(f"0.{frac or 0}")


def drain_log_lines(logs: str) -> List[str]:
    """The server's log lines about its shutdown (signal, drain time)."""
    return [line for line in logs.splitlines() if "signal" in line or "drain" in line]


def remove_containers_of_dead_runs() -> None:
    """Removes the containers of container-test runs that no longer exist
    (an interrupted run's leftovers), never those of a run still going:
    their names carry the pid of the pytest that started them."""
    out = docker("ps", "--all", "--filter", f"label={LABEL}", "--format",
                 "{{.ID}} {{.Names}}", check=False).stdout
    stale = []
    for line in out.splitlines():
        cid, _, name = line.partition(" ")
        pid = next((int(p) for p in name.split("-") if p.isdigit()), None)
        if pid is None or not os.path.exists(f"/proc/{pid}"):
            stale.append(cid)
    if stale:
        docker("rm", "--force", "--volumes", *stale, check=False)
