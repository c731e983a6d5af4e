"""Queries a Prometheus over its HTTP API (instant queries, waiting until a
result is acceptable)."""
import json
import time
import urllib.parse

import harness


class PrometheusApi:
    def __init__(self, base_url):
        self.base_url = base_url

    def ready(self):
        return harness.http_get(f"{self.base_url}/-/ready", timeout=2)[0] == 200

    def query(self, promql):
        """("success", result) or ("error", why) of an instant query."""
        url = f"{self.base_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        status, body = harness.http_get(url, timeout=5)
        data = json.loads(body) if body else {}
        if status == 200 and data.get("status") == "success":
            return "success", data["data"]["result"]
        return "error", data.get("error", f"HTTP {status}")

    def wait(self, promql, accept, timeout):
        """The last (state, result), once accept(result) or after timeout."""
        deadline = time.monotonic() + timeout
        state, result = self.query(promql)
        while not (state == "success" and accept(result)) and time.monotonic() < deadline:
            time.sleep(0.5)
            state, result = self.query(promql)
        return state, result

    def scalar(self, promql):
        """The value of a one-series query, or None."""
        state, result = self.query(promql)
        if state == "success" and result:
            return float(result[0]["value"][1])
        return None
