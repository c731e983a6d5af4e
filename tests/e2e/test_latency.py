"""single_client_latency.py runs against the shared server and writes its JSON."""
import json
import os
import subprocess
import sys

import harness

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "single_client_latency.py")


def test_single_client_latency_script(server, tmp_path):
    out = tmp_path / "single_client_latency.json"
    proc = subprocess.run([sys.executable, SCRIPT, str(out), "--address", server.grpc_address,
                           "--requests", "300"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"rc {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "p50" in proc.stdout and "p99" in proc.stdout, proc.stdout
    result = json.loads(out.read_text())
    assert result["requests"] == 300
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
    harness.observe("latency_single_client", {k: result[k] for k in (
        "p50_ms", "p99_ms", "mean_ms", "throughput_rps", "server_compute_us_p50",
        "server_total_us_p50")})
