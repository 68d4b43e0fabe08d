#!/usr/bin/env python3
"""Turns the JSON lines of one benches/compare.sh run into one Markdown table.

    table.py ALL.jsonl livechat socketioxide node

Absolute numbers per server, then livechat/peer ratios (for latencies and memory lower is
better, for throughput higher is better). Standard library only.
"""

import json
import sys


def load(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    return rows


def fmt(v, digits=2):
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.{digits}f}"


def ratio(a, b):
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or b == 0:
        return "–"
    return f"{a / b:.2f}×"


def main():
    path, servers = sys.argv[1], sys.argv[2:] or ["livechat", "socketioxide", "node"]
    rows = load(path)
    peers = [s for s in servers if s != "livechat"]
    lines = []
    header = ["metric"] + servers + [f"livechat/{p}" for p in peers if "livechat" in servers]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))

    def add(metric, values, digits=2):
        cells = [fmt(values.get(s), digits) for s in servers]
        if "livechat" in servers:
            cells += [ratio(values.get("livechat"), values.get(p)) for p in peers]
        lines.append("| " + " | ".join([metric] + cells) + " |")

    def pick(scenario, **match):
        out = {}
        for r in rows:
            if r.get("scenario") == scenario and all(r.get(k) == v for k, v in match.items()):
                out[r.get("label")] = r
        return out

    # Idle connections.
    counts = sorted({r["connections"] for r in rows if r.get("scenario") == "idle-rss"})
    for n in counts:
        got = pick("idle-rss", connections=n)
        add(f"idle: server RSS per connection, KiB ({n:,} conns)",
            {s: r.get("kib_per_conn") for s, r in got.items()})
        bad = {s: r for s, r in got.items() if r.get("connected") != n}
        for s, r in bad.items():
            lines.append(f"| ↳ {s}: only {r.get('connected')} of {n} connected | |")

    # Fan-out at equal offered load: the fixed-rate runs.
    fixed_rows = pick("fanout", mode="fixed")
    if fixed_rows:
        any_r = next(iter(fixed_rows.values()))
        load_desc = (f"{any_r['rooms']} rooms × {any_r['members']} members, "
                     f"{any_r['rate_pub_per_s']:.0f} pub/s → {any_r['offered_per_s']:,.0f} msgs/s offered")
        lines.append(f"| **fan-out, equal load** ({load_desc}) | | |")
        add("delivered msgs/s", {s: r["delivered_per_s"] for s, r in fixed_rows.items()})
        for k, name in [("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9"), ("max_ms", "max")]:
            add(f"latency {name}, ms", {s: r[k] for s, r in fixed_rows.items()})
        add("server CPU, % of 1 core", {s: r.get("server_cpu_pct") for s, r in fixed_rows.items()}, 0)
        add("other processes' CPU, % of 1 core", {s: r.get("foreign_cpu_pct") for s, r in fixed_rows.items()}, 0)
        add("loadgen CPU, % of 1 core", {s: r.get("loadgen_cpu_pct") for s, r in fixed_rows.items()}, 0)
        add("step ok (all delivered, p99 ≤ 50 ms)", {s: "yes" if r["ok"] else "NO" for s, r in fixed_rows.items()})

    # The sweeps run the same rates on every server: latency and server CPU by offered load.
    by_rate = {}
    for r in rows:
        if r.get("scenario") == "fanout" and r.get("mode") == "sweep":
            slot = by_rate.setdefault(r["rate_pub_per_s"], {})
            # The first run of the rate that other processes did not disturb.
            if r["label"] not in slot or (slot[r["label"]].get("disturbed") and not r.get("disturbed")):
                slot[r["label"]] = r
    common = sorted(rate for rate, got in by_rate.items() if all(s in got for s in servers))
    if common:
        lines.append("| **fan-out by offered load** (sweep steps, first run of each rate) | | |")
        for rate in common:
            got = by_rate[rate]
            offered = next(iter(got.values()))["offered_per_s"]
            add(f"p99 ms at {offered:,.0f} msgs/s", {s: r["p99_ms"] for s, r in got.items()})
        for rate in common:
            got = by_rate[rate]
            offered = next(iter(got.values()))["offered_per_s"]
            add(f"server CPU % at {offered:,.0f} msgs/s",
                {s: r.get("server_cpu_pct") for s, r in got.items()}, 0)

    sweeps = pick("fanout-sweep")
    if sweeps:
        lines.append("| **fan-out capacity** (delivered msgs/s at p99 ≤ 50 ms) | | |")
        add("capacity, delivered msgs/s", {s: r["capacity_per_s"] for s, r in sweeps.items()})
        add("p99 at capacity, ms", {s: r["capacity_p99_ms"] for s, r in sweeps.items()})
        add("loadgen CPU at capacity, %", {s: r["capacity_loadgen_cpu_pct"] for s, r in sweeps.items()}, 0)
        # Server CPU at the capacity step: the sweep's step lines with the same pub rate.
        cap_cpu = {}
        for r in rows:
            sw = sweeps.get(r.get("label"))
            if (r.get("scenario") == "fanout" and r.get("mode") == "sweep" and sw and r.get("ok")
                    and abs(r.get("rate_pub_per_s", -1) - sw["capacity_pub_rate"]) < 1e-6):
                cap_cpu[r["label"]] = r.get("server_cpu_pct")
        add("server CPU at capacity, %", cap_cpu, 0)
        add("first failing step: loadgen CPU, %",
            {s: r.get("first_bad_loadgen_cpu_pct") for s, r in sweeps.items()}, 0)

    chat = [r for r in rows if r.get("scenario") == "chat" and r.get("mode") == "fixed"][-1:]
    chat_sweep = pick("chat-sweep").get("livechat")
    accept = pick("accept").get("livechat")
    extra = []
    if chat:
        c = chat[0]
        extra.append(f"| **chat pipeline** ({c['conversations']} conversations, "
                     f"{c['rate_per_s']:.0f} msgs/s offered) | livechat |")
        extra.append("|---|---|")
        extra.append(f"| stored msgs/s | {fmt(c['stored_per_s'])} |")
        extra.append(f"| ack latency p50 / p99 / p99.9 / max, ms | {fmt(c['ack_p50_ms'])} / "
                     f"{fmt(c['ack_p99_ms'])} / {fmt(c['ack_p999_ms'])} / {fmt(c['ack_max_ms'])} |")
        extra.append(f"| agent delivery p50 / p99 / p99.9 / max, ms | {fmt(c['delivery_p50_ms'])} / "
                     f"{fmt(c['delivery_p99_ms'])} / {fmt(c['delivery_p999_ms'])} / {fmt(c['delivery_max_ms'])} |")
        extra.append(f"| server CPU / loadgen CPU / other processes' CPU, % | {fmt(c.get('server_cpu_pct'), 0)} / "
                     f"{fmt(c.get('loadgen_cpu_pct'), 0)} / {fmt(c.get('foreign_cpu_pct'), 0)} |")
        extra.append(f"| errors | ack errors {c['ack_errors']}, ok={c['ok']} {c.get('why') or ''} |")
    if chat_sweep:
        extra.append(f"| chat capacity, stored msgs/s with ack p99 ≤ {chat_sweep['p99_limit_ms']:.0f} ms | "
                     f"{fmt(chat_sweep['capacity_stored_per_s'])} (ack p99 {fmt(chat_sweep['capacity_ack_p99_ms'])} ms, "
                     f"loadgen CPU {fmt(chat_sweep['capacity_loadgen_cpu_pct'], 0)}%; limited by: {chat_sweep['limited_by']}) |")
        lc = sweeps.get("livechat") if sweeps else None
        if lc and lc["capacity_per_s"]:
            extra.append(f"| chat capacity / fan-out capacity | "
                         f"{chat_sweep['capacity_stored_per_s'] / lc['capacity_per_s']:.2f} (target ≥ 0.5) |")
    if accept:
        extra.append(f"| **accept contention** ({accept['conversations']} conversations × "
                     f"{accept['agents']} agents) | |")
        extra.append(f"| accepts/s | {fmt(accept['accepts_per_s'])} |")
        extra.append(f"| accept latency p50 / p99 / p99.9 / max, ms | {fmt(accept['p50_ms'])} / "
                     f"{fmt(accept['p99_ms'])} / {fmt(accept['p999_ms'])} / {fmt(accept['max_ms'])} |")
        extra.append(f"| statuses | {accept['statuses']} |")
        extra.append(f"| single-winner violations | {accept['violations']} |")

    print("\n".join(lines))
    if sweeps:
        print()
        for s, r in sweeps.items():
            print(f"- {s} sweep limited by: {r['limited_by']}")
    if extra:
        print()
        print("\n".join(extra))


if __name__ == "__main__":
    main()
