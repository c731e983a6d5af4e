"""Python bindings for proto/fusion/v1/model_config.proto, generated on demand.

The .proto is the one schema shared with C++; generating at run time with the
system protoc (3.21; grpc-tools bundles 3.5, too old) keeps no generated code
in git to drift from it.
"""
import functools
import importlib.util
import os
import subprocess
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTO_FILE = "fusion/v1/model_config.proto"
PROTOC = os.environ.get("PROTOC", "/usr/bin/protoc")


@functools.lru_cache(maxsize=None)
def model_config_pb2():
    """The generated module; ModelConfig is model_config_pb2().ModelConfig."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([PROTOC, "-I", os.path.join(REPO_ROOT, "proto"),
                        f"--python_out={out}", PROTO_FILE], check=True)
        path = os.path.join(out, PROTO_FILE.replace(".proto", "_pb2.py"))
        spec = importlib.util.spec_from_file_location("model_config_pb2", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module
