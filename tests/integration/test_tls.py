"""TLS and mutual TLS on the real server, with certificates the `openssl` CLI
makes at test time: the gRPC port (scores, refusals at the handshake,
rotation by file change and by SIGHUP), start-up errors that name the bad
file, the HTTP port over HTTPS, and the C++ clients' client certificates.

Rotation is observed from outside: a fresh connection after the files are
replaced is served the new certificate (its DER, read with Python's ssl),
and only a client trusting the new CA gets through.
"""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
import warnings

import grpc
import pytest

import harness
from repository_fixtures import generate_repository_stubs

ATOL = 1e-4
RPC_TIMEOUT_S = 30
LOG_WAIT_S = 20


# --- certificates -------------------------------------------------------------

class Pki:
    """CAs and leaves made with the openssl CLI in one directory. Each leaf
    names localhost and 127.0.0.1 and may serve as server or client."""

    def __init__(self, directory):
        self.dir = str(directory)

    def path(self, name):
        return os.path.join(self.dir, name)

    def _openssl(self, *args):
        p = subprocess.run(["openssl", *args], cwd=self.dir, capture_output=True, text=True)
        assert p.returncode == 0, f"openssl {' '.join(args)}:\n{p.stderr}"

    def ca(self, name):
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                      "-nodes", "-days", "2", "-subj", f"/CN={name}",
                      "-keyout", f"{name}.key", "-out", f"{name}.crt")
        return self

    def leaf(self, name, ca):
        with open(self.path(f"{name}.ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                    "extendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n")
        self._openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                      "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
                      "-out", f"{name}.csr")
        self._openssl("x509", "-req", "-days", "2", "-in", f"{name}.csr", "-CA", f"{ca}.crt",
                      "-CAkey", f"{ca}.key", "-set_serial", "0x" + os.urandom(8).hex(),
                      "-extfile", f"{name}.ext", "-out", f"{name}.crt")
        return self

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def der(self, name):
        return ssl.PEM_cert_to_DER_cert(self.read(name).decode())

    def install(self, source, target):
        """Copies `source` over `target` by writing a temporary file and
        renaming it, as a rotation tool would."""
        shutil.copyfile(self.path(source), self.path(target + ".tmp"))
        os.replace(self.path(target + ".tmp"), self.path(target))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.fail("the openssl CLI is missing (apt-get install openssl)", pytrace=False)
    p = Pki(tmp_path_factory.mktemp("pki"))
    p.ca("ca").ca("other_ca").ca("new_ca")
    p.leaf("server", "ca").leaf("client", "ca").leaf("stranger", "other_ca")
    p.leaf("new_server", "new_ca")
    return p


# --- clients ------------------------------------------------------------------

def channel(address, pki, ca="ca", client=None, secure=True):
    """A channel with its own connection (not one another channel of this
    process already made), so each call below shakes hands afresh."""
    options = [("grpc.use_local_subchannel_pool", 1)]
    if not secure:
        return grpc.insecure_channel(address, options=options)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.read(f"{ca}.crt"),
        private_key=pki.read(f"{client}.key") if client else None,
        certificate_chain=pki.read(f"{client}.crt") if client else None)
    options.append(("grpc.ssl_target_name_override", "localhost"))
    return grpc.secure_channel(address, credentials, options=options)


def score(stubs, address, pki, g, **kw):
    with channel(address, pki, **kw) as ch:
        stub = stubs.scoring_pb2_grpc.ScoringServiceStub(ch)
        return stub.Score(harness.request_from_golden(stubs, g), timeout=RPC_TIMEOUT_S)


def refused(stubs, address, pki, g, **kw):
    """The status of a call that must fail at the connection."""
    with pytest.raises(grpc.RpcError) as error:
        score(stubs, address, pki, g, **kw)
    return error.value.code()


def served_certificate(address, pki, ca="ca", client=None):
    """The DER certificate the server presents on a fresh TLS connection."""
    host, port = address.rsplit(":", 1)
    context = ssl.create_default_context(cafile=pki.path(f"{ca}.crt"))
    context.set_alpn_protocols(["h2"])
    if client:
        context.load_cert_chain(pki.path(f"{client}.crt"), pki.path(f"{client}.key"))
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.getpeercert(binary_form=True)


def negotiated_version(address, pki, version):
    """The protocol a client offering only `version` agrees with the server
    (ssl.SSLError when none). The client's own floor is lowered, so that a
    refusal is the server's."""
    host, port = address.rsplit(":", 1)
    context = ssl.create_default_context(cafile=pki.path("ca.crt"))
    context.set_ciphers("DEFAULT@SECLEVEL=0")
    with warnings.catch_warnings():  # TLS 1.1 is offered on purpose
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = version
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.version()


