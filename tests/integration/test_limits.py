"""The limits that protect the server, each at its edge: a request exactly at
the limit is served, one just past it gets the status docs/security.md
("Limits") promises, and the server serves on.

One server with small limits: --max_message_bytes=8192,
--max_text_bytes=1000, --http_max_body_bytes=4096,
--max_concurrent_streams=2, and --max_queue_size=600 (above the 512
requests one stream may have in the server by default, so a flooding stream
is slowed, never refused). --max_in_flight_per_stream is tested on servers
of its own.
"""
import json
import queue
import subprocess
import threading

import grpc
import pytest

import harness
import v2_support as v2

MAX_MESSAGE_BYTES = 8192
MAX_TEXT_BYTES = 1000
HTTP_MAX_BODY_BYTES = 4096
MAX_CONCURRENT_STREAMS = 2
MAX_QUEUE_SIZE = 600
RPC_TIMEOUT_S = 60
WAIT_S = 30  # for answers that must come (a loaded 2-core machine)
SILENT_S = 2  # for an answer that must not come while a stream is held


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = harness.ServerProcess(
        [f"--max_message_bytes={MAX_MESSAGE_BYTES}", f"--max_text_bytes={MAX_TEXT_BYTES}",
         f"--http_max_body_bytes={HTTP_MAX_BODY_BYTES}",
         f"--max_concurrent_streams={MAX_CONCURRENT_STREAMS}",
         f"--max_queue_size={MAX_QUEUE_SIZE}"],
        log_dir=str(tmp_path_factory.mktemp("limits")))
    harness.call_or_fail(srv.start)
    yield srv
    srv.stop()


def new_channel(server):
    """A channel with its own connection (limits per connection are tested)."""
    return grpc.insecure_channel(server.grpc_address,
                                 options=[("grpc.use_local_subchannel_pool", 1)])


@pytest.fixture
def stub(stubs, server):
    with new_channel(server) as ch:
        yield stubs.scoring_pb2_grpc.ScoringServiceStub(ch)


def with_size(stubs, g, size):
    """The golden request with request_id padded so that it serializes to
    exactly `size` bytes."""
    req = harness.request_from_golden(stubs, g, request_id="")
    base = req.ByteSize()
    for n in range(max(0, size - base - 4), size - base + 1):
        req.request_id = "x" * n
        if req.ByteSize() == size:
            return req
    raise AssertionError(f"no request_id gives {size} bytes")


def test_grpc_message_size_edge(stubs, golden, stub):
    at = stub.Score(with_size(stubs, golden[0], MAX_MESSAGE_BYTES), timeout=RPC_TIMEOUT_S)
    assert abs(at.score - golden[0].score) <= v2.TOL_GOLDEN
    with pytest.raises(grpc.RpcError) as over:
        stub.Score(with_size(stubs, golden[0], MAX_MESSAGE_BYTES + 1), timeout=RPC_TIMEOUT_S)
    assert over.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(MAX_MESSAGE_BYTES) in over.value.details()
    # The same connection serves on.
    stub.Score(harness.request_from_golden(stubs, golden[1]), timeout=RPC_TIMEOUT_S)


def test_text_bytes_edge_grpc(stubs, golden, stub):
    g = golden[0]
    at = stub.Score(harness.request_from_golden(stubs, g, text="ab " * 333 + "a"),
                    timeout=RPC_TIMEOUT_S)
    assert at.truncated  # 1000 bytes: served (far more than 128 tokens)
    with pytest.raises(grpc.RpcError) as over:
        stub.Score(harness.request_from_golden(stubs, g, text="ab " * 333 + "ab"),
                   timeout=RPC_TIMEOUT_S)
    assert over.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert over.value.details() == (f"text: {MAX_TEXT_BYTES + 1} bytes exceed the server's "
                                    f"limit of {MAX_TEXT_BYTES} (--max_text_bytes)")


def test_text_bytes_edge_counts_bytes_not_characters(stubs, golden, stub):
    # 500 two-byte characters: 1000 bytes; one more: 1002.
    at = stub.Score(harness.request_from_golden(stubs, golden[0], text="é" * 500),
                    timeout=RPC_TIMEOUT_S)
    assert at.score >= 0
    with pytest.raises(grpc.RpcError) as over:
        stub.Score(harness.request_from_golden(stubs, golden[0], text="é" * 501),
                   timeout=RPC_TIMEOUT_S)
    assert over.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_text_bytes_edge_http(golden, server):
    g = golden[0]
    for text, status in (("ab " * 333 + "a", 200), ("ab " * 333 + "ab", 400)):
        req = v2.V2Request(inputs=[v2.text_tensor([text]), v2.features_tensor([g.feature_vector])])
        r, _ = v2.http_infer(server.http_address, req)
        assert r.status == status, r.body
        if status == 400:
            assert "--max_text_bytes" in r.error()


def test_token_ids_edge(stubs, golden, stub):
    g = golden[0]
    max_tokens = harness.load_config(stubs).max_tokens
    filler = g.token_ids[1]
    ids = lambda n: [g.token_ids[0]] + [filler] * (n - 2) + [g.token_ids[-1]]  # noqa: E731
    at = stub.Score(ids_request(stubs, g, ids(max_tokens)), timeout=RPC_TIMEOUT_S)
    assert at.score >= 0
    with pytest.raises(grpc.RpcError) as over:
        stub.Score(ids_request(stubs, g, ids(max_tokens + 1)), timeout=RPC_TIMEOUT_S)
    assert over.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"exceed the model's max_tokens ({max_tokens})" in over.value.details()


def ids_request(stubs, g, token_ids):
    req = harness.request_from_golden(stubs, g, by_ids=True)
    del req.token_ids[:]
    req.token_ids.extend(token_ids)
    return req


