"""How the server spreads a model over the CPUs it may use, through the real
server: with nothing set every usable CPU gets an executor with one intra-op
thread; a set instance_count or intra_op_threads shares out the rest; the
plan is logged and GetModelMetadata reports the executors chosen."""
import math
import os
import re

import grpc

import harness

PLAN = re.compile(r"on cpu: (\d+) executor\(s\) x (\d+) intra-op thread\(s\); "
                  r"usable CPUs: (\d+)")


def usable_cpus():
    """What the server should count: its affinity, capped by a cgroup v2
    CPU quota."""
    cpus = len(os.sched_getaffinity(0))
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


def plan_and_metadata(stubs, tmp_path, extra_args, pin_to_one_cpu):
    server = harness.ServerProcess(log_dir=str(tmp_path), extra_args=extra_args)
    if pin_to_one_cpu:
        cpu = min(os.sched_getaffinity(0))
        server.args = ["taskset", "-c", str(cpu)] + server.args
    harness.call_or_fail(server.start)
    try:
        channel = grpc.insecure_channel(server.grpc_address)
        stub = stubs.scoring_pb2_grpc.ScoringServiceStub(channel)
        metadata = stub.GetModelMetadata(stubs.scoring_pb2.GetModelMetadataRequest(),
                                         timeout=10)
        channel.close()
        log = server.log_tail(200)
    finally:
        server.stop()
    match = PLAN.search(log)
    assert match, log
    executors, threads, cpus = (int(g) for g in match.groups())
    assert metadata.batching.instance_count == executors
    assert cpus == (1 if pin_to_one_cpu else usable_cpus())
    return executors, threads, cpus


def test_one_executor_per_usable_cpu_by_default(stubs, tmp_path):
    executors, threads, cpus = plan_and_metadata(stubs, tmp_path, [], False)
    if cpus <= 8:
        assert (executors, threads) == (cpus, 1)
    else:  # capped at 8 executors; the threads grow instead
        assert executors <= 8 and executors * threads <= cpus


def test_one_usable_cpu_gets_one_executor(stubs, tmp_path):
    assert plan_and_metadata(stubs, tmp_path, [], True) == (1, 1, 1)


def test_a_set_instance_count_gets_the_cpus_as_threads(stubs, tmp_path):
    executors, threads, cpus = plan_and_metadata(
        stubs, tmp_path, ["--instance_count=1"], False)
    assert (executors, threads) == (1, cpus)


def test_set_threads_get_the_cpus_shared_into_executors(stubs, tmp_path):
    executors, threads, cpus = plan_and_metadata(
        stubs, tmp_path, ["--intra_op_threads=2"], False)
    assert threads == 2
    assert executors == max(1, cpus // 2)
