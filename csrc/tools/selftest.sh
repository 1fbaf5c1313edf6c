#!/usr/bin/env bash
# Self-check of mcr-gen / mcr-sink in two private network namespaces joined by a veth pair,
# over IPv4 and IPv6.
#   csrc/tools/selftest.sh [DIR-WITH-BINARIES]     (default: build/ at the repository root)
# Needs root (exit 77 = skipped otherwise), iproute2 and python3 (for JSON checks and
# for injecting malformed datagrams). Everything it creates is removed on exit.
set -u

if [ "$(id -u)" -ne 0 ]; then
  echo "selftest: needs root (network namespaces) - skipped"
  exit 77
fi
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${1:-${MCR_TOOLS_BIN:-$HERE/../../build}}
GEN=$BIN/mcr-gen
SINK=$BIN/mcr-sink
for b in "$GEN" "$SINK"; do
  [ -x "$b" ] || { echo "selftest: $b not built"; exit 1; }
done
command -v python3 >/dev/null || { echo "selftest: python3 needed - skipped"; exit 77; }

A=${MCR_TEST_PREFIX:-mcrt}-tools-$$-a
B=${MCR_TEST_PREFIX:-mcrt}-tools-$$-b
TMP=$(mktemp -d /tmp/mcrtools-selftest.XXXXXX)
SINK_PID=
cleanup() {
  [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null
  ip netns del "$A" 2>/dev/null
  ip netns del "$B" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$A" && ip netns add "$B" || exit 1
ip link add va netns "$A" type veth peer name vb netns "$B" || exit 1
ip -n "$A" addr add 10.99.0.1/24 dev va
ip -n "$B" addr add 10.99.0.2/24 dev vb
# IPv6: nodad, or the addresses stay tentative (unusable) for a second or more; a second
# source address in A (--src-ip) and link-local ones for the %IFNAME scope cases
ip -n "$A" addr add fd99::1/64 dev va nodad
ip -n "$A" addr add fd99::11/64 dev va nodad
ip -n "$A" addr add fe80::99:1/64 dev va nodad
ip -n "$B" addr add fd99::2/64 dev vb nodad
ip -n "$B" addr add fe80::99:2/64 dev vb nodad
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; done
ip -n "$A" link set va up
ip -n "$B" link set vb up
# route-based multicast output in A (tests that work without --iface on the sender)
ip -n "$A" route add 224.0.0.0/4 dev va
# IPv6 configures a link only once the kernel's link watch has seen its carrier (up to a second
# after "up"): until then there is no ff00::/8 route and multicast to it counts as InNoRoutes.
v6_ready() {
  ip -n "$A" -6 route show table local | grep -q "^multicast ff00::/8 dev va" &&
    ip -n "$B" -6 route show table local | grep -q "^multicast ff00::/8 dev vb"
}
for _ in $(seq 100); do v6_ready && break; sleep 0.05; done
v6_ready || { echo "selftest: IPv6 never came up on the veth pair"; exit 1; }

FAILS=0
PASSES=0
ok() { PASSES=$((PASSES + 1)); echo "  ok   $*"; }
bad() { FAILS=$((FAILS + 1)); echo "  FAIL $*"; }

# start_sink ARGS... : sink in B, JSON to $TMP/sink.json, waits for the ready file
start_sink() {
  rm -f "$TMP/ready" "$TMP/sink.json"
  ip netns exec "$B" "$SINK" --iface vb --ready-file "$TMP/ready" --json "$@" >"$TMP/sink.json" 2>"$TMP/sink.err" &
  SINK_PID=$!
  for _ in $(seq 100); do
    [ -f "$TMP/ready" ] && return 0
    kill -0 "$SINK_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "  sink did not become ready:"; cat "$TMP/sink.err"
  return 1
}
wait_sink() {
  wait "$SINK_PID"
  local rc=$?
  SINK_PID=
  [ "$rc" -eq 0 ] || bad "sink exit code $rc"
}
gen() { ip netns exec "$A" "$GEN" --json "$@" >>"$TMP/gen.json"; }

# check NAME PYTHON-EXPR : expression over s (sink JSON), g (list of gen JSON objects),
# st(group, port, stream) helper
check() {
  local name=$1 expr=$2
  if python3 - "$TMP/sink.json" "$TMP/gen.json" "$expr" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
g = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
def st(group, port, stream):
    for x in s["groups"]:
        if x["group"] == group and x["port"] == port:
            for y in x["streams"]:
                if y["stream"] == stream:
                    return y
    raise KeyError((group, port, stream))
t = s["total"]
ok = eval(sys.argv[3])
if not ok:
    print("    expression:", sys.argv[3])
    print("    sink:", json.dumps(s["total"]), json.dumps(s["groups"])[:600])
sys.exit(0 if ok else 1)
PY
  then ok "$name"; else bad "$name"; fi
}
reset() { : >"$TMP/gen.json"; }

echo "== 1. one stream, 20 kpps x 2 s: every datagram read or counted as a socket drop"
reset
start_sink --group 239.10.1.1:6001 --stop-file "$TMP/stop" --duration 60
gen --dst 239.10.1.1:6001 --iface va --rate 20000 --count 40000
echo 40000 >"$TMP/stop"
wait_sink
# No rate figure is asserted (that would need a quiet machine); pacing must never run ahead of
# its schedule: datagram k leaves no earlier than k/rate after the first.
check "gen sent 40000, never ahead of the 20 kpps schedule" 'g[0]["sent"] == 40000 and g[0]["elapsed_s"] >= 39999 / 20000'
check "sink: read + socket drops = 40000, nothing duplicated/corrupt/reordered" \
  't["received"] + s["socket_drops"] == 40000 and t["unique"] == t["received"] and t["duplicates"] == 0 and t["corrupt"] == 0 and t["foreign"] == 0 and t["reordered"] == 0'
check "lost = 40000 - unique (highest + 1 when the tail arrived)" 't["lost"] == st("239.10.1.1",6001,0)["highest_seq"] + 1 - t["unique"] and t["unique"] > 0'
check "latency histogram filled" 's["latency_us"]["count"] == t["unique"] and 0 < s["latency_us"]["p50"] <= s["latency_us"]["p99"] <= s["latency_us"]["max"]'
check "netns UDP counters: every read datagram in, drops = RcvbufErrors, no checksum errors" \
  's["udp"]["in_datagrams"] >= t["received"] and s["udp"]["rcvbuf_errors"] == s["socket_drops"] and s["udp"]["in_csum_errors"] == 0'
check "stopped by the stop file" 's["stop_reason"] == "stop-file"'

echo "== 1b. --expect-total (1000 datagrams fit the 32 MiB receive buffer: none can be dropped)"
reset
start_sink --group 239.10.1.1:6001 --expect-total 1000 --idle-ms 3000 --first-timeout-ms 5000
gen --dst 239.10.1.1:6001 --iface va --rate 10000 --count 1000
wait_sink
check "1000 unique, in order, stopped by expect-total" \
  't["unique"] == 1000 and t["received"] == 1000 and t["lost"] == 0 and t["reordered"] == 0 and s["socket_drops"] == 0 and s["stop_reason"] == "expect-total"'
check "first/last seq 0/999" 'st("239.10.1.1",6001,0)["first_seq"] == 0 and st("239.10.1.1",6001,0)["last_seq"] == 999'

echo "== 1c. socket drops are counted: a stopped sink with a small buffer overflows"
reset
start_sink --group 239.10.1.1:6001 --rcvbuf 65536 --stop-file "$TMP/stop2" --duration 60
kill -STOP "$SINK_PID"
gen --dst 239.10.1.1:6001 --iface va --rate 50000 --count 5000
kill -CONT "$SINK_PID"
echo 5000 >"$TMP/stop2"
wait_sink
check "read + socket_drops = 5000 exactly, drops > 0" \
  't["received"] + s["socket_drops"] == 5000 and s["socket_drops"] > 0 and s["sockets"][0]["drops"] == s["socket_drops"]'
check "the namespace's RcvbufErrors agree" 's["udp"]["rcvbuf_errors"] == s["socket_drops"]'
check "stopped by the stop file" 's["stop_reason"] == "stop-file"'

echo "== 1d. arrival times: first/last unique datagram and the longest gap between two"
reset
start_sink --group 239.10.1.1:6001 --expect-total 1000 --idle-ms 5000 --first-timeout-ms 5000
gen --dst 239.10.1.1:6001 --iface va --rate 10000 --count 500
sleep 0.3
gen --dst 239.10.1.1:6001 --iface va --rate 10000 --count 500 --seq-start 500
wait_sink
# The second half left at least 0.3 s after the first half's last datagram: whatever the load,
# the longest gap is at least that long and lies between the first and the last arrival.
check "max gap >= the 0.3 s pause, inside [first_rx, last_rx]" \
  '(x := st("239.10.1.1",6001,0)) and t["unique"] == 1000 and x["max_gap_us"] >= 300000 and x["first_rx_ns"] < x["max_gap_end_ns"] <= x["last_rx_ns"] and x["max_gap_us"] * 1000 <= x["last_rx_ns"] - x["first_rx_ns"]'

echo "== 2. several groups on one port and another port, round robin streams"
reset
start_sink --group 239.10.1.1:6001 --group 239.10.1.2:6001 --group 239.10.1.3:6002 --expect 3000 --idle-ms 1000 --first-timeout-ms 5000
gen --dst 239.10.1.1:6001 --dst 239.10.1.2:6001 --dst 239.10.1.3:6002 --dst 239.10.1.4:6001 --stream-base 10 --rate 12000 --count 3000
wait_sink
check "each joined group got its own stream complete" \
  'all(st(a,p,i)["unique"] == 3000 and st(a,p,i)["lost"] == 0 for a,p,i in [("239.10.1.1",6001,10),("239.10.1.2",6001,11),("239.10.1.3",6002,12)])'
check "unjoined group 239.10.1.4 not delivered" 't["unique"] == 9000 and len(s["groups"]) == 3'
check "gen per-stream counts" '[x["sent"] for x in g[0]["streams"]] == [3000]*4'

echo "== 3. duplicates (same stream sent twice)"
reset
start_sink --group 239.10.1.1:6001 --idle-ms 1000 --first-timeout-ms 5000
gen --dst 239.10.1.1:6001 --rate 10000 --count 2000
gen --dst 239.10.1.1:6001 --rate 10000 --count 2000
wait_sink
check "2000 unique, 2000 duplicates, 0 lost" 't["received"] == 4000 and t["unique"] == 2000 and t["duplicates"] == 2000 and t["lost"] == 0'

echo "== 4. loss and reordering (seq 1000..1499 first, then 0..499)"
reset
start_sink --group 239.10.1.1:6001 --idle-ms 1000 --first-timeout-ms 5000
gen --dst 239.10.1.1:6001 --rate 10000 --count 500 --seq-start 1000 --stream-base 5
gen --dst 239.10.1.1:6001 --rate 10000 --count 500 --stream-base 5
wait_sink
check "lost = highest+1-unique = 500, reordered 500" \
  'st("239.10.1.1",6001,5)["lost"] == 500 and st("239.10.1.1",6001,5)["reordered"] == 500 and t["unique"] == 1000 and t["duplicates"] == 0'
check "first_seq 1000, last_seq 499, highest 1499" \
  'st("239.10.1.1",6001,5)["first_seq"] == 1000 and st("239.10.1.1",6001,5)["last_seq"] == 499 and st("239.10.1.1",6001,5)["highest_seq"] == 1499'

echo "== 5. --expect: lost = expected - unique"
reset
start_sink --group 239.10.1.1:6001 --expect 1200 --idle-ms 1000 --first-timeout-ms 5000
gen --dst 239.10.1.1:6001 --rate 10000 --count 1000 --size 32
wait_sink
check "1000 of 1200 -> lost 200 (32-byte datagrams)" 't["unique"] == 1000 and t["lost"] == 200 and t["corrupt"] == 0'

echo "== 6. corrupt and foreign datagrams"
reset
start_sink --group 239.10.1.1:6001 --idle-ms 1000 --first-timeout-ms 5000
ip netns exec "$A" python3 - <<'PY'
import socket, struct
def fnv(b):
    h = 2166136261
    for x in b:
        h = ((h ^ x) * 16777619) & 0xffffffff
    return h
def dgram(stream, seq, length, sent=None):
    sent = length if sent is None else sent
    h = struct.pack("<IIQQI", 0x4D435254, stream, seq, 0, length)
    h += struct.pack("<I", fnv(h))
    body = bytes(((seq * 131 + stream * 7 + i) & 0xff) for i in range(32, length))
    return bytearray((h + body)[:sent])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("10.99.0.1"))
dst = ("239.10.1.1", 6001)
s.sendto(b"hello, not mcrtest", dst)            # foreign
d = dgram(7, 0, 256); d[28] ^= 1; s.sendto(d, dst)   # bad header check
d = dgram(7, 1, 256); d[200] ^= 0x40; s.sendto(d, dst)  # pattern corrupted
s.sendto(dgram(7, 2, 256, sent=200), dst)        # length mismatch (truncated)
d = dgram(7, 3, 256); d[255] ^= 1; s.sendto(d, dst)   # last byte corrupted
s.sendto(dgram(7, 4, 256), dst)                  # valid
PY
wait_sink
check "foreign 1, corrupt 4 (1 bad header + 3 in stream), 1 valid" \
  't["foreign"] == 1 and t["corrupt"] == 4 and st("239.10.1.1",6001,7)["corrupt"] == 3 and st("239.10.1.1",6001,7)["unique"] == 1 and t["received"] == 5'

echo "== 7. unicast destination, wildcard listener, SIGTERM stop"
reset
start_sink --group 0.0.0.0:6003 --interval-ms 200
gen --dst 10.99.0.2:6003 --rate 20000 --count 10000
sleep 0.3
kill -TERM "$SINK_PID"
wait_sink
check "unicast 10000 unique, stopped by signal" 't["unique"] == 10000 and t["lost"] == 0 and s["stop_reason"] == "signal"'
if grep -q '"unique":' "$TMP/sink.err"; then ok "progress lines on stderr"; else bad "progress lines on stderr"; fi

echo "== 8. stop conditions without traffic, usage errors"
reset
start_sink --group 239.10.1.1:6001 --first-timeout-ms 200
wait_sink
check "first-timeout with nothing received" 's["stop_reason"] == "first-timeout" and t["received"] == 0 and s["latency_us"]["p50"] is None'
start_sink --group 239.10.1.1:6001 --duration 0.3
wait_sink
check "duration stop (never early)" 's["stop_reason"] == "duration" and s["elapsed_s"] >= 0.3'
"$GEN" -h >/dev/null 2>&1
rc=$?
[ "$rc" -eq 0 ] && ok "mcr-gen -h -> exit 0 (help)" || bad "mcr-gen -h -> exit $rc (want 0)"
for args in "" "--dst 1.2.3" "--dst 239.1.1.1:5001 --size 8" "--dst 239.1.1.1:5001 --bogus" "--dst 239.1.1.1:5001 --rate x"; do
  # shellcheck disable=SC2086
  "$GEN" $args >/dev/null 2>&1
  rc=$?
  [ "$rc" -eq 2 ] && ok "mcr-gen $args -> exit 2" || bad "mcr-gen $args -> exit $rc (want 2)"
done
for args in "" "--group 239.1.1.1" "--group 239.1.1.1:1 --group 239.1.1.1:1" "--group 239.1.1.1:1 --expect -3" "--group 239.1.1.1:1 --rcvbuf 10"; do
  # shellcheck disable=SC2086
  "$SINK" $args >/dev/null 2>&1
  rc=$?
  [ "$rc" -eq 2 ] && ok "mcr-sink $args -> exit 2" || bad "mcr-sink $args -> exit $rc (want 2)"
done

echo "== 9. media payloads (--payload rtp+ts, --inject-every): what a stream analyser reads"
rm -f "$TMP/media.ready" "$TMP/media.json"
ip netns exec "$B" python3 - "$TMP/media.ready" "$TMP/media.json" <<'PY' &
import json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 6100))
open(sys.argv[1], "w").close()
s.settimeout(5)
got = []
try:
    while len(got) < 200:
        got.append(s.recv(2048))
        s.settimeout(2)
