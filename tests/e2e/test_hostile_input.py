"""Hostile and malformed input, end to end: one table of cases sent to a
real fusion-server over real gRPC, through the native API (Score, and the
same bytes inside a ScoreStream between two good requests) and the KServe
v2 API (ModelInfer) wherever the case has a v2 form.

Every case is sent as raw bytes through a generic gRPC method (identity
serializers), so malformed wire data reaches the server as built. For each
case: the status is the one in the table (the README's "Hostile input"
section lists the same table), the message holds the table's substring, an
accepted case answers what the equivalent benign request answers, the
server process is alive, and a golden request right after it (native and
v2) still returns golden.jsonl's probabilities, in bounded time. At the end
the server's RSS is within RSS_GROWTH_BOUND of its RSS after warm-up.

The server is this module's own (not the e2e session's), so its memory
reflects these cases only.

Run: FUSION_SERVER_BIN=$PWD/build/server/fusion-server \
     /usr/bin/python3 -m pytest tests/e2e/test_hostile_input.py -q
"""
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import grpc
import pytest
from google.protobuf.message import DecodeError

import harness
import hostile_support as hs
from hostile_support import vs

sys.path.insert(0, harness.REPO_ROOT)
from model.wordpiece import WordPieceTokenizer  # noqa: E402  (the reference tokenizer)

OK = grpc.StatusCode.OK
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
DEADLINE = grpc.StatusCode.DEADLINE_EXCEEDED
CANCELLED = grpc.StatusCode.CANCELLED

TOL_GOLDEN = 1e-4   # against golden.jsonl, as tests/e2e/test_scoring.py
TOL_SAME = 1e-5     # against the server's own answer to an equivalent request
RPC_TIMEOUT_S = 60
# RSS after every case over RSS after warm-up. The cases allocate at most a
# few MB at a time (5 MiB is the largest message, 10k stream responses are
# written as they complete); a leak of even 1 KiB per request would show as
# 10+ MB over the ~13k requests sent here. 15% of a ~400 MB process is
# ~60 MB: room for glibc arenas that keep freed memory, not for a leak.
RSS_GROWTH_BOUND = 1.15
# The golden request after a case: "pathologically slow" is past this (it
# takes milliseconds; this machine's neighbours can stall it for tens).
FOLLOW_UP_BOUND_S = 2.0
ONE_MB = 1 << 20
# The server runs with --max_text_bytes raised to this (see the `run` fixture).
TEXT_LIMIT_BYTES = 4 * ONE_MB
# Under ASan (FUSION_SANITIZER, sanitizers/run_asan_tests.sh) a 10k stream
# takes 25 s; 2,000 still fill the stream's 512 in flight four times over,
# the path ASan is there to watch. The plain run sends the full 10k.
STREAM_10K = 2_000 if os.environ.get("FUSION_SANITIZER") else 10_000


# --- context: the golden requests and request builders ---------------------------------

class Ctx:
    def __init__(self, stubs, v2, golden, cfg, channel):
        self.pb, self.v2, self.v2pb, self.cfg, self.channel = (
            stubs.scoring_pb2, v2, v2.pb2, cfg, channel)
        self.stubs, self.golden = stubs, golden
        # A golden request with real text that the tokenizer does not cut,
        # and the one with empty text.
        self.g = vs.text_goldens(golden, cfg)[0]
        self.g_empty = next(g for g in golden if g.text == "")
        self.names = [f.name for f in cfg.features]
        self.vocab_size = harness.vocab_size()
        self.tokenizer = WordPieceTokenizer.from_file(
            os.path.join(harness.bundle_dir(), cfg.tokenizer.vocab_file or "vocab.txt"))

    # native ScoreRequest (golden g: text + features by name unless told)
    def req(self, g=None, **kw):
        kw.setdefault("request_id", "hostile")
        return harness.request_from_golden(self.stubs, g or self.g, **kw)

    def ids_req(self, ids, g=None, **kw):
        kw.setdefault("request_id", "hostile")
        r = harness.request_from_golden(self.stubs, g or self.g, by_ids=True, **kw)
        del r.token_ids[:]
        r.token_ids.extend(ids)
        return r

    def vector_req(self, vector, g=None):
        r = self.req(g)
        r.ClearField("features")
        r.feature_vector.extend(vector)
        return r

    # v2 ModelInferRequest as bytes
    def v2_bytes(self, texts=None, ids=None, features=None, outputs=(), params=None,
                 model=harness.MODEL_NAME, version="", raw=False,
                 extra_inputs=()) -> bytes:
        inputs = []
        if ids is not None:
            inputs += vs.ids_tensors([ids]) if ids else [vs.Tensor(vs.INPUT_IDS, "INT64",
                                                                   [1, 0], [])]
        elif texts is not None:
            inputs.append(vs.text_tensor(texts))
        else:
            inputs.append(vs.text_tensor([self.g.text]))
        inputs.append(vs.features_tensor([features if features is not None
                                          else self.g.feature_vector]))
        inputs += list(extra_inputs)
        req = vs.V2Request(inputs=inputs, outputs=list(outputs), id="hostile",
                           parameters=dict(params or {}), model=model, version=version)
        return vs.to_grpc(self.v2, req, raw=raw).SerializeToString()

    def ref_tokens(self, text: str) -> List[str]:
        return self.tokenizer.encode_tokens(text, self.cfg.max_tokens)

    def score(self, req) -> "object":
        out = hs.unary(self.channel, hs.SCORE, self.pb.ScoreResponse,
                       req.SerializeToString(), RPC_TIMEOUT_S)
        assert out.code == OK, f"equivalent request failed: {out.code.name}: {out.details}"
        return out.response


# --- what an accepted case must answer ---------------------------------------------------

@dataclass
class Expect:
    """The answer of an accepted case: the probabilities of an equivalent
    request (golden.jsonl's, or the server's answer to a benign one) and,
    when known, the tokens."""
    probabilities: List[float]
    tol: float
    tokens: Optional[List[str]] = None
    truncated: Optional[bool] = None


def golden_expect(g, tokens=True) -> Expect:
    return Expect(g.probabilities, TOL_GOLDEN, g.tokens if tokens else None, False)


def check_native(resp, want: Expect, where: str) -> None:
    assert not resp.HasField("error"), f"{where}: error {resp.error.code}: {resp.error.message}"
    probs = list(resp.probabilities)
    assert all(math.isfinite(p) for p in probs), f"{where}: probabilities {probs}"
    d = harness.max_abs_diff(probs, want.probabilities)
    assert d <= want.tol, f"{where}: {probs} vs {want.probabilities} (max diff {d:.2e})"
    if want.tokens is not None:
        assert list(resp.attention.tokens) == want.tokens, \
            f"{where}: tokens {list(resp.attention.tokens)[:12]}... vs {want.tokens[:12]}..."
    if want.truncated is not None:
        assert resp.truncated is want.truncated, f"{where}: truncated={resp.truncated}"


