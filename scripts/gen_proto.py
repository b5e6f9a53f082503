"""Generates expound.v1's protobuf and gRPC code from proto/ into a folder (default expound/v1/).

Usage: python scripts/gen_proto.py [OUT_DIR]. `make proto` runs it; a test runs it into a
temporary folder and fails when the committed code differs.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from google.rpc import status_pb2
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
GENERATED = ("explain_pb2.py", "explain_pb2.pyi", "explain_pb2_grpc.py")


def generate(out_dir: Path) -> None:
    """Writes the generated modules into out_dir (which must exist)."""
    include = str(resources.files("grpc_tools") / "_proto")
    # google/rpc/status.proto ships with googleapis-common-protos (beside its status_pb2).
    googleapis = str(Path(status_pb2.__file__).resolve().parents[2])
    sources = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        code = protoc.main(
            [
                "protoc",
                f"-I{PROTO_ROOT}",
                f"-I{include}",
                f"-I{googleapis}",
                f"--python_out={tmp}",
                f"--pyi_out={tmp}",
                f"--grpc_python_out={tmp}",
                *sources,
            ]
        )
        if code != 0:
            raise SystemExit(f"protoc failed with exit code {code}")
        for name in GENERATED:
            shutil.copyfile(Path(tmp, "expound", "v1", name), out_dir / name)


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "expound" / "v1")