except socket.timeout:
    pass
seq = [(d[2] << 8) | d[3] for d in got]
ccs = [[d[12 + 188 * k + 3] & 15 for k in range(7)] for d in got]
cc_flat = [c for x in ccs for c in x]
json.dump({
    "n": len(got),
    "lens": sorted(set(len(d) for d in got)),
    "rtp_v2": all(d[0] >> 6 == 2 for d in got),
    "sync": all(d[12 + 188 * k] == 0x47 for d in got for k in range(7)),
    "pid": sorted(set(((d[13] & 0x1f) << 8) | d[14] for d in got)),
    "seq_gaps": sum(1 for a, b in zip(seq, seq[1:]) if (b - a) & 0xffff == 2),
    "seq_other": sum(1 for a, b in zip(seq, seq[1:]) if (b - a) & 0xffff not in (1, 2)),
    "cc_errors": sum(1 for a, b in zip(cc_flat, cc_flat[1:]) if (b - a) & 15 != 1),
}, open(sys.argv[2], "w"))
PY
MEDIA_PID=$!
for _ in $(seq 100); do [ -f "$TMP/media.ready" ] && break; sleep 0.05; done
ip netns exec "$A" "$GEN" --dst 10.99.0.2:6100 --payload rtp+ts --inject-every 10 --count 200 --rate 2000 >/dev/null
wait "$MEDIA_PID"
if python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
ok = m["n"] == 200 and m["lens"] == [1328] and m["rtp_v2"] and m["sync"] and m["pid"] == [256] \
    and m["seq_gaps"] == 20 and m["seq_other"] == 0 and m["cc_errors"] == 20
