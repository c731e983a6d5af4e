"""Helpers for test_hostile_input.py: hand-made protobuf wire bytes, calls
that send raw bytes through generic gRPC methods (so that what the server
receives is exactly what a case built, malformed or not), and the server
process's memory and file descriptors read from /proc.

The stubs, server process and golden data come from harness.py; the v2
(KServe) request forms from tests/integration/v2_support.py.
"""
import os
import struct
import sys
import time
from dataclasses import dataclass
from typing import Iterable, List, Optional

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402
import v2_support as vs  # noqa: E402,F401  (re-exported for the test module)

SCORE = "/fusion.v1.ScoringService/Score"
SCORE_STREAM = "/fusion.v1.ScoringService/ScoreStream"
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
MODEL_STREAM_INFER = "/inference.GRPCInferenceService/ModelStreamInfer"

# Protobuf wire types.
VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5


# --- wire bytes -------------------------------------------------------------------

def varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # negative int32/int64: ten bytes, two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def field_varint(number: int, value: int) -> bytes:
    return tag(number, VARINT) + varint(value)


def field_bytes(number: int, payload: bytes) -> bytes:
    return tag(number, LENGTH_DELIMITED) + varint(len(payload)) + payload


def field_fixed32(number: int, payload: bytes) -> bytes:
    assert len(payload) == 4
    return tag(number, FIXED32) + payload


def map_entry_string_float(number: int, key: str, value_bits: bytes) -> bytes:
    """One entry of a map<string, float> field: key = 1, value = 2 (fixed32)."""
    return field_bytes(number, field_bytes(1, key.encode("utf-8")) +
                       field_fixed32(2, value_bits))


def f32(value: float) -> bytes:
    return struct.pack("<f", value)


def replace_once(raw: bytes, placeholder: bytes, replacement: bytes) -> bytes:
    """`raw` with `placeholder` swapped for `replacement` of the same length
    (so that no length prefix around it changes)."""
    assert len(placeholder) == len(replacement), (placeholder, replacement)
    assert raw.count(placeholder) == 1, f"{placeholder!r} occurs {raw.count(placeholder)}x"
    return raw.replace(placeholder, replacement)


# --- calls with raw bytes -----------------------------------------------------------

@dataclass
class Outcome:
    """How a call ended: its status, message, and response (when OK)."""
    code: grpc.StatusCode
    details: str
    response: object = None
    seconds: float = 0.0


def identity(b: bytes) -> bytes:
    return b


def unary(channel, method: str, response_type, raw: bytes, timeout: float) -> Outcome:
    call = channel.unary_unary(method, request_serializer=identity,
                               response_deserializer=response_type.FromString)
    t0 = time.monotonic()
    try:
        resp = call(raw, timeout=timeout)
        return Outcome(grpc.StatusCode.OK, "", resp, time.monotonic() - t0)
    except grpc.RpcError as e:
        return Outcome(e.code(), e.details() or "", None, time.monotonic() - t0)


def stream(channel, method: str, response_type, raws: Iterable[bytes],
           timeout: float):
    """(Outcome of the stream as a whole, the responses it delivered)."""
    call = channel.stream_stream(method, request_serializer=identity,
                                 response_deserializer=response_type.FromString)
    responses = []
    t0 = time.monotonic()
    it = call(iter(raws), timeout=timeout)
    try:
        for r in it:
            responses.append(r)
        return Outcome(grpc.StatusCode.OK, "", None, time.monotonic() - t0), responses
    except grpc.RpcError as e:
        return Outcome(e.code(), e.details() or "", None,
                       time.monotonic() - t0), responses


def code_of(number: int) -> Optional[grpc.StatusCode]:
    return next((c for c in grpc.StatusCode if c.value[0] == number), None)


# --- the server process, from /proc ----------------------------------------------------

def _proc_status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise harness.HarnessError(f"/proc/{pid}/status has no {key} line")


def vm_rss_kib(pid: int) -> int:
    """Resident memory now."""
    return _proc_status_kib(pid, "VmRSS")


def vm_hwm_kib(pid: int) -> int:
    """Peak resident memory since the process started."""
    return _proc_status_kib(pid, "VmHWM")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def percentile(values: List[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")
