"""The attention explorer in a real headless chromium against a real server.

Every number the page shows is checked against the v2 HTTP API's answer for
the same request (independent of the page's own /ui/api endpoints), within
1e-5. Screenshots of the main states go to the artifacts directory.
"""
import json
import os
import re
import shutil
import threading
import urllib.error
import urllib.request

import pytest

import harness
import webdriver

TOL = 1e-5
# Word pieces, non-ASCII text, all 16 features (golden.jsonl line 5).
EXAMPLE = "golden-004"


# --- helpers -----------------------------------------------------------------

def http(url, body=None, method=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def v2_infer(base_url, g, per_head=False):
    """SCORE and both attentions from the v2 API, as nested lists [H][..][..]."""
    params = {"attention": "per_head"} if per_head else {}
    body = {
        "inputs": [
            {"name": "TEXT", "datatype": "BYTES", "shape": [1], "data": [g.text]},
            {"name": "FEATURES", "datatype": "FP32", "shape": [1, len(g.feature_vector)],
             "data": g.feature_vector}],
        "outputs": [{"name": "SCORE"}, {"name": "TOKEN_COUNT"},
                    {"name": "TEXT_TO_FEATURES_ATTENTION", "parameters": params},
                    {"name": "FEATURES_TO_TEXT_ATTENTION", "parameters": params}]}
    status, _, raw = http(f"{base_url}/v2/models/{harness.MODEL_NAME}/infer", body)
    assert status == 200, raw
    out = {o["name"]: o for o in json.loads(raw)["outputs"]}
    n = out["TOKEN_COUNT"]["data"][0]

    def unflatten(o):
        shape, data = o["shape"][1:], o["data"]  # drop B (= 1)
        if not per_head:
            shape = [1] + shape
        h, r, c = shape
        return [[data[(k * r + i) * c:(k * r + i + 1) * c] for i in range(r)] for k in range(h)]

    t2f = [[row[:] for row in head[:n]] for head in unflatten(out["TEXT_TO_FEATURES_ATTENTION"])]
    f2t = [[row[:n] for row in head] for head in unflatten(out["FEATURES_TO_TEXT_ATTENTION"])]
    return out["SCORE"]["data"][0], n, t2f, f2t


def open_page(driver, base_url):
    driver.get(base_url + "/")
    driver.wait_for(lambda: driver.js("return document.body.dataset.ready || ''"),
                    "the page to load the model's metadata")
    assert driver.js("return document.body.dataset.ready") == "1", \
        driver.js("return document.getElementById('error').innerText")
    driver.wait_for(lambda: driver.js("return document.querySelectorAll('#examples button').length"),
                    "the golden examples")


def pick_example(driver, request_id):
    driver.find(f'#examples button[title="{request_id}"]').click()


def submit(driver, attention):
    driver.find(f'input[name="attention"][value="{attention}"]').click()
    # Forget the previous answer, so that only the new one ends the wait.
    driver.js("document.getElementById('score').dataset.value = '';"
              "document.getElementById('error').hidden = true;")
    driver.find("#submit").click()
    driver.wait_for(lambda: driver.js(
        "return document.getElementById('score').dataset.value !== '' && "
        "!document.getElementById('result').hidden || "
        "!document.getElementById('error').hidden"), "the answer")


def visible(driver, element_id):
    """Whether the element is rendered (not just without the hidden attribute)."""
    return driver.js("const e = document.getElementById(arguments[0]);"
                     "return e.getClientRects().length > 0 && "
                     "getComputedStyle(e).visibility !== 'hidden'", element_id)


def heatmap(driver, table_id):
    """[[value]] read from the DOM cells (data-value), with the table's shape."""
    return driver.js("""
        const t = document.getElementById(arguments[0]);
        const rows = [];
        for (const tr of t.querySelectorAll('tbody tr'))
          rows.push([...tr.querySelectorAll('td.cell')].map((td) => Number(td.dataset.value)));
        return rows;""", table_id)


def assert_matrix_close(got, want, what):
    assert len(got) == len(want), f"{what}: {len(got)} rows, want {len(want)}"
    for i, (g_row, w_row) in enumerate(zip(got, want)):
        assert len(g_row) == len(w_row), f"{what} row {i}: {len(g_row)} cells, want {len(w_row)}"
        for j, (g, w) in enumerate(zip(g_row, w_row)):
            assert abs(g - w) <= TOL, f"{what}[{i}][{j}] = {g}, the API says {w}"


@pytest.fixture(scope="module")
def example(golden):
    return next(g for g in golden if g.request_id == EXAMPLE)


# --- tests -------------------------------------------------------------------

def test_page_and_assets_served_with_strict_csp(base_url):
    status, headers, body = http(base_url + "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    csp = headers.get("Content-Security-Policy", "")
    for directive in ("default-src 'none'", "script-src 'self'", "style-src 'self'",
                      "connect-src 'self'", "frame-ancestors 'none'"):
        assert directive in csp, csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
    html = body.decode()
    # No inline script or style for the CSP to block, nothing from elsewhere.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
    assert "<style" not in html and " style=" not in html, "inline style"
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "external resource"
    for path, kind in (("/ui/app.js", "text/javascript"), ("/ui/app.css", "text/css"),
                       ("/ui/favicon.svg", "image/svg+xml")):
        status, headers, body = http(base_url + path)
        assert status == 200 and headers["Content-Type"].startswith(kind), (path, headers)
        assert "Content-Security-Policy" in headers
        body = body.replace(b'xmlns="http://www.w3.org/2000/svg"', b"")  # a name, not a fetch
        assert b"http://" not in body and b"https://" not in body, path


def test_form_is_built_from_metadata(driver, base_url, golden):
    stubs = harness.generate_stubs()
    config = harness.load_config(stubs)
    open_page(driver, base_url)
    rows = driver.js("""return [...document.querySelectorAll('#features tr')].map((tr) => ({
        name: tr.querySelector('input').dataset.feature,
        text: tr.innerText}));""")
    assert [r["name"] for r in rows] == [f.name for f in config.features]
    for row, f in zip(rows, config.features):
        assert f.description in row["text"], (f.name, row["text"])
        assert f"typical {f.mean:.6g} ± {f.std:.6g}" in row["text"], (f.name, row["text"])
        assert ("optional" in row["text"]) == f.allow_missing, (f.name, row["text"])
    examples = driver.js("return [...document.querySelectorAll('#examples button')].map((b) => b.title)")
    assert examples and set(examples) <= {g.request_id for g in golden}
    assert EXAMPLE in examples
    # One model, one version: no model selector.
    assert not visible(driver, "model-row")
    pick_example(driver, EXAMPLE)
    g = next(g for g in golden if g.request_id == EXAMPLE)
    assert driver.js("return document.getElementById('text').value") == g.text
    got = driver.js("return document.getElementById('feature-amount').value")
    assert float(got) == pytest.approx(g.features["amount"])


def test_score_tokens_and_mean_heatmaps_match_the_api(driver, base_url, example, artifacts):
    open_page(driver, base_url)
    pick_example(driver, EXAMPLE)
    submit(driver, "ATTENTION_MEAN")
    assert not visible(driver, "error"), \
        driver.js("return document.getElementById('error').innerText")
    score, n, t2f, f2t = v2_infer(base_url, example)
    shown = float(driver.js("return document.getElementById('score').dataset.value"))
    assert abs(shown - score) <= TOL, (shown, score)
    assert abs(float(driver.js("return document.getElementById('score').textContent")) - score) <= TOL

    tokens = driver.js("return [...document.querySelectorAll('#tokens li')]"
                       ".map((li) => [li.textContent, li.className])")
    assert [t for t, _ in tokens] == example.tokens
    assert n == len(example.tokens)
    for text, cls in tokens:
        assert ("special" in cls) == bool(re.fullmatch(r"\[[A-Z]+\]", text)), (text, cls)
        assert ("wordpiece" in cls) == text.startswith("##"), (text, cls)
    assert "special" in tokens[0][1] and "special" in tokens[-1][1]
    assert not visible(driver, "truncated") and visible(driver, "tokens")
    assert any("wordpiece" in cls for _, cls in tokens)

    assert driver.js("return document.getElementById('head-select').disabled") is True
    assert_matrix_close(heatmap(driver, "heatmap-t2f"), t2f[0], "text→features")
    assert_matrix_close(heatmap(driver, "heatmap-f2t"), f2t[0], "features→text")
    assert len(heatmap(driver, "heatmap-t2f")) * len(heatmap(driver, "heatmap-t2f")[0]) \
        == n * len(example.feature_vector)

    timing = driver.js("return ['queue', 'compute', 'batch', 'total'].map("
                       "(k) => document.getElementById('timing-' + k).textContent)")
    assert re.fullmatch(r"[\d.]+ (µs|ms)", timing[0]), timing
    assert re.fullmatch(r"[\d.]+ (µs|ms)", timing[1]) and timing[1] not in ("0 µs",), timing
    assert int(timing[2]) >= 1, timing
    # Hover gives the exact value.
    cell = driver.find('#heatmap-t2f td.cell[data-row="1"][data-col="0"]')
    driver._cmd("POST", "/actions", {"actions": [{"type": "pointer", "id": "mouse", "actions": [
        {"type": "pointerMove", "origin": {webdriver.ELEMENT_KEY: cell.ref}, "x": 0, "y": 0}]}]})
    readout = driver.wait_for(lambda: driver.js(
        "const r = document.getElementById('readout').textContent;"
        "return r.includes('→') ? r : ''"), "the hover readout")
    value = driver.js("return arguments[0].dataset.value", {webdriver.ELEMENT_KEY: cell.ref})
    assert abs(float(value) - t2f[0][1][0]) <= TOL and value in readout, (value, readout)
    assert example.tokens[1] in readout and "amount" in readout, readout
    driver.js("window.scrollTo(0, 0)")
    driver.screenshot(os.path.join(artifacts, "explorer-mean.png"))


def test_head_selector_shows_each_heads_weights(driver, base_url, example, artifacts):
    open_page(driver, base_url)
    pick_example(driver, EXAMPLE)
    submit(driver, "ATTENTION_PER_HEAD")
    score, n, t2f, f2t = v2_infer(base_url, example, per_head=True)
    heads = len(t2f)
    assert heads > 1
    options = driver.js("return [...document.querySelectorAll('#head-select option')].map((o) => o.value)")
    assert options == [str(h) for h in range(heads)]
    assert driver.js("return document.getElementById('head-select').disabled") is False
    seen = []
    for h in (0, heads - 1):
        driver.js("const s = document.getElementById('head-select'); s.value = arguments[0];"
                  "s.dispatchEvent(new Event('change'));", str(h))
        got_t2f = heatmap(driver, "heatmap-t2f")
        assert_matrix_close(got_t2f, t2f[h], f"text→features head {h}")
        assert_matrix_close(heatmap(driver, "heatmap-f2t"), f2t[h], f"features→text head {h}")
        seen.append(got_t2f)
        if h == heads - 1:
            driver.js("document.getElementById('attention').scrollIntoView()")
            driver.screenshot(os.path.join(artifacts, "explorer-per-head.png"))
    assert seen[0] != seen[1], "the head selector did not change the heatmap"
    # By keyboard: the selector, then arrow keys inside a heatmap.
    first = driver.find('#heatmap-t2f td.cell[tabindex="0"]')
    driver.js("arguments[0].focus()", {webdriver.ELEMENT_KEY: first.ref})
    first.send_keys(webdriver.KEYS["ArrowRight"] + webdriver.KEYS["ArrowDown"])
    pos = driver.js("const a = document.activeElement; return [a.dataset.row, a.dataset.col]")
    assert pos == ["1", "1"], pos
    readout = driver.js("return document.getElementById('readout').textContent")
    assert "feature 1" in readout and "token 1" in readout, readout


def test_bad_input_shows_the_servers_error(driver, base_url, artifacts):
    open_page(driver, base_url)
    pick_example(driver, EXAMPLE)
    driver.find("#feature-amount").clear()
    driver.js("document.getElementById('feature-amount').value = ''")
    submit(driver, "ATTENTION_MEAN")
    assert visible(driver, "error")
    shown = driver.js("return {status: document.getElementById('error-status').textContent,"
                      " code: document.getElementById('error-code').textContent,"
                      " message: document.getElementById('error-message').textContent}")
    # What the server answers for the same request, through the page's API.
    body = driver.js("""
        const f = {};
        for (const i of document.querySelectorAll('#features input'))
          if (i.value.trim() !== '') f[i.dataset.feature] = Number(i.value);
        return {model: 'fusion', text: document.getElementById('text').value, features: f,
                attention: 'ATTENTION_MEAN'};""")
    status, _, raw = http(base_url + "/ui/api/score", body)
    answer = json.loads(raw)
    assert status == 400 and answer["code"] == "INVALID_ARGUMENT", (status, answer)
    assert "amount" in answer["message"], answer
    assert shown == {"status": "HTTP 400", "code": "INVALID_ARGUMENT", "message": answer["message"]}
    assert not visible(driver, "result")
    driver.js("window.scrollTo(0, 0)")
    driver.screenshot(os.path.join(artifacts, "explorer-error.png"))


def test_truncation_is_marked(driver, base_url):
    open_page(driver, base_url)
    pick_example(driver, EXAMPLE)
    driver.js("document.getElementById('text').value = arguments[0]", "refund " * 300)
    submit(driver, "ATTENTION_MEAN")
    tokens = driver.js("return [...document.querySelectorAll('#tokens li:not(.cut)')].map((l) => l.textContent)")
    max_tokens = driver.js("return document.getElementById('model-info').textContent")
    limit = int(re.search(r"up to (\d+) tokens", max_tokens).group(1))
    assert len(tokens) == limit and tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert visible(driver, "truncated")
    assert driver.js("return document.querySelectorAll('#tokens li.cut').length") == 1


def test_live_panel_updates(driver, base_url, example, artifacts):
    open_page(driver, base_url)
    scrapes0 = int(driver.js("return document.getElementById('live').dataset.scrapes"))
    stop = threading.Event()

    def load():
        while not stop.is_set():
            v2_infer(base_url, example)

    threads = [threading.Thread(target=load, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        rps = driver.wait_for(lambda: driver.js(
            "const v = Number(document.getElementById('live-rps').textContent);"
            "return v > 0 ? v : 0"), "requests per second above 0", timeout=15)
        p50 = driver.wait_for(lambda: driver.js(
            "const v = document.getElementById('live-p50').textContent;"
            "return v.endsWith(' ms') ? v : ''"), "a p50 latency", timeout=10)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert rps > 0 and float(p50.split()[0]) > 0
    assert driver.js("return document.getElementById('live-p99').textContent").endswith(" ms")
    assert float(driver.js("return document.getElementById('live-batch').textContent")) >= 1
    assert driver.js("return document.getElementById('live-queue').textContent").isdigit()
    # Once a second, on its own.
    driver.wait_for(lambda: int(driver.js("return document.getElementById('live').dataset.scrapes"))
                    >= scrapes0 + 3, "three more scrapes of /metrics", timeout=6)
    driver.js("window.scrollTo(0, 0)")
    driver.screenshot(os.path.join(artifacts, "explorer-live.png"))


def test_narrow_window_and_no_console_errors(driver, base_url, artifacts):
    driver.get("about:blank")
    driver.browser_log()  # drop what came before
    try:
        driver.set_window_size(420, 1000)
        open_page(driver, base_url)
        pick_example(driver, EXAMPLE)
        submit(driver, "ATTENTION_MEAN")
        overflow = driver.js("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"the page is {overflow}px wider than a 420px window"
        driver.js("document.querySelector('.answer').scrollIntoView()")
        driver.screenshot(os.path.join(artifacts, "explorer-narrow.png"))
    finally:
        driver.set_window_size(1400, 1000)
    # Everything came from the server itself, and the CSP blocked nothing.
    origins = driver.js("return performance.getEntriesByType('resource').map((e) => e.name)")
    assert all(o.startswith(base_url + "/") for o in origins), origins
    # No console errors at all: nothing blocked, nothing missing.
    errors = [e for e in driver.browser_log() if e.get("level") == "SEVERE"]
    assert errors == [], errors


def test_model_and_version_selector(driver, tmp_path, golden):
    """Two versions loaded: the form offers both, and scores the one chosen."""
    if os.environ.get("FUSION_UI_URL"):
        pytest.skip("needs to start its own server")
    from google.protobuf import text_format
    stubs = harness.generate_stubs()
    repo = tmp_path / "repo"
    for version in (1, 2):
        bundle = repo / harness.MODEL_NAME / str(version)
        shutil.copytree(harness.bundle_dir(), bundle)
        cfg = stubs.model_config_pb2.ModelConfig()
        text_format.Parse((bundle / "config.pbtxt").read_text(encoding="utf-8"), cfg)
        cfg.version = version
        cfg.ClearField("version_policy")
        text_format.Merge("all {}", cfg.version_policy)
        cfg.runtime.warmup_iterations = 0
        (bundle / "config.pbtxt").write_text(text_format.MessageToString(cfg, as_utf8=True),
                                             encoding="utf-8")
    srv = harness.ServerProcess(log_dir=str(tmp_path), model_repository=str(repo))
    harness.call_or_fail(srv.start)
    try:
        base = f"http://{srv.http_address}"
        open_page(driver, base)
        assert visible(driver, "model-row")
        options = driver.js("return [...document.querySelectorAll('#model-select option')]"
                            ".map((o) => [o.value, o.textContent])")
        assert sorted(label for _, label in options) == ["fusion v1", "fusion v2"], options
        assert driver.js("return document.querySelector('#model-select option:checked')"
                         ".textContent") == "fusion v2"  # the latest by default
        for label in ("fusion v1", "fusion v2"):
            value = next(v for v, text in options if text == label)
            driver.js("const s = document.getElementById('model-select'); s.value = arguments[0];"
                      "s.dispatchEvent(new Event('change'));", value)
            driver.wait_for(lambda: driver.js(
                "return document.getElementById('model-info').textContent"
                ".startsWith(arguments[0] + ':')", label), f"the form for {label}")
            driver.wait_for(lambda: driver.js(
                "return document.querySelectorAll('#examples button').length"), "the examples")
            pick_example(driver, EXAMPLE)
            submit(driver, "ATTENTION_NONE")
            assert not visible(driver, "error"), driver.js(
                "return document.getElementById('error').innerText")
            assert driver.js("return document.getElementById('answer-model').textContent") == label
            assert visible(driver, "no-attention") and not visible(driver, "attention")
            g = next(g for g in golden if g.request_id == EXAMPLE)
            shown = float(driver.js("return document.getElementById('score').dataset.value"))
            assert abs(shown - g.score) <= 1e-4, (label, shown, g.score)  # golden's tolerance
    finally:
        srv.stop()


def test_ui_flag_off(tmp_path):
    if os.environ.get("FUSION_UI_URL"):
        pytest.skip("needs to start its own server")
    srv = harness.ServerProcess(extra_args=["--ui=false"], log_dir=str(tmp_path))
    harness.call_or_fail(srv.start)
    try:
        base = f"http://{srv.http_address}"
        assert http(base + "/")[0] == 404
        assert http(base + "/ui/app.js")[0] == 404
        assert http(base + "/ui/api/models")[0] == 404
        assert http(base + f"/v2/models/{harness.MODEL_NAME}")[0] == 200
    finally:
        srv.stop()
