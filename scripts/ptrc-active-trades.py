#!/usr/bin/env python3
"""Write the active-trader trades CSV of issue 13 (docs/BENCHMARKS.md, ptrc P&L): 1,000,000 trades
of 2025, 20 accounts x 10 symbols, each (account, symbol) alternating buy and sell (about 20
minutes apart), 1-100 units at a per-symbol random walk in cents, fee 0.005 per unit.
Deterministic (seed 13). Usage: scripts/ptrc-active-trades.py [OUT.csv] (default active.csv)."""
import datetime
import random
import sys

out_path = sys.argv[1] if len(sys.argv) > 1 else "active.csv"
random.seed(13)
A, S, N, D = 20, 10, 1_000_000, 250
cents = [5000 + 1000 * i for i in range(S)]
next_buy = [[True] * S for _ in range(A)]
per = N // D
step = 23400 / per  # seconds of a 6.5 h session per trade
day0 = datetime.datetime(2025, 1, 2, 9, 30)
with open(out_path, "w") as out:
    out.write("ts,account,symbol,side,qty,price,fee\n")
    date = day0
    for i in range(N):
        if i % per == 0:
            date = day0 + datetime.timedelta(days=(i // per) * 365 // D)
        t = date + datetime.timedelta(seconds=(i % per) * step)
        a = random.randrange(A)
        s = random.randrange(S)
        cents[s] = max(100, cents[s] + random.randrange(11) - 5)
        q = random.randrange(100) + 1
        b = next_buy[a][s]
        next_buy[a][s] = not b
        out.write(
            f"{t.strftime('%Y-%m-%dT%H:%M:%S.%f')}Z,trader{a:02},ACT{s},"
            f"{'buy' if b else 'sell'},{q},{cents[s] // 100}.{cents[s] % 100:02},{q * 5 / 1000:.3f}\n"
        )