sys.exit(0 if ok else 1)' "$TMP/media.json"; then
  ok "rtp+ts: 200 datagrams of 1328 bytes, 20 sequence gaps and 20 continuity errors (every 10th)"
else
  bad "rtp+ts payloads: $(cat "$TMP/media.json")"
fi
for args in "--dst 239.1.1.1:5001 --payload mpeg" "--dst 239.1.1.1:5001 --inject-every 5" "--dst 239.1.1.1:5001 --payload ts --inject-every 0"; do
  # shellcheck disable=SC2086
  "$GEN" $args >/dev/null 2>&1
  rc=$?
  [ "$rc" -eq 2 ] && ok "mcr-gen $args -> exit 2" || bad "mcr-gen $args -> exit $rc (want 2)"
done

echo "== 10. IPv6: one stream to ff3e::1 written as ff3e:0::1, every datagram read or dropped"
reset
start_sink --group '[ff3e:0::1]:6001' --stop-file "$TMP/stop6" --duration 60
gen --dst '[ff3e:0:0::1]:6001' --iface va --rate 20000 --count 20000
echo 20000 >"$TMP/stop6"
wait_sink
check "gen and sink print the group in its canonical form" \
  'g[0]["streams"][0]["dst"] == "ff3e::1" and [x["group"] for x in s["groups"]] == ["ff3e::1"] and s["sockets"][0]["family"] == "ipv6"'
