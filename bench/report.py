#!/usr/bin/env python3
"""Turns the results.jsonl written by run.sh into tables, ratios and PASS/FAIL bars.

Usage: report.py RESULTS_JSONL   (prints Markdown; exit 1 if a bar fails, 2 if the
tollgate or nginx figures are missing or a scenario saw errors).
"""

import json
import sys

# Throughput with limits and budgets active, relative to none (issue 5).
MIN_ADMISSION_RATIO = 0.9
# The bars tollgate must meet, relative to nginx.
MIN_THROUGHPUT_RATIO = 0.70
MAX_P99_RATIO = 1.5
MAX_CPU_RATIO = 2.0
MAX_TTFB_EXTRA_US = 500.0
MAX_RSS_MIB = 64.0
# Other load (in % of one core) above which a scenario is flagged as disturbed.
NOISY_PCT = 10

LOAD_SCENARIOS = [
    ("chat-c16", "non-stream chat, 16 connections"),
    ("chat-c64", "non-stream chat, 64 connections"),
    ("stream-c16", "stream chat, 16 connections"),
]


def load_rounds(path):
    """Rows by (target, scenario), one per round, in the order they were measured."""
    rounds = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                row = json.loads(line)
                rounds.setdefault((row["target"], row["scenario"]), []).append(row)
    return rounds


