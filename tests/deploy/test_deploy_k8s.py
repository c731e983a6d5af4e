"""deploy/k8s rendered with `kubectl kustomize` (both overlays) and checked
against the real server: its flags, its probes' answers, its drain, its
metrics, and the prometheus-adapter rule behind the HPA."""
import os
import time

import pytest
import yaml

import deploy_checks as dc
import harness
from deploy_support import K8S, POD_LABELS, Rendered, kustomize

SERVICE = "fusion.v1.ScoringService"


def container_flags(rendered, server_help):
    """The container's flags: its args over the binary's defaults. The image's
    ENTRYPOINT is the bare binary, so `args` is the whole command line."""
    c = rendered.container
    assert not c.get("command"), (f"{rendered.name}: `command` overrides the image's "
                                  "ENTRYPOINT; set flags in `args`")
    flags = dict(server_help.defaults)
    flags.update(dc.flag_values(c.get("args", [])))
    return flags


def container_port(rendered, port):
    """A probe's or Service's port (number or name) as a container port number."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for p in rendered.container.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    pytest.fail(f"{rendered.name}: no container port named {port!r}")


def test_every_arg_is_a_server_flag(overlay, server_help):
    args = overlay.container.get("args", [])
    assert args, f"{overlay.name}: the container has no args"
    unknown = set(dc.flag_values(args)) - server_help.names
    assert not unknown, f"{overlay.name}: fusion-server has no flags {sorted(unknown)}"


def test_ports_match_the_server_addresses(overlay, server_help):
    flags = container_flags(overlay, server_help)
    grpc_port = dc.split_host_port(flags["grpc_address"])[1]
    http_port = dc.split_host_port(flags["http_address"])[1]
    for flag in ("grpc_address", "http_address"):
        host = dc.split_host_port(flags[flag])[0]
        assert host in ("0.0.0.0", "[::]", "::", ""), (
            f"{overlay.name}: --{flag}={flags[flag]} is not reachable from outside the pod")
    ports = {p["name"]: p["containerPort"] for p in overlay.container["ports"]}
    assert ports.get("grpc") == grpc_port, f"{overlay.name}: grpc port {ports} vs {grpc_port}"
    assert ports.get("metrics") == http_port, f"{overlay.name}: metrics port {ports} vs {http_port}"


@pytest.mark.parametrize("probe,paths", [
    ("startupProbe", {"/readyz", "/healthz"}),
    ("readinessProbe", {"/readyz"}),
    ("livenessProbe", {"/healthz"}),
])
def test_probes_match_the_server_flags(overlay, server_help, probe, paths):
    flags = container_flags(overlay, server_help)
    spec = overlay.container.get(probe)
    assert spec, f"{overlay.name}: no {probe}"
    if "httpGet" in spec:
        port = container_port(overlay, spec["httpGet"]["port"])
        assert port == dc.split_host_port(flags["http_address"])[1], (
            f"{overlay.name}: {probe} port {port} is not --http_address={flags['http_address']}")
        assert spec["httpGet"].get("path") in paths, (
            f"{overlay.name}: {probe} path {spec['httpGet'].get('path')} not in {paths}")
    elif "grpc" in spec:
        assert probe != "livenessProbe", (
            f"{overlay.name}: gRPC health turns NOT_SERVING on SIGTERM; a liveness "
            "probe on it would restart draining pods")
        assert spec["grpc"]["port"] == dc.split_host_port(flags["grpc_address"])[1]
        assert spec["grpc"].get("service", "") in ("", SERVICE)
    else:
        pytest.fail(f"{overlay.name}: {probe} is neither httpGet nor grpc: {spec}")


def test_liveness_cannot_kill_a_loading_server(overlay):
    c = overlay.container
    startup = c["startupProbe"]
    budget = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
    assert budget >= 120, f"{overlay.name}: startup probe allows only {budget} s to load"


def test_grace_period_exceeds_drain_plus_shutdown(overlay, server_help):
    flags = container_flags(overlay, server_help)
    assert "drain_delay" in dc.flag_values(overlay.container["args"]), (
        f"{overlay.name}: --drain_delay is not set")
    drain = dc.parse_absl_duration(flags["drain_delay"])
    shutdown = dc.parse_absl_duration(flags["shutdown_timeout"])
    grace = overlay.pod_spec.get("terminationGracePeriodSeconds", 30)
    assert drain > 0, f"{overlay.name}: --drain_delay={flags['drain_delay']}"
    assert grace > drain + shutdown, (
        f"{overlay.name}: terminationGracePeriodSeconds {grace} <= drain_delay {drain} "
        f"+ shutdown_timeout {shutdown}")


def test_non_root_security_context(overlay):
    pod = overlay.pod_spec.get("securityContext", {})
    c = overlay.container.get("securityContext", {})
    merged = dict(pod, **c)
    assert merged.get("runAsNonRoot") is True, f"{overlay.name}: runAsNonRoot not set"
    assert merged.get("runAsUser", 0) != 0, f"{overlay.name}: runAsUser is root"
    assert c.get("allowPrivilegeEscalation") is False
    assert "ALL" in c.get("capabilities", {}).get("drop", [])
    # The uid the image was built with (deploy/docker/Dockerfile: USER).
    image_user = dc.parse_dockerfile(
        os.path.join(dc.DEPLOY, "docker", "Dockerfile")).final.last("USER").args
    assert str(merged["runAsUser"]) == image_user.split(":")[0], (
        f"{overlay.name}: runAsUser {merged['runAsUser']} differs from the image's USER "
        f"{image_user}")
    if c.get("readOnlyRootFilesystem"):
        mounts = {m["mountPath"] for m in overlay.container.get("volumeMounts", [])}
        assert "/tmp" in mounts, f"{overlay.name}: read-only root without a writable /tmp"


def test_resources_and_devices(overlays, server_help):
    for name, r in overlays.items():
        res = r.container.get("resources", {})
        for part in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(res.get(part, {})), f"{name}: {part} {res}"
        device = container_flags(r, server_help)["device"]
        gpus = res.get("limits", {}).get("nvidia.com/gpu")
        if name == "gpu":
            assert device == "cuda", f"gpu overlay runs --device={device}"
            assert str(gpus) == "1", f"gpu overlay limits nvidia.com/gpu={gpus}"
            req = res.get("requests", {}).get("nvidia.com/gpu")
            assert req is None or str(req) == "1"
            assert r.container["image"].endswith(":cuda")
        else:
            assert device == "cpu", f"cpu overlay runs --device={device}"
            assert gpus is None and "nvidia.com/gpu" not in res.get("requests", {})
            assert r.container["image"].endswith(":cpu")
            # Guaranteed QoS, as the overlay says; a whole-number CPU limit
            # becomes the server's LibTorch thread count.
            assert res["requests"] == res["limits"], res
            assert str(res["limits"]["cpu"]).isdigit(), res


def test_prometheus_scrape_annotations(overlay, server_help):
    ann = overlay.deployment["spec"]["template"]["metadata"].get("annotations", {})
    http_port = dc.split_host_port(container_flags(overlay, server_help)["http_address"])[1]
    assert ann.get("prometheus.io/scrape") == "true"
    assert ann.get("prometheus.io/port") == str(http_port)
    assert ann.get("prometheus.io/path", "/metrics") == "/metrics"


def _selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def test_services(overlay, server_help):
    flags = container_flags(overlay, server_help)
    pod_labels = overlay.deployment["spec"]["template"]["metadata"]["labels"]
    assert _selects(overlay.deployment["spec"]["selector"]["matchLabels"], pod_labels)
    svc = overlay.one("Service", "fusion-server")
    headless = overlay.one("Service", "fusion-server-headless")
    assert svc["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert svc["spec"].get("clusterIP") != "None"
    assert headless["spec"].get("clusterIP") == "None", "the headless Service has a cluster IP"
    assert not headless["spec"].get("publishNotReadyAddresses"), (
        "round_robin clients would get draining pods")
    want = {"grpc": dc.split_host_port(flags["grpc_address"])[1],
            "metrics": dc.split_host_port(flags["http_address"])[1]}
    for s, names in ((svc, ("grpc", "metrics")), (headless, ("grpc",))):
        assert _selects(s["spec"]["selector"], pod_labels), f"{s['metadata']['name']} selects no pod"
        ports = {p["name"]: p for p in s["spec"]["ports"]}
        for n in names:
            assert n in ports, f"{s['metadata']['name']} has no port {n}"
            assert container_port(overlay, ports[n].get("targetPort", ports[n]["port"])) == want[n]


def test_pdb(overlay):
    pdb = overlay.one("PodDisruptionBudget")
    hpa = overlay.one("HorizontalPodAutoscaler")
    pod_labels = overlay.deployment["spec"]["template"]["metadata"]["labels"]
    assert _selects(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    spec = pdb["spec"]
    if "maxUnavailable" in spec:
        assert int(spec["maxUnavailable"]) >= 1, "the PDB blocks every drain"
    else:
        assert int(spec["minAvailable"]) < hpa["spec"]["minReplicas"], "the PDB blocks every drain"


def test_hpa_shape(overlay):
    hpa = overlay.one("HorizontalPodAutoscaler")
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["kind"], ref["name"]) == ("Deployment", "fusion-server")
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    assert "replicas" not in overlay.deployment["spec"], (
        "the Deployment sets replicas: every re-apply resets what the HPA chose")
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    assert metric["pods"]["target"]["type"] == "AverageValue"
    assert float(metric["pods"]["target"]["averageValue"]) > 0


# --- prometheus-adapter: the HPA's metric is one the server exports -----------

def adapter_rules(adapter_objects):
    cm = adapter_objects.one("ConfigMap")
    return yaml.safe_load(cm["data"]["config.yaml"])["rules"]


def test_adapter_configmap_and_helm_values_agree(adapter_objects):
    with open(os.path.join(K8S, "prometheus-adapter", "values.yaml"), encoding="utf-8") as f:
        values = yaml.safe_load(f)
    assert values["rules"]["custom"] == adapter_rules(adapter_objects)


def hpa_rule(overlay, adapter_objects):
    """(metric name, the adapter rule that serves it, the server series)."""
    name = overlay.one("HorizontalPodAutoscaler")["spec"]["metrics"][0]["pods"]["metric"]["name"]
    for rule in adapter_rules(adapter_objects):
        series = dc.series_query_metric(rule["seriesQuery"])
        if dc.adapter_exposed_name(rule, series) == name:
            return name, rule, series
    pytest.fail(f"{overlay.name}: no prometheus-adapter rule exposes the HPA metric {name}")


def test_hpa_metric_is_exported_by_the_server(overlay, adapter_objects, exported_names,
                                              metrics_text):
    name, rule, series = hpa_rule(overlay, adapter_objects)
    assert series in exported_names, (
        f"the HPA metric {name} comes from {series}, which the server does not export")
    assert dc.exposition_types(metrics_text).get(series) == "gauge", (
        f"{series} is not a gauge; avg_over_time of a counter is meaningless")
    overrides = rule["resources"]["overrides"]
    assert overrides.get("pod", {}).get("resource") == "pod"
    assert overrides.get("namespace", {}).get("resource") == "namespace"
    assert "<<.Series>>" in rule["metricsQuery"] and "<<.LabelMatchers>>" in rule["metricsQuery"]
    assert dc.promql_metric_names(
        dc.expand_adapter_query(rule["metricsQuery"], series, 'pod="p"', "pod")) == {series}


def test_adapter_rule_works_against_real_prometheus(overlays, adapter_objects,
                                                    prometheus_with_traffic):
    """What prometheus-adapter does for the HPA: discover the series with
    seriesQuery, then run metricsQuery for the pods; both must find the
    server's series (scraped with the namespace and pod labels Kubernetes
    scrapes add)."""
    prom = prometheus_with_traffic
    _, rule, series = hpa_rule(overlays["cpu"], adapter_objects)
    status, data = prom.get("/api/v1/series", **{"match[]": rule["seriesQuery"]})
    assert status == 200 and data.get("data"), f"seriesQuery found nothing: {data}"
    assert {d["pod"] for d in data["data"]} == {POD_LABELS["pod"]}
    query = dc.expand_adapter_query(
        rule["metricsQuery"], series,
        f'namespace="{POD_LABELS["namespace"]}",pod=~"{POD_LABELS["pod"]}"', "pod")
    state, result = prom.query(query)
    assert state == "success", f"{query}: {result}"
    assert [r["metric"].get("pod") for r in result] == [POD_LABELS["pod"]], result
    assert float(result[0]["value"][1]) >= 0


# --- optional components -----------------------------------------------------------

def test_components_render_on_both_overlays(tmp_path, server_help):
    """Each overlay plus both optional components: the ServiceMonitor scrapes
    the metrics port and the model volume lands on --model_repository."""
    for name in ("cpu", "gpu"):
        d = tmp_path / name
        d.mkdir()
        (d / "kustomization.yaml").write_text(yaml.safe_dump({
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            # kustomize takes only relative paths.
            "resources": [os.path.relpath(os.path.join(K8S, "overlays", name), d)],
            "components": [os.path.relpath(os.path.join(K8S, "components", c), d)
                           for c in ("prometheus-operator", "model-volume")]}))
        r = Rendered(name, kustomize(str(d)))
        flags = container_flags(r, server_help)
        sm = r.one("ServiceMonitor", "fusion-server")
        (endpoint,) = sm["spec"]["endpoints"]
        services = [s for s in r.all("Service")
                    if _selects(sm["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
        targets = [p for s in services for p in s["spec"]["ports"] if p["name"] == endpoint["port"]]
        assert len(targets) == 1, f"ServiceMonitor port {endpoint['port']} matches {targets}"
        assert container_port(r, targets[0]["targetPort"]) == \
            dc.split_host_port(flags["http_address"])[1]
        assert endpoint.get("path", "/metrics") == "/metrics"
        mounts = {m["name"]: m for m in r.container["volumeMounts"]}
        assert mounts["models"]["mountPath"] == flags["model_repository"]
        assert mounts["models"].get("readOnly") is True
        assert any(v["name"] == "models" for v in r.pod_spec["volumes"])


# --- the server behaves as the manifests assume ----------------------------------------

def test_server_drains_as_kubelet_expects(overlays, server_help, tmp_path):
    """Runs the real server with the cpu overlay's args (addresses moved to
    free ports, the bundle from this checkout), sends SIGTERM as the kubelet
    does: /readyz fails within one readiness period, /healthz keeps answering
    200 through the drain (liveness must not restart a draining pod), and the
    process exits 0 within terminationGracePeriodSeconds."""
    r = overlays["cpu"]
    flags = dc.flag_values(r.container["args"])
    drain = dc.parse_absl_duration(flags["drain_delay"])
    grace = r.pod_spec["terminationGracePeriodSeconds"]
    readiness_period = r.container["readinessProbe"].get("periodSeconds", 10)
    srv = harness.ServerProcess(log_dir=str(tmp_path))
    overrides = {"grpc_address": srv.grpc_address, "http_address": srv.http_address,
                 "model_repository": harness.MODEL_REPOSITORY}
    srv.args = [srv.binary] + [f"--{k}={overrides.get(k, v)}"
                               for k, v in flags.items()]
    harness.call_or_fail(srv.start)
    base = f"http://{srv.http_address}"
    for path in ("/readyz", "/healthz"):
        assert harness.http_get(base + path)[0] == 200, f"{path} not 200 when serving"
    t0 = time.monotonic()
    srv.terminate()
    try:
        not_ready_at, health = None, []
        while time.monotonic() - t0 < drain - 0.5:
            if not_ready_at is None and harness.http_get(base + "/readyz")[0] == 503:
                not_ready_at = time.monotonic() - t0
            health.append(harness.http_get(base + "/healthz")[0])
            time.sleep(0.2)
        assert not_ready_at is not None and not_ready_at < readiness_period, (
            f"/readyz still 200 {readiness_period} s after SIGTERM")
        assert health and all(s == 200 for s in health), f"/healthz during drain: {health}"
        rc = srv.wait(timeout=grace - (time.monotonic() - t0))
        assert rc == 0, (f"exit code {rc} (None: still running after the grace period "
                         f"{grace} s)\n{srv.log_tail()}")
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait()


def test_manifests_parse_as_kubernetes_objects(overlay):
    for o in overlay.objects:
        assert {"apiVersion", "kind", "metadata"} <= set(o), o
        assert o["metadata"].get("name"), o
        assert o["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "fusionserve", (
            f"{o['kind']}/{o['metadata']['name']} lacks the part-of label")
