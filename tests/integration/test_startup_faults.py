"""A broken bundle at start-up: the real server, the real bundle copied into
a tmp repository with one file broken per case.

For each case the server must exit non-zero before its gRPC port listens,
with an error on stderr that names the file at fault and the problem. Then
the cases where the server must come up anyway (a bundle without golden
answers, another model broken beside the default one) and a hot-reloaded
version whose golden answers disagree with its model.

Run: /usr/bin/python3 -m pytest tests/integration/test_startup_faults.py -q
"""
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Callable, List

import grpc
import pytest
from google.protobuf import text_format

import harness
from repository_fixtures import (  # noqa: F401  (fixtures are used by name)
    STATE_TIMEOUT_S, add_fusion_version, check_probabilities, make_version, metric,
    read_config, repo_stubs, report_observations, serving, wait_until, write_config)

EXIT_TIMEOUT_S = 180  # a start that loads the model, on 2 busy cores


# --- breaking a bundle ------------------------------------------------------------

def _write(path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _edit_config(stubs, edit: Callable) -> Callable:
    def apply(bundle):
        cfg = read_config(stubs, bundle)
        edit(cfg)
        write_config(bundle, cfg)
    return apply


def _edit_golden(edit: Callable[[int, dict], None]) -> Callable:
    """Rewrites golden.jsonl with edit(index, record) applied to each case."""
    def apply(bundle):
        path = os.path.join(bundle, "golden.jsonl")
        with open(path, encoding="utf-8") as f:
            records = [json.loads(line) for line in f if line.strip()]
        for i, r in enumerate(records):
            edit(i, r)
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    return apply


def _shift_probabilities(index: int, by: float) -> Callable[[int, dict], None]:
    def edit(i, r):
        if i == index:
            r["probabilities"] = [r["probabilities"][0] + by, r["probabilities"][1] - by]
    return edit


def _vocab_lines(bundle) -> List[str]:
    with open(os.path.join(bundle, "vocab.txt"), encoding="utf-8") as f:
        return f.read().split("\n")


def _rewrite_vocab(edit: Callable[[List[str]], List[str]]) -> Callable:
    def apply(bundle):
        lines = edit(_vocab_lines(bundle))
        with open(os.path.join(bundle, "vocab.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
    return apply


def _swap_lines(lines: List[str]) -> List[str]:
    """Two ordinary words trade ids: what a vocab.txt of another export of
    the same corpus looks like."""
    a, b = lines.index("card"), lines.index("account")
    lines[a], lines[b] = lines[b], lines[a]
    return lines


@dataclass
class Fault:
    id: str
    file: str                    # the bundle file at fault
    break_bundle: Callable       # (stubs) -> (bundle dir) -> None
    expect: List[str]            # substrings of the error line (regex)


def _faults() -> List[Fault]:
    raw = lambda data: (lambda stubs: lambda b: _write(os.path.join(b, "model.pt"), data))
    return [
        # model.pt
        Fault("model.pt missing", "model.pt",
              lambda stubs: lambda b: os.remove(os.path.join(b, "model.pt")),
              [r"model file not found: \S*/model\.pt"]),
        Fault("model.pt empty", "model.pt", raw(b""),
              [r"model\.pt is not a TorchScript model LibTorch can load"]),
        Fault("model.pt text, not an archive", "model.pt",
              raw(b"this is not a TorchScript archive\n" * 100),
              [r"model\.pt is not a TorchScript model LibTorch can load",
               r"zip archive"]),
        Fault("model.pt truncated", "model.pt",
              lambda stubs: lambda b: _truncate(os.path.join(b, "model.pt")),
              [r"model\.pt is not a TorchScript model LibTorch can load"]),
        Fault("model.pt of another model (5 features)", "model.pt",
              lambda stubs: lambda b: shutil.copyfile(
                  os.path.join(_other_model(), "model.pt"), os.path.join(b, "model.pt")),
              [r"warm-up forward of \S*/model\.pt failed with config\.pbtxt's shapes "
               r"\(128 max_tokens, 16 features"]),
        # config.pbtxt
        Fault("config.pbtxt syntax error", "config.pbtxt",
              lambda stubs: lambda b: _replace_text(os.path.join(b, "config.pbtxt"),
                                                    "max_batch_size: 64",
                                                    "max_batch_size: sixty"),
              [r"cannot parse \S*/config\.pbtxt:\d+:\d+: ", r"sixty"]),
        Fault("config.pbtxt unknown field", "config.pbtxt",
              lambda stubs: lambda b: _append(os.path.join(b, "config.pbtxt"),
                                              "max_tokenz: 64\n"),
              [r"cannot parse \S*/config\.pbtxt:\d+:\d+: ", r"no field named \"max_tokenz\""]),
        Fault("config.pbtxt not text (binary)", "config.pbtxt",
              lambda stubs: lambda b: _write(os.path.join(b, "config.pbtxt"),
                                             bytes(range(256)) * 4),
              [r"cannot parse \S*/config\.pbtxt:\d+:\d+: "]),
        Fault("config.pbtxt max_batch_size -1", "config.pbtxt",
              lambda stubs: _edit_config(stubs, lambda c: setattr(
                  c.batching, "max_batch_size", -1)),
              [r"config\.pbtxt: max_batch_size must be >= 1"]),
        Fault("config.pbtxt one class", "config.pbtxt",
              lambda stubs: _edit_config(stubs, lambda c: c.classes.pop()),
              [r"config\.pbtxt: at least two classes needed"]),
        Fault("config.pbtxt positive_class out of range", "config.pbtxt",
              lambda stubs: _edit_config(stubs, lambda c: setattr(c, "positive_class", 5)),
              [r"config\.pbtxt: positive_class out of range"]),
        Fault("config.pbtxt duplicate feature", "config.pbtxt",
              lambda stubs: _edit_config(stubs, lambda c: setattr(
                  c.features[1], "name", c.features[0].name)),
              [r"config\.pbtxt: duplicate feature 'amount'"]),
        Fault("config.pbtxt says another version", "config.pbtxt",
              lambda stubs: _edit_config(stubs, lambda c: setattr(c, "version", 7)),
              [r"config\.pbtxt says model 'fusion' version 7, the directory says "
               r"'fusion' version 1"]),
        Fault("config.pbtxt 15 features, the model takes 16", "config.pbtxt",
              lambda stubs: _edit_config(stubs, lambda c: c.features.pop()),
              [r"warm-up forward of \S*/model\.pt failed with config\.pbtxt's shapes "
               r"\(128 max_tokens, 15 features"]),
        Fault("config.pbtxt max_tokens past the model's positions", "config.pbtxt",
              lambda stubs: _edit_config(stubs, lambda c: setattr(c, "max_tokens", 512)),
              [r"warm-up forward of \S*/model\.pt failed with config\.pbtxt's shapes "
               r"\(512 max_tokens", r"index out of range"]),
        Fault("config.pbtxt tokenizer not lowercasing", "config.pbtxt",
              lambda stubs: _edit_config(stubs, lambda c: setattr(
                  c.tokenizer, "lowercase", False)),
              [r"vocab\.txt \(with config\.pbtxt's tokenizer settings\) does not give "
               r"golden\.jsonl line \d+ \(golden-\d+\)'s token ids"]),
        # vocab.txt
        Fault("vocab.txt missing", "vocab.txt",
              lambda stubs: lambda b: os.remove(os.path.join(b, "vocab.txt")),
              [r"cannot open vocab file \S*/vocab\.txt"]),
        Fault("vocab.txt empty", "vocab.txt",
              lambda stubs: lambda b: _write(os.path.join(b, "vocab.txt"), b""),
              [r"\S*/vocab\.txt: vocab is empty"]),
        Fault("vocab.txt binary", "vocab.txt",
              lambda stubs: lambda b: _write(os.path.join(b, "vocab.txt"),
                                             bytes(range(128, 256)) * 8),
              [r"\S*/vocab\.txt: vocab line 1: .*UTF-8"]),
        Fault("vocab.txt without [CLS]", "vocab.txt",
              lambda stubs: _rewrite_vocab(lambda ls: [x for x in ls if x != "[CLS]"]),
              [r"\S*/vocab\.txt: special token \"\[CLS\]\" is not in the vocab"]),
        Fault("vocab.txt with two words' ids swapped", "vocab.txt",
              lambda stubs: _rewrite_vocab(_swap_lines),
              [r"vocab\.txt \(with config\.pbtxt's tokenizer settings\) does not give "
               r"golden\.jsonl line \d+ \(golden-\d+\)'s token ids: at position \d+"]),
        Fault("vocab.txt longer than the model's embedding", "vocab.txt",
              lambda stubs: _rewrite_vocab(
                  lambda ls: ls[:-1] + [f"zzqx{i:04d}" for i in range(2000)] + [ls[-1]]),
              [r"vocab\.txt has \d+ entries but the model fails on id \d+",
               r"index out of range in self"]),
        # golden.jsonl
        Fault("golden.jsonl disagrees with the model", "golden.jsonl",
              lambda stubs: _edit_golden(_shift_probabilities(7, 0.05)),
              [r"the model disagrees with its golden answers \(fp32, scored alone",
               r"golden\.jsonl line 8 \(golden-007\): expected \[[0-9.e-]+, [0-9.e-]+\], "
               r"got \[[0-9.e-]+, [0-9.e-]+\], off by 0\.05"]),
        Fault("golden.jsonl not JSON", "golden.jsonl",
              lambda stubs: lambda b: _replace_line(os.path.join(b, "golden.jsonl"), 2,
                                                    '{"token_ids": [2, 3'),
              [r"\S*/golden\.jsonl:3: "]),
        Fault("golden.jsonl case with 17 features", "golden.jsonl",
              lambda stubs: _edit_golden(
                  lambda i, r: r["feature_vector"].append(1.0) if i == 4 else None),
              [r"golden\.jsonl line 5 \(golden-004\) does not fit the model"]),
        Fault("golden.jsonl token ids not its text's", "golden.jsonl",
              lambda stubs: _edit_golden(_corrupt_token_ids(9)),
              # The model scores the changed ids differently: that is
              # found first, naming the same case.
              [r"golden\.jsonl line 10 \(golden-009\)"]),
    ]


def _truncate(path):
    with open(path, "rb") as f:
        data = f.read()
    _write(path, data[:len(data) // 2])


def _append(path, text):
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def _replace_text(path, old, new):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert old in text, f"{old!r} not in {path}"
    with open(path, "w", encoding="utf-8") as f:
        f.write(text.replace(old, new))


def _replace_line(path, index, text):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    lines[index] = text
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def _corrupt_token_ids(index):
    def edit(i, r):
        if i == index:
            ids = r["token_ids"]
            ids[1] = ids[1] + 1 if ids[1] + 1 != ids[2] else ids[1] + 2
    return edit


_OTHER_MODEL = {}


def _other_model() -> str:
    """The small second model's bundle (tests/integration/small_bundle.py),
    built once per session."""
    if "dir" not in _OTHER_MODEL:
        import small_bundle
        import tempfile
        out = os.path.join(tempfile.mkdtemp(prefix="fusion-other-model-"), "1")
        small_bundle.build_bundle(out)
        _OTHER_MODEL["dir"] = out
    return _OTHER_MODEL["dir"]


# --- running a server that must fail ---------------------------------------------

@dataclass
class Exit:
    code: int
    stderr: str
    seconds: float
    grpc_listened: bool


def _port_open(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=0.2):
            return True
    except OSError:
        return False


def run_until_exit(repo: str, tmp_path, extra=None) -> Exit:
    """Starts the server on `repo` and waits for it to exit, watching its
    gRPC port meanwhile. Kills it (and fails the test) if it does not."""
    srv = harness.ServerProcess(log_dir=str(tmp_path), model_repository=repo,
                                extra_args=list(extra or []))
    srv.check_binary()
    t0 = time.monotonic()
    proc = subprocess.Popen(srv.args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, cwd=harness.REPO_ROOT)
    listened = threading.Event()
    done = threading.Event()

    def watch():
        while not done.is_set():
            if _port_open(srv.grpc_address):
                listened.set()
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        _, err = proc.communicate(timeout=EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"the server did not exit in {EXIT_TIMEOUT_S} s:\n"
                    f"{err.decode('utf-8', 'replace')[-3000:]}", pytrace=False)
    finally:
        done.set()
        watcher.join(timeout=5)
    return Exit(proc.returncode, err.decode("utf-8", "replace"), time.monotonic() - t0,
                listened.is_set())


def copy_bundle(tmp_path) -> str:
    """tmp_path/models/fusion/1: a copy of the real bundle."""
    bundle = tmp_path / "models" / "fusion" / "1"
    shutil.copytree(harness.bundle_dir(), bundle)
    return str(bundle)


FAULTS = _faults()


@pytest.mark.parametrize("fault", FAULTS, ids=[f.id for f in FAULTS])
def test_a_broken_bundle_stops_the_start_naming_the_file(stubs, tmp_path, fault):
    bundle = copy_bundle(tmp_path)
    fault.break_bundle(stubs)(bundle)
    result = run_until_exit(str(tmp_path / "models"), tmp_path)
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line.upper()]
    last = errors[-1] if errors else ""
    harness.observe(f"startup_fault[{fault.id}]",
                    {"exit": result.code, "seconds": round(result.seconds, 1), "error": last})
    assert result.code != 0, f"exit code 0; stderr:\n{result.stderr[-3000:]}"
    assert result.code == 1, f"exit code {result.code} (a crash?); stderr:\n{result.stderr[-3000:]}"
    assert not result.grpc_listened, "the gRPC port listened before the server gave up"
    assert "via gRPC" not in result.stderr, result.stderr[-3000:]
    assert last, f"no error line on stderr:\n{result.stderr[-3000:]}"
    # The error names the file at fault, inside the bundle, and the problem.
    assert fault.file in last, f"{fault.file} not named in: {last}"
    assert bundle in last or f"{bundle}/{fault.file}" in result.stderr, last
    for pattern in fault.expect:
        assert re.search(pattern, last), f"/{pattern}/ not in: {last}"
    # One line, not a traceback.
    assert "Traceback" not in last and len(last) < 1200, last


def test_a_missing_config_pbtxt_is_named(stubs, tmp_path):
    bundle = copy_bundle(tmp_path)
    os.remove(os.path.join(bundle, "config.pbtxt"))
    result = run_until_exit(str(tmp_path / "models"), tmp_path)
    assert result.code == 1 and not result.grpc_listened, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line.upper()]
    assert errors and "config.pbtxt" in errors[-1], errors[-1:]


# --- faults the server must start through ----------------------------------------

def test_without_golden_answers_the_server_starts_and_says_so(stubs, golden, tmp_path):
    bundle = copy_bundle(tmp_path)
    os.remove(os.path.join(bundle, "golden.jsonl"))
    with serving(stubs, None, tmp_path, tmp_path / "models", poll=None, admin=False) as s:
        resp = s.score(harness.request_from_golden(stubs, golden[3]))
        assert check_probabilities(resp, golden[3]) is None
        warnings = [line for line in s.log_text().splitlines()
                    if "golden.jsonl" in line and "not checked" in line]
        assert warnings, s.log_tail()


def test_the_bundle_checks_its_golden_answers_at_every_start(stubs, tmp_path):
    """The intact bundle logs how closely it reproduced golden.jsonl."""
    copy_bundle(tmp_path)
    with serving(stubs, None, tmp_path, tmp_path / "models", poll=None, admin=False) as s:
        lines = [line for line in s.log_text().splitlines() if "golden answers agree" in line]
        assert lines, s.log_tail()
        m = re.search(r"within ([0-9.e-]+) alone and ([0-9.e-]+) in one padded batch", lines[0])
        assert m, lines[0]
        harness.observe("golden_fp32_delta", {"alone": float(m.group(1)),
                                              "batched": float(m.group(2))})
        assert float(m.group(1)) <= 1e-4 and float(m.group(2)) <= 1e-4, lines[0]


def test_another_model_broken_at_start_fails_alone_and_the_rest_serve(
        stubs, repo_stubs, golden, tmp_path):
    repo = tmp_path / "models"
    add_fusion_version(stubs, repo, 1)
    broken = make_version(stubs, harness.bundle_dir(), str(repo / "second" / "1"), 1,
                          name="second")
    _write(os.path.join(broken, "model.pt"), b"not a model\n" * 100)
    make_version(stubs, harness.bundle_dir(), str(repo / "third" / "1"), 1, name="third")
    with serving(stubs, repo_stubs, tmp_path, repo, poll=None) as s:
        status, _ = harness.http_get(f"http://{s.srv.http_address}/readyz")
        assert status == 200
        g = golden[5]
        for model in ("", "third"):
            resp = s.score(harness.request_from_golden(stubs, g, model=model))
            assert check_probabilities(resp, g) is None, model
        code, details = s.score_code(harness.request_from_golden(stubs, g, model="second"))
        assert code == grpc.StatusCode.FAILED_PRECONDITION, (code, details)
        assert "second/1/model.pt is not a TorchScript model" in details, details
        listed = {m.name: m for m in s.admin.ListModels(
            s.admin_pb.ListModelsRequest(), timeout=60).models}
        assert sorted(listed) == ["fusion", "second", "third"], sorted(listed)
        second = [(v.version, s.pb.VersionState.Name(v.state), v.reason)
                  for v in listed["second"].versions]
        assert len(second) == 1 and second[0][:2] == ("1", "VERSION_FAILED"), second
        assert "model.pt is not a TorchScript model" in second[0][2], second
        samples = s.metrics()
        assert metric(samples, "fusion_model_load_failures_total",
                      model="second", version="1") == 1
        assert metric(samples, "fusion_model_ready", model="second", version="1") == 0
        assert metric(samples, "fusion_model_ready", model="third", version="1") == 1
        log = s.log_text()
        assert re.search(r"ERROR.*second/1: load failed .*model\.pt", log), s.log_tail()
        assert re.search(r"model 'second' cannot serve .*serving the other models", log), \
            s.log_tail()


def test_the_default_model_broken_fails_the_start_even_with_others_fine(stubs, tmp_path):
    repo = tmp_path / "models"
    bundle = copy_bundle(tmp_path)
    _edit_golden(_shift_probabilities(2, 0.2))(bundle)
    make_version(stubs, harness.bundle_dir(), str(repo / "second" / "1"), 1, name="second")
    result = run_until_exit(str(repo), tmp_path)
    assert result.code == 1 and not result.grpc_listened, result.stderr[-3000:]
    assert re.search(r"golden\.jsonl line 3 \(golden-002\): expected", result.stderr)
    assert "loading " + str(repo / "second") not in result.stderr


RELOAD_FAULTS = [
    ("golden answers off the model",
     lambda stubs: _edit_golden(_shift_probabilities(11, -0.03)),
     r"golden\.jsonl line 12 \(golden-011\): expected \[.*\], got \[.*\], off by 0\.03"),
    # Before, the warm-up's TorchScript error escaped the load and aborted
    # the serving process (SIGABRT): every model went down.
    ("config.pbtxt unlike its model.pt",
     lambda stubs: _edit_config(stubs, lambda c: c.features.pop()),
     r"warm-up forward of \S*/fusion/3/model\.pt failed with config\.pbtxt's shapes "
     r"\(128 max_tokens, 15 features.*RuntimeError: The size of tensor a \(15\)"),
]


@pytest.mark.parametrize("name,break_bundle,reason", RELOAD_FAULTS,
                         ids=[f[0] for f in RELOAD_FAULTS])
def test_a_reloaded_version_that_fails_its_checks_is_failed_and_the_old_one_serves(
        stubs, repo_stubs, golden, tmp_path, name, break_bundle, reason):
    repo = tmp_path / "models"
    add_fusion_version(stubs, repo, 2)
    staged = add_fusion_version(stubs, tmp_path / "staging", 3)
    break_bundle(stubs)(staged)
    g = golden[6]
    with serving(stubs, repo_stubs, tmp_path, repo, poll="300ms") as s:
        shutil.copytree(staged, repo / "fusion" / "3")
        wait_until(lambda: s.states().get("3") == "VERSION_FAILED", STATE_TIMEOUT_S,
                   "version 3 to fail its load", s)
        v3 = s.status_of("", "3")
        assert re.search(reason, v3.reason), v3.reason
        assert s.states() == {"2": "VERSION_READY", "3": "VERSION_FAILED"}
        resp = s.score(harness.request_from_golden(stubs, g))
        assert resp.model_version == "2" and check_probabilities(resp, g) is None
        code, details = s.score_code(harness.request_from_golden(stubs, g, model_version="3"))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and re.search(reason, details), \
            details
        assert metric(s.metrics(), "fusion_model_load_failures_total",
                      model="fusion", version="3") == 1
        assert s.srv.proc.poll() is None, "the server died"