def wait_for_log(server, text, timeout=LOG_WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(server.log_path, encoding="utf-8", errors="replace") as f:
            if text in f.read():
                return
        time.sleep(0.1)
    pytest.fail(f"server log lacks {text!r}:\n{server.log_tail()}", pytrace=False)


# --- servers ------------------------------------------------------------------

def tls_args(pki, prefix="--tls", cert="server", client_ca=None):
    args = [f"{prefix}_cert={pki.path(cert + '.crt')}", f"{prefix}_key={pki.path(cert + '.key')}"]
    if client_ca:
        args.append(f"{prefix}_client_ca={pki.path(client_ca + '.crt')}")
    return args


@pytest.fixture
def started(tmp_path):
    """start(args) runs a server (plain HTTP probes) and stops it after the test."""
    servers = []

    def start(args):
        server = harness.ServerProcess(args, log_dir=str(tmp_path))
        servers.append(server)
        return harness.call_or_fail(server.start)
    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def tls_server(pki, tmp_path_factory):
    server = harness.ServerProcess(tls_args(pki), log_dir=str(tmp_path_factory.mktemp("tls")))
    harness.call_or_fail(server.start)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mtls_server(pki, tmp_path_factory):
    admin_address = f"127.0.0.1:{harness.free_port()}"
    server = harness.ServerProcess(tls_args(pki, client_ca="ca") +
                                   [f"--admin_address={admin_address}"],
                                   log_dir=str(tmp_path_factory.mktemp("mtls")))
    server.admin_address = admin_address
    harness.call_or_fail(server.start)
    yield server
    server.stop()


# --- TLS ------------------------------------------------------------------------

def test_tls_serves_golden_scores(stubs, golden, pki, tls_server):
    with channel(tls_server.grpc_address, pki) as ch:
        stub = stubs.scoring_pb2_grpc.ScoringServiceStub(ch)
        for g in golden[:8]:
            r = stub.Score(harness.request_from_golden(stubs, g), timeout=RPC_TIMEOUT_S)
            assert abs(r.score - g.score) <= ATOL, (g.request_id, r.score, g.score)
    assert "(TLS, torch" in tls_server.log_tail(200)


def test_tls_refuses_plaintext_and_untrusted_clients(stubs, golden, pki, tls_server):
    address = tls_server.grpc_address
    assert refused(stubs, address, pki, golden[0], secure=False) == grpc.StatusCode.UNAVAILABLE
    # A client that does not trust the server's CA stops at the handshake.
    assert refused(stubs, address, pki, golden[0], ca="other_ca") == grpc.StatusCode.UNAVAILABLE
    assert served_certificate(address, pki) == pki.der("server.crt")


def test_tls_below_1_2_is_refused(pki, tls_server):
    address = tls_server.grpc_address
    assert negotiated_version(address, pki, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert negotiated_version(address, pki, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    with pytest.raises(ssl.SSLError):
        negotiated_version(address, pki, ssl.TLSVersion.TLSv1_1)


# --- mutual TLS -------------------------------------------------------------------

def test_mtls_serves_a_client_of_the_ca(stubs, golden, pki, mtls_server):
    r = score(stubs, mtls_server.grpc_address, pki, golden[0], client="client")
    assert abs(r.score - golden[0].score) <= ATOL
    assert "(mutual TLS, torch" in mtls_server.log_tail(200)


def test_mtls_guards_the_admin_port_too(stubs, pki, mtls_server):
    admin = harness.call_or_fail(generate_repository_stubs, stubs)

    def list_models(**kw):
        with channel(mtls_server.admin_address, pki, **kw) as ch:
            stub = admin.pb2_grpc.ModelRepositoryServiceStub(ch)
            return stub.ListModels(admin.pb2.ListModelsRequest(), timeout=RPC_TIMEOUT_S)

    assert harness.MODEL_NAME in [m.name for m in list_models(client="client").models]
    for kw in ({"secure": False}, {}, {"client": "stranger"}):
        with pytest.raises(grpc.RpcError) as error:
            list_models(**kw)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE, kw


def test_mtls_refuses_a_client_without_a_certificate(stubs, golden, pki, mtls_server):
    assert refused(stubs, mtls_server.grpc_address, pki, golden[0]) == \
        grpc.StatusCode.UNAVAILABLE
    # Refused at the handshake, not by an RPC: a raw TLS client is cut off.
    with pytest.raises((ssl.SSLError, ConnectionError)):
        raise_on_read(mtls_server.grpc_address, pki)


def raise_on_read(address, pki, client=None):
    """Shakes hands, then reads: with TLS 1.3 the client learns that the
    server refused its certificate on its first read."""
    host, port = address.rsplit(":", 1)
    context = ssl.create_default_context(cafile=pki.path("ca.crt"))
    context.set_alpn_protocols(["h2"])
    if client:
        context.load_cert_chain(pki.path(f"{client}.crt"), pki.path(f"{client}.key"))
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            if not tls.recv(1):
                raise ConnectionError("closed by the server")


def test_mtls_refuses_a_client_of_another_ca(stubs, golden, pki, mtls_server):
    assert refused(stubs, mtls_server.grpc_address, pki, golden[0], client="stranger") == \
        grpc.StatusCode.UNAVAILABLE
    with pytest.raises((ssl.SSLError, ConnectionError)):
        raise_on_read(mtls_server.grpc_address, pki, client="stranger")


def test_mtls_fusion_client_and_bench_present_their_certificate(golden, pki, mtls_server,
                                                                tmp_path):
    client_bin = os.environ.get("FUSION_CLIENT_BIN", os.path.join(
        harness.REPO_ROOT, "build", "client", "fusion-client"))
    bench_bin = os.environ.get("FUSION_BENCH_BIN", os.path.join(
        harness.REPO_ROOT, "build", "client", "fusion-bench"))
    for binary in (client_bin, bench_bin):
        if not os.access(binary, os.X_OK):
            pytest.fail(f"{binary} is not built", pytrace=False)
    g = next(x for x in golden if x.text.strip())
    tls = [f"--target={mtls_server.grpc_address}", "--tls", f"--ca_file={pki.path('ca.crt')}",
           "--tls_server_name=localhost"]
    cert = [f"--tls_cert={pki.path('client.crt')}", f"--tls_key={pki.path('client.key')}"]
    request = ["score", f"--text={g.text}"] + [f"--feature={k}={v!r}"
                                               for k, v in g.features.items()]
    ok = subprocess.run([client_bin] + request + tls + cert, capture_output=True, text=True,
                        timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert '"score"' in ok.stdout
    no_cert = subprocess.run([client_bin] + request + tls + ["--retries=0", "--timeout=5s"],
                             capture_output=True, text=True, timeout=60)
    assert no_cert.returncode != 0
    assert "UNAVAILABLE" in no_cert.stderr or "cannot reach" in no_cert.stderr, no_cert.stderr
    report = tmp_path / "bench.json"
    bench = subprocess.run([bench_bin, f"--json={report}", "--concurrency=2", "--duration=1s",
                            "--warmup=0s"] + tls + cert, capture_output=True, text=True,
                           timeout=120)
    assert bench.returncode == 0, bench.stderr
    run = json.loads(report.read_text())["runs"][0]
    assert run["completed"] > 0 and run["errors"] == {}, run


def test_python_example_client_speaks_mtls(golden, pki, mtls_server):
    g = next(x for x in golden if x.text.strip())
    script = os.path.join(harness.REPO_ROOT, "client", "python", "score_example.py")
    args = ["/usr/bin/python3", script, f"--target={mtls_server.grpc_address}",
            f"--text={g.text}", "--tls", f"--ca_file={pki.path('ca.crt')}",
            "--tls_server_name=localhost"] + [f"--feature={k}={v!r}"
                                               for k, v in g.features.items()]
    ok = subprocess.run(args + [f"--tls_cert={pki.path('client.crt')}",
                                f"--tls_key={pki.path('client.key')}"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    printed = float(ok.stdout.split()[1])  # "score 0.1234 (model ..."
    assert abs(printed - g.score) <= ATOL + 5e-5, (ok.stdout, g.score)
    refused_run = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert refused_run.returncode != 0
    assert "UNAVAILABLE" in refused_run.stderr


# --- rotation ---------------------------------------------------------------------

def rotation_files(pki, tmp_path):
    """The server's own copies of the files, to be replaced under it."""
    tmp_path.mkdir()
    live = Pki(tmp_path)
    for name in ("server.crt", "server.key", "ca.crt"):
        shutil.copyfile(pki.path(name), live.path("live_" + name))
    return live


def test_rotated_files_serve_the_next_connection(stubs, golden, pki, started, tmp_path):
    live = rotation_files(pki, tmp_path / "live")
    server = started([f"--tls_cert={live.path('live_server.crt')}",
                      f"--tls_key={live.path('live_server.key')}"])
    address = server.grpc_address
    with channel(address, pki) as before:  # a connection made before rotation
        stub = stubs.scoring_pb2_grpc.ScoringServiceStub(before)
        stub.Score(harness.request_from_golden(stubs, golden[0]), timeout=RPC_TIMEOUT_S)
        # Key first, then certificate: in between the pair does not match,
        # and a connection then still gets the old certificate.
        shutil.copyfile(pki.path("new_server.key"), live.path("new.key"))
        os.replace(live.path("new.key"), live.path("live_server.key"))
        assert served_certificate(address, pki) == pki.der("server.crt")
        shutil.copyfile(pki.path("new_server.crt"), live.path("new.crt"))
        os.replace(live.path("new.crt"), live.path("live_server.crt"))

        assert served_certificate(address, pki, ca="new_ca") == pki.der("new_server.crt")
        r = score(stubs, address, pki, golden[1], ca="new_ca")
        assert abs(r.score - golden[1].score) <= ATOL
        assert refused(stubs, address, pki, golden[0]) == grpc.StatusCode.UNAVAILABLE
        # The connection made before keeps working.
        r = stub.Score(harness.request_from_golden(stubs, golden[2]), timeout=RPC_TIMEOUT_S)
        assert abs(r.score - golden[2].score) <= ATOL
    log = server.log_tail(400)
    assert "does not match the certificate" in log
    assert "reloaded subject CN = new_server" in log


def test_a_rotated_client_ca_judges_the_next_connection(stubs, golden, pki, started,
                                                        tmp_path):
    live = rotation_files(pki, tmp_path / "live")
    server = started([f"--tls_cert={live.path('live_server.crt')}",
                      f"--tls_key={live.path('live_server.key')}",
                      f"--tls_client_ca={live.path('live_ca.crt')}"])
    address = server.grpc_address
    score(stubs, address, pki, golden[0], client="client")
    shutil.copyfile(pki.path("other_ca.crt"), live.path("new_ca.crt"))
    os.replace(live.path("new_ca.crt"), live.path("live_ca.crt"))
    r = score(stubs, address, pki, golden[0], client="stranger")
    assert abs(r.score - golden[0].score) <= ATOL
    assert refused(stubs, address, pki, golden[0], client="client") == \
        grpc.StatusCode.UNAVAILABLE


def test_sighup_reloads_at_once_and_keeps_serving_on_bad_files(stubs, golden, pki, started,
                                                             tmp_path):
    live = rotation_files(pki, tmp_path / "live")
    server = started([f"--tls_cert={live.path('live_server.crt')}",
                      f"--tls_key={live.path('live_server.key')}"])
    # Broken files, then SIGHUP: the error is logged, the server serves on
    # with the certificate in force.
    with open(live.path("live_server.key"), "w") as f:
        f.write("not a key\n")
    server.proc.send_signal(signal.SIGHUP)
    wait_for_log(server, f"SIGHUP: --tls_key {live.path('live_server.key')}: holds no usable")
    assert server.proc.poll() is None
    assert served_certificate(server.grpc_address, pki) == pki.der("server.crt")

    # New files, then SIGHUP with no connection in between: the reload is
    # logged by the signal, before any handshake could have caused it.
    shutil.copyfile(pki.path("new_server.key"), live.path("live_server.key"))
    shutil.copyfile(pki.path("new_server.crt"), live.path("live_server.crt"))
    server.proc.send_signal(signal.SIGHUP)
    wait_for_log(server, "reloaded subject CN = new_server")
    assert served_certificate(server.grpc_address, pki, ca="new_ca") == \
        pki.der("new_server.crt")
    r = score(stubs, server.grpc_address, pki, golden[0], ca="new_ca")
    assert abs(r.score - golden[0].score) <= ATOL


def test_sighup_without_tls_is_logged_and_harmless(stubs, golden, pki, started):
    server = started([])
    server.proc.send_signal(signal.SIGHUP)
    wait_for_log(server, "SIGHUP: TLS is off; nothing to reload")
    assert server.proc.poll() is None
    r = score(stubs, server.grpc_address, pki, golden[0], secure=False)
    assert abs(r.score - golden[0].score) <= ATOL


# --- start-up errors ------------------------------------------------------------------

def start_fails(args):
    """Runs the server with `args`; returns its exit code and output. Flags
    are checked before any model loads, so it exits at once."""
    server = harness.ServerProcess(args)
    server.check_binary()
    p = subprocess.run(server.args, capture_output=True, text=True, timeout=60,
                       cwd=harness.REPO_ROOT)
    return p.returncode, p.stdout + p.stderr


@pytest.mark.parametrize("case", ["missing_cert", "missing_key", "mismatched_key",
                                  "garbage_cert", "garbage_client_ca", "cert_without_key",
                                  "http_missing_cert"])
def test_bad_files_at_start_exit_non_zero_naming_the_file(pki, tmp_path, case):
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("this is not PEM\n")
    missing = str(tmp_path / "absent.pem")
    cert, key, ca = pki.path("server.crt"), pki.path("server.key"), pki.path("ca.crt")
    args, named = {
        "missing_cert": ([f"--tls_cert={missing}", f"--tls_key={key}"],
                         f"--tls_cert {missing}: cannot read"),
        "missing_key": ([f"--tls_cert={cert}", f"--tls_key={missing}"],
                        f"--tls_key {missing}: cannot read"),
        "mismatched_key": ([f"--tls_cert={cert}", f"--tls_key={pki.path('client.key')}"],
                           f"--tls_key {pki.path('client.key')} does not match the "
                           f"certificate in --tls_cert {cert}"),
        "garbage_cert": ([f"--tls_cert={garbage}", f"--tls_key={key}"],
                         f"--tls_cert {garbage}: holds no PEM certificate"),
        "garbage_client_ca": ([f"--tls_cert={cert}", f"--tls_key={key}",
                               f"--tls_client_ca={garbage}"],
                              f"--tls_client_ca {garbage}: holds no PEM certificate"),
        "cert_without_key": ([f"--tls_cert={cert}"], "--tls_cert and --tls_key go together"),
        "http_missing_cert": ([f"--http_tls_cert={missing}", f"--http_tls_key={key}"],
                              f"--http_tls_cert {missing}: cannot read"),
    }[case]
    assert os.path.exists(ca)
    t0 = time.monotonic()
    code, output = start_fails(args)
    assert code != 0, output
    assert named in output, output
    # Refused before the models load (which takes seconds).
    assert "serving " not in output
    assert time.monotonic() - t0 < 30


# --- HTTPS on the HTTP port -------------------------------------------------------------

def https_get(address, path, pki, ca="ca", client=None, timeout=5):
    context = ssl.create_default_context(cafile=pki.path(f"{ca}.crt"))
    if client:
        context.load_cert_chain(pki.path(f"{client}.crt"), pki.path(f"{client}.key"))
    url = f"https://localhost:{address.rsplit(':', 1)[1]}{path}"
    with urllib.request.urlopen(url, context=context, timeout=timeout) as r:
        return r.status, r.read().decode()


class HttpsServer(harness.ServerProcess):
    """A server whose HTTP port speaks HTTPS only; ready when /readyz says
    so over HTTPS."""

    def __init__(self, pki, args, **kw):
        super().__init__(args, **kw)
        self.pki = pki
        self.client = None

    def start(self, ready_timeout_s=harness.READY_TIMEOUT_S):
        self.check_binary()
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=harness.REPO_ROOT)
        log.close()
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise harness.HarnessError(f"server exited:\n{self.log_tail()}")
            try:
                if https_get(self.http_address, "/readyz", self.pki,
                             client=self.client)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise harness.HarnessError(f"not ready over HTTPS:\n{self.log_tail()}")


def test_https_port_serves_metrics_and_probes(pki, tmp_path):
    server = HttpsServer(pki, tls_args(pki, prefix="--http_tls"), log_dir=str(tmp_path))
    try:
        harness.call_or_fail(server.start)
        status, body = https_get(server.http_address, "/readyz", pki)
        assert status == 200 and body.startswith("ready")
        status, body = https_get(server.http_address, "/metrics", pki)
        assert status == 200 and "fusion_build_info" in body
        # Plain HTTP gets no answer on an HTTPS-only port.
        assert harness.http_get(f"http://{server.http_address}/readyz")[0] is None
        assert negotiated_version(server.http_address, pki, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
        with pytest.raises(ssl.SSLError):
            negotiated_version(server.http_address, pki, ssl.TLSVersion.TLSv1_1)
        assert "(HTTPS only)" in server.log_tail(200)
    finally:
        server.stop()


def test_https_port_with_client_ca_needs_a_client_certificate(pki, tmp_path):
    server = HttpsServer(pki, tls_args(pki, prefix="--http_tls", client_ca="ca"),
                         log_dir=str(tmp_path))
    server.client = "client"
    try:
        harness.call_or_fail(server.start)
        status, _ = https_get(server.http_address, "/metrics", pki, client="client")
        assert status == 200
        for client in (None, "stranger"):
            with pytest.raises(OSError):  # ssl.SSLError, URLError, reset
                https_get(server.http_address, "/metrics", pki, client=client)
    finally:
        server.stop()
