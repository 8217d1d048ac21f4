#!/usr/bin/env python3
"""Benchmark beacon serve against its peers (Go, Python, nginx ceiling) on loopback with wrk.

Prints one table: req/s, p50 and p99 latency per endpoint and connection count,
RSS idle and under load, start-to-ready time, binary size. Every target runs in the
same invocation on the same machine, so the figures compare side by side.

CPU: on this 2-core machine the server under test is pinned to CPU 0 and wrk to
CPU 1 (taskset), so every target gets the same single core and the load generator
never steals it. Pass --no-pin to let them share both cores.
"""

import argparse
import datetime
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import targets  # noqa: E402  (bench/targets.py: how each server is built and started)


def ensure_tools():
    missing = [pkg for tool, pkg in (("wrk", "wrk"), ("taskset", "util-linux")) if not shutil.which(tool)]
    if missing:
        print(f"installing {' '.join(missing)} (Debian)", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, stdout=subprocess.DEVNULL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(port, path="/healthz"):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n".encode())
            head = s.recv(32)
            return int(head[9:12]) if head.startswith(b"HTTP/1.") else None
    except OSError:
        return None


def visits_count(port, path):
    """The target's own visit count ({"visits": N} from its visits_path)."""
    import json
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return int(json.load(r)["visits"])


def tree_pids(pid):
    """The process and its descendants (gunicorn has workers)."""
    pids, frontier = [pid], [pid]
    while frontier:
        p = frontier.pop()
        try:
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        for c in map(int, children):
            pids.append(c)
            frontier.append(c)
    return pids


def rss_kib(pid):
    total = 0
    for p in tree_pids(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


class RssSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.1)


LAT_RE = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def to_ms(value, unit):
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def run_wrk(port, path, conns, seconds, pin):
    cmd = ["wrk", "-t", str(min(conns, 2)), "-c", str(conns), "-d", f"{seconds}s", "--latency", f"http://127.0.0.1:{port}{path}"]
    if pin:
        cmd = ["taskset", "-c", "1", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    done = int(re.search(r"(\d+) requests in", out).group(1))
    lat = {p: to_ms(v, u) for p, v, u in LAT_RE.findall(out)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "done": done, "p50": lat.get("50"), "p99": lat.get("99"),
            "non2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": socket_errors.group(1) if socket_errors else ""}


def measure(target, args):
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix=f"bench-{target.name}-"))
    cmd, env = target.command(port, work)
    if not args.no_pin:
        cmd = ["taskset", "-c", "0", *cmd]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        while http_status(port, target.ready_path) != 200:
            if proc.poll() is not None:
                raise RuntimeError(f"{target.name} exited with {proc.returncode} before it was ready")
            if time.perf_counter() - t0 > 30:
                raise RuntimeError(f"{target.name} not ready within 30 s")
            time.sleep(0.0005)
        ready_ms = (time.perf_counter() - t0) * 1e3
        time.sleep(1.0)
        idle = rss_kib(proc.pid)
        load = load_average().split()[0]
        sampler = RssSampler(proc.pid)
        sampler.start()
        rows = []
        visits = None
        for path in target.paths:
            for conns in args.connections:
                r = run_wrk(port, path, conns, args.seconds, not args.no_pin)
                rows.append({"path": path, "conns": conns, **r})
                print(f"  {target.name:<14} {path:<9} c={conns:<3} {r['rps']:>10.0f} req/s  p50 {r['p50']:.3f} ms  p99 {r['p99']:.3f} ms",
                      file=sys.stderr)
            if path == "/" and getattr(target, "visits_path", None):
                # Every answered visit must be counted (the server may count a few more: requests
                # still in flight when wrk stopped are served but not tallied by wrk).
                answered = sum(r["done"] for r in rows if r["path"] == "/")
                visits = {"answered": answered, "counted": visits_count(port, target.visits_path)}
        sampler.stop.set()
        sampler.join()
        return {"name": target.name, "durability": target.durability, "ready_ms": ready_ms, "idle_kib": idle,
                "load_kib": sampler.peak, "size": target.size(), "rows": rows, "visits": visits,
                "load": load}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)


def load_average():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def fmt_size(n):
    return "-" if n is None else f"{n / 1048576:.1f} MiB"


