#!/usr/bin/env python3
"""End-to-end feature freshness: trade event time -> value visible in the online stores.

Run `trade2026 up` with TRADE2026_ONLINE_STORE=redis://127.0.0.1:6379, then
`python3 scripts/freshness.py [features_url] [seconds]`. Polls every 10 ms; for each new
`event_ts` of market_features/BTCUSDT it records (first time seen - event_ts), for the embedded
store (port 6566) and for the Redis document `feast:market_features:BTCUSDT`.
"""
import datetime
import json
import socket
import sys
import time
import urllib.request

URL = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:6566"
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 40


def parse(ts):
    day, frac = ts.rstrip("Z").split(".")
    base = datetime.datetime.fromisoformat(day).replace(tzinfo=datetime.timezone.utc).timestamp()
    return base + float("0." + frac)


def redis_get(key):
    s = socket.create_connection(("127.0.0.1", 6379))
    s.sendall(f"*2\r\n$3\r\nGET\r\n${len(key)}\r\n{key}\r\n".encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        data += chunk
        head, _, rest = data.partition(b"\r\n")
        if head.startswith(b"$-1") or not chunk:
            return None
        if rest and len(rest) >= int(head[1:]):
            return json.loads(rest[: int(head[1:])])


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


seen_e, seen_r, lat_e, lat_r = set(), set(), [], []
end = time.time() + SECONDS
while time.time() < end:
    now = time.time()
    row = json.loads(urllib.request.urlopen(URL + "/features/market_features/BTCUSDT", timeout=5).read())
    if row["event_ts"] not in seen_e:
        seen_e.add(row["event_ts"])
        lat_e.append(now - parse(row["event_ts"]))
    doc = redis_get("feast:market_features:BTCUSDT")
    if doc and doc["event_ts"] not in seen_r:
        seen_r.add(doc["event_ts"])
        lat_r.append(now - parse(doc["event_ts"]))
    time.sleep(0.01)
for name, xs in (("embedded", lat_e[5:]), ("redis", lat_r[5:])):
    print(f"{name}: n={len(xs)} p50={pct(xs, .5) * 1e3:.1f} ms p99={pct(xs, .99) * 1e3:.1f} ms max={max(xs) * 1e3:.1f} ms")