def check_v2(resp, want: Expect, where: str) -> None:
    outs, _ = vs.outputs_of_grpc(resp)
    probs = outs[vs.PROBABILITIES].data
    assert all(math.isfinite(p) for p in probs), f"{where}: probabilities {probs}"
    d = harness.max_abs_diff(probs, want.probabilities)
    assert d <= want.tol, f"{where}: {probs} vs {want.probabilities} (max diff {d:.2e})"
    if want.tokens is not None and vs.TOKEN_COUNT in outs:
        assert outs[vs.TOKEN_COUNT].data == [len(want.tokens)], \
            f"{where}: TOKEN_COUNT {outs[vs.TOKEN_COUNT].data}, want {len(want.tokens)}"


# --- the table ------------------------------------------------------------------------

@dataclass
class Case:
    """One row of the README table. `native` builds ScoreRequest bytes (sent
    to Score and, between two good requests, on a ScoreStream); `v2`
    ModelInferRequest bytes; `run` replaces both for transport-level cases
    (a callable per API that performs and checks the call, returning its
    Outcome)."""
    name: str
    what: str
    code: grpc.StatusCode
    needle: str = ""                       # in the native message
    native: Optional[Callable[[Ctx], bytes]] = None
    v2: Optional[Callable[[Ctx], bytes]] = None
    v2_code: Optional[grpc.StatusCode] = None
    v2_needle: Optional[str] = None
    expect: Optional[Callable[[Ctx], Expect]] = None  # for accepted cases
    stream: bool = True                    # also send `native` on a ScoreStream
    answer: str = ""                       # what an accepted case answers (README)
    run: Dict[str, Callable[[Ctx], hs.Outcome]] = field(default_factory=dict)

    def apis(self) -> List[str]:
        if self.run:
            return list(self.run)
        return (["score"] if self.native else []) + \
            (["stream"] if self.native and self.stream else []) + \
            (["v2"] if self.v2 else [])


def ser(build):
    """A builder of ScoreRequest messages as a builder of bytes."""
    return lambda c: build(c).SerializeToString()


def _with_text(c: Ctx, text: str, g=None, attention=1):
    return c.req(g, text=text, attention=attention)


# Text that is valid but odd --------------------------------------------------------------

WHITESPACE = " \t\n\r\u00a0\u2003\u3000\u2028\u2029 "
BIDI = ["\u202e", "\u202d", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f",
        "\u061c", "\u202a", "\u202b", "\u202c"]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]
EMOJI_CJK = ("refund 🙂 👍🏽 👨‍👩‍👧 🇫🇷 付款 退款请求 東京 한국어 カード "
             "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 gift card")


def interleave(text: str, chars: List[str]) -> str:
    """`chars` between the characters of `text`, cycling."""
    out = []
    for i, ch in enumerate(text):
        out.append(ch)
        out.append(chars[i % len(chars)])
    return "".join(out)


