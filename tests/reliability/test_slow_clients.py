"""Slow and dead clients, end to end (issue 17, "Overload"): a client that
never reads its ScoreStream, clients SIGKILLed mid-stream, and 1000 idle
connections. For each: other clients see no stall (an open-loop fusion-bench
load runs meanwhile; its p99 stays near the one measured alone), and the
server leaks nothing (fds from /proc/<pid>/fd, RSS, threads, the in-flight
gauge).

Run: /usr/bin/python3 -m pytest tests/reliability/test_slow_clients.py -q
"""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import grpc
import pytest

import harness
import overload_support as ov

VICTIM_RATE = 100  # requests/s of the well-behaved client
IDLE_CONNECTIONS = 1000
SILENT_SOCKETS = 100  # TCP connections that never say a word
KILLED_CLIENTS = 4
KILLED_CLIENT_RATE = 200  # requests/s on each killed client's stream
STREAM_WINDOW = 512  # requests of one stream the server holds (api/stream_reactor)
STUCK_STREAM_REQUESTS = 5000


class VictimLoad:
    """fusion-bench at VICTIM_RATE/s for `seconds` on a thread: the client
    whose latency must not suffer."""

    def __init__(self, server, seconds):
        self.args = [f"--rate={VICTIM_RATE}", f"--duration={seconds}s", "--warmup=0.5s",
                     "--timeout=10s"]
        self.server = server
        self.seconds = seconds
        self.report = None
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            self.report = ov.run_bench(self.server.grpc_address, self.args,
                                       timeout_s=self.seconds + 60)
        except Exception as e:  # reported by result()
            self.error = e

    def __enter__(self):
        self.thread.start()
        time.sleep(0.7)  # past its warmup
        return self

    def __exit__(self, *exc):
        self.thread.join(timeout=self.seconds + 90)

    def result(self):
        assert self.error is None, self.error
        return self.report["runs"][0]


@pytest.fixture(scope="module")
def alone(server):
    """The victim's latency with nobody else around."""
    with VictimLoad(server, 3) as load:
        pass
    run = load.result()
    assert run["errors"] == {}, run["errors"]
    ov.record("slow clients: other client alone, p99 us", run["latency_us"]["p99"])
    return run["latency_us"]


def assert_no_stall(run, alone, what):
    """No error, and the p99 within a few times the one measured alone."""
    latency = run["latency_us"]
    ov.record(f"slow clients: other client during {what}, p99 us", latency["p99"])
    bound_us = 3 * alone["p99"] + 100_000
    assert run["errors"] == {}, f"{what}: the other client got errors {run['errors']}"
    assert latency["count"] >= VICTIM_RATE, f"{what}: only {latency['count']} requests"
    assert latency["p99"] <= bound_us, (
        f"{what}: the other client's p99 went {alone['p99'] / 1000:.1f} -> "
        f"{latency['p99'] / 1000:.1f} ms (bound {bound_us / 1000:.0f} ms)")
    assert latency["max"] <= 2_000_000, f"{what}: a request of the other client took " \
                                        f"{latency['max'] / 1e6:.1f} s"


def server_state(server):
    pid = server.proc.pid
    samples = harness.scrape_metrics(server)
    return {"fds": ov.fd_count(pid), "rss": ov.rss_bytes(pid), "threads": ov.thread_count(pid),
            "inflight": ov.metric(samples, "fusion_inflight_requests"),
            "queued": ov.metric(samples, "fusion_queue_depth"),
            "served": sum(ov.requests_by_code(samples).values())}


