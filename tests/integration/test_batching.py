"""Dynamic batching seen from outside: concurrent clients share batches."""
import threading

import grpc
import pytest

import harness

CLIENTS = 128
ROUNDS = 6


@pytest.fixture
def server(stubs, tmp_path):
    # One executor: with one per CPU (the default) a many-core host would
    # split the same load into more, smaller batches.
    srv = harness.ServerProcess(log_dir=str(tmp_path),
                                extra_args=["--max_batch_size=32",
                                            "--instance_count=1"])
    harness.call_or_fail(srv.start)
    yield srv
    srv.stop()


def test_128_concurrent_clients_get_batches_averaging_at_least_8(
        server, stubs, golden):
    channel = grpc.insecure_channel(server.grpc_address)
    stub = stubs.scoring_pb2_grpc.ScoringServiceStub(channel)
    before = harness.scrape_metrics(server)
    errors = []

    def client(index):
        for r in range(ROUNDS):
            g = golden[(index + r) % len(golden)]
            try:
                response = stub.Score(harness.request_from_golden(
                    stubs, g, request_id=f"c{index}-{r}"), timeout=60)
                assert response.timing.batch_size <= 32
            except grpc.RpcError as error:
                errors.append(error.code().name)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    channel.close()
    assert not errors, f"errors: {errors[:5]}"

    after = harness.scrape_metrics(server)
    key = '{model="fusion",version="1"}'
    requests = (after[f"fusion_batch_size_sum{key}"]
                - before.get(f"fusion_batch_size_sum{key}", 0))
    batches = (after[f"fusion_batch_size_count{key}"]
               - before.get(f"fusion_batch_size_count{key}", 0))
    assert requests == CLIENTS * ROUNDS
    mean = requests / batches
    harness.observe("mean_batch_size_128_clients", round(mean, 2))
    assert mean >= 8, f"mean batch size {mean:.1f} over {batches:.0f} batches"