check "read + socket drops = 20000, nothing duplicated/corrupt/reordered/foreign" \
  't["received"] + s["socket_drops"] == 20000 and t["unique"] == t["received"] > 0 and t["duplicates"] == 0 and t["corrupt"] == 0 and t["foreign"] == 0 and t["reordered"] == 0'
check "udp counters cover IPv6: every read datagram in, drops = RcvbufErrors" \
  's["udp"]["in_datagrams"] >= t["received"] and s["udp"]["rcvbuf_errors"] == s["socket_drops"] and s["udp"]["in_csum_errors"] == 0'

echo "== 11. IPv4 and IPv6 groups in one sink; an IPv6 group not joined is not delivered"
reset
start_sink --group 239.10.1.1:6001 --group '[ff3e::1]:6001' --group '[ff3e::2]:6002' --expect 2000 \
  --expect-total 6000 --idle-ms 5000 --first-timeout-ms 5000
gen --dst 239.10.1.1:6001 --iface va --rate 10000 --count 2000
gen --dst '[ff3e::1]:6001' --dst '[ff3e::2]:6002' --dst '[ff3e::3]:6001' --iface va --stream-base 10 --rate 15000 --count 2000
wait_sink
check "each joined group complete, in its own family's socket" \
  'all(st(a,p,i)["unique"] == 2000 and st(a,p,i)["lost"] == 0 for a,p,i in [("239.10.1.1",6001,0),("ff3e::1",6001,10),("ff3e::2",6002,11)]) and sorted((x["family"], x["port"]) for x in s["sockets"]) == [("ipv4",6001),("ipv6",6001),("ipv6",6002)]'
