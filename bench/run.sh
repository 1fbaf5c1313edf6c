#!/usr/bin/env bash
# Entry point of the mcr benchmarks: builds libmcr and the traffic tools,
# checks for root (network namespaces), then runs bench/main.ts.
# Usage: bash bench/run.sh [--quick|--full] [--no-hotloop] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${EUID} -ne 0 ]]; then
  echo "bench: needs root (it builds network namespaces); run it with sudo" >&2
  exit 3
fi
# The comparison relays come from Debian; install them when missing.
need=()
command -v socat >/dev/null || need+=(socat)
command -v smcrouted >/dev/null || need+=(smcroute)
if ((${#need[@]})); then
  echo "bench: installing ${need[*]} (Debian packages) ..." >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null ||
    { echo "bench: could not install ${need[*]}" >&2; exit 3; }
fi
for tool in socat smcrouted ip ss; do
  command -v "$tool" >/dev/null || { echo "bench: '$tool' is missing (apt-get install socat smcroute iproute2)" >&2; exit 3; }
done
bash scripts/build.sh >/dev/null
if command -v deno >/dev/null; then DENO=(deno); else DENO=(npx -y deno@2.9.6); fi
export MCR_BENCH_COMMAND="bash bench/run.sh $*"
exec "${DENO[@]}" run -A bench/main.ts "$@"