def report(results, args):
    lines = []
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), "?")
    lines.append(f"beacon bench — {now} — {platform.node()}, {os.cpu_count()} cores ({cpu}), "
                 f"{'server pinned to CPU 0, wrk to CPU 1' if not args.no_pin else 'no pinning: server and wrk share the cores'}, "
                 f"{args.seconds}s per run, load average {args.load_before} before / {load_average()} after")
    lines.append("")
    lines.append("| target | durability | endpoint | conns | req/s | p50 ms | p99 ms | errors |")
    lines.append("|---|---|---|---:|---:|---:|---:|---|")
    for res in results:
        for r in res["rows"]:
            errs = ", ".join(x for x in (f"{r['non2xx']} non-2xx" if r["non2xx"] else "", r["socket_errors"]) if x) or "-"
            lines.append(f"| {res['name']} | {res['durability']} | `{r['path']}` | {r['conns']} | {r['rps']:.0f} | {r['p50']:.3f} | {r['p99']:.3f} | {errs} |")
    lines.append("")
    lines.append("| target | durability | start-to-ready ms | RSS idle | RSS under load | binary/image size | visits answered / counted | load avg at start |")
    lines.append("|---|---|---:|---:|---:|---:|---|---:|")
    for res in results:
        v = res["visits"]
        vis = "-" if v is None else f"{v['answered']} / {v['counted']}" + (" **LOST**" if v["counted"] < v["answered"] else "")
        lines.append(f"| {res['name']} | {res['durability']} | {res['ready_ms']:.1f} | {res['idle_kib'] / 1024:.1f} MiB | "
                     f"{res['load_kib'] / 1024:.1f} MiB | {fmt_size(res['size'])} | {vis} | {res['load']} |")
    base = next((r for r in results if r["name"] == "beacon"), None)
    others = [r for r in results if r is not base]
    if base and others:
        lines.append("")
        lines.append("Ratios beacon / peer: req/s (above 1: beacon serves more), p99 (below 1: beacon answers sooner); "
                     "RSS and start-to-ready beacon / peer (below 1: beacon smaller, faster):")
        lines.append("")
        lines.append("| peer | endpoint | conns | req/s ratio | p99 ratio |")
        lines.append("|---|---|---:|---:|---:|")
        for peer in others:
            for r in peer["rows"]:
                b = next((x for x in base["rows"] if x["path"] == r["path"] and x["conns"] == r["conns"]), None)
                if b and r["rps"]:
                    p99 = f"{b['p99'] / r['p99']:.2f}×" if b["p99"] and r["p99"] else "-"
                    lines.append(f"| {peer['name']} | `{r['path']}` | {r['conns']} | {b['rps'] / r['rps']:.2f}× | {p99} |")
            lines.append(f"| {peer['name']} | RSS idle | | {base['idle_kib'] / max(peer['idle_kib'], 1):.2f}× | |")
            lines.append(f"| {peer['name']} | RSS under load | | {base['load_kib'] / max(peer['load_kib'], 1):.2f}× | |")
            lines.append(f"| {peer['name']} | start-to-ready | | {base['ready_ms'] / max(peer['ready_ms'], 1e-3):.2f}× | |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short runs (under 2 minutes in all)")
    ap.add_argument("--targets", default=",".join(targets.ALL), help=f"comma-separated, from {','.join(targets.ALL)}")
    ap.add_argument("--seconds", type=int, help="duration of each wrk run (default 10, quick 2)")
    ap.add_argument("--connections", default="1,16,64")
    ap.add_argument("--no-pin", action="store_true", help="do not pin server and wrk to separate cores")
    ap.add_argument("--out", help="also write the table to this Markdown file")
    args = ap.parse_args()
    args.seconds = args.seconds or (2 if args.quick else 10)
    args.connections = [int(c) for c in args.connections.split(",")]
    if os.cpu_count() < 2:
        args.no_pin = True
    ensure_tools()
    start = time.perf_counter()
    names = args.targets.split(",")
    for name in names:  # build everything first, so no build overlaps a measurement
        print(f"building {name}", file=sys.stderr)
        targets.get(name).build()
    args.load_before = load_average()
    results = []
    for name in names:
        target = targets.get(name)
        print(f"measuring {name}", file=sys.stderr)
        t0 = time.perf_counter()
        results.append(measure(target, args))
        print(f"  {name} measured in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    print(f"bench took {time.perf_counter() - start:.0f} s", file=sys.stderr)
    table = report(results, args)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