check "ff3e::3 (not joined) not delivered" 't["unique"] == 6000 and len(s["groups"]) == 3 and g[1]["streams"][2]["sent"] == 2000'

echo "== 12. IPv6 unicast to [::]:PORT: a global address, and a link-local one with %IFNAME"
reset
start_sink --group '[::]:6003' --expect-total 2000 --idle-ms 5000 --first-timeout-ms 5000
gen --dst '[fd99::2]:6003' --rate 10000 --count 1000
gen --dst '[fe80::99:2%va]:6003' --stream-base 1 --rate 10000 --count 1000
wait_sink
check "both streams complete on the wildcard listener" \
  'st("::",6003,0)["unique"] == 1000 and st("::",6003,1)["unique"] == 1000 and t["lost"] == 0 and len(s["groups"]) == 1'

echo "== 13. a link-local-scope group joined by its %IFNAME (the --iface lo given last is not used)"
reset
start_sink --iface lo --group '[ff12::5%vb]:6005' --expect-total 500 --idle-ms 5000 --first-timeout-ms 5000
gen --dst '[ff12::5%va]:6005' --rate 10000 --count 500
wait_sink
check "500 unique to ff12::5" 'st("ff12::5",6005,0)["unique"] == 500 and t["lost"] == 0'

echo "== 14. IPv6 header fields: --src-ip, --ttl (hop limit), --tos (traffic class)"
rm -f "$TMP/hdr.ready" "$TMP/hdr.json"
ip netns exec "$B" python3 - "$TMP/hdr.ready" "$TMP/hdr.json" <<'PY' &
import json, socket, struct, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("::", 6101))
mreq = socket.inet_pton(socket.AF_INET6, "ff3e::7") + struct.pack("@I", socket.if_nametoindex("vb"))
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVTCLASS, 1)
open(sys.argv[1], "w").close()
s.settimeout(5)
got = []
try:
    while len(got) < 20:
        data, anc, _, src = s.recvmsg(2048, 256)
        a = {t: struct.unpack("@i", d[:4])[0] for lvl, t, d in anc if lvl == socket.IPPROTO_IPV6}
        got.append((src[0], a.get(socket.IPV6_HOPLIMIT), a.get(socket.IPV6_TCLASS), len(data)))
        s.settimeout(2)
