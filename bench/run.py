#!/usr/bin/env python3
"""Benchmark beacon serve against its peers (two Go, Python, nginx ceiling) on loopback with wrk.

Prints one report: req/s, p50 and p99 latency per endpoint and connection count,
RSS idle and under load, threads, start-to-ready time, binary size; the disk's
fdatasync latency distribution; and the same targets under a CPU quota (a cgroup),
with their CPU time and throttling. Every target runs in the same invocation on the
same machine, so the figures compare side by side.

CPU: on this 2-core machine the server under test is pinned to CPU 0 and wrk to
CPU 1 (taskset), so every target gets the same single core and the load generator
never steals it. Pass --no-pin to let them share both cores. Under a CPU quota the
server is not pinned (it sees every core, as in a pod on a node, and the quota caps
it); wrk stays on CPU 1.
"""

import argparse
import datetime
import os
import platform
import re
import shutil
import math
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.dont_write_bytecode = True  # no bench/__pycache__ in the work tree

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


def histograms(port, path, names):
    """Cumulative buckets {name: [(le, count), ...]} of the target's own Prometheus histograms."""
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        text = r.read().decode()
    out = {n: [] for n in names}
    for m in re.finditer(r'^(\w+)_bucket\{le="([^"]+)"\} (\S+)$', text, re.M):
        if m.group(1) in out:
            out[m.group(1)].append((float(m.group(2)), float(m.group(3))))
    return out


def bucket_quantile(q, before, after):
    """The q-quantile of the observations made between two scrapes of one histogram, interpolated
    linearly inside a bucket as PromQL's histogram_quantile does; None without observations."""
    buckets = [(le, a - b) for (le, a), (_, b) in zip(after, before)]
    total = buckets[-1][1] if buckets else 0
    if not total:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for le, cum in buckets:
        if cum >= rank:
            if math.isinf(le):
                return lower  # beyond the last finite bucket: its bound is all that is known
            return lower + (le - lower) * (rank - below) / max(cum - below, 1e-12)
        lower, below = le, cum
    return lower


tree_pids = targets.tree_pids
CLK_TCK = os.sysconf("SC_CLK_TCK")


