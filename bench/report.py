"""Render the results of ``bench/run.py`` (a plain dict, also written as JSON) as markdown.

Targets quoted beside the figures: gateway throughput at least 50 % of the
bare pass-through per cell, ready within 2 s of process start, RSS after
100k requests within 10 % of RSS after 10k.
"""

from __future__ import annotations

from typing import Any

TARGET_RPS_RATIO = 0.5
TARGET_READY_S = 2.0
TARGET_RSS_GROWTH = 1.10


def _cell(results: dict[str, Any], server: str, mode: str, connections: int) -> dict[str, Any]:
    for row in results["matrix"]:
        if (row["server"], row["mode"], row["connections"]) == (server, mode, connections):
            return dict(row)
    raise KeyError((server, mode, connections))


def _ok(good: bool) -> str:
    return "yes" if good else "**NO**"


def render(results: dict[str, Any]) -> str:
    meta = results["meta"]
    out = [
        "# Gateway benchmark",
        "",
        f"- mode: {meta['mode']} — {meta['duration_s']:g} s per cell after {meta['warmup_s']:g} s warm-up;"
        f" load generator: {meta['generator']} (closed loop, latency to the last byte)",
        f"- machine: {meta['cpus']} CPUs, Python {meta['python']}, commit {meta['commit']};"
        f" load average before/after: {meta['load_before']} / {meta['load_after']}",
        f"- pinning: {meta['pinning']}",
        f"- baseline's HTTP client: {meta.get('baseline_client', 'aiohttp')}",
        "- upstream: bench/upstream_server.py, no artificial delay; stream = 20 content chunks"
        " + finish chunk + usage chunk + [DONE]",
        "- gateway: `gateway serve` with the shipped policies/, in-memory state, log level"
        " warning unless stated; request `model: auto`, a short chat prompt"
        f" (routed by rule `{meta['rule']}` to target `{meta['target']}`)",
        "",
        "## Start-up",
        "",
        "| process | seconds from start | target | met |",
        "|---|---:|---:|---|",
    ]
    for name, seconds in results["startup"].items():
        if name.startswith("gateway"):
            out.append(
                f"| {name} (to /readyz 200) | {seconds:.2f} | ≤ {TARGET_READY_S:g} | {_ok(seconds <= TARGET_READY_S)} |"
            )
        else:
            out.append(f"| {name} (to listening) | {seconds:.2f} | | |")
    out += [
        "",
        "## Throughput and latency: gateway vs bare pass-through (same upstream, same run)",
        "",
        "CPU ms/req: the proxy process's user + system CPU time during the cell divided by"
        " the requests it served — steadier than req/s when other work shares the machine.",
        "",
        "| mode | conc. | baseline req/s | gateway req/s | ratio (target ≥ 50 %) | baseline p50 / p99 ms | gateway p50 / p99 ms | CPU ms/req b / g | errors b/g |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mode in ("whole", "stream"):
        for conc in meta["concurrency"]:
            b = _cell(results, "baseline", mode, conc)
            g = _cell(results, "gateway", mode, conc)
            ratio = g["rps"] / b["rps"] if b["rps"] else 0.0
            out.append(
                f"| {_mode(mode)} | {conc} | {b['rps']:,.0f} | {g['rps']:,.0f} | "
                f"{ratio:.0%} {'' if ratio >= TARGET_RPS_RATIO else '**below**'} | "
                f"{b['p50_ms']:.2f} / {b['p99_ms']:.2f} | {g['p50_ms']:.2f} / {g['p99_ms']:.2f} | "
                f"{_cpu(b)} / {_cpu(g)} | {b['errors']} / {g['errors']} |"
            )
    out += [
        "",
        "### Added latency at concurrency 1 (gateway minus baseline)",
        "",
        "| mode | p50 ms | p99 ms |",
        "|---|---:|---:|",
    ]
    for mode in ("whole", "stream"):
        b = _cell(results, "baseline", mode, 1)
        g = _cell(results, "gateway", mode, 1)
        out.append(
            f"| {_mode(mode)} | {g['p50_ms'] - b['p50_ms']:+.2f} | {g['p99_ms'] - b['p99_ms']:+.2f} |"
        )
    out += _logging(results) + _memory(results) + _cache(results) + _limits(results)
    out += _profile(results)
    return "\n".join(out) + "\n"


def _cpu(row: dict[str, Any]) -> str:
    value = row.get("cpu_ms_per_request")
    return "n/a" if value is None else f"{value:.3f}"


def _mode(mode: str) -> str:
    return "non-streaming" if mode == "whole" else "streaming"


def _logging(results: dict[str, Any]) -> list[str]:
    rows = results.get("logging") or []
    if not rows:
        return []
    out = [
        "",
        "## Cost of info-level access logs (non-streaming; one JSON line per request to a file;"
        " the two gateways measured alternately, cell by cell)",
        "",
        "| conc. | warning req/s | info req/s | info / warning | warning p50 ms | info p50 ms | CPU ms/req warning / info |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        w, i = row["warning"], row["info"]
        out.append(
            f"| {row['connections']} | {w['rps']:,.0f} | {i['rps']:,.0f} | {i['rps'] / w['rps']:.0%} | "
            f"{w['p50_ms']:.2f} | {i['p50_ms']:.2f} | {_cpu(w)} / {_cpu(i)} |"
        )
    return out


def _memory(results: dict[str, Any]) -> list[str]:
    m = results.get("memory")
    if not m:
        return []
    growth = m["rss_b_mb"] / m["rss_a_mb"]
    return [
        "",
        "## Memory (gateway RSS, non-streaming, concurrency 10, fresh process)",
        "",
        "| after start | after {:,} requests | after {:,} requests | ratio (target ≤ {:.2f}) | met |".format(
            m["requests_a"], m["requests_b"], TARGET_RSS_GROWTH
        ),
        "|---:|---:|---:|---:|---|",
        f"| {m['rss_start_mb']:.1f} MiB | {m['rss_a_mb']:.1f} MiB | {m['rss_b_mb']:.1f} MiB | "
        f"{growth:.3f} | {_ok(growth <= TARGET_RSS_GROWTH)} |",
    ]


def _cache(results: dict[str, Any]) -> list[str]:
    cache = results.get("cache") or {}
    if not cache:
        return []
    out = [
        "",
        "## Response cache at concurrency 1 (non-streaming)",
        "",
        "hit: the same `temperature: 0` request repeated (`x-gateway-cache: hit`);"
        " uncached: the ordinary request (`x-gateway-cache: bypass`, goes upstream).",
        "",
        "| state | path | req/s | p50 ms | p99 ms |",
        "|---|---|---:|---:|---:|",
    ]
    for backend, paths in cache.items():
        if "skipped" in paths:
            out.append(f"| {backend} | skipped: {paths['skipped']} | | | |")
            continue
        for path in ("hit", "uncached"):
            r = paths[path]
            out.append(
                f"| {backend} | {path} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |"
            )
    return out


def _limits(results: dict[str, Any]) -> list[str]:
    limits = results.get("limits") or {}
    if not limits:
        return []
    out = [
        "",
        "## Limits, budget and spend with Redis (concurrency 1, non-streaming, uncached)",
        "",
    ]
    if "skipped" in limits:
        return [*out, f"skipped: {limits['skipped']}"]
    added = limits["added_p50_ms"]
    out += [
        "Two keys in a fresh Redis database: `limited` (rpm, tpm and a team budget, never"
        " reached) and `plain` (none); the same request alternately, cell by cell; best"
        " cell of each. Target: ≤ 0.3 ms added at p50.",
        "",
        "| key | req/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
    ]
    for name in ("plain", "limited"):
        r = limits[name]
        out.append(f"| {name} | {r['rps']:,.0f} | {r['p50_ms']:.3f} | {r['p99_ms']:.2f} |")
    out += [
        "",
        f"Added by limits + budget + spend: **{added:+.3f} ms** p50 (best cells);"
        f" median over rounds {limits['added_median_of_rounds_ms']:+.3f} ms;"
        f" target ≤ 0.3 ms: {'met' if added <= 0.3 else '**missed**'}.",
    ]
    return out


def _profile(results: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for mode, profile in (results.get("profile") or {}).items():
        out += _one_profile(_mode(mode), profile)
    return out


def _one_profile(mode: str, profile: dict[str, Any]) -> list[str]:
    if "skipped" in profile:
        return ["", f"## Profile ({mode})", "", f"skipped: {profile['skipped']}"]
    load = profile["load_while_sampling"]
    out = [
        "",
        f"## Where the gateway spends its time ({mode}, concurrency 10; py-spy,"
        f" {profile['samples']:,} samples, idle excluded; {load['rps']:,.0f} req/s while sampled)",
        "",
        "| # | own % | inclusive % | function (file) |",
        "|---:|---:|---:|---|",
    ]
    for i, row in enumerate(profile["top_own"], 1):
        out.append(
            f"| {i} | {row['own_pct']:.1f} | {row['inclusive_pct']:.1f} | `{row['function']}` |"
        )
    packages = ", ".join(
        f"{row['package']} {row['own_pct']:.0f} %" for row in profile["own_by_package"][:10]
    )
    out += ["", f"Own time by package: {packages}.", "", "Inclusive time of gateway functions:", ""]
    out += ["| inclusive % | function |", "|---:|---|"]
    for row in profile["gateway_inclusive"]:
        out.append(f"| {row['inclusive_pct']:.1f} | `{row['function']}` |")
    return out
