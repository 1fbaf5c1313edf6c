#!/bin/sh
# mcr — the installed command (written by scripts/install.sh; do not edit).
#
# Runs mcr's sources in @LIBDIR@/app with the deno installed beside them and
# the npm packages installed with them (app/node_modules: nothing is downloaded,
# a missing module is an error, not a fetch), and gives each command exactly the
# Deno permissions it needs, so that nothing ever stops at a permission prompt:
#
#   run (default)   --allow-ffi (libmcr) --allow-read --allow-env --allow-write
#                   --allow-net: loading a native library already grants
#                   everything, the rest lets the control socket, --metrics and
#                   --ready-file work wherever they are configured
#   ctl, top        read, write and net on their control socket only
#   gen, sink       --allow-read, and running the C tool beside this launcher
#   anything else   --allow-read (check, schema, man, completion, help)
set -eu
LIBDIR='@LIBDIR@'
DENO="${MCR_DENO:-$LIBDIR/deno}"
APP="$LIBDIR/app"
DENO_NO_UPDATE_CHECK=1
export DENO_NO_UPDATE_CHECK

case "${1-}" in
ctl | top)
  sock=/run/mcr/control.sock
  prev=
  for arg in "$@"; do
    case "$prev" in --control-socket) sock="$arg" ;; esac
    case "$arg" in --control-socket=*) sock="${arg#--control-socket=}" ;; esac
    prev="$arg"
  done
  case "$sock" in /*) ;; *) sock="$PWD/$sock" ;; esac
  set -- --allow-read="$sock" --allow-write="$sock" --allow-net="unix:$sock" "$APP/cli.ts" "$@"
  ;;
gen | sink)
  set -- --allow-read --allow-run="$LIBDIR/mcr-$1" "$APP/cli.ts" "$@"
  ;;
check | schema | man | completion | help | -h | --help | -V | --version)
  set -- --allow-read "$APP/cli.ts" "$@"
  ;;
*)
  set -- --v8-flags=--max-semi-space-size=4 --allow-ffi --allow-read --allow-env \
    --allow-write --allow-net "$APP/cli.ts" "$@"
  ;;
esac
exec "$DENO" run --no-prompt --cached-only --frozen --node-modules-dir=manual \
  --config "$APP/deno.json" "$@"