except socket.timeout:
    pass
json.dump({"n": len(got), "seen": sorted(set(got))}, open(sys.argv[2], "w"))
PY
HDR_PID=$!
for _ in $(seq 100); do [ -f "$TMP/hdr.ready" ] && break; sleep 0.05; done
ip netns exec "$A" "$GEN" --dst '[ff3e::7]:6101' --iface va --src-ip fd99::11 --ttl 3 --tos 184 --size 100 --count 20 --rate 1000 >/dev/null
wait "$HDR_PID"
if python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
sys.exit(0 if m["n"] == 20 and m["seen"] == [["fd99::11", 3, 184, 100]] else 1)' "$TMP/hdr.json"; then
  ok "20 datagrams from fd99::11, hop limit 3, traffic class 184"
else
  bad "IPv6 header fields: $(cat "$TMP/hdr.json")"
fi

echo "== 15. a bad UDP6 checksum: the kernel drops it before the socket, the sink reports it"
reset
start_sink --group '[ff3e::1]:6001' --expect-total 1 --idle-ms 5000 --first-timeout-ms 5000
ip netns exec "$A" python3 - <<'PY'
import socket, struct
def fnv(b):
    h = 2166136261
    for x in b:
        h = ((h ^ x) * 16777619) & 0xffffffff
    return h