def per_round_bars(rounds):
    """Markdown lines: the load bars' ratios (tollgate/nginx) in each round, a value
    that misses its bar in bold. The verdict takes the medians; this table shows
    whether it would hold round by round."""
    n = min(len(rounds.get((t, s), [])) for t in ("tollgate", "nginx") for s, _ in LOAD_SCENARIOS[:2])
    if n < 2:
        return []

    def cell(value, ok, text):
        return text.format(value) if ok else "**" + text.format(value) + "**"

    out = [
        "### Bars per round (tollgate/nginx)",
        "",
        "| round | c16 RPS | c16 p99 | c16 CPU/req | c64 RPS | c64 p99 | c64 CPU/req |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for i in range(n):
        cells = []
        for scenario, _ in LOAD_SCENARIOS[:2]:
            tg, ng = rounds[("tollgate", scenario)][i], rounds[("nginx", scenario)][i]
            r = rps(tg) / rps(ng)
            cells.append(cell(r, r >= MIN_THROUGHPUT_RATIO, "{:.0%}"))
            r = tg["p99_us"] / ng["p99_us"]
            cells.append(cell(r, r <= MAX_P99_RATIO, "{:.2f}×"))
            r = ratio(cpu_us_per_request(tg, "proxy_ticks"), cpu_us_per_request(ng, "proxy_ticks"))
            cells.append("n/a" if r is None else cell(r, r <= MAX_CPU_RATIO, "{:.2f}×"))
        out.append(f"| {i + 1} | " + " | ".join(cells) + " |")
    out.append("")
    return out


def median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def merge(rows):
    """One row for the rounds of a scenario: the median of each figure (RPS, p50,
    p99, CPU per request, TTFB), the sum of errors and failures, the largest RSS and
    the largest other load (a disturbed round is flagged)."""
    if len(rows) == 1:
        return rows[0]
    first = rows[0]
    merged = dict(first, rounds=len(rows))
    if "requests" in first:  # a load scenario
        rates = [rps(r) for r in rows]
        merged["duration_us"] = 1e6
        merged["requests"] = median(rates)
        for which in ("proxy_ticks", "upstream_ticks"):
            per_request = [cpu_us_per_request(r, which) for r in rows]
            mid = median(per_request)
            merged[which] = (
                None if mid is None else mid * merged["requests"] * first["clk_tck"] / 1e6
            )
        for field in ("p50_us", "p90_us", "p99_us", "mean_us", "cpu0_busy_pct"):
            merged[field] = median(r.get(field) for r in rows)
        merged["errors"] = {
            kind: sum(r["errors"].get(kind, 0) for r in rows) for kind in first["errors"]
        }
        merged["proxy_rss_kb"] = max((r.get("proxy_rss_kb") or 0 for r in rows), default=0) or None
        merged["other_load_pct"] = max(r.get("other_load_pct", 0) for r in rows)
    elif first["scenario"] == "rss":
        for field in ("proxy_hwm_kb", "upstream_hwm_kb"):
            values = [r.get(field) for r in rows if r.get(field) is not None]
            merged[field] = max(values) if values else None
    else:  # ttfb-c1
        for field, value in first.items():
            if field.endswith("_us"):
                merged[field] = median(r.get(field) for r in rows)
        for field in ("samples", "failures"):
            if field in first:
                merged[field] = sum(r.get(field, 0) for r in rows)
    return merged


def rps(row):
    return row["requests"] / (row["duration_us"] / 1e6)


def cpu_us_per_request(row, which):
    ticks = row.get(which)
    if ticks is None or row["requests"] == 0:
        return None
    return ticks / row["clk_tck"] * 1e6 / row["requests"]


def errors(row):
    return sum(row["errors"].values())


def fmt(value, digits=1):
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def ratio(a, b):
    if a is None or b in (None, 0):
        return None
    return a / b


def sustained_windows(results):
    """The BENCH_SUSTAIN run: one row per window, in order (no bar)."""
    windows = sorted(
        (int(scenario.split("-", 1)[1]), row)
        for (target, scenario), row in results.items()
        if target == "tollgate" and scenario.startswith("sustain-")
    )
    if not windows:
        return []
    out = [
        "### Sustained load (one tollgate, 16 connections, windows back to back)",
        "",
        "| window | from s | RPS | p50 ms | p99 ms | proxy CPU µs/req | other load % | errors |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    start = 0.0
    for number, row in windows:
        out.append(
            f"| {number} | {start:.0f} | {fmt(rps(row), 0)} | {row['p50_us'] / 1000:.2f} | "
            f"{row['p99_us'] / 1000:.2f} | {fmt(cpu_us_per_request(row, 'proxy_ticks'))} | "
            f"{row.get('other_load_pct', 0):.0f} | {errors(row)} |"
        )
        start += row["duration_us"] / 1e6
    out.append("")
    return out


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    rounds = load_rounds(sys.argv[1])
    # A scenario measured in several rounds is merged into one row of the rounds'
    # medians (see `merge`).
    results = {key: merge(rows) for key, rows in rounds.items()}
    targets = [
        t
        for t in ("direct", "nginx", "tollgate", "tollgate-open", "tollgate-redis")
        if any(k[0] == t for k in results)
    ]
    out = []
    bad_runs = []

    out.append("### Load (wrk, 1 thread on CPU 1; servers on CPU 0)")
    out.append("")
    out.append(
        "| scenario | target | RPS | p50 ms | p90 ms | p99 ms | proxy CPU µs/req | upstream CPU µs/req "
        "| proxy RSS MiB | CPU 0 busy % | other load % | errors |"
    )
    out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for scenario, label in LOAD_SCENARIOS:
        for target in targets:
            row = results.get((target, scenario))
            if row is None:
                continue
            if errors(row):
                bad_runs.append(f"{target} {scenario}: {row['errors']}")
            out.append(
                f"| {label} | {target} | {fmt(rps(row), 0)} | {fmt(row['p50_us'] / 1000, 2)} "
                f"| {fmt(row['p90_us'] / 1000 if row.get('p90_us') is not None else None, 2)} "
                f"| {fmt(row['p99_us'] / 1000, 2)} | {fmt(cpu_us_per_request(row, 'proxy_ticks'))} "
                f"| {fmt(cpu_us_per_request(row, 'upstream_ticks'))} "
                f"| {fmt(row['proxy_rss_kb'] / 1024 if row.get('proxy_rss_kb') else None)} "
                f"| {fmt(row.get('cpu0_busy_pct'), 0)} | {fmt(row.get('other_load_pct'), 0)} "
                f"| {errors(row)} |"
            )
    out.append("")
    out.append(
        "proxy RSS: after the scenario (with rounds, the largest). CPU 0 busy: how busy the servers' core was. "
        "Other load: CPU used on the machine by anything but the proxy, the mock and wrk "
        "during the window, in % of one core (noise: above a few % the run is disturbed)."
    )
    noisy = [
        f"{t} {s} ({results[(t, s)]['other_load_pct']:.0f}%)"
        for (t, s) in results
        if results[(t, s)].get("other_load_pct", 0) > NOISY_PCT
    ]
    if noisy:
        out.append("")
        out.append(f"**Warning**: other work used more than {NOISY_PCT}% of a core during: {', '.join(noisy)}.")
    out.append("")

    out.append("### Stream, 1 connection (time to first `data:` byte)")
    out.append("")
    out.append("| target | samples | TTFB p50 ms | TTFB p99 ms | whole stream p50 ms | whole stream p99 ms | peak RSS MiB |")
    out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for target in targets:
        row = results.get((target, "ttfb-c1"), {})
        rss = results.get((target, "rss"), {})
        hwm = rss.get("proxy_hwm_kb") if target != "direct" else rss.get("upstream_hwm_kb")
        if row.get("failures"):
            bad_runs.append(f"{target} ttfb-c1: {row['failures']} failed requests")
        out.append(
            f"| {target} | {row.get('samples', 'n/a')} | {fmt(row.get('ttfb_p50_us', 0) / 1000, 3)} "
            f"| {fmt(row.get('ttfb_p99_us', 0) / 1000, 3)} | {fmt(row.get('stream_p50_us', 0) / 1000, 3)} "
            f"| {fmt(row.get('stream_p99_us', 0) / 1000, 3)} | {fmt(hwm / 1024 if hwm else None)} |"
        )
    out.append("")
    out.append("(direct: the RSS column is the mock's own; nginx: master + worker.)")
    out.append("")

    if "tollgate" not in targets:
        print("\n".join(out))
        print("tollgate was not measured: no ratios and no bars.")
        return 2

    out.append("### Ratios")
    out.append("")
    out.append("| scenario | metric | tollgate/nginx | tollgate/direct |")
    out.append("| --- | --- | ---: | ---: |")
    for scenario, label in LOAD_SCENARIOS:
        tg = results.get(("tollgate", scenario))
        ng = results.get(("nginx", scenario))
        dr = results.get(("direct", scenario))
        if tg is None:
            continue
        pairs = [
            ("RPS", rps, 2),
            ("p50", lambda r: r["p50_us"], 2),
            ("p90", lambda r: r.get("p90_us"), 2),
            ("p99", lambda r: r["p99_us"], 2),
        ]
        for name, get, digits in pairs:
            out.append(
                f"| {label} | {name} | {fmt(ratio(get(tg), get(ng)) if ng else None, digits)} "
                f"| {fmt(ratio(get(tg), get(dr)) if dr else None, digits)} |"
            )
        out.append(
            f"| {label} | proxy CPU/req | "
            f"{fmt(ratio(cpu_us_per_request(tg, 'proxy_ticks'), cpu_us_per_request(ng, 'proxy_ticks')) if ng else None, 2)} | n/a |"
        )
    ttfb_tg = results.get(("tollgate", "ttfb-c1"), {})
    ttfb_ng = results.get(("nginx", "ttfb-c1"), {})
    ttfb_dr = results.get(("direct", "ttfb-c1"), {})
    for q in ("p50", "p99"):
        key = f"ttfb_{q}_us"
        out.append(
            f"| stream, 1 connection | TTFB {q} | {fmt(ratio(ttfb_tg.get(key), ttfb_ng.get(key)), 2)} "
            f"| {fmt(ratio(ttfb_tg.get(key), ttfb_dr.get(key)), 2)} |"
        )
    out.append("")

    out.append("### Bars")
    out.append("")
    verdicts = []

    def bar(ok, text):
        verdicts.append(ok)
        out.append(f"- {'PASS' if ok else 'FAIL'}: {text}")

    if ("nginx", "chat-c16") not in results:
        print("\n".join(out))
        print("nginx was not measured: no bars.")
        return 2
    for scenario, label in LOAD_SCENARIOS[:2]:
        tg, ng = results[("tollgate", scenario)], results[("nginx", scenario)]
        r = rps(tg) / rps(ng)
        bar(r >= MIN_THROUGHPUT_RATIO,
            f"{label}: throughput {fmt(rps(tg), 0)} RPS = {r:.0%} of nginx's {fmt(rps(ng), 0)} (bar ≥ {MIN_THROUGHPUT_RATIO:.0%})")
        r = tg["p99_us"] / ng["p99_us"]
        bar(r <= MAX_P99_RATIO,
            f"{label}: p99 {tg['p99_us'] / 1000:.2f} ms = {r:.2f}× nginx's {ng['p99_us'] / 1000:.2f} ms (bar ≤ {MAX_P99_RATIO}×)")
        c_tg, c_ng = cpu_us_per_request(tg, "proxy_ticks"), cpu_us_per_request(ng, "proxy_ticks")
        r = c_tg / c_ng
        bar(r <= MAX_CPU_RATIO,
            f"{label}: CPU {c_tg:.1f} µs/request = {r:.2f}× nginx's {c_ng:.1f} (bar ≤ {MAX_CPU_RATIO}×)")
    for q in ("p50", "p99"):
        key = f"ttfb_{q}_us"
        tg, ng = ttfb_tg[key], ttfb_ng[key]
        bar(tg <= ng + MAX_TTFB_EXTRA_US,
            f"TTFB {q} at 1 connection: {tg / 1000:.3f} ms vs nginx's {ng / 1000:.3f} ms "
            f"(+{(tg - ng) / 1000:.3f} ms; bar ≤ +{MAX_TTFB_EXTRA_US / 1000} ms)")
    hwm = results[("tollgate", "rss")]["proxy_hwm_kb"] / 1024
    bar(hwm < MAX_RSS_MIB, f"peak RSS {hwm:.1f} MiB (bar < {MAX_RSS_MIB:.0f} MiB)")
    out.append("")
    out.extend(per_round_bars(rounds))
    out.extend(sustained_windows(results))
    # Admission's cost: `tollgate` runs with a key whose limits and budgets are checked
    # and counted on every call; `tollgate-open` with none (the foundation's setup).
    if any(k[0] == "tollgate-open" for k in results):
        out.append("### Admission cost (limits and budgets on every call)")
        out.append("")
        for scenario, label in (("chat-c16", "chat, 16 connections"), ("chat-c64", "chat, 64 connections")):
            tg, op = results.get(("tollgate", scenario)), results.get(("tollgate-open", scenario))
            if not tg or not op:
                continue
            r = ratio(rps(tg), rps(op))
            bar(r is not None and r >= MIN_ADMISSION_RATIO,
                f"{label}: with limits {fmt(rps(tg), 0)} RPS = {r:.0%} of {fmt(rps(op), 0)} without (bar ≥ {MIN_ADMISSION_RATIO:.0%})")
            rd = results.get(("tollgate-redis", scenario))
            if rd:
                out.append(f"- {label}: Redis backend {fmt(rps(rd), 0)} RPS = {ratio(rps(rd), rps(op)):.0%} of no limits "
                           f"(p99 {rd['p99_us'] / 1000:.2f} ms vs {op['p99_us'] / 1000:.2f} ms)")
        out.append("")
    if bad_runs:
        out.append("Runs with errors (their figures are not trustworthy):")
        out.extend(f"- {line}" for line in bad_runs)
        out.append("")
    print("\n".join(out))
    if bad_runs:
        return 2
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