def one_mb_text(c: Ctx) -> str:
    words = (c.g.text + " ") * (ONE_MB // (len(c.g.text) + 1) + 1)
    return words[:ONE_MB]


def mark_flood(c: Ctx) -> str:
    """The golden text with 1 MB of combining marks of alternating class
    (U+0301: 230, U+0316: 220) on its last word: stripped as accents, so the
    tokens are golden's; a quadratic canonical ordering stalls on it."""
    return c.g.text + "\u0301\u0316" * (ONE_MB // 4)


def long_word(c: Ctx, n=10_000) -> str:
    return c.g.text + " " + "x" * n + " " + c.g.text


def ref_expect(c: Ctx, text: str, same_as=None) -> Expect:
    """Tokens from the reference tokenizer; probabilities from the server's
    answer to `same_as` (default: the same text), a benign form of it."""
    resp = c.score(c.req(text=same_as if same_as is not None else text))
    truncated = len(c.tokenizer.tokenize(text)) > c.cfg.max_tokens - 2
    return Expect(list(resp.probabilities), TOL_SAME, c.ref_tokens(text), truncated)


def _invalid_utf8(c: Ctx, bad: bytes, v2: bool):
    """The golden text's first 16 bytes replaced by `bad` (padded to 16),
    in the wire bytes, so the server receives exactly these bytes."""
    placeholder = b"<<PLACEHOLDER16>"
    text = placeholder.decode() + c.g.text
    bad16 = (bad + b"X" * 16)[:16]
    if v2:
        return hs.replace_once(c.v2_bytes(texts=[text]), placeholder, bad16)
    return hs.replace_once(c.req(text=text).SerializeToString(), placeholder, bad16)


def utf8_case(name, what, bad: bytes, offset: int) -> "Case":
    return Case(name, what, INVALID, "not valid UTF-8",
                native=lambda c: _invalid_utf8(c, bad, False),
                v2=lambda c: _invalid_utf8(c, bad, True),
                v2_needle=f"TEXT row 0: text: invalid UTF-8 at byte offset {offset}")


# Token ids --------------------------------------------------------------------------------

def ids_with(c: Ctx, bad: int) -> List[int]:
    ids = list(c.g.token_ids)
    ids[1] = bad
    return ids


# Features ---------------------------------------------------------------------------------

def features_with(c: Ctx, value: float, name_index=0):
    r = c.req()
    r.features[c.names[name_index]] = value
    return r


def vector_with(c: Ctx, value: float) -> List[float]:
    v = list(c.g.feature_vector)
    v[0] = value
    return v


def all_features(c: Ctx, value: float):
    r = c.req()
    for n in c.names:
        r.features[n] = value
    return r


def same_as_features(c: Ctx, value: float) -> Expect:
    return Expect(list(c.score(all_features(c, value)).probabilities), TOL_SAME)


def nan_payload_native(c: Ctx) -> bytes:
    """feature_vector (field 7, packed floats) with a signalling NaN (bits
    0x7f800001) first: built by hand, as Python floats cannot keep it."""
    r = c.ids_req(c.g.token_ids)
    r.ClearField("feature_vector")
    packed = b"\x01\x00\x80\x7f" + b"".join(hs.f32(x) for x in c.g.feature_vector[1:])
    return r.SerializeToString() + hs.field_bytes(7, packed)


def nan_payload_v2(c: Ctx) -> bytes:
    m = c.v2pb.ModelInferRequest.FromString(c.v2_bytes(raw=True))
    raw = bytearray(m.raw_input_contents[1])
    raw[0:4] = b"\x01\x00\x80\xff"  # a negative signalling NaN
    m.raw_input_contents[1] = bytes(raw)
    return m.SerializeToString()


def duplicated_feature_native(c: Ctx) -> bytes:
    """features['amount'] twice on the wire: a garbage value first, the
    golden one after it (protobuf: the last entry wins)."""
    first = hs.map_entry_string_float(6, c.names[0], hs.f32(99999.0))
    return first + c.req(attention=1).SerializeToString()


def v2_duplicated_features(c: Ctx) -> bytes:
    return c.v2_bytes(extra_inputs=[vs.features_tensor([c.g.feature_vector])])


# Wire-level -------------------------------------------------------------------------------

def unknown_fields_native(c: Ctx) -> bytes:
    return (c.req(attention=1).SerializeToString() + hs.field_varint(1000, 5) +
            hs.field_bytes(99, b"from a newer client") + hs.field_fixed32(77, b"\0\0\0\0"))


def unknown_fields_v2(c: Ctx) -> bytes:
    return c.v2_bytes() + hs.field_varint(1000, 5) + hs.field_bytes(99, b"newer")


def truncated(c: Ctx, v2: bool) -> bytes:
    """The request cut at or after its middle, inside a field: a cut that
    falls between two fields leaves a shorter message that parses (the
    features map's order varies, so the middle sometimes does)."""
    raw = c.v2_bytes() if v2 else c.req().SerializeToString()
    message = c.v2pb.ModelInferRequest if v2 else c.pb.ScoreRequest
    for cut in range(len(raw) // 2, len(raw)):
        try:
            message.FromString(raw[:cut])
        except DecodeError:
            return raw[:cut]
    raise AssertionError("no cut of the request fails to parse")


def oversize_text(c: Ctx) -> str:
    return "a " * (5 * ONE_MB // 2)


# Transport-level cases (run per API) ------------------------------------------------------

def deadline_1us(api: str):
    """A deadline of 1 µs on a 1 MiB request. gRPC keeps deadlines in whole
    milliseconds (rounded up), so a request that the server answers within
    1 ms may still succeed; this one takes longer just to arrive."""
    def run(c: Ctx) -> hs.Outcome:
        text = one_mb_text(c)
        if api == "score":
            return hs.unary(c.channel, hs.SCORE, c.pb.ScoreResponse,
                            c.req(text=text).SerializeToString(), 1e-6)
        if api == "v2":
            return hs.unary(c.channel, hs.MODEL_INFER, c.v2pb.ModelInferResponse,
                            c.v2_bytes(texts=[text]), 1e-6)
        out, _ = hs.stream(c.channel, hs.SCORE_STREAM, c.pb.ScoreResponse,
                           [c.req(text=text).SerializeToString()] * 3, 1e-6)
        return out
    return run


def cancel_unary(api: str):
    """A slow request (1 MB of text; on v2 also 64 rows) cancelled by the
    client while the server handles it."""
    def run(c: Ctx) -> hs.Outcome:
        if api == "score":
            method, rtype = hs.SCORE, c.pb.ScoreResponse
            raw = c.req(text=mark_flood(c), attention=2).SerializeToString()
        else:
            method, rtype = hs.MODEL_INFER, c.v2pb.ModelInferResponse
            raw = c.v2_bytes(texts=[mark_flood(c)], outputs=vs.ATTENTION_OUTPUTS)
        call = c.channel.unary_unary(method, request_serializer=hs.identity,
                                     response_deserializer=rtype.FromString)
        future = call.future(raw, timeout=RPC_TIMEOUT_S)
        time.sleep(0.002)
        if not future.cancel():
            pytest.fail(f"the request ended ({future.code()}) before the client cancelled it")
        return hs.Outcome(future.code(), future.details() or "")
    return run


def cancel_stream(c: Ctx) -> hs.Outcome:
    """2000 requests queued on one ScoreStream; the client cancels after
    reading 20 responses, with most of them still in the server."""
    reqs = [c.req(request_id=f"c-{i}", attention=2).SerializeToString() for i in range(2000)]
    call = c.channel.stream_stream(hs.SCORE_STREAM, request_serializer=hs.identity,
                                   response_deserializer=c.pb.ScoreResponse.FromString)
    it = call(iter(reqs), timeout=RPC_TIMEOUT_S)
    got = 0
    try:
        for _ in it:
            got += 1
            if got == 20:
                it.cancel()
    except grpc.RpcError as e:
        assert got >= 20, f"stream ended after {got} responses: {e.code().name}"
        return hs.Outcome(e.code(), e.details() or "")
    pytest.fail(f"stream ended OK after {got} responses although cancelled")


def cancel_v2_stream(c: Ctx) -> hs.Outcome:
    reqs = [c.v2_bytes() for _ in range(500)]
    call = c.channel.stream_stream(hs.MODEL_STREAM_INFER, request_serializer=hs.identity,
                                   response_deserializer=c.v2pb.ModelStreamInferResponse.FromString)
    it = call(iter(reqs), timeout=RPC_TIMEOUT_S)
    got = 0
    try:
        for _ in it:
            got += 1
            if got == 10:
                it.cancel()
    except grpc.RpcError as e:
        return hs.Outcome(e.code(), e.details() or "")
    pytest.fail(f"stream ended OK after {got} responses although cancelled")


def oversize_stream(c: Ctx) -> hs.Outcome:
    """A good request, then one over the size limit: gRPC ends the stream."""
    good = c.req(request_id="before").SerializeToString()
    out, _ = hs.stream(c.channel, hs.SCORE_STREAM, c.pb.ScoreResponse,
                       [good, c.req(text=oversize_text(c)).SerializeToString()], RPC_TIMEOUT_S)
    return out


def stream_10k(c: Ctx) -> hs.Outcome:
    """10 000 golden requests (by text and by ids, all 50 goldens) on one
    ScoreStream: each answered once, with its golden probabilities."""
    want, raws = {}, []
    for i in range(STREAM_10K):
        g = c.golden[i % len(c.golden)]
        rid = f"s{i}"
        want[rid] = g
        raws.append(harness.request_from_golden(c.stubs, g, by_ids=i % 2 == 1,
                                                request_id=rid).SerializeToString())
    out, responses = hs.stream(c.channel, hs.SCORE_STREAM, c.pb.ScoreResponse, raws, 120)
    harness.observe("hostile_stream_10k_seconds", round(out.seconds, 2))
    assert out.code == OK, f"{out.code.name}: {out.details}"
    ids = [r.request_id for r in responses]
    assert len(ids) == STREAM_10K and set(ids) == set(want), \
        f"{len(ids)} responses, {len(set(ids))} distinct ids for {STREAM_10K} requests"
    bad = [f"{r.request_id}: {r.error.message if r.HasField('error') else list(r.probabilities)}"
           for r in responses if r.HasField("error") or
           harness.max_abs_diff(r.probabilities, want[r.request_id].probabilities) > TOL_GOLDEN]
    assert not bad, f"{len(bad)} wrong answers, e.g. {bad[:3]}"
    return out


def v2_stream_10k(c: Ctx) -> hs.Outcome:
    reqs, want = [], {}
    for i in range(STREAM_10K):
        g = c.golden[i % len(c.golden)]
        req = vs.request_from_golden([g], by_ids=i % 2 == 1, id=f"v{i}")
        want[f"v{i}"] = g
        reqs.append(vs.to_grpc(c.v2, req).SerializeToString())
    out, responses = hs.stream(c.channel, hs.MODEL_STREAM_INFER,
                               c.v2pb.ModelStreamInferResponse, reqs, 120)
    harness.observe("hostile_v2_stream_10k_seconds", round(out.seconds, 2))
    assert out.code == OK, f"{out.code.name}: {out.details}"
    errors = [r.error_message for r in responses if r.error_message]
    assert not errors, f"{len(errors)} errors, e.g. {errors[:3]}"
    got = {r.infer_response.id: r.infer_response for r in responses}
    assert len(responses) == STREAM_10K and set(got) == set(want), \
        f"{len(responses)} responses, {len(got)} distinct ids"
    for rid, resp in got.items():
        probs = vs.outputs_of_grpc(resp)[0][vs.PROBABILITIES].data
        assert harness.max_abs_diff(probs, want[rid].probabilities) <= TOL_GOLDEN, rid
    return out


def v2_empty_text_attention(c: Ctx) -> bytes:
    return c.v2_bytes(texts=[""], features=c.g_empty.feature_vector,
                      outputs=vs.ATTENTION_OUTPUTS)


CASES: List[Case] = [
    # --- text ---
    Case("empty_text", "`text: \"\"`", OK,
         native=ser(lambda c: _with_text(c, "", c.g_empty)),
         v2=lambda c: c.v2_bytes(texts=[""], features=c.g_empty.feature_vector),
         answer="`[CLS] [SEP]`; golden-000's answer",
         expect=lambda c: golden_expect(c.g_empty)),
    Case("whitespace_only_text", "text of spaces, tabs, newlines, NBSP, U+3000, U+2028/9",
         OK, native=ser(lambda c: _with_text(c, WHITESPACE, c.g_empty)),
         v2=lambda c: c.v2_bytes(texts=[WHITESPACE], features=c.g_empty.feature_vector),
         answer="`[CLS] [SEP]`; golden-000's answer",
         expect=lambda c: golden_expect(c.g_empty)),
    Case("text_1mb", "1 MiB of words", OK,
         native=ser(lambda c: _with_text(c, one_mb_text(c))),
         v2=lambda c: c.v2_bytes(texts=[one_mb_text(c)], outputs=vs.ATTENTION_OUTPUTS),
         answer="truncated to 128 tokens; the answer for its first 8 KiB",
         expect=lambda c: ref_expect(c, one_mb_text(c)[:8192], one_mb_text(c)[:8192])),
    Case("text_1mb_one_word", "1 MiB without a space (one word)", OK,
         native=ser(lambda c: _with_text(c, "w" * ONE_MB)),
         v2=lambda c: c.v2_bytes(texts=["w" * ONE_MB]),
         answer="`[CLS] [UNK] [SEP]` (a word over 100 characters)",
         expect=lambda c: Expect(list(c.score(c.req(text="w" * 101)).probabilities),
                                 TOL_SAME, ["[CLS]", "[UNK]", "[SEP]"], False)),
    utf8_case("invalid_utf8_byte", "bytes 0xFF 0xFE in the text", b"\xff\xfe", 0),
    utf8_case("invalid_utf8_overlong", "overlong encoding of '/' (C0 AF)", b"\xc0\xaf", 0),
    utf8_case("invalid_utf8_surrogate", "an encoded UTF-16 surrogate (ED A0 80)",
              b"ab\xed\xa0\x80", 2),
    utf8_case("invalid_utf8_truncated", "a 3-byte sequence cut after 2 bytes",
              b"abc\xe2\x82", 3),
    utf8_case("invalid_utf8_beyond_max", "a code point past U+10FFFF (F4 90 80 80)",
              b"\xf4\x90\x80\x80", 0),
    Case("nul_bytes", "U+0000 inside and between the words", OK,
         native=ser(lambda c: _with_text(c, interleave(c.g.text, ["\0"]))),
         v2=lambda c: c.v2_bytes(texts=[interleave(c.g.text, ["\0"])]),
         answer="dropped (BERT cleaning); the golden answer",
         expect=lambda c: golden_expect(c.g)),
    Case("control_characters", "C0 controls, DEL, C1 controls, U+FFFD inside the words", OK,
         native=ser(lambda c: _with_text(c, interleave(c.g.text, ["\x01", "\x1b", "\x7f",
                                                                  "\x85", "\ufffd"]))),
         v2=lambda c: c.v2_bytes(texts=[interleave(c.g.text, ["\x01", "\x7f", "\ufffd"])]),
         answer="dropped (BERT cleaning); the golden answer",
         expect=lambda c: golden_expect(c.g)),
    Case("lone_combining_marks", "only combining marks (U+0301, U+0308, U+0327, U+0651...)",
         OK,
         native=ser(lambda c: _with_text(c, "\u0301 \u0308\u0301 \u0327\u0651 \u05b4",
                                         c.g_empty)),
         v2=lambda c: c.v2_bytes(texts=["\u0301 \u0308\u0301"],
                                 features=c.g_empty.feature_vector),
         answer="stripped as accents: `[CLS] [SEP]`",
         expect=lambda c: golden_expect(c.g_empty)),
    Case("combining_mark_flood", "1 MiB of alternating combining marks on one word", OK,
         native=ser(lambda c: _with_text(c, mark_flood(c))),
         v2=lambda c: c.v2_bytes(texts=[mark_flood(c)]),
         answer="stripped; the golden answer, in milliseconds",
         expect=lambda c: golden_expect(c.g)),
    Case("bidi_controls", "RLO/LRO/isolates/RLM/ALM between every character", OK,
         native=ser(lambda c: _with_text(c, interleave(c.g.text, BIDI))),
         v2=lambda c: c.v2_bytes(texts=[interleave(c.g.text, BIDI)]),
         answer="dropped (category Cf); the golden answer",
         expect=lambda c: golden_expect(c.g)),
    Case("zero_width_characters", "ZWSP, ZWNJ, ZWJ, word joiner, BOM, soft hyphen", OK,
         native=ser(lambda c: _with_text(c, interleave(c.g.text, ZERO_WIDTH))),
         v2=lambda c: c.v2_bytes(texts=[interleave(c.g.text, ZERO_WIDTH)]),
         answer="dropped (category Cf); the golden answer",
         expect=lambda c: golden_expect(c.g)),
    Case("emoji_and_cjk", "emoji (ZWJ sequences, flags, skin tones), CJK, Hangul, kana, "
         "math letters", OK,
         native=ser(lambda c: _with_text(c, EMOJI_CJK)),
         v2=lambda c: c.v2_bytes(texts=[EMOJI_CJK], outputs=vs.ATTENTION_OUTPUTS),
         answer="tokens of the reference tokenizer (`[UNK]` outside the vocab)",
         expect=lambda c: ref_expect(c, EMOJI_CJK)),
    Case("word_10k_chars", "a 10 000-character word between two golden texts", OK,
         native=ser(lambda c: _with_text(c, long_word(c))),
         v2=lambda c: c.v2_bytes(texts=[long_word(c)], outputs=vs.ATTENTION_OUTPUTS),
         answer="one `[UNK]`; tokens of the reference tokenizer",
         expect=lambda c: ref_expect(c, long_word(c))),
    Case("text_and_token_ids", "both text and token ids", INVALID,
         "text and token_ids: set exactly one, not both",
         native=ser(lambda c: _text_and_ids(c)),
         v2=lambda c: c.v2_bytes(extra_inputs=vs.ids_tensors([c.g.token_ids])),
         v2_needle="inputs: give exactly one of TEXT and INPUT_IDS (both given)"),
    # --- token ids ---
    Case("token_id_negative", "a token id of -1", INVALID,
         "token_ids[1]: id -1 is outside the vocabulary [0, ",
         native=ser(lambda c: c.ids_req(ids_with(c, -1))),
         v2=lambda c: c.v2_bytes(ids=ids_with(c, -1)),
         v2_needle="INPUT_IDS row 0: token_ids[1]: id -1 is outside the vocabulary"),
    Case("token_id_vocab_size", "a token id equal to the vocabulary size", INVALID,
         "is outside the vocabulary [0, ",
         native=ser(lambda c: c.ids_req(ids_with(c, c.vocab_size))),
         v2=lambda c: c.v2_bytes(ids=ids_with(c, c.vocab_size)),
         v2_needle="INPUT_IDS row 0: token_ids[1]: id "),
    Case("token_id_huge", "id 2^31-1 (native), 2^40 (v2 INT64)", INVALID,
         "token_ids[1]: id 2147483647 is outside the vocabulary",
         native=ser(lambda c: c.ids_req(ids_with(c, 2**31 - 1))),
         v2=lambda c: c.v2_bytes(ids=ids_with(c, 2**40)),
         v2_needle="INPUT_IDS row 0: id 1099511627776 at column 1 is outside the vocabulary"),
    Case("token_ids_100k", "100 000 token ids", INVALID,
         "token_ids: 100000 ids exceed the model's max_tokens (128)",
         native=ser(lambda c: c.ids_req([c.g.token_ids[1]] * 100_000)),
         v2=lambda c: c.v2_bytes(ids=[c.g.token_ids[1]] * 100_000),
         v2_needle="INPUT_IDS row 0: token_ids: 100000 ids exceed the model's max_tokens"),
    Case("token_ids_empty", "no text and no token ids (v2: INPUT_IDS [1,0])", INVALID,
         "text or token_ids: set exactly one (neither is set)",
         native=ser(lambda c: c.ids_req([])),
         v2=lambda c: c.v2_bytes(ids=[]), v2_needle="INPUT_IDS row 0: no ids"),
    Case("token_ids_mask_all_zero", "v2: an ATTENTION_MASK of zeros only", INVALID,
         v2=lambda c: _mask_all_zero(c), v2_needle="INPUT_IDS row 0: no ids"),
    # --- features ---
    Case("feature_missing_required", "a required feature left out (v2: no FEATURES)",
         INVALID, "features: missing required feature(s) 'amount'",
         native=ser(lambda c: _without_feature(c, "amount")),
         v2=lambda c: _v2_without_features(c), v2_needle="inputs: missing FEATURES"),
    Case("features_none", "neither `features` nor `feature_vector`", INVALID,
         "features or feature_vector: set exactly one (neither is set)",
         native=ser(lambda c: _without_all_features(c))),
    Case("feature_extra_unknown", "an extra feature the model does not have", INVALID,
         "features['bogus']: unknown feature",
         native=ser(lambda c: _plus_feature(c, "bogus"))),
    Case("feature_name_case_differs", "`Amount` for `amount`", INVALID,
         "features['Amount']: unknown feature",
         native=ser(lambda c: _plus_feature(c, "Amount"))),
    Case("feature_duplicated", "`amount` twice on the wire (v2: FEATURES twice)", OK,
         native=duplicated_feature_native, v2=v2_duplicated_features,
         v2_code=INVALID, v2_needle="inputs: 'FEATURES' given twice",
         answer="the last entry wins (protobuf maps): the golden answer",
         expect=lambda c: golden_expect(c.g)),
    Case("feature_empty_name", "a feature named \"\" (v2: an input named \"\")", INVALID,
         "features['']: unknown feature",
         native=ser(lambda c: _plus_feature(c, "")),
         v2=lambda c: c.v2_bytes(extra_inputs=[vs.Tensor("", "FP32", [1], [1.0])]),
         v2_needle="inputs: unknown input ''"),
    Case("feature_name_64kib", "a 64 KiB feature name (v2: input name): quoted short",
         INVALID, "...(65536 bytes)']: unknown feature",
         native=ser(lambda c: _plus_feature(c, "f" * 65536)),
         v2=lambda c: c.v2_bytes(extra_inputs=[vs.Tensor("f" * 65536, "FP32", [1], [1.0])]),
         v2_needle="...(65536 bytes)' ("),
    Case("feature_nan", "NaN", INVALID, "features['amount']: value is not finite",
         native=ser(lambda c: features_with(c, math.nan)),
         v2=lambda c: c.v2_bytes(features=vector_with(c, math.nan)),
         v2_needle="FEATURES row 0: feature_vector[0] (amount): value is not finite"),
    Case("feature_vector_nan", "NaN in `feature_vector`", INVALID,
         "feature_vector[0] (amount): value is not finite",
         native=ser(lambda c: c.vector_req(vector_with(c, math.nan)))),
    Case("feature_nan_payload", "a signalling / negative NaN bit pattern (raw bytes)",
         INVALID, "feature_vector[0] (amount): value is not finite",
         native=nan_payload_native, v2=nan_payload_v2,
         v2_needle="FEATURES row 0: feature_vector[0] (amount): value is not finite"),
    Case("feature_pos_inf", "+Inf", INVALID, "features['amount']: value is not finite",
         native=ser(lambda c: features_with(c, math.inf)),
         v2=lambda c: c.v2_bytes(features=vector_with(c, math.inf)),
         v2_needle="FEATURES row 0: feature_vector[0] (amount): value is not finite"),
    Case("feature_neg_inf", "-Inf", INVALID, "feature_vector[0] (amount): value is not finite",
         native=ser(lambda c: c.vector_req(vector_with(c, -math.inf))),
         v2=lambda c: c.v2_bytes(features=vector_with(c, -math.inf), raw=True),
         v2_needle="FEATURES row 0: feature_vector[0] (amount): value is not finite"),
    Case("feature_denormal", "every feature the smallest denormal, ±1.4e-45", OK,
         native=ser(lambda c: all_features(c, 1.4e-45)),
         v2=lambda c: c.v2_bytes(features=[-1.4e-45] * len(c.names)),
         answer="the answer for 0.0",
         expect=lambda c: same_as_features(c, 0.0)),
    Case("feature_plus_3e38", "every feature +3e38 (the model clips z-scores at 8)", OK,
         native=ser(lambda c: all_features(c, 3e38)),
         v2=lambda c: c.v2_bytes(features=[3e38] * len(c.names), raw=True),
         answer="the answer for +1e30 (clipped alike)",
         expect=lambda c: same_as_features(c, 1e30)),
    Case("feature_minus_3e38", "every feature -3e38", OK,
         native=ser(lambda c: all_features(c, -3e38)),
         v2=lambda c: c.v2_bytes(features=[-3e38] * len(c.names)),
         answer="the answer for -1e30",
         expect=lambda c: same_as_features(c, -1e30)),
    Case("feature_vector_short", "15 of 16 values", INVALID,
         "feature_vector: expected 16 values in model order, got 15",
         native=ser(lambda c: c.vector_req(c.g.feature_vector[:-1])),
         v2=lambda c: c.v2_bytes(features=c.g.feature_vector[:-1]),
         v2_needle="FEATURES: shape [1,15], expected [B,16]"),
    Case("feature_vector_long", "17 values", INVALID,
         "feature_vector: expected 16 values in model order, got 17",
         native=ser(lambda c: c.vector_req(c.g.feature_vector + [1.0])),
         v2=lambda c: c.v2_bytes(features=c.g.feature_vector + [1.0]),
         v2_needle="FEATURES: shape [1,17], expected [B,16]"),
    Case("features_and_vector", "both `features` and `feature_vector`", INVALID,
         "features and feature_vector: set exactly one, not both",
         native=ser(lambda c: _features_and_vector(c))),
    # --- routing, priority, attention ---
    Case("unknown_model", "model `nope`", NOT_FOUND, "model 'nope' not found",
         native=ser(lambda c: c.req(model="nope")),
         v2=lambda c: c.v2_bytes(model="nope")),
    Case("unknown_version", "version 7 of the model", NOT_FOUND,
         "model 'fusion' has no version '7'",
         native=ser(lambda c: c.req(model_version="7")),
         v2=lambda c: c.v2_bytes(version="7")),
    Case("version_not_a_number", "version `latest`", NOT_FOUND,
         "model 'fusion' has no version 'latest'",
         native=ser(lambda c: c.req(model_version="latest")),
         v2=lambda c: c.v2_bytes(version="latest")),
    Case("model_name_64kib", "a 64 KiB model name (the message is cut to 1 KiB)", NOT_FOUND,
         "-byte message cut)",
         native=ser(lambda c: c.req(model="m" * 65536)),
         v2=lambda c: c.v2_bytes(model="m" * 65536)),
    Case("priority_out_of_range", "priority 2 of 2 levels (v2: Triton priority 3)", INVALID,
         "priority: 2 is beyond the model's 2 levels (0 is highest)",
         native=ser(lambda c: c.req(priority=2)),
         v2=lambda c: c.v2_bytes(params={"priority": 3}),
         v2_needle="parameters['priority']: 3 is beyond the model's 2 levels"),
    Case("priority_extreme", "priority 2^32-1 (v2: -1)", INVALID,
         "priority: 4294967295 is beyond the model's 2 levels",
         native=ser(lambda c: c.req(priority=2**32 - 1)),
         v2=lambda c: c.v2_bytes(params={"priority": -1}),
         v2_needle="parameters['priority']: expected a non-negative integer"),
    Case("attention_unknown_value", "attention enum 7 (v2: attention \"sum\")", INVALID,
         "attention: unknown value 7",
         native=ser(lambda c: c.req(attention=7)),
         v2=lambda c: _v2_attention_param(c, "sum"),
         v2_needle="parameters['attention']: expected \"mean\" or \"per_head\""),
    Case("attention_no_tokens", "attention asked, no tokens at all", INVALID,
         "text or token_ids: set exactly one (neither is set)",
         native=ser(lambda c: c.ids_req([], attention=2)),
         v2=lambda c: c.v2_bytes(ids=[], outputs=vs.ATTENTION_OUTPUTS),
         v2_needle="INPUT_IDS row 0: no ids"),
    Case("attention_empty_text", "attention asked on empty text: [CLS] [SEP] only", OK,
         native=ser(lambda c: _with_text(c, "", c.g_empty, attention=2)),
         v2=v2_empty_text_attention, answer="`[CLS] [SEP]` attention, golden-000's answer",
         expect=lambda c: golden_expect(c.g_empty)),
    # --- the wire ---
    Case("over_size_limit", "a 5 MiB message (limit: config max_message_bytes, 4 MiB)",
         EXHAUSTED, "Received message larger than max",
         native=ser(lambda c: c.req(text=oversize_text(c))), stream=False,
         v2=lambda c: c.v2_bytes(texts=[oversize_text(c)])),
    Case("over_size_limit_stream", "a 5 MiB message on a ScoreStream: ends the stream",
         EXHAUSTED, "Received message larger than max", run={"stream": oversize_stream}),
    Case("unknown_fields", "field numbers the API does not declare (1000, 99, 77)", OK,
         native=unknown_fields_native, v2=unknown_fields_v2,
         answer="ignored (protobuf forward compatibility): the golden answer",
         expect=lambda c: golden_expect(c.g)),
    Case("wrong_wire_type_text", "`text` (field 4) as a varint (v2: `id` as a varint)",
         INVALID, "text: field 4 sent with wire type varint, declared string",
         native=lambda c: c.ids_req(c.g.token_ids).SerializeToString() +
         hs.field_varint(4, 1),
         v2=lambda c: c.v2_bytes() + hs.field_varint(3, 7),
         v2_needle="id: field 3 sent with wire type varint, declared string"),
    Case("wrong_wire_type_priority", "`priority` length-delimited (v2: `model_version` "
         "as fixed32)", INVALID,
         "priority: field 9 sent with wire type length-delimited, declared uint32",
         native=lambda c: c.req().SerializeToString() + hs.field_bytes(9, b"\x01"),
         v2=lambda c: c.v2_bytes() + hs.field_fixed32(2, b"\x01\0\0\0"),
         v2_needle="model_version: field 2 sent with wire type fixed32, declared string"),
    Case("wrong_wire_type_features", "`features` (a map) as a fixed32", INVALID,
         "features: field 6 sent with wire type fixed32, declared message",
         native=lambda c: c.req().SerializeToString() + hs.field_fixed32(6, b"\0\0\0\0")),
    Case("wrong_wire_type_feature_value", "`features['amount']` as a varint (v2: the "
         "`attention` parameter as a fixed32)", INVALID,
         "features['amount']: value sent with wire type varint, declared float",
         native=lambda c: c.req().SerializeToString() + hs.field_bytes(
             6, hs.field_bytes(1, c.names[0].encode()) + hs.field_varint(2, 5)),
         v2=lambda c: c.v2_bytes() + hs.field_bytes(
             4, hs.field_bytes(1, b"attention") + hs.field_fixed32(2, b"\0\0\0\0")),
         v2_needle="parameters['attention']: value sent with wire type fixed32, "
                   "declared message"),
    Case("truncated_message", "the request cut in half", INVALID, "does not parse",
         native=lambda c: truncated(c, False), v2=lambda c: truncated(c, True)),
    Case("invalid_wire_type", "a tag with wire type 7", INVALID, "does not parse",
         native=lambda c: c.req().SerializeToString() + b"\x0f\x00",
         v2=lambda c: c.v2_bytes() + b"\x0f\x00"),
    Case("garbage_bytes", "64 bytes of 0xFF", INVALID, "does not parse",
         native=lambda c: b"\xff" * 64, v2=lambda c: b"\xff" * 64),
    Case("empty_message", "0 bytes", INVALID,
         "text or token_ids: set exactly one (neither is set)",
         native=lambda c: b"", v2=lambda c: b"",
         v2_needle="inputs: give exactly one of TEXT and INPUT_IDS"),
    # --- the transport ---
    Case("deadline_1us", "a deadline of 1 µs (on a 1 MiB request: see below)", DEADLINE,
         "Deadline Exceeded",
         run={"score": deadline_1us("score"), "stream": deadline_1us("stream"),
              "v2": deadline_1us("v2")}),
    Case("client_cancels", "the client cancels mid-request (a stream: after 20 of "
         "2000 responses)", CANCELLED, "Locally cancelled by application",
         run={"score": cancel_unary("score"), "stream": cancel_stream,
              "v2": cancel_unary("v2"), "v2_stream": cancel_v2_stream}),
    Case("stream_10k", "10 000 requests on one stream, each answered once", OK,
         answer="10 000 golden answers, stream ends OK",
         run={"stream": stream_10k, "v2_stream": v2_stream_10k}),
]


def _text_and_ids(c: Ctx):
    r = c.req()
    r.token_ids.extend(c.g.token_ids)
    return r


def _mask_all_zero(c: Ctx) -> bytes:
    ids = vs.ids_tensors([c.g.token_ids], mask=True)
    ids[1].data = [0] * len(ids[1].data)
    req = vs.V2Request(inputs=ids + [vs.features_tensor([c.g.feature_vector])], id="hostile")
    return vs.to_grpc(c.v2, req).SerializeToString()


def _without_feature(c: Ctx, name: str):
    r = c.req()
    del r.features[name]
    return r


def _without_all_features(c: Ctx):
    r = c.req()
    r.ClearField("features")
    return r


def _plus_feature(c: Ctx, name: str):
    r = c.req()
    r.features[name] = 1.0
    return r


def _features_and_vector(c: Ctx):
    r = c.req()
    r.feature_vector.extend(c.g.feature_vector)
    return r


def _v2_without_features(c: Ctx) -> bytes:
    m = c.v2pb.ModelInferRequest.FromString(c.v2_bytes())
    del m.inputs[1]
    return m.SerializeToString()


def _v2_attention_param(c: Ctx, value: str) -> bytes:
    m = c.v2pb.ModelInferRequest.FromString(c.v2_bytes(outputs=[vs.T2F]))
    m.outputs[0].parameters["attention"].string_param = value
    return m.SerializeToString()


ITEMS = [pytest.param(case, api, id=f"{case.name}-{api}")
         for case in CASES for api in case.apis()]


# --- fixtures -----------------------------------------------------------------------

@dataclass
class Run:
    server: harness.ServerProcess
    ctx: Ctx
    rss_warm_kib: int = 0
    fds_warm: int = 0
    baseline_s: List[float] = field(default_factory=list)
    follow_up_s: Dict[str, float] = field(default_factory=dict)
    case_s: Dict[str, float] = field(default_factory=dict)
    failed: List[str] = field(default_factory=list)


def _good_native(ctx: Ctx) -> float:
    """A golden request by text: its golden probabilities; returns seconds."""
    out = hs.unary(ctx.channel, hs.SCORE, ctx.pb.ScoreResponse,
                   ctx.req(request_id="good").SerializeToString(), RPC_TIMEOUT_S)
    assert out.code == OK, f"good request: {out.code.name}: {out.details}"
    check_native(out.response, golden_expect(ctx.g, tokens=False), "good request")
    return out.seconds


def _good_v2(ctx: Ctx) -> float:
    out = hs.unary(ctx.channel, hs.MODEL_INFER, ctx.v2pb.ModelInferResponse,
                   ctx.v2_bytes(), RPC_TIMEOUT_S)
    assert out.code == OK, f"good v2 request: {out.code.name}: {out.details}"
    check_v2(out.response, golden_expect(ctx.g, tokens=False), "good v2 request")
    return out.seconds


def _warm_up(ctx: Ctx, run: Run) -> None:
    """Valid traffic up to what the table sends at most: every golden request
    on both APIs, 10 000 on one stream per API (full batches on every
    executor), and 1 MiB requests. The server's allocator arenas, gRPC's
    buffers and LibTorch's working memory then hold their working size
    (measured: repeating 10k streams after the first grows RSS by < 4%, and
    plateaus), so growth past it is the hostile cases'."""
    for rep in range(2):
        for g in ctx.golden:
            for by_ids in (False, True):
                ctx.score(harness.request_from_golden(ctx.stubs, g, by_ids=by_ids,
                                                      attention=rep))
            hs.unary(ctx.channel, hs.MODEL_INFER, ctx.v2pb.ModelInferResponse,
                     vs.to_grpc(ctx.v2, vs.request_from_golden([g])).SerializeToString(),
                     RPC_TIMEOUT_S)
    stream_10k(ctx)
    v2_stream_10k(ctx)
    for _ in range(2):
        ctx.score(ctx.req(text=one_mb_text(ctx)))
        ctx.score(ctx.req(text="w" * ONE_MB))
        hs.unary(ctx.channel, hs.MODEL_INFER, ctx.v2pb.ModelInferResponse,
                 ctx.v2_bytes(texts=["w" * ONE_MB]), RPC_TIMEOUT_S)
    run.baseline_s = [_good_native(ctx) for _ in range(20)]


@pytest.fixture(scope="module")
def run(stubs, model_config, golden, tmp_path_factory):
    v2 = harness.call_or_fail(vs.generate_v2_stubs, str(tmp_path_factory.mktemp("v2stubs")))
    # The 1 MiB cases must reach the tokenizer: at the default
    # --max_text_bytes (64 KiB) they are refused before it, and that edge is
    # tests/integration/test_limits.py's. No queue-work bound: the 10k-stream
    # case checks a stream's own flow control (512 in flight), and where 512
    # requests are more than the bound's second of work (the ASan build)
    # the bound would refuse part of it; that bound's edges are
    # tests/reliability/test_overload.py's.
    srv = vs.start_server(str(tmp_path_factory.mktemp("hostile")),
                          extra_args=[f"--max_text_bytes={TEXT_LIMIT_BYTES}",
                                      "--max_queue_wait_us=0"])
    channel = vs.open_channel(srv)
    try:
        ctx = Ctx(stubs, v2, golden, model_config, channel)
        r = Run(srv, ctx)
        _warm_up(ctx, r)
        r.rss_warm_kib = hs.vm_rss_kib(srv.proc.pid)
        r.fds_warm = hs.fd_count(srv.proc.pid)
        yield r
    finally:
        channel.close()
        rc = srv.stop()
        harness.observe("hostile_server_exit_code", rc)


# --- the tests ----------------------------------------------------------------------

def _send(ctx: Ctx, case: Case, api: str) -> hs.Outcome:
    if api == "score":
        return hs.unary(ctx.channel, hs.SCORE, ctx.pb.ScoreResponse, case.native(ctx),
                        RPC_TIMEOUT_S)
    if api == "v2":
        return hs.unary(ctx.channel, hs.MODEL_INFER, ctx.v2pb.ModelInferResponse,
                        case.v2(ctx), RPC_TIMEOUT_S)
    # stream: the case between two good requests; its answer comes in band.
    goods = [ctx.req(request_id=f"good-{i}").SerializeToString() for i in range(2)]
    out, responses = hs.stream(ctx.channel, hs.SCORE_STREAM, ctx.pb.ScoreResponse,
                               [goods[0], case.native(ctx), goods[1]], RPC_TIMEOUT_S)
    assert out.code == OK, f"the stream itself ended {out.code.name}: {out.details}"
    assert len(responses) == 3, f"{len(responses)} responses for 3 requests"
    mine = [r for r in responses if not r.request_id.startswith("good-")]
    assert len(mine) == 1, [r.request_id for r in responses]
    for r in responses:
        if r.request_id.startswith("good-"):
            check_native(r, golden_expect(ctx.g, tokens=False), f"stream {r.request_id}")
    r = mine[0]
    if r.HasField("error"):
        return hs.Outcome(hs.code_of(r.error.code), r.error.message, None, out.seconds)
    return hs.Outcome(OK, "", r, out.seconds)


@pytest.mark.parametrize("case,api", ITEMS)
def test_hostile_case(run, case, api):
    ctx, key = run.ctx, f"{case.name}[{api}]"
    run.failed.append(key)  # removed once it passes
    if case.run:
        out = case.run[api](ctx)
        code, needle = case.code, case.needle
    else:
        out = _send(ctx, case, api)
        v2 = api == "v2"
        code = (case.v2_code or case.code) if v2 else case.code
        needle = (case.v2_needle if case.v2_needle is not None else case.needle) if v2 \
            else case.needle
    run.case_s[key] = out.seconds
    if os.environ.get("HOSTILE_RSS_TRACE"):
        print(f"\nRSS {key}: {hs.vm_rss_kib(run.server.proc.pid) / 1024:.1f} MiB")
    harness.observe(f"hostile[{key}]", f"{out.code.name} {out.seconds * 1e3:.1f} ms: "
                                       f"{out.details[:160]}")
    assert out.code == code, f"{key}: expected {code.name}, got {out.code.name}: " \
                             f"{out.details[:500]}"
    assert needle in out.details, f"{key}: message {out.details[:500]!r} lacks {needle!r}"
    if code == OK and case.expect is not None:
        want = case.expect(ctx)
        if api == "v2":
            check_v2(out.response, want, key)
        else:
            check_native(out.response, want, key)

    assert run.server.proc.poll() is None, \
        f"server exited ({run.server.proc.returncode}) after {key}\n{run.server.log_tail()}"
    t_native = _good_native(ctx)
    t_v2 = _good_v2(ctx)
    run.follow_up_s[key] = t_native
    assert max(t_native, t_v2) <= FOLLOW_UP_BOUND_S, \
        f"after {key} a golden request took {t_native:.3f} s (v2 {t_v2:.3f} s)"
    run.failed.remove(key)


def test_table_has_40_cases_on_both_apis():
    assert len(CASES) >= 40, len(CASES)
    assert sum(1 for c in CASES if c.v2 or any(a.startswith("v2") for a in c.run)) >= 35


def test_readme_documents_every_case():
    with open(os.path.join(harness.REPO_ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    section = readme.split("### Hostile input", 1)
    assert len(section) == 2, "README.md has no '### Hostile input' section"
    missing = [c.name for c in CASES if f"`{c.name}`" not in section[1].split("\n## ", 1)[0]]
    assert not missing, f"README's Hostile input table lacks {missing}"


# Every refused case of the table with a message of at most 70 kB, sent
# REFUSAL_ROUNDS times over on both APIs: a leak per refusal would add up.
REFUSAL_ROUNDS = 150
REFUSAL_MAX_BYTES = 70_000
# Over ~10k refusals: 8 MiB is < 1 KiB per refusal, and measured growth
# here after warm-up is ~0-2 MiB (allocator noise).
REFUSAL_LEAK_BOUND_KIB = 8 * 1024


def test_repeated_refusals_do_not_grow_memory(run):
    from concurrent.futures import ThreadPoolExecutor
    ctx = run.ctx
    calls = []
    for case in CASES:
        if case.native and case.code != OK:
            calls.append((hs.SCORE, ctx.pb.ScoreResponse, case.native(ctx), case.code))
        if case.v2 and (case.v2_code or case.code) != OK:
            calls.append((hs.MODEL_INFER, ctx.v2pb.ModelInferResponse, case.v2(ctx),
                          case.v2_code or case.code))
    calls = [c for c in calls if len(c[2]) <= REFUSAL_MAX_BYTES]

    def send(call):
        method, rtype, raw, code = call
        out = hs.unary(ctx.channel, method, rtype, raw, RPC_TIMEOUT_S)
        return out.code == code

    pid = run.server.proc.pid
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(send, calls))  # one round, then measure
        before = hs.vm_rss_kib(pid)
        t0 = time.monotonic()
        ok = list(pool.map(send, calls * REFUSAL_ROUNDS))
        seconds = time.monotonic() - t0
    after = hs.vm_rss_kib(pid)
    figures = {"refusals": len(ok), "kinds": len(calls), "seconds": round(seconds, 1),
               "rss_before_mib": round(before / 1024, 1),
               "rss_after_mib": round(after / 1024, 1),
               "bytes_per_refusal": round((after - before) * 1024 / len(ok), 1)}
    harness.observe("hostile_refusal_rounds", figures)
    print("refusal rounds:", figures)
    assert all(ok), f"{ok.count(False)} of {len(ok)} refusals had another status"
    # Under ASan (sanitizers/run_asan_tests.sh sets FUSION_SANITIZER) freed
    # memory waits in ASan's quarantine (256 MiB) before reuse, so RSS grows
    # with every allocation, leaked or not: CI saw 42 MiB over these 11,100
    # refusals there, 0.3 MiB without it. There LeakSanitizer checks for
    # leaks at the server's exit instead; this bound is the plain build's.
    if not os.environ.get("FUSION_SANITIZER"):
        assert after - before <= REFUSAL_LEAK_BOUND_KIB, figures
    assert run.server.proc.poll() is None, run.server.log_tail()


def test_memory_and_latency_after_every_case(run):
    """Runs last (file order): RSS, file descriptors and follow-up latency
    over the whole table."""
    assert run.follow_up_s, "no case ran"
    pid = run.server.proc.pid
    assert run.server.proc.poll() is None, run.server.log_tail()
    rss = hs.vm_rss_kib(pid)
    fds = hs.fd_count(pid)
    ratio = rss / run.rss_warm_kib
    follow = list(run.follow_up_s.values())
    base_p50 = hs.percentile(run.baseline_s, 0.5)
    figures = {
        "rss_after_warmup_mib": round(run.rss_warm_kib / 1024, 1),
        "rss_after_cases_mib": round(rss / 1024, 1), "rss_ratio": round(ratio, 3),
        "rss_peak_mib": round(hs.vm_hwm_kib(pid) / 1024, 1),
        "fds_after_warmup": run.fds_warm, "fds_after_cases": fds,
        "follow_up_p50_ms": round(hs.percentile(follow, 0.5) * 1e3, 2),
        "follow_up_max_ms": round(max(follow) * 1e3, 2),
        "slowest_case": max(run.case_s, key=run.case_s.get),
        "slowest_case_ms": round(max(run.case_s.values()) * 1e3, 1),
        "baseline_p50_ms": round(base_p50 * 1e3, 2),
        "cases_run": len(run.follow_up_s), "cases_not_passed": list(run.failed)}
    harness.observe("hostile_figures", figures)
    print("hostile figures:", figures)
    assert ratio <= RSS_GROWTH_BOUND, f"RSS grew {ratio:.3f}x over warm-up: {figures}"
    # Streams and channels closed: no descriptor left behind per case.
    assert fds <= run.fds_warm + 8, f"fds {run.fds_warm} -> {fds}"
    assert hs.percentile(follow, 0.5) <= max(10 * base_p50, 0.05), figures


def markdown_table() -> str:
    """The README table (python3 tests/e2e/test_hostile_input.py prints it)."""
    lines = ["| case | input (APIs) | status | message holds / answer |",
             "| --- | --- | --- | --- |"]
    for c in CASES:
        status = f"`{c.code.name}`" if c.native or c.run else ""
        if c.v2 and not c.run and (c.v2_code or c.code) != c.code or not (c.native or c.run):
            status += (" (v2: " if status else "") + f"`{(c.v2_code or c.code).name}`" + \
                (")" if c.native else "")
        parts = []
        if c.needle:
            parts.append(f"`{c.needle}`")
        if c.answer:
            parts.append(c.answer)
        if c.v2_needle and c.v2_needle != c.needle:
            parts.append(f"v2: `{c.v2_needle}`")
        apis = ", ".join(c.apis())
        lines.append(f"| `{c.name}` | {c.what} ({apis}) | {status} | {'; '.join(parts)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
