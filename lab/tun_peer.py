#!/usr/bin/env python3
"""The far side of a tun device for the namespace tests (not shipped): holds
the tun's file descriptor, the way a VPN daemon (WireGuard, OpenVPN) does, and
either writes IPv4/UDP or IPv6/UDP datagrams (an IPv6 --src) into it (they arrive as RX on the device, in
the namespace that runs this) or reads what the host sends out of the device
and verifies every datagram itself: the IPv4 header checksum, the UDP
checksum (over the IPv6 pseudo header for IPv6, where it is mandatory), the
addresses, the TTL (hop limit) and the mcr-sink payload (stream id,
sequence number, pattern; csrc/tools/mcrtest.h), counting duplicates and
reordering per stream. Independent of mcr: it decodes the bytes here.

The device is created by this process (TUNSETIFF, IFF_TUN | IFF_NO_PI) and
exists while it runs (with --persist: until deleted; it has carrier only while
a peer holds it, and a later peer of the same name attaches to it); --type
sets another link type first (TUNSETLINK, e.g. 512 = ARPHRD_PPP, 32 =
ARPHRD_INFINIBAND): the device still carries bare IP packets, so a link type
can be tested without its driver.

usage:
  tun_peer.py --dev NAME [--type ARPHRD] [--persist] --ready FILE --stop FILE
      write  --go FILE --report FILE --src IP --dst IP:PORT --count N --rate PPS
             --size BYTES --stream ID [--ttl N] [--version 4|6]
             (--dst [IPV6]:PORT with an IPv6 --src writes IPv6)
      read   --port PORT [--port PORT ...] [--wait-s S]

Lifecycle: the device is created, then the ready file written (the test
configures and starts the relay). `write` waits for the go file, sends, and
writes its report ({"sent": N, "errors": N}) to the report file. `read` reads
until the stop file holds a count and that many matching datagrams were read
(or --wait-s passed since), then prints its report as JSON. Both hold the
device until the stop file exists (the link keeps its carrier), reading and
discarding anything the host sends meanwhile (IGMP reports, ...).
"""
import argparse
import fcntl
import json
import os
import select
import socket
import struct
import sys
import time

TUNSETIFF = 0x400454CA
TUNSETLINK = 0x400454CD
TUNSETPERSIST = 0x400454CB
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
MCRT_MAGIC = 0x4D435254
MCRT_HDR = 32
RAMP = bytes(range(256)) * 258  # pattern bytes: RAMP[start:start + n] for any n <= 65536


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def fnv(data: bytes) -> int:
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def payload(stream: int, seq: int, size: int) -> bytes:
    """An mcr-sink payload (mcrtest.h): header with an FNV-1a check, then the pattern."""
    head = struct.pack("<IIQQI", MCRT_MAGIC, stream, seq, 0, size)
    head += struct.pack("<I", fnv(head))
    start = ((seq * 131 + stream * 7) + MCRT_HDR) & 0xFF
    return head + RAMP[start:start + size - MCRT_HDR]


def check_payload(p: bytes):
    """(stream, seq) of a valid mcr-sink payload, else None."""
    if len(p) < MCRT_HDR:
        return None
    magic, stream, seq, _ts, length = struct.unpack("<IIQQI", p[:28])
    if magic != MCRT_MAGIC or length != len(p) or struct.unpack("<I", p[28:32])[0] != fnv(p[:28]):
        return None
    start = ((seq * 131 + stream * 7) + MCRT_HDR) & 0xFF
    if p[MCRT_HDR:] != RAMP[start:start + len(p) - MCRT_HDR]:
        return None
    return stream, seq


def ipv4_udp(src: str, dst: str, sport: int, dport: int, ttl: int, ident: int, data: bytes,
             version: int = 4) -> bytes:
    ulen = 8 + len(data)
    ip = struct.pack("!BBHHHBBH4s4s", (version << 4) | 5, 0, 20 + ulen, ident & 0xFFFF, 0, ttl,
                     17, 0, socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", csum(ip) ^ 0xFFFF) + ip[12:]
    pseudo = ip[12:20] + struct.pack("!BBH", 0, 17, ulen)
    udp = struct.pack("!HHHH", sport, dport, ulen, 0) + data
    c = csum(pseudo + udp) ^ 0xFFFF
    udp = udp[:6] + struct.pack("!H", c or 0xFFFF) + udp[8:]
    return ip + udp


def ipv6_udp(src: str, dst: str, sport: int, dport: int, hops: int, data: bytes) -> bytes:
    ulen = 8 + len(data)
    s6, d6 = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
    ip = struct.pack("!IHBB", 6 << 28, ulen, 17, hops) + s6 + d6
    pseudo = s6 + d6 + struct.pack("!IxxxB", ulen, 17)
    udp = struct.pack("!HHHH", sport, dport, ulen, 0) + data
    c = csum(pseudo + udp) ^ 0xFFFF
    return ip + udp[:6] + struct.pack("!H", c or 0xFFFF) + udp[8:]


def open_tun(name: str, link_type, persist: bool) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    if link_type is not None:
        fcntl.ioctl(fd, TUNSETLINK, link_type)
    if persist:
        fcntl.ioctl(fd, TUNSETPERSIST, 1)
    return fd


def stop_count(path: str):
    """The count in the stop file: None while it does not exist, -1 when it holds none."""
    try:
        text = open(path).read().strip()
    except FileNotFoundError:
        return None
    return int(text) if text else -1


def drain(fd: int, timeout: float) -> None:
    r, _, _ = select.select([fd], [], [], timeout)
    if r:
        os.read(fd, 65535)


def write_mode(fd: int, a) -> None:
    while not os.path.exists(a.go):
        drain(fd, 0.02)
    dst, port = a.dst.rsplit(":", 1)
    dst = dst.strip("[]")
    sent = errors = 0
    t0 = time.monotonic()
    for seq in range(a.count):
        due = t0 + seq / a.rate
        while time.monotonic() < due:
            drain(fd, max(0.0, due - time.monotonic()))
        data = payload(a.stream, seq, a.size)
        if ":" in a.src:
            pkt = ipv6_udp(a.src, dst, 40000, int(port), a.ttl, data)
        else:
            pkt = ipv4_udp(a.src, dst, 40000, int(port), a.ttl, seq, data, a.version)
        try:
            os.write(fd, pkt)
            sent += 1
        except OSError:
            errors += 1
    tmp = a.report + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"sent": sent, "errors": errors}, f)
    os.rename(tmp, a.report)
    while stop_count(a.stop) is None:
        drain(fd, 0.1)


