"""A ScoreStream client meant to be SIGKILLed mid-stream by
test_slow_clients.py: it keeps one stream going (`--rate` requests a second,
with attention, responses read as they come) and prints "streaming" once
`--ready_after` responses have arrived, then goes on until it is killed.

  /usr/bin/python3 stream_client_process.py ADDRESS STUBS_DIR [--rate R] [--ready_after N]

STUBS_DIR holds the generated fusion/v1 Python stubs (harness.generate_stubs).
"""
import argparse
import itertools
import os
import sys
import time

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("stubs_dir")
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--ready_after", type=int, default=100)
    args = parser.parse_args()
    sys.path.insert(0, args.stubs_dir)
    import harness
    stubs = harness.generate_stubs(args.stubs_dir)
    golden = harness.load_golden()
    requests = [harness.request_from_golden(stubs, g, attention=1) for g in golden]

    def forever():
        start = time.monotonic()
        for i in itertools.count():
            time.sleep(max(0.0, start + i / args.rate - time.monotonic()))
            request = stubs.scoring_pb2.ScoreRequest()
            request.CopyFrom(requests[i % len(requests)])
            request.request_id = f"killed-{i}"
            yield request

    channel = grpc.insecure_channel(args.address)
    stub = stubs.scoring_pb2_grpc.ScoringServiceStub(channel)
    for n, _ in enumerate(stub.ScoreStream(forever()), 1):
        if n == args.ready_after:
            print("streaming", flush=True)


if __name__ == "__main__":
    main()
