#!/usr/bin/python3
"""A per-request peer of fusion-server: the simplest serving a PyTorch user
would write (grpcio + TorchScript, one forward per request, no batching),
what the batching benchmark measures fusion-server against.

  /usr/bin/python3 bench/peer_server.py --address 127.0.0.1:50071 [--workers 4]
  /usr/bin/python3 bench/peer_server.py --check      # golden answers, then exit

Implements fusion.v1.ScoringService: Score, ScoreStream (each stream holds a
worker thread for its whole life) and GetModelMetadata. Requests carry
token_ids or text (tokenized by model/wordpiece.py, the reference the C++
tokenizer matches), and feature_vector or features by name; model.pt takes
raw feature values and standardises them itself with the bundle's mean/std
(as fusion-server, which passes raw values too). Attention is not returned.
One intra-op thread, OpenBLAS held to one thread, a pool of --workers gRPC
handler threads: 4 is this peer's best on one core (measured here at
concurrency 64 and 128: 1 worker ~10% slower, 8 the same as 4, 16 ~3%
slower; run_batching_bench.py --peer-workers 1,2,4,8 measures it again).
"""
import os

# Before torch loads OpenBLAS: its own threads would fight the request's.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import ctypes  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent import futures  # noqa: E402

import grpc  # noqa: E402
import torch  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import harness  # noqa: E402
from model import wordpiece  # noqa: E402


# --- OpenBLAS kernels: the same choice fusion-server makes -------------------

def loaded_openblas_core():
    """The kernels OpenBLAS loaded with ('Haswell', ...), None without it."""
    with open("/proc/self/maps") as f:
        paths = set(re.findall(r"\S*libopenblas\S*\.so\S*", f.read()))
    for path in paths:
        lib = ctypes.CDLL(path)
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode()
    return None


def best_openblas_core():
    """As server/runtime/blas_kernels.cc: the best core type the CPU runs."""
    with open("/proc/cpuinfo") as f:
        flags = set(re.search(r"^flags\s*:(.*)$", f.read(), re.M).group(1).split())
    if {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        return "Cooperlake" if "avx512_bf16" in flags else "SkylakeX"
    return "Haswell" if {"avx2", "fma"} <= flags else None


def restart_for_better_blas_kernels():
    """OpenBLAS 0.3.21 falls back to Prescott (SSE3) on CPUs newer than it:
    a peer on slow kernels would flatter the server, so re-exec with better
    ones, as the server does. Only when the user has not chosen."""
    if "OPENBLAS_CORETYPE" in os.environ or loaded_openblas_core() != "Prescott":
        return
    core = best_openblas_core()
    if core:
        os.environ["OPENBLAS_CORETYPE"] = core
        os.execv(sys.executable, [sys.executable] + sys.argv)


# --- the model ---------------------------------------------------------------

def load_config(stubs, bundle):
    from google.protobuf import text_format
    config = stubs.model_config_pb2.ModelConfig()
    with open(os.path.join(bundle, "config.pbtxt"), encoding="utf-8") as f:
        text_format.Parse(f.read(), config)
    return config


class Scorer:
    """The bundle's model, config and tokenizer; one request per forward."""

    def __init__(self, stubs, bundle):
        self.pb = stubs.scoring_pb2
        self.config = cfg = load_config(stubs, bundle)
        self.module = torch.jit.load(os.path.join(bundle, cfg.model_file),
                                     map_location="cpu")
        self.module.eval()
        vocab_file = cfg.tokenizer.vocab_file or "vocab.txt"
        self.tokenizer = wordpiece.WordPieceTokenizer.from_file(
            os.path.join(bundle, vocab_file))
        self.vocab_size = len(self.tokenizer.vocab)
        self.feature_names = [f.name for f in cfg.features]
        self.defaults = {f.name: f.default_value for f in cfg.features
                         if f.allow_missing}
        self.version = str(cfg.version)
        self.warm_up(cfg.runtime.warmup_iterations or 3)

    def warm_up(self, iterations):
        """The profiling executor optimises after a few calls: make them
        before the first request, as the server does."""
        for _ in range(iterations):
            for length in (8, self.config.max_tokens):
                self.forward([2] + [5] * (length - 2) + [3],
                             [0.0] * len(self.feature_names))

    def forward(self, ids, features):
        """Probabilities of one request; raw feature values."""
        with torch.inference_mode():
            ids_t = torch.tensor([ids], dtype=torch.int64)
            mask = torch.ones_like(ids_t)
            feats = torch.tensor([features], dtype=torch.float32)
            probs = self.module(ids_t, mask, feats, False)[0]
        return probs[0].tolist()

    def token_ids(self, request):
        """(ids, error message or None)."""
        has_text = request.HasField("text")
        if has_text == bool(request.token_ids):
            return None, "text and token_ids: set exactly one"
        if has_text:
            return self.tokenizer.encode(request.text, self.config.max_tokens), None
        ids = list(request.token_ids)
        if len(ids) > self.config.max_tokens:
            return None, f"token_ids: {len(ids)} ids exceed max_tokens"
        if min(ids) < 0 or max(ids) >= self.vocab_size:
            return None, "token_ids: an id is outside the vocabulary"
        return ids, None

    def feature_vector(self, request):
        """(raw values in model order, error message or None)."""
        if bool(request.features) == bool(request.feature_vector):
            return None, "features and feature_vector: set exactly one"
        if request.feature_vector:
            if len(request.feature_vector) != len(self.feature_names):
                return None, f"feature_vector: expected {len(self.feature_names)} values"
            return list(request.feature_vector), None
        given = request.features
        unknown = set(given) - set(self.feature_names)
        missing = [n for n in self.feature_names if n not in given and n not in self.defaults]
        if unknown or missing:
            return None, f"features: unknown {sorted(unknown)} or missing {missing}"
        return [given[n] if n in given else self.defaults[n]
                for n in self.feature_names], None

    def score(self, request):
        """(ScoreResponse, None) or (None, error message)."""
        start = time.perf_counter()
        ids, error = self.token_ids(request)
        features, error2 = self.feature_vector(request) if not error else (None, None)
        if error or error2:
            return None, error or error2
        forward_start = time.perf_counter()
        probs = self.forward(ids, features)
        end = time.perf_counter()
        cfg = self.config
        response = self.pb.ScoreResponse(
            request_id=request.request_id, model=cfg.name, model_version=self.version,
            score=probs[cfg.positive_class], probabilities=probs)
        timing = response.timing
        timing.compute_us = int((end - forward_start) * 1e6)
        timing.batch_size = 1
        timing.total_us = int((time.perf_counter() - start) * 1e6)
        return response, None

    def metadata(self):
        cfg, pb = self.config, self.pb
        return pb.ModelMetadata(
            name=cfg.name, versions=[self.version], version=self.version,
            platform=cfg.platform, classes=list(cfg.classes),
            positive_class=cfg.positive_class, max_tokens=cfg.max_tokens,
            vocab_size=self.vocab_size, attention_heads=cfg.attention_heads,
            device="cpu",
            features=[pb.FeatureMetadata(name=f.name, description=f.description,
                                         allow_missing=f.allow_missing,
                                         default_value=f.default_value,
                                         mean=f.mean, std=f.std)
                      for f in cfg.features],
            batching=pb.BatchingMetadata(max_batch_size=1, instance_count=1))


def make_servicer(stubs, scorer):
    base = stubs.scoring_pb2_grpc.ScoringServiceServicer

    class Servicer(base):
        def Score(self, request, context):
            response, error = scorer.score(request)
            if error:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, error)
            return response

        def ScoreStream(self, request_iterator, context):
            for request in request_iterator:
                response, error = scorer.score(request)
                if error:
                    response = stubs.scoring_pb2.ScoreResponse(
                        request_id=request.request_id)
                    response.error.code = grpc.StatusCode.INVALID_ARGUMENT.value[0]
                    response.error.message = error
                yield response

        def GetModelMetadata(self, request, context):
            return scorer.metadata()

    return Servicer()


