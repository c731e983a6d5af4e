"""OpenBLAS's kernel choice through the real server: on a CPU that the
installed OpenBLAS does not know, it falls back to its generic Prescott
kernels; the server restarts itself with the widest kernels the CPU runs,
says so in its log and in fusion_build_info, and keeps a choice the user
made with OPENBLAS_CORETYPE."""
import re

import pytest

import harness


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def blas_kernels_label(server):
    for key in harness.scrape_metrics(server):
        if key.startswith("fusion_build_info{"):
            match = re.search(r'blas_kernels="([^"]*)"', key)
            assert match, key
            return match.group(1)
    raise AssertionError("no fusion_build_info in /metrics")


def kernels_and_log(tmp_path, env):
    """Starts a server with `env`; its blas_kernels label and its log.
    Skips when LibTorch's BLAS is not OpenBLAS here."""
    server = harness.ServerProcess(log_dir=str(tmp_path), env=env)
    harness.call_or_fail(server.start)
    try:
        kernels, log = blas_kernels_label(server), server.log_tail(200)
    finally:
        server.stop()
    if kernels == "none":
        pytest.skip("this server's LibTorch does not use OpenBLAS")
    return kernels, log


def test_never_runs_the_generic_kernels_on_an_avx2_cpu(tmp_path):
    if not {"avx2", "fma"} <= cpu_flags():
        pytest.skip("this CPU runs no OpenBLAS kernels wider than Prescott's")
    kernels, log = kernels_and_log(tmp_path, {"OPENBLAS_CORETYPE": None})
    assert kernels != "Prescott", log
    assert f"OpenBLAS kernels: {kernels}" in log
    restarted = re.search(r"restarting with OPENBLAS_CORETYPE=(\w+)", log)
    if restarted:  # this OpenBLAS did not know the CPU
        assert restarted.group(1) == kernels
        assert log.count("restarting with") == 1, log


def test_keeps_the_kernels_the_user_chose(tmp_path):
    # Prescott too: an explicit choice is the user's, however slow.
    choices = ["Prescott"] + (["Haswell"] if {"avx2", "fma"} <= cpu_flags() else [])
    for chosen in choices:
        kernels, log = kernels_and_log(tmp_path, {"OPENBLAS_CORETYPE": chosen})
        assert kernels == chosen, log
        assert "restarting with" not in log
