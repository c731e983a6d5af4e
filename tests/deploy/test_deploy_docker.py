"""deploy/docker/Dockerfile{,.cuda} and .dockerignore, checked without a
Docker engine: stage structure, user, ports, health check, stop signal, that
the build reuses scripts/install-deps.sh, that the CMD's flags are the
server's, and how the CPU runtime gets its libraries. tests/containers
builds and runs the CPU image."""
import os
import re
import shutil
import subprocess

import pytest

import deploy_checks as dc

DOCKER = os.path.join(dc.DEPLOY, "docker")
DOCKERFILES = ["Dockerfile", "Dockerfile.cuda"]


@pytest.fixture(scope="module", params=DOCKERFILES)
def dockerfile(request):
    return dc.parse_dockerfile(os.path.join(DOCKER, request.param))


def test_build_and_runtime_stages_on_bookworm(dockerfile):
    names = [s.name for s in dockerfile.stages]
    assert "build" in names and names[-1] == "runtime", (dockerfile.path, names)
    args = {a.args.split("=", 1)[0]: a.args.split("=", 1)[1] for a in dockerfile.global_args
            if a.keyword == "ARG" and "=" in a.args}
    earlier = set()
    for stage in dockerfile.stages:
        base = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), stage.base)
        assert base.startswith("debian:bookworm") or base in earlier, (
            f"{stage.name} stage FROM {base}")
        earlier.add(stage.name)


def test_build_runs_install_deps(dockerfile):
    """The build installs its packages with scripts/install-deps.sh (in the
    build stage or a stage it is FROM)."""
    build = dockerfile.stage("build")
    stages = [build] + [s for s in dockerfile.stages if s.name == build.base]
    assert any("scripts/install-deps.sh" in dc.copy_sources(s) for s in stages)
    runs = [i.args for s in stages for i in s.all("RUN")]
    assert any(re.search(r"(^|\s|/)scripts/install-deps\.sh\b", r) for r in runs), (
        f"{dockerfile.path}: the build does not run scripts/install-deps.sh")


def test_build_stage_copies_every_cmake_subdirectory(dockerfile):
    with open(os.path.join(dc.REPO_ROOT, "CMakeLists.txt"), encoding="utf-8") as f:
        subdirs = re.findall(r"^\s*add_subdirectory\(\s*([\w./-]+)", f.read(), re.M)
    copied = {p.rstrip("/") for p in dc.copy_sources(dockerfile.stage("build"))}
    assert "CMakeLists.txt" in copied
    missing = [d for d in subdirs if d.rstrip("/") not in copied and "." not in copied]
    assert not missing, f"{dockerfile.path}: the build stage does not COPY {missing}"


def test_runtime_stage(dockerfile):
    rt = dockerfile.final
    user = rt.last("USER")
    assert user, f"{dockerfile.path}: the runtime stage runs as root (no USER)"
    uid = user.args.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, (
        f"USER {user.args}: use a numeric non-zero uid (Kubernetes' runAsNonRoot "
        "can only verify numbers)")
    assert {50051, 9090} <= dc.exposed_ports(rt)
    assert rt.last("STOPSIGNAL") and rt.last("STOPSIGNAL").args == "SIGTERM"
    hc = rt.last("HEALTHCHECK")
    assert hc and ("/readyz" in hc.args or "fusion-client\", \"health" in hc.args), (
        f"{dockerfile.path}: HEALTHCHECK neither polls /readyz nor asks gRPC health")
    assert "models" in dc.copy_sources(rt), "the default bundle is not in the image"
    assert not any("install-deps" in i.args for i in rt.all("RUN")), (
        "the runtime stage installs the build dependencies")
    dev = [p for p in dc.apt_installed(rt) if p.endswith("-dev")]
    assert not dev, f"-dev packages in the runtime stage: {dev}"


def test_entrypoint_cmd_and_healthcheck_agree(dockerfile, server_help):
    rt = dockerfile.final
    entrypoint = dc.exec_form(rt.last("ENTRYPOINT"))
    cmd = dc.exec_form(rt.last("CMD"))
    assert entrypoint and entrypoint[0].endswith("/fusion-server") and len(entrypoint) == 1, (
        "ENTRYPOINT should be the bare binary so that compose `command` and "
        "Kubernetes `args` give the whole flag list")
    flags = dc.flag_values(cmd)
    assert set(flags) <= server_help.names, set(flags) - server_help.names
    http_port = dc.split_host_port(flags.get("http_address",
                                             server_help.defaults["http_address"]))[1]
    grpc_port = dc.split_host_port(flags.get("grpc_address",
                                             server_help.defaults["grpc_address"]))[1]
    assert {grpc_port, http_port} <= dc.exposed_ports(rt)
    probe = rt.last("HEALTHCHECK").args
    assert (f":{http_port}/readyz" in probe
            or f"--target=127.0.0.1:{grpc_port}\"" in probe), (
        f"HEALTHCHECK does not probe the ports CMD sets: {probe}")
    repo = flags.get("model_repository")
    assert repo and any(i.args.split()[-1].rstrip("/") == repo for i in rt.all("COPY")
                        if i.args.split()[0] == "models"), (
        f"--model_repository={repo} is not where the bundle is copied")


def test_cuda_dockerfile_says_it_is_unverified():
    with open(os.path.join(DOCKER, "Dockerfile.cuda"), encoding="utf-8") as f:
        text = f.read()
    assert "UNVERIFIED" in text and "cannot be built" in text, (
        "Dockerfile.cuda must say that it cannot be built here and is unverified")
    cuda = dc.parse_dockerfile(os.path.join(DOCKER, "Dockerfile.cuda"))
    assert "--device=cuda" in dc.exec_form(cuda.final.last("CMD"))
    build_args = {a.args.split("=")[0] for s in cuda.stages for a in s.all("ARG")}
    assert {"LIBTORCH_URL", "CUDA_VERSION"} <= build_args