def serve(stubs, scorer, address, workers):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                         options=[("grpc.max_receive_message_length",
                                   scorer.config.max_message_bytes or 4 << 20)])
    stubs.scoring_pb2_grpc.add_ScoringServiceServicer_to_server(
        make_servicer(stubs, scorer), server)
    port = server.add_insecure_port(address)
    if port == 0:
        sys.exit(f"peer_server: cannot listen on {address}")
    server.start()
    return server


# --- self-check --------------------------------------------------------------

def check(stubs, scorer, workers):
    """Every golden request by ids and by text+features, over gRPC: the
    probabilities must match golden.jsonl within 1e-4. Returns the exit code."""
    port = harness.free_port()
    server = serve(stubs, scorer, f"127.0.0.1:{port}", workers)
    worst = 0.0
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = stubs.scoring_pb2_grpc.ScoringServiceStub(channel)
            for g in harness.load_golden():
                for by_ids in (True, False):
                    response = stub.Score(harness.request_from_golden(
                        stubs, g, by_ids=by_ids), timeout=30)
                    diff = max(harness.max_abs_diff(response.probabilities,
                                                    g.probabilities),
                               abs(response.score - g.score))
                    worst = max(worst, diff)
    finally:
        server.stop(0)
    ok = worst <= 1e-4
    print(f"peer_server --check: {len(harness.load_golden())} golden requests x "
          f"(ids, text); max |probability - golden| = {worst:.2e} "
          f"({'ok' if ok else 'FAIL'}, tolerance 1e-4); OpenBLAS kernels "
          f"{loaded_openblas_core()}", flush=True)
    return 0 if ok else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--address", default="127.0.0.1:50071")
    parser.add_argument("--workers", type=int, default=4,
                        help="gRPC handler threads")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads")
    parser.add_argument("--bundle", default=harness.bundle_dir())
    parser.add_argument("--check", action="store_true",
                        help="score golden.jsonl, compare, exit")
    args = parser.parse_args()
    restart_for_better_blas_kernels()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    stubs = harness.generate_stubs()
    scorer = Scorer(stubs, args.bundle)
    if args.check:
        sys.exit(check(stubs, scorer, args.workers))
    server = serve(stubs, scorer, args.address, args.workers)
    print(f"peer_server: listening on {args.address}, {args.workers} worker(s), "
          f"OpenBLAS kernels {loaded_openblas_core()}", flush=True)
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop(1)


if __name__ == "__main__":
    main()
