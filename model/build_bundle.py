"""One command from nothing to models/fusion/1/: generate data, build the
vocab, train, export. Seeded, so a rerun on the same machine gives the same
bundle.

  /usr/bin/python3 -m model.build_bundle [--samples N] [--epochs E] [--out DIR]
"""
import argparse
import os

from model import export, train


def main() -> None:
    export.fix_hash_seed()
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_training_flags(parser)
    parser.add_argument("--out", default=export.DEFAULT_OUT)
    args = parser.parse_args()
    result = train.train(args.samples, args.epochs, args.seed, threads=args.threads)
    for path in export.export_bundle(result, args.out):
        print(f"wrote {os.path.relpath(path)} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