def settle(server, before, fd_slack=4, timeout_s=15):
    """Waits until nothing is in flight and the fds are back near `before`;
    returns the state then (or at the timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = server_state(server)
        if (state["inflight"] == 0 and state["queued"] == 0
                and state["fds"] <= before["fds"] + fd_slack) or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


# --- a client that never reads its stream -----------------------------------------

@pytest.fixture(scope="module")
def stuck_stream(server, stubs, alone):
    """A ScoreStream whose client sends STUCK_STREAM_REQUESTS requests (with
    attention: large responses) and never reads one. Once the server has
    stopped taking its requests, the victim load runs for 4 s while the
    stream stays open."""
    golden = harness.load_golden()
    requests = [harness.request_from_golden(stubs, g, attention=1) for g in golden]
    sent = [0]

    def requests_unread():
        for i in range(STUCK_STREAM_REQUESTS):
            sent[0] = i + 1
            yield requests[i % len(requests)]

    channel = grpc.insecure_channel(server.grpc_address)
    stub = stubs.scoring_pb2_grpc.ScoringServiceStub(channel)
    # The same requests on a stream that reads them first: the heap the
    # first attention batches take (~50 MiB here) is not the unread stream's.
    warm = STREAM_WINDOW * 4
    answered = sum(1 for _ in stub.ScoreStream(requests[i % len(requests)]
                                               for i in range(warm)))
    assert answered == warm, answered
    before = server_state(server)
    with ov.ProcessSampler(server.proc.pid) as sampler:
        call = stub.ScoreStream(requests_unread())  # never iterated: nothing read
        stuck = wait_until_served_settles(server)
        with VictimLoad(server, 4) as load:
            pass
    call.cancel()
    channel.close()
    after = settle(server, before)
    ov.record("slow clients: unread stream, requests the server computed",
              stuck["served"] - before["served"])
    ov.record("slow clients: unread stream, RSS MiB (before, stuck, after)", tuple(
        round(x["rss"] / ov.MIB) for x in (before, stuck, after)))
    return {"before": before, "stuck": stuck, "after": after, "victim": load.result(),
            "client_sent": sent[0], "peak_rss": sampler.peak_rss()}


def wait_until_served_settles(server, quiet_s=1.0, timeout_s=40):
    """The server's state once its count of answered requests has not moved
    for `quiet_s` (or at the timeout)."""
    deadline = time.monotonic() + timeout_s
    last, since = server_state(server), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        state = server_state(server)
        if state["served"] != last["served"]:
            last, since = state, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
    return last


def test_a_client_that_never_reads_stalls_no_one(stuck_stream, alone):
    assert_no_stall(stuck_stream["victim"], alone, "a stream nobody reads")


def test_a_client_that_never_reads_leaks_nothing_once_gone(stuck_stream):
    before, after = stuck_stream["before"], stuck_stream["after"]
    assert after["inflight"] == 0 and after["queued"] == 0, after
    assert after["fds"] <= before["fds"] + 4, (before["fds"], after["fds"])
    assert after["threads"] <= before["threads"] + 2, (before["threads"], after["threads"])


@pytest.mark.xfail(strict=False, reason=(
    "partly fixed: server/api/stream_reactor.cc counts unwritten responses "
    "toward the stream's 512, which stopped the server at 2231-2323 of 5000 "
    "requests (it computed all before). The rest is the client's HTTP/2 "
    "window, which the client sets (gRPC's BDP probing grows it): ~1800 "
    "responses of 2,354 bytes, 4.2 MB. RSS: of the 54 MiB, ~51 MiB is the "
    "first attention batches' heap (a stream that reads grows as much, once); "
    "measured after such a stream, an unread stream still adds 23 MiB at 512 "
    "in flight and 1.8 MiB at --max_in_flight_per_stream=64 (2026-12-02)"))
def test_a_client_that_never_reads_is_held_to_a_bounded_buffer(stuck_stream):
    s = stuck_stream
    served = s["stuck"]["served"] - s["before"]["served"]
    growth_mib = (s["stuck"]["rss"] - s["before"]["rss"]) / ov.MIB
    # A bounded server reads about STREAM_WINDOW requests (plus what the
    # transport's flow-control windows hold) and then waits for the reader.
    assert served <= 4 * STREAM_WINDOW, (
        f"the server computed {served} requests of a stream whose client read none "
        f"(the client handed gRPC {s['client_sent']}); its RSS grew {growth_mib:.0f} MiB")
    assert growth_mib <= 20, f"RSS grew {growth_mib:.0f} MiB for one unread stream"


# --- clients SIGKILLed mid-stream -----------------------------------------------------

def test_sigkilled_stream_clients_stall_no_one_and_leak_nothing(server, stubs, alone):
    before = server_state(server)
    script = f"{ov.HERE}/stream_client_process.py"
    killed = 0
    with VictimLoad(server, 2 + 2 * KILLED_CLIENTS) as load:
        for _ in range(KILLED_CLIENTS):
            child = subprocess.Popen(
                [sys.executable, script, server.grpc_address, stubs.out_dir,
                 f"--rate={KILLED_CLIENT_RATE}"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                line = child.stdout.readline()
                assert line.strip() == "streaming", (
                    f"the stream client did not get going: {line!r} "
                    f"{child.stderr.read() if child.poll() is not None else ''}")
                time.sleep(0.5)  # in full flow: requests queued, responses on the way
                child.send_signal(signal.SIGKILL)
                killed += child.wait(timeout=10) == -signal.SIGKILL
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait()
                child.stdout.close()
                child.stderr.close()
    after = settle(server, before)
    ov.record("slow clients: killed streams, (fds, RSS MiB) before -> after",
              ((before["fds"], round(before["rss"] / ov.MIB)),
               (after["fds"], round(after["rss"] / ov.MIB))))
    assert killed == KILLED_CLIENTS
    assert_no_stall(load.result(), alone, "clients killed mid-stream")
    assert after["inflight"] == 0 and after["queued"] == 0, after
    assert after["fds"] <= before["fds"] + 4, (before["fds"], after["fds"])
    assert after["threads"] <= before["threads"] + 2, (before["threads"], after["threads"])
    growth_mib = (after["rss"] - before["rss"]) / ov.MIB
    assert growth_mib <= 40, f"RSS grew {growth_mib:.0f} MiB over {killed} killed streams"


# --- 1000 idle connections --------------------------------------------------------------

def open_files_limit(pid):
    """The soft RLIMIT_NOFILE of a process (conftest.py raised the tests')."""
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                value = line.split()[3]
                return float("inf") if value == "unlimited" else int(value)
    raise AssertionError(f"/proc/{pid}/limits has no open-files line")


def hold_idle_connections(server, stubs, while_held, fds_before):
    """Opens IDLE_CONNECTIONS gRPC connections (each makes one call, then
    idles) and SILENT_SOCKETS TCP connections that never send a byte, calls
    while_held(), closes them all; returns (server fds, server state) while
    they were open."""
    channels, sockets = [], []
    try:
        for _ in range(IDLE_CONNECTIONS):
            # A subchannel pool of its own: one connection per channel.
            channel = grpc.insecure_channel(server.grpc_address,
                                            options=[("grpc.use_local_subchannel_pool", 1)])
            channels.append(channel)
            stubs.scoring_pb2_grpc.ScoringServiceStub(channel).GetModelMetadata(
                stubs.scoring_pb2.GetModelMetadataRequest(), timeout=30)
        for _ in range(SILENT_SOCKETS):
            sockets.append(socket.create_connection(("127.0.0.1", server.grpc_port)))
        # The server accepts the silent sockets on its own threads: give it
        # up to 5 s to hold every connection (a count short of that fails).
        wanted = fds_before + IDLE_CONNECTIONS + SILENT_SOCKETS
        deadline = time.monotonic() + 5.0
        time.sleep(0.5)
        open_fds = ov.fd_count(server.proc.pid)
        while open_fds < wanted and time.monotonic() < deadline:
            time.sleep(0.1)
            open_fds = ov.fd_count(server.proc.pid)
        while_held()
        return open_fds, server_state(server)
    finally:
        for channel in channels:
            channel.close()
        for s in sockets:
            s.close()


def test_a_thousand_idle_connections_stall_no_one_and_leak_nothing(server, stubs, alone):
    needed = IDLE_CONNECTIONS + SILENT_SOCKETS + 64
    for pid, who in ((os.getpid(), "the test"), (server.proc.pid, "the server")):
        if open_files_limit(pid) < needed:
            pytest.fail(f"{who} may open only {open_files_limit(pid)} files, {needed} "
                        "needed: the hard limit (ulimit -Hn) is too low", pytrace=False)
    before = server_state(server)
    loads = []

    def victim_load():
        with VictimLoad(server, 4) as load:
            loads.append(load)

    open_fds, held = hold_idle_connections(server, stubs, victim_load, before["fds"])
    after = settle(server, before)
    # Again: memory the first round left behind (allocator caches) is reused,
    # not added to.
    hold_idle_connections(server, stubs, lambda: None, before["fds"])
    again = settle(server, before)
    connections = IDLE_CONNECTIONS + SILENT_SOCKETS
    ov.record(f"slow clients: {connections} idle connections, fds before/held/after",
              (before["fds"], open_fds, after["fds"]))
    ov.record(f"slow clients: {connections} idle connections, RSS MiB before/held/after/"
              "after a second round", tuple(round(x["rss"] / ov.MIB)
                                            for x in (before, held, after, again)))
    assert open_fds >= before["fds"] + connections, (
        f"the server holds {open_fds - before['fds']} more fds, expected {connections}")
    assert_no_stall(loads[0].result(), alone, f"{connections} idle connections")
    for state in (after, again):
        assert state["fds"] <= before["fds"] + 4, (
            f"fds {before['fds']} -> {open_fds} with the connections -> {state['fds']} "
            f"after they closed")
    growth_mib = (after["rss"] - before["rss"]) / ov.MIB
    assert growth_mib <= 40, (
        f"RSS {before['rss'] / ov.MIB:.0f} -> {held['rss'] / ov.MIB:.0f} MiB with the "
        f"connections -> {after['rss'] / ov.MIB:.0f} MiB after")
    regrowth_mib = (again["rss"] - after["rss"]) / ov.MIB
    assert regrowth_mib <= 8, f"a second round of connections kept {regrowth_mib:.0f} MiB more"