def read_mode(fd: int, a) -> None:
    ports = set(a.port)
    rep = {"received": 0, "unique": 0, "duplicates": 0, "reordered": 0, "corrupt": 0,
           "bad_ip_csum": 0, "bad_udp_csum": 0, "other": 0, "datagrams": [], "streams": {}}
    seen = {}  # (dst, dport, stream) -> set of seq
    last = {}  # (dst, dport, stream) -> last seq
    deadline = None
    while True:
        want = stop_count(a.stop)
        if want is not None:
            deadline = deadline or time.monotonic() + a.wait_s
            if rep["received"] + rep["corrupt"] >= want or time.monotonic() > deadline:
                break
        r, _, _ = select.select([fd], [], [], 0.1)
        if not r:
            continue
        pkt = os.read(fd, 65535)
        v6 = len(pkt) >= 48 and pkt[0] >> 4 == 6 and pkt[6] == 17
        if not v6 and (len(pkt) < 28 or pkt[0] >> 4 != 4 or pkt[9] != 17):
            rep["other"] += 1
            continue
        ihl = 40 if v6 else (pkt[0] & 15) * 4
        total = 40 + struct.unpack("!H", pkt[4:6])[0] if v6 else struct.unpack("!H", pkt[2:4])[0]
        udp = pkt[ihl:total]
        sport, dport, ulen, ucs = struct.unpack("!HHHH", udp[:8])
        if dport not in ports:
            rep["other"] += 1
            continue
        if v6:
            src = socket.inet_ntop(socket.AF_INET6, pkt[8:24])
            dst = socket.inet_ntop(socket.AF_INET6, pkt[24:40])
            pseudo = pkt[8:40] + struct.pack("!IxxxB", ulen, 17)
            ttl, tos = pkt[7], ((pkt[0] & 15) << 4) | (pkt[1] >> 4)
        else:
            src, dst = socket.inet_ntoa(pkt[12:16]), socket.inet_ntoa(pkt[16:20])
            pseudo = pkt[12:20] + struct.pack("!BBH", 0, 17, ulen)
            ttl, tos = pkt[8], pkt[1]
            if csum(pkt[:ihl]) != 0xFFFF:
                rep["bad_ip_csum"] += 1
        if (ucs == 0 and v6) or (ucs != 0 and csum(pseudo + udp[:ulen]) != 0xFFFF):
            rep["bad_udp_csum"] += 1
        if len(rep["datagrams"]) < 20:
            rep["datagrams"].append({"src": src, "dst": dst, "sport": sport, "dport": dport,
                                     "ttl": ttl, "tos": tos, "udp_len": ulen,
                                     "udp_csum": ucs})
        ids = check_payload(udp[8:ulen])
        if ids is None:
            rep["corrupt"] += 1
            continue
        rep["received"] += 1
        key = (dst, dport, ids[0])
        s = seen.setdefault(key, set())
        if ids[1] in s:
            rep["duplicates"] += 1
            continue
        if key in last and ids[1] < last[key]:
            rep["reordered"] += 1
        last[key] = max(ids[1], last.get(key, -1))
        s.add(ids[1])
        rep["unique"] += 1
    for (dst, dport, stream), s in seen.items():
        rep["streams"][f"{dst}:{dport}/{stream}"] = len(s)
    print(json.dumps(rep), flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["write", "read"])
    p.add_argument("--dev", required=True)
    p.add_argument("--type", type=int)
    p.add_argument("--persist", action="store_true")
    p.add_argument("--ready", required=True)
    p.add_argument("--stop", required=True)
    p.add_argument("--go")
    p.add_argument("--report")
    p.add_argument("--src", default="10.78.0.2")
    p.add_argument("--dst")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--stream", type=int, default=0)
    p.add_argument("--ttl", type=int, default=8)
    p.add_argument("--version", type=int, default=4)
    p.add_argument("--port", type=int, action="append", default=[])
    p.add_argument("--wait-s", type=float, default=30.0)
    a = p.parse_args()
    fd = open_tun(a.dev, a.type, a.persist)
    with open(a.ready, "w") as f:
        f.write("ready\n")
    if a.mode == "write":
        write_mode(fd, a)
    else:
        read_mode(fd, a)
    os.close(fd)


if __name__ == "__main__":
    sys.exit(main())
