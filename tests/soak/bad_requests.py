"""A client that mixes known-bad requests into a soak: on a thread, at a low
rate, it sends a rotation of requests each of which has one documented
status (INVALID_ARGUMENT naming the field, NOT_FOUND for an unknown model)
and records any answer that differs.
"""
import math
import threading

import grpc

import harness


def bad_requests(stubs, golden):
    """[(name, request, expected grpc.StatusCode)], built from a golden
    request with one thing wrong each."""
    g = golden[0]

    def base(**kw):
        return harness.request_from_golden(stubs, g, request_id="bad", **kw)

    def by_ids(**kw):
        return harness.request_from_golden(stubs, g, by_ids=True, request_id="bad", **kw)

    invalid = grpc.StatusCode.INVALID_ARGUMENT
    cases = []
    both = base()
    both.token_ids.extend(g.token_ids)
    cases.append(("text and token_ids", both, invalid))
    neither = base()
    neither.ClearField("text")
    cases.append(("neither text nor token_ids", neither, invalid))
    beyond = by_ids()
    beyond.token_ids[1] = 10 ** 7
    cases.append(("token id beyond the vocabulary", beyond, invalid))
    short = by_ids()
    del short.feature_vector[-1]
    cases.append(("feature_vector too short", short, invalid))
    nan = base()
    nan.features[next(iter(g.features))] = math.nan
    cases.append(("NaN feature", nan, invalid))
    unknown = base()
    unknown.features["no_such_feature"] = 1.0
    cases.append(("unknown feature", unknown, invalid))
    missing = base()
    del missing.features[next(iter(g.features))]
    cases.append(("missing required feature", missing, invalid))
    cases.append(("priority out of range", base(priority=99), invalid))
    cases.append(("unknown model", base(model="no-such-model"), grpc.StatusCode.NOT_FOUND))
    return cases


class BadRequestClient:
    """Sends bad_requests() in turn, `rate` per second, on a thread of its own
    with its own channel, until stop()."""

    def __init__(self, address, stubs, golden, rate=5.0):
        self.cases = bad_requests(stubs, golden)
        self.channel = grpc.insecure_channel(address)
        self.stub = stubs.scoring_pb2_grpc.ScoringServiceStub(self.channel)
        self.interval_s = 1.0 / rate
        self.sent = 0
        self.unexpected = []  # (case, code, details)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def _run(self):
        while not self._stop.is_set():
            name, request, expected = self.cases[self.sent % len(self.cases)]
            self.sent += 1
            try:
                self.stub.Score(request, timeout=10)
                self.unexpected.append((name, "OK", ""))
            except grpc.RpcError as error:
                if error.code() != expected:
                    self.unexpected.append((name, error.code().name, error.details()))
            self._stop.wait(self.interval_s)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=15)
        self.channel.close()
