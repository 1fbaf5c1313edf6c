#!/usr/bin/env bash
# deno task install: puts the `mcr` command on the PATH, with everything it
# needs installed beside it, so that it runs without npx, without a network
# and without a Deno permission prompt:
#
#   PREFIX/bin/mcr                 the launcher (packaging/mcr.sh): per command,
#                                  exactly the Deno permissions it needs
#   PREFIX/lib/mcr/deno            the deno binary this task runs with (2.9.6)
#   PREFIX/lib/mcr/app/            mcr's sources (cli.ts, mod.ts, src/, ffi/) and
#                                  their npm dependencies (app/node_modules)
#   PREFIX/lib/mcr/libmcr.so       found beside the deno binary (ffi/load.ts);
#                                  MCR_LIB still overrides it
#   PREFIX/lib/mcr/mcr-gen, mcr-sink   the traffic tools (mcr gen, mcr sink)
#   PREFIX/share/man/man8/mcr.8, man5/mcr.json.5, and bash/zsh/fish completions
#
# Usage:
#   npx -y deno@2.9.6 task install              PREFIX: /usr/local as root, else ~/.local
#   PREFIX=/opt/mcr npx -y deno@2.9.6 task install
#   npx -y deno@2.9.6 task install --uninstall  removes what the install put there
#   DESTDIR=stage PREFIX=/usr bash scripts/install.sh   (a staged install: scripts/deb.sh)
#
# `deno install --global` would write a shim that runs `deno` from the PATH
# (here only through npx), from this checkout, with one set of permissions for
# every command; this installs the same thing self-contained instead.
set -euo pipefail
cd "$(dirname "$0")/.."
DENO="${DENO:-$(command -v deno || true)}"
if [[ -z "$DENO" ]]; then
  echo "mcr install: deno not found: run this through 'npx -y deno@2.9.6 task install'" >&2
  exit 2
fi
if [[ $(id -u) -eq 0 ]]; then PREFIX="${PREFIX:-/usr/local}"; else PREFIX="${PREFIX:-$HOME/.local}"; fi
LIBDIR="${LIBDIR:-$PREFIX/lib/mcr}"
DEST="${DESTDIR:-}"
# Debian's zsh reads vendor completions from /usr/share/zsh/vendor-completions;
# site-functions elsewhere (in zsh's default fpath under /usr/local).
if [[ "$PREFIX" == /usr ]]; then ZSHDIR=share/zsh/vendor-completions; else ZSHDIR=share/zsh/site-functions; fi
FILES=(
  "bin/mcr"
  "share/man/man8/mcr.8" "share/man/man8/mcr.8.gz"
  "share/man/man5/mcr.json.5" "share/man/man5/mcr.json.5.gz"
  "share/bash-completion/completions/mcr"
  "$ZSHDIR/_mcr"
  "share/fish/vendor_completions.d/mcr.fish"
)

if [[ "${1-}" == "--uninstall" ]]; then
  for f in "${FILES[@]}"; do rm -f "$DEST$PREFIX/$f"; done
  rm -rf "$DEST$LIBDIR"
  echo "removed mcr from $DEST$PREFIX"
  exit 0
fi
if [[ $# -gt 0 ]]; then
  echo "mcr install: unknown argument '$1' (only --uninstall)" >&2
  exit 2
fi

# The deno binary itself (npm's `deno` may be a Node wrapper around it).
deno_bin=$("$DENO" eval --no-config 'console.log(Deno.execPath())')
bash scripts/build.sh >/dev/null

lib="$DEST$LIBDIR"
rm -rf "$lib"
mkdir -p "$lib/app" "$DEST$PREFIX/bin"
cp -r cli.ts mod.ts deno.json deno.lock src ffi "$lib/app/"
install -m 0755 "$deno_bin" "$lib/deno"
install -m 0755 build/libmcr.so build/mcr-gen build/mcr-sink "$lib/"

# The npm packages of every module the commands load (the relay's worker and
# the lazily imported modules are entry points of their own) into
# app/node_modules, which the launcher reads (--node-modules-dir=manual): no
# cache outside the installed tree, nothing downloaded at run time. Deno's
# own caches (transpiled code) stay per user, in DENO_DIR.
DENO_NO_UPDATE_CHECK=1 "$lib/deno" install --frozen --node-modules-dir=auto \
  --config "$lib/app/deno.json" --entrypoint "$lib/app/cli.ts" \
  "$lib/app/src/datapath/worker.ts" "$lib/app/src/client/ctl.ts" \
  "$lib/app/src/client/top.ts" "$lib/app/src/cli/man.ts" \
  "$lib/app/src/config/json_schema.ts" >/dev/null
chmod -R a+rX,go-w "$lib"

sed "s|@LIBDIR@|$LIBDIR|g" packaging/mcr.sh >"$DEST$PREFIX/bin/mcr"
chmod 0755 "$DEST$PREFIX/bin/mcr"

# Man pages and completions, generated from the command definitions.
gen() {
  DENO_NO_UPDATE_CHECK=1 "$lib/deno" run --no-prompt --node-modules-dir=manual --allow-read \
    --config "$lib/app/deno.json" "$lib/app/cli.ts" "$@"
}
mkdir -p "$DEST$PREFIX/share/man/man8" "$DEST$PREFIX/share/man/man5" \
  "$DEST$PREFIX/share/bash-completion/completions" "$DEST$PREFIX/$ZSHDIR" \
  "$DEST$PREFIX/share/fish/vendor_completions.d"
gen man mcr >"$DEST$PREFIX/share/man/man8/mcr.8"
gen man mcr.json >"$DEST$PREFIX/share/man/man5/mcr.json.5"
gen completion bash >"$DEST$PREFIX/share/bash-completion/completions/mcr"
gen completion zsh >"$DEST$PREFIX/$ZSHDIR/_mcr"
gen completion fish >"$DEST$PREFIX/share/fish/vendor_completions.d/mcr.fish"

echo "installed $DEST$PREFIX/bin/mcr ($("$DEST$PREFIX/bin/mcr" --version 2>/dev/null || echo "mcr, staged"))"
case ":$PATH:" in
*":$PREFIX/bin:"*) ;;
*) [[ -z "$DEST" ]] && echo "add $PREFIX/bin to PATH: export PATH=\"$PREFIX/bin:\$PATH\"" ;;
esac
exit 0
