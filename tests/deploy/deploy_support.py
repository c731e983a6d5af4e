"""pytest-aware helpers of the deployment tests: rendering kustomizations
with kubectl and looking objects up in what they render."""
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

import deploy_checks as dc

K8S = os.path.join(dc.DEPLOY, "k8s")
OVERLAYS = ("cpu", "gpu")


# --- kubectl kustomize -------------------------------------------------------

_KUBECTL_CHECKED = []


def kubectl() -> str:
    """kubectl, once checked to embed kustomize v5 (deploy/k8s uses `labels`
    and components; Debian's kubernetes-client 1.20 embeds kustomize v2)."""
    path = shutil.which("kubectl")
    if not path:
        pytest.skip("kubectl is not installed: cannot render deploy/k8s with "
                    "`kubectl kustomize` (install kubectl >= 1.27, kustomize v5)")
    if not _KUBECTL_CHECKED:
        proc = subprocess.run([path, "version", "--client", "-o", "json"],
                              capture_output=True, text=True, timeout=30)
        try:
            version = json.loads(proc.stdout).get("kustomizeVersion", "")
        except ValueError:
            version = ""
        major = re.match(r"v(\d+)", version)
        assert major and int(major.group(1)) >= 5, (
            f"{path} embeds kustomize {version or '(unknown)'}; deploy/k8s needs "
            "kustomize v5 (kubectl >= 1.27)")
        _KUBECTL_CHECKED.append(path)
    return path


def kustomize(directory: str):
    """The objects `kubectl kustomize DIR` renders."""
    proc = subprocess.run([kubectl(), "kustomize", directory], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, f"kubectl kustomize {directory} failed:\n{proc.stderr}"
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


class Rendered:
    """One rendered kustomization, with lookups the tests need."""

    def __init__(self, name, objects):
        self.name = name
        self.objects = objects

    def all(self, kind):
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind, name=None):
        found = [o for o in self.all(kind) if name is None or o["metadata"]["name"] == name]
        assert len(found) == 1, (f"{self.name}: expected one {kind} {name or ''}, "
                                 f"found {[o['metadata']['name'] for o in found]}")
        return found[0]

    @property
    def deployment(self):
        return self.one("Deployment", "fusion-server")

    @property
    def pod_spec(self):
        return self.deployment["spec"]["template"]["spec"]

    @property
    def container(self):
        containers = [c for c in self.pod_spec["containers"] if c["name"] == "fusion-server"]
        assert len(containers) == 1, f"{self.name}: no container named fusion-server"
        return containers[0]


# The labels a Kubernetes scrape adds (annotation job or ServiceMonitor); the
# prometheus-adapter rule maps them to objects.
POD_LABELS = {"namespace": "deploy-test", "pod": "fusion-server-0"}
