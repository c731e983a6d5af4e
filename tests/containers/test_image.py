"""The CPU image as built: who it runs as, and that its runtime stage holds
the libraries the binaries load and nothing else beyond the base (checked
with `ldd` inside the image, and against what a running server maps)."""
import json
import os
import re
import subprocess

import docker_support as ds
import harness
from figures import figure

BINARIES = ["/usr/local/bin/fusion-server", "/usr/local/bin/fusion-client",
            "/usr/local/bin/fusion-bench"]


def run_in_image(image, *cmd, entrypoint="/bin/sh"):
    """A throwaway container of `image` (no network) running `cmd`."""
    return ds.docker("run", "--rm", "--network", "none", "--label", ds.LABEL,
                     "--entrypoint", entrypoint, image, *cmd, timeout=120).stdout


def test_runs_as_uid_10001_with_a_healthcheck(image):
    config = json.loads(ds.docker("image", "inspect", "--format", "{{json .Config}}",
                                  image).stdout)
    assert config["User"] == "10001:10001", config["User"]
    assert config["Healthcheck"]["Test"][0] == "CMD", config["Healthcheck"]
    assert run_in_image(image, "-c", "id -u; id -g").split() == ["10001", "10001"]


def _ldd_paths(listing):
    return {m for m in re.findall(r"=> (/\S+)", listing)}


def test_every_library_resolves_inside_the_image(image):
    listing = run_in_image(image, *BINARIES, entrypoint="/usr/bin/ldd")
    assert "not found" not in listing, listing
    assert len(_ldd_paths(listing)) > 100, "ldd listed suspiciously few libraries"


def test_runtime_adds_only_libraries_the_binaries_load(image):
    """Every shared library the image has beyond its base is one that `ldd`
    lists for the binaries; no compiler, no -dev package, no apt cache."""
    find = ("find / -xdev \\( -name '*.so' -o -name '*.so.*' \\) "
            "\\( -type f -o -type l \\) -exec readlink -f {} + | sort -u")
    base_libs = set(run_in_image(ds.BASE_IMAGE, "-c", find).split())
    image_libs = set(run_in_image(image, "-c", find).split())
    resolved = run_in_image(image, "-c", "ldd " + " ".join(BINARIES) +
                            " | awk '$2 == \"=>\" {print $3}' | xargs readlink -f | sort -u")
    needed = set(resolved.split())
    extra = sorted(image_libs - base_libs - needed)
    assert not extra, f"libraries in the image that no binary loads: {extra[:20]}"
    figure("runtime_libraries_added", len(image_libs - base_libs))
    tools = run_in_image(image, "-c", "for t in gcc g++ cc c++ cmake make apt-get; do "
                         "command -v $t || true; done").split()
    assert tools == ["/usr/bin/apt-get"], f"build tools in the runtime image: {tools}"
    dev = run_in_image(image, "-c", "cat /var/lib/dpkg/status /var/lib/dpkg/status.d/* "
                       "| sed -n 's/^Package: //p' | grep -- '-dev$' || true").split()
    assert not dev, f"-dev packages recorded in the image: {dev}"
    recorded = set(run_in_image(image, "-c", "ls /var/lib/dpkg/status.d").split())
    assert {"libtorch1.13", "libgrpc++1.51", "libopenblas0-pthread"} <= recorded, (
        "the added libraries' packages are not recorded for image scanners")


def test_server_loads_no_library_that_ldd_does_not_list(stubs, golden, tmp_path):
    """A library the server opens with dlopen() would be missing from the
    image (runtime-libs.sh copies what `ldd` lists). Run the locally built
    server, score the golden requests, and compare what it has mapped."""
    import grpc
    srv = harness.ServerProcess(log_dir=str(tmp_path))
    harness.call_or_fail(srv.start)
    try:
        with grpc.insecure_channel(srv.grpc_address) as channel:
            stub = stubs.scoring_pb2_grpc.ScoringServiceStub(channel)
            for g in golden:
                stub.Score(harness.request_from_golden(stubs, g, attention=1), timeout=30)
        # The server may have re-executed itself (OPENBLAS_CORETYPE): same pid.
        with open(f"/proc/{srv.proc.pid}/maps", encoding="utf-8") as f:
            mapped = {os.path.realpath(line.split()[-1]) for line in f
                      if re.search(r"\.so(\.|$)", line.split()[-1])}
    finally:
        srv.stop()
    listing = subprocess.run(["ldd", srv.binary], capture_output=True, text=True,
                             check=True).stdout
    listed = {os.path.realpath(p) for p in _ldd_paths(listing)}
    listed |= {os.path.realpath(p) for p in re.findall(r"^\s*(/\S+) \(", listing, re.M)}
    assert mapped, "read no mapped libraries"
    unlisted = sorted(mapped - listed)
    assert not unlisted, f"the server loaded libraries ldd does not list: {unlisted}"
