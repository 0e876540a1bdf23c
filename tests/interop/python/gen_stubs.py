"""Generate Python protobuf and gRPC modules for every .proto file under a root.

Each file is compiled on its own, so unrelated files that happen to define the
same symbols (separate example sets) do not break the whole run.
"""
import argparse
import pathlib
import sys
from importlib import resources

from grpc_tools import protoc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--proto-root", required=True, type=pathlib.Path,
                        help="import root of the .proto files (searched recursively)")
    parser.add_argument("--out", required=True, type=pathlib.Path,
                        help="directory that receives the *_pb2.py / *_pb2_grpc.py modules")
    args = parser.parse_args()

    files = sorted(args.proto_root.rglob("*.proto"))
    if not files:
        sys.exit(f"gen_stubs: no .proto files under {args.proto_root}")
    well_known = resources.files("grpc_tools") / "_proto"
    args.out.mkdir(parents=True, exist_ok=True)
    for proto in files:
        rc = protoc.main([
            "grpc_tools.protoc",
            f"--proto_path={args.proto_root}",
            f"--proto_path={well_known}",
            f"--python_out={args.out}",
            f"--grpc_python_out={args.out}",
            str(proto),
        ])
        if rc != 0:
            sys.exit(f"gen_stubs: protoc failed on {proto}")
    print(f"gen_stubs: {len(files)} file(s) from {args.proto_root} -> {args.out}")


if __name__ == "__main__":
    main()
