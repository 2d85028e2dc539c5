#!/usr/bin/env bash
# Generates Python, gRPC and mypy stubs from protos/ into the directory given (default services/core/gen).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-services/core/gen}
venv_bin=${VENV_BIN:-$PWD/.venv/bin}
rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
mapfile -t protos < <(cd protos && find stratus -name '*.proto' | sort)
(cd protos && "$venv_bin/python" -m grpc_tools.protoc -I . \
  --python_out="$out" --grpc_python_out="$out" \
  --plugin=protoc-gen-mypy="$venv_bin/protoc-gen-mypy" --mypy_out="$out" \
  --plugin=protoc-gen-mypy_grpc="$venv_bin/protoc-gen-mypy_grpc" --mypy_grpc_out="$out" \
  "${protos[@]}")
find "$out/stratus" -type d -exec touch {}/__init__.py \;
