"""Fixtures for the container tests: the CPU image built from this checkout
and run for real by a Docker engine.

Every test here is skipped, with the reason, when no Docker engine answers
(`docker info`); scripts/docker-engine.sh starts one and .ci/run calls it,
so CI always runs them. With an engine, a failure to make the base image or
to build the image fails the tests.

The image is built once per session (deploy/docker/build-image.sh, tagged
FUSION_TEST_IMAGE, default fusionserve:test-<pid>, untagged at the end);
Docker's layer cache and the ccache mount make a rebuild after a source edit
recompile only what changed. FUSION_TEST_IMAGE=fusionserve:cpu
FUSION_TEST_IMAGE_PREBUILT=1 tests an image already built instead.

Figures (image size, build and start times, drain counts) are printed at the
end of the session and written to $FUSION_CONTAINER_FIGURES when set.

Run: /usr/bin/python3 -m pytest tests/containers -q
"""
import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, os.path.join(HERE, "..", "deploy"))
import docker_support as ds  # noqa: E402
import harness  # noqa: E402
from figures import FIGURES, figure  # noqa: E402

_ENGINE_PROBLEM = ds.engine_problem()


def pytest_collection_modifyitems(config, items):
    if _ENGINE_PROBLEM is None:
        return
    skip = pytest.mark.skip(reason=f"container tests: {_ENGINE_PROBLEM}")
    for item in items:
        if str(item.fspath).startswith(HERE):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def image(tmp_path_factory):
    """The CPU image of this checkout, built (or rebuilt from cache) once."""
    ds.remove_containers_of_dead_runs()
    if os.environ.get("FUSION_TEST_IMAGE_PREBUILT") == "1":
        ds.docker("image", "inspect", ds.TEST_IMAGE)
    else:
        log = str(tmp_path_factory.mktemp("image") / "build.log")
        try:
            seconds = ds.run_script("deploy/docker/build-image.sh", ds.TEST_IMAGE,
                                    timeout=3600, log_path=log)
        except ds.DockerError as e:
            pytest.fail(str(e), pytrace=False)
        figure("image_build_s", round(seconds, 1))
        figure("image_build_log", log)
    figure("image_size_mb", round(ds.image_size_bytes(ds.TEST_IMAGE) / 1e6, 1))
    yield ds.TEST_IMAGE
    if os.environ.get("FUSION_TEST_IMAGE_PREBUILT") != "1":
        ds.docker("image", "rm", ds.TEST_IMAGE, check=False)


@pytest.fixture(scope="session")
def stubs(tmp_path_factory):
    return harness.call_or_fail(harness.generate_stubs, str(tmp_path_factory.mktemp("stubs")))


@pytest.fixture(scope="session")
def golden():
    return harness.call_or_fail(harness.load_golden)


@pytest.fixture(scope="session")
def golden_requests(stubs, golden):
    return [harness.request_from_golden(stubs, g) for g in golden]


@pytest.fixture
def container_factory(image):
    """Starts containers of the test image; removes them all afterwards."""
    started = []

    def start(**kwargs):
        c = ds.Container(image, **kwargs)
        started.append(c)
        return c.start()

    yield start
    for c in started:
        c.remove()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not FIGURES:
        return
    terminalreporter.write_sep("-", "container figures")
    for key, value in FIGURES.items():
        terminalreporter.write_line(f"{key}: {json.dumps(value)}")
    path = os.environ.get("FUSION_CONTAINER_FIGURES")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(FIGURES, f, indent=2)
