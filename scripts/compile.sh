#!/usr/bin/env bash
# deno task compile: build build/mcr, a single executable (`deno compile`) that
# carries libmcr.so and the data-path worker module and finds them at run time
# (libmcr.so is also copied beside it, as a fallback and for tools).
#
#   DENORT_BIN=/path/to/denort deno task compile      -> build/mcr, build/libmcr.so
#   MCR_COMPILE_OUT=dist DENORT_BIN=... deno task compile
#
# deno compile starts from a "denort" base binary, which it normally downloads
# from dl.deno.land; machines without that access must point DENORT_BIN at a
# copy (same version as the deno that compiles).
set -euo pipefail
cd "$(dirname "$0")/.."
DENO="${DENO:-$(command -v deno || true)}"
OUT="${MCR_COMPILE_OUT:-build}"
if [[ -z "$DENO" ]]; then
  echo "mcr compile: deno not found: run this through 'npx -y deno@2.9.6 task compile'" >&2
  exit 2
fi
ver=$("$DENO" --version | sed -n 's/^deno \([0-9.]*\).*/\1/p')
url="https://dl.deno.land/release/v${ver}/denort-x86_64-unknown-linux-gnu.zip"
if [[ -z "${DENORT_BIN:-}" ]]; then
  cat >&2 <<MSG
mcr compile: DENORT_BIN is not set, so nothing was compiled.
  deno compile builds on a "denort" runtime binary that it downloads from
  dl.deno.land, which this machine cannot reach. Fetch the one matching this
  deno ($ver) where you can:
    $url
  unzip it, and run:
    DENORT_BIN=/path/to/denort deno task compile
  Without a compiled binary, run mcr as: deno run --allow-ffi --allow-read --allow-env cli.ts ...
MSG
  exit 1
fi
if [[ ! -f "$DENORT_BIN" || ! -x "$DENORT_BIN" ]]; then
  echo "mcr compile: DENORT_BIN=$DENORT_BIN is not an executable file (get it from $url)" >&2
  exit 1
fi

bash scripts/build.sh >/dev/null
mkdir -p "$OUT"
# Baked-in permissions: the relay (ffi, read, env, write for the control socket
# and --ready-file, net for the control socket and --metrics) and ctl/top.
# --bundle: deno 2.9.x overflows its stack embedding the npm tree of this
# graph (prom-client; denoland/deno#36746); an esbuild bundle avoids that and
# rewrites `new Worker(new URL("./worker.ts", import.meta.url))` to a bundled
# worker. ffi/load.ts also looks for the embedded build/libmcr.so from there.
# --v8-flags: see README "Memory" (a smaller young generation: ~120 MB less at 65,536 rules).
DENORT_BIN="$DENORT_BIN" "$DENO" compile --bundle --v8-flags=--max-semi-space-size=4 \
  --allow-ffi --allow-read --allow-write --allow-env --allow-net \
  --include build/libmcr.so --include src/datapath/worker.ts \
  --output "$OUT/mcr" cli.ts
if [[ "$(realpath "$OUT")" != "$(realpath build)" ]]; then
  cp build/libmcr.so "$OUT/libmcr.so"
fi
# Smoke test: a base binary that is not a denort of this version yields an
# executable that does not start.
if ! "$OUT/mcr" schema 2>"$OUT/.mcr-smoke.err" | grep -q '"title": "mcr rules.json"'; then
  echo "mcr compile: $OUT/mcr does not run (is DENORT_BIN a denort $ver?):" >&2
  head -5 "$OUT/.mcr-smoke.err" >&2
  rm -f "$OUT/.mcr-smoke.err" "$OUT/mcr"
  exit 1
fi
rm -f "$OUT/.mcr-smoke.err"
echo "built $OUT/mcr ($(du -h "$OUT/mcr" | cut -f1)) with libmcr.so embedded, and $OUT/libmcr.so beside it"
echo "install: install -m 0755 $OUT/mcr /usr/local/bin/mcr   (see packaging/README.md)"
