"""Regenerate (or check) the committed protobuf Python modules of wftest's protocol layer.

``wftest/protos/orchestrator_service.proto`` is compiled with the protoc bundled in ``grpcio-tools``
(run in-process through ``grpc_tools.protoc``), from the repository root with ``-I.`` plus the
``google/protobuf/*.proto`` files that grpcio-tools ships, into ``orchestrator_service_pb2.py`` and
``orchestrator_service_pb2.pyi`` next to the ``.proto``. The outputs are committed; never edit them by hand.

Usage::

    python scripts/gen_protos.py            # write the generated files
    python scripts/gen_protos.py --check    # exit 1 if the committed files differ from a fresh run

grpcio-tools is pinned in the ``dev`` extra, because a different protoc emits different code and
``--check`` (run by tests/test_protocol.py) would then report the files as stale.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_FILES = ("wftest/protos/orchestrator_service.proto",)
"""Sources, relative to the repository root (which is the ``-I`` import root)."""

GENERATED_FILES = (
    "wftest/protos/orchestrator_service_pb2.py",
    "wftest/protos/orchestrator_service_pb2.pyi",
)
"""Outputs, relative to the output directory (the repository root when writing)."""

REGENERATE_COMMAND = "python scripts/gen_protos.py"


class ProtocError(RuntimeError):
    """protoc rejected the sources (its diagnostics are on stderr)."""


@contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    """Run the body with ``path`` as the current directory (``-I.`` is relative to it)."""
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def bundled_include_dir() -> Path:
    """Return the directory holding grpcio-tools' copies of ``google/protobuf/*.proto``."""
    return Path(grpc_tools.__file__).resolve().parent / "_proto"


def grpcio_tools_version() -> str:
    """Return the installed grpcio-tools version (it decides the generated code)."""
    try:
        return importlib.metadata.version("grpcio-tools")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def generate(out_dir: Path) -> None:
    """Compile every file of ``PROTO_FILES`` into ``out_dir`` (``*_pb2.py`` and ``*_pb2.pyi``).

    Raises:
        ProtocError: protoc returned a non-zero status.
    """
    args = [
        "grpc_tools.protoc",
        "-I.",
        f"-I{bundled_include_dir()}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        *PROTO_FILES,
    ]
    with _working_directory(REPO_ROOT):
        status = protoc.main(args)
    if status != 0:
        raise ProtocError(f"grpc_tools.protoc failed with status {status} for {', '.join(PROTO_FILES)}")


def stale_files() -> list[str]:
    """Generate into a temporary directory and return the committed files that differ (or are missing)."""
    with tempfile.TemporaryDirectory(prefix="wftest-protos-") as tmp:
        fresh_root = Path(tmp)
        generate(fresh_root)
        stale: list[str] = []
        for relative in GENERATED_FILES:
            committed = REPO_ROOT / relative
            fresh = fresh_root / relative
            if not committed.is_file() or committed.read_bytes() != fresh.read_bytes():
                stale.append(relative)
        return stale


def main(argv: Sequence[str] | None = None) -> int:
    """Write the generated modules, or with ``--check`` report whether the committed ones are stale."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 if the committed generated files differ from a fresh run",
    )
    options = parser.parse_args(argv)
    try:
        if options.check:
            stale = stale_files()
            if stale:
                print(
                    f"stale generated protobuf code: {', '.join(stale)}\n"
                    f"regenerate with `{REGENERATE_COMMAND}` (grpcio-tools {grpcio_tools_version()} "
                    "installed; the dev extra pins the version the committed files come from)",
                    file=sys.stderr,
                )
                return 1
            print(f"generated protobuf code is up to date ({', '.join(GENERATED_FILES)})")
            return 0
        generate(REPO_ROOT)
    except ProtocError as error:
        print(error, file=sys.stderr)
        return 2
    print(f"wrote {', '.join(GENERATED_FILES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
