#!/usr/bin/env bash
# Builds the Debian package build/mcr_VERSION_amd64.deb with dpkg-deb:
#
#   /usr/bin/mcr                        the launcher (packaging/mcr.sh)
#   /usr/lib/mcr/                       deno (2.9.6, the binary this runs with:
#                                       deno is no Debian package), app/ (sources
#                                       and npm packages), libmcr.so, mcr-gen, mcr-sink
#   /lib/systemd/system/mcr.service, mcr@.service   (ExecStart=/usr/bin/mcr ...)
#   /usr/lib/sysusers.d/mcr.conf, /usr/lib/tmpfiles.d/mcr.conf
#   /usr/share/man/man8/mcr.8.gz, man5/mcr.json.5.gz, bash/zsh/fish completions
#   maintainer scripts (packaging/deb/): the user through systemd-sysusers when
#   present (useradd otherwise), /etc/mcr; nothing enabled or started
#
#   npx -y deno@2.9.6 task deb                   -> build/mcr_0.1.0_amd64.deb
#   MCR_DEB_OUT=dist npx -y deno@2.9.6 task deb
#   MCR_DEB_COMPRESSION=xz npx -y deno@2.9.6 task deb   (smaller, slower; default gzip)
#   apt-get install ./build/mcr_0.1.0_amd64.deb
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${MCR_DEB_OUT:-build}"
DENO="${DENO:-$(command -v deno || true)}"
if [[ -z "$DENO" ]]; then
  echo "mcr deb: deno not found: run this through 'npx -y deno@2.9.6 task deb'" >&2
  exit 2
fi
if ! command -v dpkg-deb >/dev/null; then
  echo "mcr deb: dpkg-deb not found (a Debian system builds the package)" >&2
  exit 1
fi
version=$("$DENO" eval --no-config 'console.log(JSON.parse(Deno.readTextFileSync("deno.json")).version)')
deno_bin=$("$DENO" eval --no-config 'console.log(Deno.execPath())')
stage=$(mktemp -d "${TMPDIR:-/tmp}/mcr-deb-XXXXXX")
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"

DENO="$DENO" DESTDIR="$stage" PREFIX=/usr bash scripts/install.sh >/dev/null

mkdir -p "$stage/lib/systemd/system"
for u in packaging/systemd/*.service; do
  sed 's|/usr/local/bin/mcr|/usr/bin/mcr|g' "$u" >"$stage/lib/systemd/system/${u##*/}"
  chmod 0644 "$stage/lib/systemd/system/${u##*/}"
done
install -D -m 0644 packaging/sysusers.d/mcr.conf "$stage/usr/lib/sysusers.d/mcr.conf"
install -D -m 0644 packaging/tmpfiles.d/mcr.conf "$stage/usr/lib/tmpfiles.d/mcr.conf"
gzip -9n "$stage/usr/share/man/man8/mcr.8" "$stage/usr/share/man/man5/mcr.json.5"

doc="$stage/usr/share/doc/mcr"
install -D -m 0644 packaging/deb/README.Debian "$doc/README.Debian"
# failover and monitoring examples (docs/guide.md): keepalived, Prometheus alerts, Grafana
for f in packaging/keepalived/* packaging/prometheus/* packaging/grafana/*; do
  rel=${f#packaging/}
  install -D -m 0644 "$f" "$doc/examples/$rel"
done
chmod 0755 "$doc/examples/keepalived/mcr-keepalived"
gzip -9nc CHANGELOG.md >"$doc/changelog.gz"
{
  echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
  echo "Upstream-Name: mcr"
  echo
  echo "Files: usr/lib/mcr/deno"
  echo "Comment: the Deno runtime $("$DENO" --version | head -1), from npm package deno"
  echo "License: MIT"
  sed 's/^$/./; s/^/ /' "$(dirname "$deno_bin")/LICENSE" 2>/dev/null || echo " (see https://deno.land)"
  echo
  echo "Files: usr/lib/mcr/app/node_modules/*"
  echo "Comment: npm packages; each directory holds its package's own license"
} >"$doc/copyright"
chmod 0644 "$doc/copyright"

mkdir -p "$stage/DEBIAN"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$stage/DEBIAN/"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: mcr
Version: $version
Architecture: amd64
Maintainer: mcr developers <mcr@localhost>
Installed-Size: $size
Depends: libc6 (>= 2.27), libgcc-s1, passwd
Recommends: systemd
Suggests: bash-completion
Section: net
Priority: optional
Description: userspace IPv4 multicast relay
 mcr moves IPv4 multicast across network segments where the kernel will not
 route it: it captures frames on an input interface (AF_PACKET rings),
 matches them against rules (interface, group, UDP port, source, VLAN) and
 re-sends each datagram to one or more outputs, counting every drop under a
 reason. Live changes and counters through a control socket (mcr ctl,
 mcr top), Prometheus metrics, systemd units (Type=notify).
 .
 It runs on the Deno runtime shipped in /usr/lib/mcr.
CONTROL
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | xargs -0 md5sum) \
  >"$stage/DEBIAN/md5sums"
mkdir -p "$OUT"
deb="$OUT/mcr_${version}_amd64.deb"
# gzip: a quarter of xz's time for 20 % more bytes (most of it is the deno binary)
dpkg-deb --root-owner-group -Z"${MCR_DEB_COMPRESSION:-gzip}" --build "$stage" "$deb" >/dev/null
echo "built $deb ($(du -h "$deb" | cut -f1)); install: apt-get install ./$deb"
