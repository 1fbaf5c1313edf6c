#!/usr/bin/env bash
# Runs the C unit tests and the fuzz-corpus replays under valgrind memcheck
# (--leak-check=full --error-exitcode=1) from a plain (non-sanitizer) build.
# Usage: csrc/tests/valgrind.sh [BUILD_DIR]   (default build-valgrind)
set -euo pipefail
cd "$(dirname "$0")/../.."
B="${1:-build-valgrind}"
command -v valgrind >/dev/null || { echo "valgrind not installed (apt-get install valgrind)" >&2; exit 77; }
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Debug -DMCR_SANITIZE=OFF >/dev/null
cmake --build "$B" -j"$(nproc)" >/dev/null
ctest --test-dir "$B" -R '^valgrind_' --output-on-failure
