#!/usr/bin/python3
"""Scores one transaction with fusionserve and prints the score and the
features each token attended to most.

    /usr/bin/python3 client/python/score_example.py --target localhost:50051 \
        --text "URGENT: buy gift cards now" --feature amount=950 \
        --feature account_age_days=2

Over TLS add --tls (and --ca_file CA.pem unless the system roots vouch for
the server); for a server requiring client certificates (mutual TLS) add
--tls_cert client.pem --tls_key client.key.

Optional features left out take the model's defaults (server side); required
ones left out are sent as the training mean, and the script says so. Stubs are generated from proto/
with the system protoc on first use (Debian's grpc_tools bundles a protoc
too old for proto3 `optional`).
"""
import argparse
import importlib
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_stubs(out_dir=None):
    """Generates (once) and imports scoring_pb2 / scoring_pb2_grpc."""
    out_dir = out_dir or os.path.join(tempfile.gettempdir(), "fusionserve-stubs")
    target = os.path.join(out_dir, "fusion", "v1", "scoring_pb2_grpc.py")
    if not os.path.exists(target):
        os.makedirs(out_dir, exist_ok=True)
        subprocess.run(
            ["protoc", "-I", os.path.join(REPO, "proto"),
             f"--python_out={out_dir}", f"--grpc_out={out_dir}",
             "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin",
             os.path.join(REPO, "proto/fusion/v1/scoring.proto")],
            check=True)
    if out_dir not in sys.path:
        sys.path.insert(0, out_dir)
    return (importlib.import_module("fusion.v1.scoring_pb2"),
            importlib.import_module("fusion.v1.scoring_pb2_grpc"))


def parse_feature(text):
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected name=value, got {text!r}")
    try:
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name}: {value!r} is not a number")


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def make_channel(args, grpc):
    """A channel as the TLS arguments say; exits with a message when they
    are inconsistent."""
    tls_files = (args.ca_file, args.tls_cert, args.tls_key)
    if not args.tls:
        if any(tls_files):
            sys.exit("error: --ca_file, --tls_cert and --tls_key need --tls")
        return grpc.insecure_channel(args.target)
    if bool(args.tls_cert) != bool(args.tls_key):
        sys.exit("error: --tls_cert and --tls_key go together")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read_file(args.ca_file) if args.ca_file else None,
        private_key=read_file(args.tls_key) if args.tls_key else None,
        certificate_chain=read_file(args.tls_cert) if args.tls_cert else None)
    options = ([("grpc.ssl_target_name_override", args.tls_server_name)]
               if args.tls_server_name else [])
    return grpc.secure_channel(args.target, credentials, options=options)


def top_features(attention, top=3):
    """(token, [(feature, weight)...]) for each token, from ATTENTION_MEAN."""
    tokens, names = list(attention.tokens), list(attention.feature_names)
    weights = list(attention.text_to_features)
    rows = []
    for t, token in enumerate(tokens):
        row = weights[t * len(names):(t + 1) * len(names)]
        best = sorted(zip(names, row), key=lambda p: -p[1])[:top]
        rows.append((token, best))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", default="localhost:50051")
    parser.add_argument("--text", required=True)
    parser.add_argument("--feature", action="append", type=parse_feature,
                        default=[], metavar="NAME=VALUE")
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--tls", action="store_true", help="use TLS")
    parser.add_argument("--ca_file", help="PEM CA bundle (default: system roots)")
    parser.add_argument("--tls_cert", help="PEM client certificate (mutual TLS)")
    parser.add_argument("--tls_key", help="PEM key of --tls_cert")
    parser.add_argument("--tls_server_name",
                        help="name the server certificate must carry, if not the target's host")
    args = parser.parse_args()

    import grpc
    pb, pb_grpc = load_stubs()
    stub = pb_grpc.ScoringServiceStub(make_channel(args, grpc))
    metadata = stub.GetModelMetadata(pb.GetModelMetadataRequest(),
                                     timeout=args.timeout)
    features = dict(args.feature)
    filled = [spec for spec in metadata.features
              if spec.name not in features and not spec.allow_missing]
    for spec in filled:
        features[spec.name] = spec.mean
    if filled:
        print("using the training mean for: " +
              ", ".join(spec.name for spec in filled), file=sys.stderr)
    try:
        response = stub.Score(
            pb.ScoreRequest(request_id="example", text=args.text,
                            features=features, attention=pb.ATTENTION_MEAN),
            timeout=args.timeout)
    except grpc.RpcError as error:
        print(f"error: {error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    print(f"score {response.score:.4f} (model {response.model} "
          f"v{response.model_version}, batch of {response.timing.batch_size}, "
          f"{response.timing.total_us} us in server)")
    for token, best in top_features(response.attention):
        print(f"  {token:>16}  " + "  ".join(f"{n}={w:.2f}" for n, w in best))
    return 0


if __name__ == "__main__":
    sys.exit(main())