def padded_infer_body(g, size):
    """A valid v2 JSON infer body of exactly `size` bytes (trailing blanks)."""
    req = v2.V2Request(inputs=[v2.text_tensor([g.text]), v2.features_tensor([g.feature_vector])])
    body = json.dumps(v2.to_json(req)).encode()
    assert len(body) <= size
    return body + b" " * (size - len(body))


def test_http_body_edge(golden, server):
    g = golden[0]
    path = v2.infer_path()
    at = v2.http_post_json(server.http_address, path, padded_infer_body(g, HTTP_MAX_BODY_BYTES))
    assert at.status == 200, at.body
    assert abs(v2.outputs_of_json(at.json())["SCORE"].data[0] - g.score) <= v2.TOL_GOLDEN
    over = v2.http_post_json(server.http_address, path,
                             padded_infer_body(g, HTTP_MAX_BODY_BYTES + 1))
    assert over.status == 413
    assert over.error() == f"the request body is larger than {HTTP_MAX_BODY_BYTES} bytes"


class Stream:
    """One ScoreStream: requests go in through a queue, answers come out of
    another (None once the stream ends)."""

    def __init__(self, stub):
        self._requests = queue.Queue()
        self.answers = queue.Queue()
        self._call = stub.ScoreStream(iter(self._requests.get, None))
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for answer in self._call:
                self.answers.put(answer)
        except grpc.RpcError as error:
            self.answers.put(error)
        self.answers.put(None)

    def send(self, request):
        self._requests.put(request)

    def close(self):
        self._requests.put(None)


def test_concurrent_streams_edge(stubs, golden, server):
    request = harness.request_from_golden(stubs, golden[0])
    with new_channel(server) as ch, new_channel(server) as other_ch:
        stub = stubs.scoring_pb2_grpc.ScoringServiceStub(ch)
        held = [Stream(stub) for _ in range(MAX_CONCURRENT_STREAMS)]
        for s in held:  # at the limit: every stream is served
            s.send(request)
            assert abs(s.answers.get(timeout=WAIT_S).score - golden[0].score) <= v2.TOL_GOLDEN
        extra = Stream(stub)  # one past it: waits in the client for a free stream
        extra.send(request)
        # Another connection is served meanwhile: the limit is per connection.
        other = Stream(stubs.scoring_pb2_grpc.ScoringServiceStub(other_ch))
        other.send(request)
        assert other.answers.get(timeout=WAIT_S).score >= 0
        other.close()
        with pytest.raises(queue.Empty):
            extra.answers.get(timeout=SILENT_S)
        held[0].close()  # frees a stream: the waiting one goes through
        assert held[0].answers.get(timeout=WAIT_S) is None
        answer = extra.answers.get(timeout=WAIT_S)
        assert abs(answer.score - golden[0].score) <= v2.TOL_GOLDEN
        for s in held[1:] + [extra]:
            s.close()
            assert s.answers.get(timeout=WAIT_S) is None


def test_a_flooding_stream_is_slowed_not_refused(stubs, golden, stub):
    # 2000 requests at once on one stream, into a queue of 600: the server
    # keeps at most 512 of one stream, so the queue never overflows and no
    # answer is RESOURCE_EXHAUSTED (without the cap, hundreds would be).
    n = 2000
    stream = Stream(stub)
    for i in range(n):
        stream.send(harness.request_from_golden(stubs, golden[i % len(golden)], by_ids=True,
                                                request_id=str(i)))
    stream.close()
    errors, ids = [], set()
    while True:
        answer = stream.answers.get(timeout=WAIT_S * 4)
        if answer is None:
            break
        assert not isinstance(answer, grpc.RpcError), answer
        if answer.HasField("error"):
            errors.append(answer.error)
        ids.add(answer.request_id)
    assert errors == []
    assert len(ids) == n


def test_a_stream_at_its_in_flight_limit_fills_the_queue_exactly_and_no_more(
        stubs, golden, tmp_path):
    # --max_in_flight_per_stream equal to --max_queue_size: one stream may
    # fill the queue to the brim but never past it, so 2000 requests written
    # at once are all answered, none RESOURCE_EXHAUSTED.
    limit = 64
    srv = harness.ServerProcess([f"--max_in_flight_per_stream={limit}",
                                 f"--max_queue_size={limit}"], log_dir=str(tmp_path))
    harness.call_or_fail(srv.start)
    try:
        with new_channel(srv) as ch:
            stream = Stream(stubs.scoring_pb2_grpc.ScoringServiceStub(ch))
            n = 2000
            for i in range(n):
                stream.send(harness.request_from_golden(stubs, golden[i % len(golden)],
                                                        by_ids=True, request_id=str(i)))
            stream.close()
            errors, ids = [], set()
            while (answer := stream.answers.get(timeout=WAIT_S * 4)) is not None:
                assert not isinstance(answer, grpc.RpcError), answer
                if answer.HasField("error"):
                    errors.append(answer.error.message)
                ids.add(answer.request_id)
        assert errors == []
        assert len(ids) == n
    finally:
        srv.stop()


@pytest.mark.parametrize("value", ["0", "-1"])
def test_an_in_flight_limit_below_one_stops_the_start(tmp_path, value):
    srv = harness.ServerProcess([f"--max_in_flight_per_stream={value}"],
                                log_dir=str(tmp_path))
    srv.check_binary()
    done = subprocess.run(srv.args, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=60, cwd=harness.REPO_ROOT)
    assert done.returncode == 1, done
    assert "--max_in_flight_per_stream must be >= 1" in done.stderr.decode(), done.stderr