def test_cpu_runtime_takes_the_libraries_the_binaries_load():
    """The CPU image installs no runtime packages: runtime-libs.sh collects
    what `ldd` lists for the shipped binaries in the build stage, the libs
    stage keeps what the base lacks, and the runtime stage copies that.
    tests/containers checks the built image (ldd inside it, golden requests,
    the libraries a running server maps)."""
    df = dc.parse_dockerfile(os.path.join(DOCKER, "Dockerfile"))
    build_runs = " ".join(i.args for i in df.stage("build").all("RUN"))
    assert re.search(r"runtime-libs\.sh collect /out/libs /out/bin/\*", build_runs)
    libs = df.stage("libs")
    libs_runs = " ".join(i.args for i in libs.all("RUN"))
    assert "runtime-libs.sh select" in libs_runs and "from=deps" in libs_runs
    assert "--from=build /out/libs/ /libs-list/" in [i.args for i in libs.all("COPY")]
    copies = [i.args for i in df.final.all("COPY")]
    assert "--from=libs /out/ /" in copies and "--from=build /out/bin/ /usr/local/bin/" in copies
    assert not dc.apt_installed(df.final), "the CPU runtime stage installs packages again"
    assert os.access(os.path.join(DOCKER, "runtime-libs.sh"), os.X_OK)


# --- .dockerignore -----------------------------------------------------------------

def test_dockerignore_keeps_what_the_images_copy_and_drops_the_rest():
    patterns = dc.read_dockerignore(os.path.join(dc.REPO_ROOT, ".dockerignore"))
    needed = {"models/fusion/1/model.pt", "models/fusion/1/config.pbtxt",
              "models/fusion/1/vocab.txt", "scripts/install-deps.sh"}
    for name in DOCKERFILES:
        df = dc.parse_dockerfile(os.path.join(DOCKER, name))
        for stage in df.stages:
            needed |= set(dc.copy_sources(stage))
    kept_out = sorted(p for p in needed if dc.dockerignore_excludes(patterns, p))
    assert not kept_out, f".dockerignore leaves out what the Dockerfiles COPY: {kept_out}"
    for path in ("build/server/fusion-server", "build-tsan/CMakeCache.txt", ".git/HEAD",
                 "tests/e2e/harness.py", "model/__pycache__/x.pyc"):
        assert dc.dockerignore_excludes(patterns, path), f"{path} is sent to the daemon"


def _assemble_build_context(stage, patterns, dest_root):
    """Copies what the stage's COPY instructions take from the build context
    (minus what .dockerignore leaves out) to where they land under WORKDIR."""
    workdir = (stage.last("WORKDIR").args if stage.last("WORKDIR") else "/").strip()
    for ins in stage.all("COPY"):
        words = [w for w in ins.args.split() if not w.startswith("--")]
        if any(w.startswith("--from") for w in ins.args.split()):
            continue
        *sources, dest = words
        for src in sources:
            # An absolute destination is under the image's root, never the host's.
            target = os.path.join(dest_root, workdir.lstrip("/"), dest) \
                if not dest.startswith("/") else os.path.join(dest_root, dest.lstrip("/"))
            if dest.endswith("/") or len(sources) > 1:
                target = os.path.join(target, os.path.basename(src.rstrip("/")))
            full = os.path.join(dc.REPO_ROOT, src)
            if os.path.isdir(full):
                def ignore(directory, names, src=src):
                    rel = os.path.relpath(directory, dc.REPO_ROOT)
                    return [n for n in names
                            if dc.dockerignore_excludes(patterns, os.path.join(rel, n))]
                shutil.copytree(full, target, ignore=ignore, dirs_exist_ok=True)
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy2(full, target)
    return os.path.join(dest_root, workdir.lstrip("/"))


def test_build_stage_context_configures_and_has_the_targets(tmp_path):
    """The files the CPU build stage COPYs (through .dockerignore) are enough
    for CMake to configure, and every FUSION_TARGETS is a target there: the
    image build's cmake steps, minus the compiling."""
    cmake = shutil.which("cmake")
    if not cmake:
        pytest.fail("cmake is not installed (scripts/install-deps.sh installs it)",
                    pytrace=False)
    df = dc.parse_dockerfile(os.path.join(DOCKER, "Dockerfile"))
    build = df.stage("build")
    patterns = dc.read_dockerignore(os.path.join(dc.REPO_ROOT, ".dockerignore"))
    src = _assemble_build_context(build, patterns, str(tmp_path / "root"))
    proc = subprocess.run([cmake, "-S", src, "-B", os.path.join(src, "build"),
                           "-DCMAKE_BUILD_TYPE=Release"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"cmake configure failed:\n{proc.stdout[-3000:]}{proc.stderr}"
    proc = subprocess.run([cmake, "--build", os.path.join(src, "build"), "--target", "help"],
                          capture_output=True, text=True, timeout=60)
    targets = set(re.findall(r"^\.\.\. (\S+)", proc.stdout, re.M))
    build_args = {a.args.split("=", 1)[0]: a.args.split("=", 1)[1].strip('"')
                  for a in build.all("ARG") if "=" in a.args}
    wanted = build_args["FUSION_TARGETS"].split()
    assert "fusion-server" in wanted
    missing = [t for t in wanted if t not in targets]
    assert not missing, f"FUSION_TARGETS {missing} are not CMake targets"