def dgram(stream, seq, length):
    h = struct.pack("<IIQQI", 0x4D435254, stream, seq, 0, length)
    h += struct.pack("<I", fnv(h))
    return h + bytes(((seq * 131 + stream * 7 + i) & 0xff) for i in range(32, length))
def csum(src, dst, udp):
    d = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
    d += struct.pack("!I3xB", len(udp), 17) + udp + b"\0" * (len(udp) % 2)
    t = sum(struct.unpack("!%dH" % (len(d) // 2), d))
    while t >> 16:
        t = (t & 0xffff) + (t >> 16)
    return (~t & 0xffff) or 0xffff
# a raw socket sends the UDP header as written: the checksum is not filled in by the kernel
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_UDP)
s.bind(("fd99::1", 0))  # the source in the checksum (va has fd99::11 too)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, socket.if_nametoindex("va"))
for seq, flip in [(0, 0x0101), (1, 0)]:  # seq 0 with a wrong checksum, then seq 1 intact
    p = dgram(3, seq, 64)
    udp = struct.pack("!HHHH", 40000, 6001, 8 + len(p), 0) + p
    c = csum("fd99::1", "ff3e::1", udp) ^ flip
    s.sendto(udp[:6] + struct.pack("!H", c) + udp[8:], ("ff3e::1", 0))
PY
wait_sink
check "only the intact datagram read; InCsumErrors +1 (from /proc/net/snmp6)" \
  't["received"] == 1 and st("ff3e::1",6001,3)["first_seq"] == 1 and s["udp"]["in_csum_errors"] == 1 and s["udp"]["in_errors"] >= 1 and s["socket_drops"] == 0'

echo "== 16. IPv6 address syntax"
for args in "--dst ff3e::1:5001" "--dst [ff3e::1]" "--dst [ff3e::1:5001" "--dst [ff3e::1]:0" "--dst [239.1.1.1]:5001" \
  "--dst [::ffff:10.0.0.1]:5001" "--dst [ff3e::1]:5001x" "--dst 239.1.1.1:5001 --dst [ff3e::1]:5001" "--dst [ff3e::1]:5001 --src-ip 10.0.0.1" \
  "--dst [ff3e::1%]:5001"; do
  # shellcheck disable=SC2086
  "$GEN" $args >/dev/null 2>&1
  rc=$?
  [ "$rc" -eq 2 ] && ok "mcr-gen $args -> exit 2" || bad "mcr-gen $args -> exit $rc (want 2)"
done
for args in "--group ff3e::1:1" "--group [ff3e::1]:1 --group [ff3e:0::1]:1"; do
  # shellcheck disable=SC2086
  "$SINK" $args >/dev/null 2>&1
  rc=$?
  [ "$rc" -eq 2 ] && ok "mcr-sink $args -> exit 2" || bad "mcr-sink $args -> exit $rc (want 2)"
done
"$GEN" --dst '[fe80::1%nosuchif0]:5001' >/dev/null 2>"$TMP/err"
rc=$?
if [ "$rc" -eq 1 ] && grep -q "no such interface" "$TMP/err"; then
  ok "mcr-gen --dst [fe80::1%nosuchif0]:5001 -> exit 1, no such interface"
else
  bad "mcr-gen --dst [fe80::1%nosuchif0]:5001 -> exit $rc: $(cat "$TMP/err")"
fi

echo "selftest: $PASSES passed, $FAILS failed"
[ "$FAILS" -eq 0 ]