def rss_kib(pid, field="VmRSS"):
    """Resident memory of the process tree: VmRSS, or its RssAnon part (heap, stacks, written pages)
    without RssFile (pages of the binary and libraries mapped from the page cache)."""
    total = 0
    for p in tree_pids(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(f"{field}:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def thread_count(pid):
    return len(targets.thread_names(pid))


def cpu_seconds(pid):
    """User + system CPU time of the process tree (every thread, live or ended, of each process)."""
    total = 0
    for p in tree_pids(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        except (OSError, IndexError):
            pass
    return total / CLK_TCK


class RssSampler(threading.Thread):
    """Peak RSS and thread count of the process tree, sampled every 100 ms."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.threads, self.stop = pid, 0, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            self.threads = max(self.threads, thread_count(self.pid))
            time.sleep(0.1)


class CpuLimit:
    """A cgroup with a CPU quota (CFS bandwidth), as a pod's CPU limit sets.

    cgroup v1 (this machine): the `cpu` controller's cpu.cfs_quota_us / cpu.cfs_period_us;
    cgroup v2: cpu.max. cpu.stat gives nr_periods, nr_throttled and the throttled time in both.
    """

    PERIOD_US = 100_000  # the kernel's default period, as the kubelet uses

    def __init__(self, name, cpus):
        self.cpus = cpus
        root, self.version = self.cpu_controller_root()
        self.path = root / f"beacon-bench-{os.getpid()}-{name}-{cpus:g}"
        self.path.mkdir()
        # CPU time of the whole group in ns: v2 has it in cpu.stat; v1 in the cpuacct controller,
        # which may be mounted apart from cpu (as here), so a twin group is made there.
        self.acct = None
        if self.version == 1:
            acct_root = self.controller_mount("cpuacct")
            if acct_root is not None and acct_root != root:
                self.acct = acct_root / self.path.name
                self.acct.mkdir()
        quota = int(cpus * self.PERIOD_US)
        if self.version == 1:
            (self.path / "cpu.cfs_period_us").write_text(str(self.PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            (self.path / "cpu.max").write_text(f"{quota} {self.PERIOD_US}")

    @staticmethod
    def controller_mount(controller):
        """Where the cgroup v1 hierarchy holding `controller` is mounted, if any."""
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] == "cgroup" and controller in fields[sep + 3].split(","):
                return Path(fields[4])
        return None

    @classmethod
    def cpu_controller_root(cls):
        v1 = cls.controller_mount("cpu")
        if v1 is not None:
            return v1, 1
        v2 = None
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            sep = fields.index("-")
            mount = Path(fields[4])
            if fields[sep + 1] == "cgroup2" and "cpu" in (mount / "cgroup.controllers").read_text().split():
                v2 = mount
        if v2 is None:
            raise SystemExit("no cgroup cpu controller (v1 cpu or v2 with cpu); run with --cpu-limits ''")
        control = v2 / "cgroup.subtree_control"
        if "cpu" not in control.read_text().split():
            control.write_text("+cpu")  # children of the root get the cpu controller
        return v2, 2

    def enter(self):
        """Moves the calling process into the group (run in the child before exec: threads and children follow)."""
        (self.path / "cgroup.procs").write_text("0")
        if self.acct is not None:
            (self.acct / "cgroup.procs").write_text("0")

    def stat(self):
        raw = dict(line.split() for line in (self.path / "cpu.stat").read_text().splitlines())
        throttled = int(raw["throttled_time"]) / 1e9 if "throttled_time" in raw else int(raw["throttled_usec"]) / 1e6
        if "usage_usec" in raw:
            usage = int(raw["usage_usec"]) / 1e6
        elif self.acct is not None:
            usage = int((self.acct / "cpuacct.usage").read_text()) / 1e9
        elif (self.path / "cpuacct.usage").exists():  # cpu and cpuacct mounted together
            usage = int((self.path / "cpuacct.usage").read_text()) / 1e9
        else:
            usage = None
        return {"periods": int(raw["nr_periods"]), "throttled": int(raw["nr_throttled"]), "throttled_s": throttled,
                "usage_s": usage}

    def remove(self):
        for path in (self.path, self.acct):
            for _ in range(50 if path else 0):  # the group empties once the killed processes are reaped
                try:
                    path.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


def fdatasync_probe(seconds):
    """The disk's fdatasync latency with the store's pattern: an 8192-byte file, a 32-byte slot written
    alternately at offset 0 and 4096 (pwrite), then fdatasync; each sample times write + sync."""
    work = Path(tempfile.mkdtemp(prefix="bench-fdatasync-"))  # where the targets' data dirs live
    try:
        fd = os.open(work / "visits.db", os.O_RDWR | os.O_CREAT, 0o644)
        os.ftruncate(fd, 8192)
        os.fsync(fd)
        samples, gen, end = [], 0, time.perf_counter() + seconds
        slot = bytearray(32)
        while time.perf_counter() < end:
            gen += 1
            struct.pack_into("<8sQQ", slot, 0, b"BCNVIS01", gen, gen)
            struct.pack_into("<I", slot, 24, zlib.crc32(slot[:24]))
            t0 = time.perf_counter_ns()
            os.pwrite(fd, slot, (gen % 2) * 4096)
            os.fdatasync(fd)
            samples.append((time.perf_counter_ns() - t0) / 1e6)
        os.close(fd)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    samples.sort()
    pct = lambda q: samples[max(0, math.ceil(q * len(samples)) - 1)]  # noqa: E731
    return {"n": len(samples), "mean": sum(samples) / len(samples), "p50": pct(0.50), "p90": pct(0.90),
            "p99": pct(0.99), "max": samples[-1], "load": load_average().split()[0]}


LAT_RE = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def to_ms(value, unit):
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def run_wrk(port, path, conns, seconds, pin):
    # Pinned to one core, wrk runs one thread: a second one only takes turns with the first, and a
    # response arriving while its thread waits for the core is timed late (p99s of ~4 ms at 16 and
    # 64 connections that a single thread does not show, whatever the server).
    threads = 1 if pin else min(conns, 2)
    cmd = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s", "--latency", f"http://127.0.0.1:{port}{path}"]
    if pin:
        cmd = ["taskset", "-c", str(os.cpu_count() - 1), *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    done = int(re.search(r"(\d+) requests in", out).group(1))
    lat = {p: to_ms(v, u) for p, v, u in LAT_RE.findall(out)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "done": done, "p50": lat.get("50"), "p99": lat.get("99"),
            "non2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": socket_errors.group(1) if socket_errors else ""}


class Server:
    def __init__(self, proc, port, work, ready_ms):
        self.proc, self.port, self.work, self.ready_ms = proc, port, work, ready_ms


@contextmanager
def running(target, pin_cpu=None, cgroup=None):
    """Starts the target (pinned to one CPU, or in a CPU-limited cgroup), waits until ready, stops it after."""
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix=f"bench-{target.name}-"))
    cmd, env = target.command(port, work)
    if pin_cpu is not None:
        cmd = ["taskset", "-c", str(pin_cpu), *cmd]
    t0 = time.perf_counter()
    with open(work / "stderr.log", "wb") as stderr:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=work, stdout=subprocess.DEVNULL, stderr=stderr,
                                start_new_session=True, preexec_fn=cgroup.enter if cgroup else None)
    try:
        while http_status(port, target.ready_path) != 200:
            if proc.poll() is not None:
                raise RuntimeError(f"{target.name} exited with {proc.returncode} before it was ready")
            if time.perf_counter() - t0 > 30:
                raise RuntimeError(f"{target.name} not ready within 30 s")
            time.sleep(0.0005)
        yield Server(proc, port, work, (time.perf_counter() - t0) * 1e3)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def measure(target, args):
    with running(target, pin_cpu=None if args.no_pin else 0) as srv:
        pid = srv.proc.pid
        time.sleep(1.0)
        idle = rss_kib(pid)
        idle_anon = rss_kib(pid, "RssAnon")
        idle_threads = thread_count(pid)
        parallelism = target.parallelism(pid, srv.work)
        load = load_average().split()[0]
        # The disk's flush time moves with what else writes to it (a colleague's build): a short
        # probe right before this target's runs, so its `/` compares with the disk it had.
        disk = fdatasync_probe(args.target_probe_seconds) if args.target_probe_seconds else None
        sampler = RssSampler(pid)
        sampler.start()
        rows = []
        visits = None
        durability = getattr(target, "durability_histograms", None)
        for path in target.paths:
            for conns in args.connections:
                # The server's own account of a visit's wait (beacon exports it): the commit wait is
                # the part of `/`'s latency that durability costs, the rest being the queue for the core.
                before = histograms(srv.port, "/metrics", durability) if durability and path == "/" else None
                r = run_wrk(srv.port, path, conns, args.seconds, not args.no_pin)
                if before:
                    after = histograms(srv.port, "/metrics", durability)
                    r["server"] = {n: bucket_quantile(0.99, before[n], after[n]) for n in durability}
                rows.append({"path": path, "conns": conns, **r})
                print(f"  {target.name:<16} {path:<9} c={conns:<3} {r['rps']:>10.0f} req/s  p50 {r['p50']:.3f} ms  p99 {r['p99']:.3f} ms",
                      file=sys.stderr)
            if path == "/" and getattr(target, "visits_path", None):
                # Every answered visit must be counted (the server may count a few more: requests
                # still in flight when wrk stopped are served but not tallied by wrk).
                answered = sum(r["done"] for r in rows if r["path"] == "/")
                visits = {"answered": answered, "counted": visits_count(srv.port, target.visits_path)}
        sampler.stop.set()
        sampler.join()
        return {"name": target.name, "durability": target.durability, "ready_ms": srv.ready_ms, "idle_kib": idle, "idle_anon_kib": idle_anon,
                "load_kib": sampler.peak, "size": target.size(), "rows": rows, "visits": visits,
                "load": load, "threads": (idle_threads, max(sampler.threads, idle_threads)), "parallelism": parallelism,
                "disk": disk}


def median_round(runs):
    """One target's rounds folded into one result: per endpoint and connection count, the round with
    the median req/s (its p50/p99 and server figures with it, so a row is one real run), and the
    req/s of every round for the spread; the idle figures and the disk probe of the median round by
    idle RSS; peaks (RSS and threads under load) over all rounds."""
    if len(runs) == 1:
        return runs[0]
    by_rss = sorted(runs, key=lambda r: r["idle_kib"])
    res = dict(by_rss[(len(runs) - 1) // 2])
    rows = []
    for i, row in enumerate(runs[0]["rows"]):
        candidates = sorted((run["rows"][i] for run in runs), key=lambda r: r["rps"])
        rows.append({**candidates[(len(candidates) - 1) // 2], "rounds": [r["rps"] for r in candidates]})
    res["rows"] = rows
    res["load_kib"] = max(r["load_kib"] for r in runs)
    res["threads"] = (res["threads"][0], max(r["threads"][1] for r in runs))
    res["load"] = "/".join(r["load"] for r in runs)
    visits = [r["visits"] for r in runs if r["visits"]]
    if visits:  # LOST in any round must show
        res["visits"] = min(visits, key=lambda v: v["counted"] - v["answered"])
    return res


def measure_limited(target, cpus, args):
    """The target in a cgroup with a CPU quota of `cpus`: `/` and `/healthz`, CPU time and throttling per run."""
    cgroup = CpuLimit(target.name, cpus)
    try:
        with running(target, cgroup=cgroup) as srv:
            pid = srv.proc.pid
            time.sleep(1.0)
            idle_threads = thread_count(pid)
            parallelism = target.parallelism(pid, srv.work)
            sampler = RssSampler(pid)
            sampler.start()
            rows = []
            for path in ("/", "/healthz"):
                for conns in args.cpu_connections:
                    load = load_average().split()[0]
                    stat0, cpu0 = cgroup.stat(), cpu_seconds(pid)
                    r = run_wrk(srv.port, path, conns, args.seconds, not args.no_pin)
                    stat1, cpu1 = cgroup.stat(), cpu_seconds(pid)
                    # The group's own accounting (ns) when there is one, else /proc ticks (10 ms).
                    cpu = stat1["usage_s"] - stat0["usage_s"] if stat0["usage_s"] is not None else cpu1 - cpu0
                    row = {"path": path, "conns": conns, **r, "cpu_s": cpu, "per_cpu_s": r["done"] / cpu if cpu else None,
                           "periods": stat1["periods"] - stat0["periods"], "throttled": stat1["throttled"] - stat0["throttled"],
                           "throttled_s": stat1["throttled_s"] - stat0["throttled_s"], "load": load}
                    rows.append(row)
                    print(f"  {target.name:<16} {cpus:g} CPU {path:<9} c={conns:<3} {r['rps']:>8.0f} req/s  p99 {r['p99']:.3f} ms  "
                          f"cpu {cpu:.2f} s  {row['per_cpu_s'] or 0:.0f} req/CPU-s  throttled {row['throttled']}/{row['periods']} "
                          f"({row['throttled_s']:.2f} s)", file=sys.stderr)
            sampler.stop.set()
            sampler.join()
        return {"name": target.name, "cpus": cpus, "rows": rows, "threads": (idle_threads, max(sampler.threads, idle_threads)),
                "parallelism": parallelism}
    finally:
        cgroup.remove()


def load_average():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def fmt_size(n):
    return "-" if n is None else f"{n / 1048576:.1f} MiB"


def fmt_probe(label, pr):
    return (f"| {label} | {pr['n']} | {pr['mean']:.3f} | {pr['p50']:.3f} | {pr['p90']:.3f} | {pr['p99']:.3f} | {pr['max']:.3f} | "
            f"{pr['load']} |")


def same_row(rows, row):
    """The row of `rows` for the same endpoint and connection count as `row`, if any."""
    return next((x for x in rows if x["path"] == row["path"] and x["conns"] == row["conns"]), None)


def report(results, limited, probes, args):
    lines = []
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), "?")
    lines.append(f"beacon bench — {now} — {platform.node()}, {os.cpu_count()} cores ({cpu}), "
                 f"{'server pinned to CPU 0, wrk to CPU 1' if not args.no_pin else 'no pinning: server and wrk share the cores'}, "
                 f"{args.seconds}s per run, load average {args.load_before} before / {load_average()} after")
    disk_rows = [(f"before {r['name']}", r["disk"]) for r in results if r.get("disk")]
    if probes or disk_rows:
        lines.append("")
        lines.append("fdatasync of this disk (the store's pattern: 32-byte pwrite alternately at 0 / 4096 of an 8 KiB file, "
                     "then fdatasync; each sample is write + sync):")
        lines.append("")
        lines.append("| probe | samples | mean ms | p50 ms | p90 ms | p99 ms | max ms | load avg |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for label, pr in probes[:1] + disk_rows + probes[1:]:
            lines.append(fmt_probe(label, pr))
    lines.append("")
    spread = args.rounds > 1
    if spread:
        lines.append(f"Each target measured {args.rounds} times, round-robin; each row is the round with the median "
                     "req/s, the last column the req/s of every round (sorted):")
        lines.append("")
    lines.append("| target | durability | endpoint | conns | req/s | p50 ms | p99 ms | errors |" + (" req/s of the rounds |" if spread else ""))
    lines.append("|---|---|---|---:|---:|---:|---:|---|" + ("---|" if spread else ""))
    for res in results:
        for r in res["rows"]:
            errs = ", ".join(x for x in (f"{r['non2xx']} non-2xx" if r["non2xx"] else "", r["socket_errors"]) if x) or "-"
            every = (" " + " / ".join(f"{x:.0f}" for x in r["rounds"]) + " |") if spread else ""
            lines.append(f"| {res['name']} | {res['durability']} | `{r['path']}` | {r['conns']} | {r['rps']:.0f} | {r['p50']:.3f} | {r['p99']:.3f} | {errs} |" + every)
    lines.append("")
    lines.append("| target | durability | start-to-ready ms | RSS idle (anon) | RSS under load | threads idle / under load | runtime sizing | binary/image size | visits answered / counted | load avg at start |")
    lines.append("|---|---|---:|---:|---:|---:|---|---:|---|---:|")
    for res in results:
        v = res["visits"]
        vis = "-" if v is None else f"{v['answered']} / {v['counted']}" + (" **LOST**" if v["counted"] < v["answered"] else "")
        lines.append(f"| {res['name']} | {res['durability']} | {res['ready_ms']:.1f} | {res['idle_kib'] / 1024:.1f} MiB ({res['idle_anon_kib'] / 1024:.1f}) | "
                     f"{res['load_kib'] / 1024:.1f} MiB | {res['threads'][0]} / {res['threads'][1]} | {res['parallelism']} | "
                     f"{fmt_size(res['size'])} | {vis} | {res['load']} |")
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
                b = same_row(base["rows"], r)
                if b and r["rps"]:
                    p99 = f"{b['p99'] / r['p99']:.2f}×" if b["p99"] and r["p99"] else "-"
                    lines.append(f"| {peer['name']} | `{r['path']}` | {r['conns']} | {b['rps'] / r['rps']:.2f}× | {p99} |")
            lines.append(f"| {peer['name']} | RSS idle | | {base['idle_kib'] / max(peer['idle_kib'], 1):.2f}× | |")
            lines.append(f"| {peer['name']} | RSS under load | | {base['load_kib'] / max(peer['load_kib'], 1):.2f}× | |")
            lines.append(f"| {peer['name']} | start-to-ready | | {base['ready_ms'] / max(peer['ready_ms'], 1e-3):.2f}× | |")
    durable = [r for r in results if r["durability"].startswith("fdatasync") and r.get("disk")]
    if durable:
        lines.append("")
        lines.append(f"`/` p99 as a multiple of the disk's fdatasync, probed for {args.target_probe_seconds:g} s right before "
                     "each target's runs (same pattern as above); a group commit waits at most for the sync in progress "
                     "and its own:")
        lines.append("")
        lines.append("| target | fdatasync p50 / p99 ms (probe before its runs) | conns | `/` p50 ms | `/` p99 ms | "
                     "p99 × fdatasync p50 | p99 × fdatasync p99 | queue floor ms (conns ÷ req/s) | "
                     "server: sync p99 ms | server: commit wait p99 ms | commit wait p99 × fdatasync p99 |")
        lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for res in durable:
            pr = res["disk"]
            for r in res["rows"]:
                if r["path"] == "/":
                    srv = r.get("server") or {}
                    sync = srv.get("beacon_visits_sync_duration_seconds")
                    wait = srv.get("beacon_visits_commit_wait_seconds")
                    ms = (lambda v: f"{v * 1e3:.3f}" if v is not None else "-")
                    ratio = f"{wait * 1e3 / pr['p99']:.2f}×" if wait is not None else "-"
                    floor = r["conns"] / r["rps"] * 1e3 if r["rps"] else 0
                    lines.append(f"| {res['name']} | {pr['p50']:.3f} / {pr['p99']:.3f} | {r['conns']} | {r['p50']:.3f} | "
                                 f"{r['p99']:.3f} | {r['p99'] / pr['p50']:.2f}× | {r['p99'] / pr['p99']:.2f}× | {floor:.3f} | "
                                 f"{ms(sync)} | {ms(wait)} | {ratio} |")
        ceiling = next((res for res in results if res["name"] == "nginx"), None)
        if ceiling:
            lines.append("")
            lines.append("For scale, the p99 of nginx's fixed 200 (no disk, no count) in the same run: " + ", ".join(
                f"{r['p99']:.3f} ms at {r['conns']}" for r in ceiling["rows"] if r["path"] == "/") + " connections.")
    if limited:
        lines.append("")
        lines.append("Under a CPU quota (cgroup CFS bandwidth, period 100 ms; the server sees both cores, wrk on CPU 1). "
                     "CPU s: the server's CPU time over the run (the cgroup's accounting); req per CPU-s: requests answered / CPU s; "
                     "throttled: periods in which the quota ran out / periods, and the time the group stood throttled:")
        lines.append("")
        lines.append("| target | CPU limit | threads idle / under load | runtime sizing | endpoint | conns | req/s | p99 ms | CPU s | req per CPU-s | throttled periods | throttled s | load avg |")
        lines.append("|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for res in limited:
            for r in res["rows"]:
                per = f"{r['per_cpu_s']:.0f}" if r["per_cpu_s"] else "-"
                lines.append(f"| {res['name']} | {res['cpus']:g} | {res['threads'][0]} / {res['threads'][1]} | {res['parallelism']} | "
                             f"`{r['path']}` | {r['conns']} | {r['rps']:.0f} | {r['p99']:.3f} | {r['cpu_s']:.2f} | {per} | "
                             f"{r['throttled']} / {r['periods']} | {r['throttled_s']:.2f} | {r['load']} |")
        lbase = {res["cpus"]: res for res in limited if res["name"] == "beacon"}
        lpeers = [res for res in limited if res["name"] != "beacon" and res["cpus"] in lbase]
        if lpeers:
            lines.append("")
            lines.append("Ratios beacon / peer under the same quota: req/s and req per CPU-s (above 1: beacon ahead), p99 (below 1: beacon sooner):")
            lines.append("")
            lines.append("| peer | CPU limit | endpoint | conns | req/s ratio | req per CPU-s ratio | p99 ratio |")
            lines.append("|---|---:|---|---:|---:|---:|---:|")
            for peer in lpeers:
                for r in peer["rows"]:
                    b = same_row(lbase[peer["cpus"]]["rows"], r)
                    if b and r["rps"]:
                        per = f"{b['per_cpu_s'] / r['per_cpu_s']:.2f}×" if b["per_cpu_s"] and r["per_cpu_s"] else "-"
                        p99 = f"{b['p99'] / r['p99']:.2f}×" if b["p99"] and r["p99"] else "-"
                        lines.append(f"| {peer['name']} | {peer['cpus']:g} | `{r['path']}` | {r['conns']} | {b['rps'] / r['rps']:.2f}× | {per} | {p99} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short runs (2 s per wrk run)")
    ap.add_argument("--targets", default=",".join(targets.ALL), help=f"comma-separated, from {','.join(targets.ALL)}")
    ap.add_argument("--seconds", type=int, help="duration of each wrk run (default 10, quick 2)")
    ap.add_argument("--connections", default="1,16,64")
    ap.add_argument("--no-pin", action="store_true", help="do not pin server and wrk to separate cores")
    ap.add_argument("--cpu-limits", default="0.5,1",
                    help="CPU quotas (in CPUs) to run each target under, after the unlimited runs; '' to skip (needs root and a cgroup cpu controller)")
    ap.add_argument("--cpu-connections", default="64", help="connection counts for the CPU-limited runs")
    ap.add_argument("--probe-seconds", type=float, help="duration of the fdatasync probes before and after all targets (default 5, quick 2); 0 to skip")
    ap.add_argument("--target-probe-seconds", type=float, default=1.0,
                    help="duration of the fdatasync probe right before each target's runs (default 1); 0 to skip")
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure every target this many times, round-robin, and report each row's median round "
                         "with the req/s of all rounds (default 1)")
    ap.add_argument("--out", help="also write the report to this Markdown file")
    args = ap.parse_args()
    args.seconds = args.seconds or (2 if args.quick else 10)
    args.connections = [int(c) for c in args.connections.split(",")]
    args.cpu_limits = [float(c) for c in args.cpu_limits.split(",") if c]
    args.cpu_connections = [int(c) for c in args.cpu_connections.split(",")]
    if args.probe_seconds is None:
        args.probe_seconds = 2 if args.quick else 5
    if os.cpu_count() < 2:
        args.no_pin = True
    ensure_tools()
    start = time.perf_counter()
    names = args.targets.split(",")
    chosen = [targets.get(name) for name in names]  # unknown names fail before anything is built
    for target in chosen:  # build everything first, so no build overlaps a measurement
        print(f"building {target.name}", file=sys.stderr)
        target.build()
    args.load_before = load_average()
    probes = []
    if args.probe_seconds:
        probes.append(("before the targets", fdatasync_probe(args.probe_seconds)))
        print(f"  fdatasync probe: p50 {probes[-1][1]['p50']:.3f} ms  p99 {probes[-1][1]['p99']:.3f} ms", file=sys.stderr)
    rounds = {target.name: [] for target in chosen}
    for n in range(1, args.rounds + 1):
        # Round-robin, so a burst of load from elsewhere on the host falls on one round of every
        # target rather than on all rounds of one.
        for target in chosen:
            print(f"measuring {target.name}" + (f" (round {n} of {args.rounds})" if args.rounds > 1 else ""), file=sys.stderr)
            t0 = time.perf_counter()
            rounds[target.name].append(measure(target, args))
            print(f"  {target.name} measured in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    results = [median_round(rounds[target.name]) for target in chosen]
    limited = []
    for cpus in args.cpu_limits:
        for target in chosen:
            print(f"measuring {target.name} under a quota of {cpus:g} CPU", file=sys.stderr)
            limited.append(measure_limited(target, cpus, args))
    if args.probe_seconds:
        probes.append(("after the targets", fdatasync_probe(args.probe_seconds)))
        print(f"  fdatasync probe: p50 {probes[-1][1]['p50']:.3f} ms  p99 {probes[-1][1]['p99']:.3f} ms", file=sys.stderr)
    print(f"bench took {time.perf_counter() - start:.0f} s", file=sys.stderr)
    table = report(results, limited, probes, args)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
