"""`scripts/local-stack --demo`: an incident rehearsal on the local stack, start to finish.

  1. bounded traffic on the pods' own addresses: beacon-0 the most, beacon-1 some, beacon-2 none;
  2. faults on in beacon-1 through a kubelet-style ConfigMap update (`..data` swap in every pod's
     config volume): half its requests answered 503, all delayed 600-900 ms;
  3. beacon-2's container crashes (SIGKILL) and is restarted once BeaconPodDown is delivered;
  4. waits until the page-level SLO burn-rate alerts BeaconAvailabilityFastBurn and
     BeaconLatencyFastBurn (one pod in three failing half its requests and delaying all of them
     burns both budgets far beyond 14.4x) and BeaconPodDown fired in Prometheus and were
     delivered to the webhook, then writes `beacon report` as <state>/report.json and
     <state>/report.html;
  5. faults off (another ConfigMap update), waits until every alert resolved and the
     resolution was delivered;
  6. prints a summary, writes it to <state>/demo.json, and returns 0 only if all six questions
     had data and every alert round-tripped.

The rules are the chart's own, rendered with RULE_VALUES (a short `for:` and SLO windows of
seconds and minutes), so the whole rehearsal takes a few minutes instead of hours.
"""

import http.client
import json
import math
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

# The SLOs keep their default objectives (99.9% available, 99% within 0.5s); their windows shrink
# from hours and days to seconds and minutes (each still at least 5 scrape intervals), so a page
# fires within seconds of the fault and resolves within half a minute of its end. Strings are
# passed to helm with --set, anything else as JSON (--set-json).
RULE_VALUES = {
    "prometheusRule.for.BeaconPodDown": "10s",
    "prometheusRule.slo.period": "1h",
    "prometheusRule.slo.fastBurn": [{"factor": 14.4, "long": "1m", "short": "10s"},
                                    {"factor": 6, "long": "3m", "short": "20s"}],
    "prometheusRule.slo.slowBurn": [{"factor": 3, "long": "5m", "short": "30s"},
                                    {"factor": 1, "long": "15m", "short": "1m"}],
}
RATE_WINDOW = "1m"
FAULTY = 1  # ordinal of the pod that misbehaves
CRASHING = 2  # ordinal of the pod whose container crashes once
FAULTS = {"pods": {str(FAULTY): {"errorRatio": 0.5, "errorStatus": 503, "latency": {"min": "600ms", "max": "900ms"}}}}
# Requests per second and concurrent clients per ordinal: beacon-0 clearly busiest, beacon-2 idlest.
TRAFFIC = {0: (50, 2), 1: (15, 12)}
EXPECTED = [  # (alert, pod label or None for namespace-wide alerts)
    ("BeaconPodDown", f"beacon-{CRASHING}"),
    ("BeaconAvailabilityFastBurn", None),
    ("BeaconLatencyFastBurn", None),
]
MAX_SECONDS = 540  # every wait and the traffic itself end by then


class Clock:
    def __init__(self):
        self.t0 = time.monotonic()
        self.wall0 = time.time()

    def now(self):
        return time.monotonic() - self.t0

    def say(self, msg):
        print(f"demo [{self.now():6.1f}s] {msg}", flush=True)


class Traffic:
    """Paced GETs of / on one pod, count- and time-limited; counts answers by status."""

    def __init__(self, url, rate, workers, deadline, stop):
        self.url = urllib.parse.urlsplit(url)
        self.interval = workers / rate  # per worker
        self.limit = int(rate * MAX_SECONDS)
        self.deadline = deadline
        self.stop = stop
        self.statuses = {}
        self.sent = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.worker, daemon=True) for _ in range(workers)]
        for t in self.threads:
            t.start()

    def worker(self):
        conn = None
        next_at = time.monotonic()
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            with self.lock:
                if self.sent >= self.limit:
                    return
                self.sent += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=10)
                conn.request("GET", "/")
                r = conn.getresponse()
                r.read()
                status = r.status
            except (OSError, http.client.HTTPException):
                status = "error"
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.2)  # a crashed pod refuses connections: do not spin
            with self.lock:
                self.statuses[status] = self.statuses.get(status, 0) + 1
            next_at += self.interval
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at = max(next_at, time.monotonic() - self.interval)

    def join(self):
        for t in self.threads:
            t.join(15)


def get_json(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def prom_alerts(stack):
    """Prometheus's alerts, or None when it did not answer (never "no alerts": that would
    count as resolved)."""
    try:
        return get_json(f"{stack.info['prometheus']}/api/v1/alerts")["data"]["alerts"]
    except (OSError, ValueError, KeyError):
        return None


def all_ready(stack):
    """Whether Prometheus has every beacon container ready (kube-state-metrics)."""
    query = urllib.parse.urlencode({"query": 'min(kube_pod_container_status_ready{namespace="default", container="beacon"})'})
    try:
        result = get_json(f"{stack.info['prometheus']}/api/v1/query?{query}")["data"]["result"]
    except (OSError, ValueError, KeyError):
        return False
    return bool(result) and result[0]["value"][1] == "1"


def matches(labels, name, pod):
    return labels.get("alertname") == name and (pod is None or labels.get("pod") == pod)


def delivered(stack, name, pod, status):
    """The first webhook delivery of `name` with `status`, as (received_at, alert)."""
    path = Path(stack.info["webhook_log"])
    for line in path.read_text().splitlines() if path.exists() else []:
        entry = json.loads(line)
        for a in entry["payload"].get("alerts", []):
            if matches(a["labels"], name, pod) and a["status"] == status:
                return entry["received_at"], a
    return None


def wait(clock, what, cond, until, stop):
    while not stop.is_set():
        v = cond()
        if v:
            return v
        if clock.now() > until:
            clock.say(f"gave up waiting for {what}")
            return None
        time.sleep(0.5)


def publish_config(stack, generation, config):
    """The kubelet's ConfigMap update, in every pod's volume (the ConfigMap is shared)."""
    stack.publish_config({**stack.config_files, "config.json": json.dumps(config, indent=2) + "\n"}, generation)


def page_shows_faults(url):
    try:
        with urllib.request.urlopen(f"{url}/", timeout=5) as r:
            return b"Fault injection is on" in r.read()
    except urllib.error.HTTPError as e:  # an injected 503 also proves the faults are on
        return e.code == 503
    except OSError:
        return False


def questions_answered(report):
    """Each of the six questions has data (the inventory is checked by the e2e test)."""
    d = {k: report[k]["data"] for k in ("workload", "pod_cpu", "nodes", "kubelets", "network", "alerts")}
    return {
        "1 workload CPU and memory": any(p["cpu"]["avg"] is not None and p["memory"]["avg"] is not None for p in d["workload"]["pods"]),
        "2 busiest and idlest pods": bool(d["pod_cpu"]["ranking"]) and d["pod_cpu"]["most"] is not None,
        "3 node memory and CPU": any(n["cores"] and n["memory_total_bytes"] for n in d["nodes"]),
        "4 pods and containers per kubelet": any(n["pods"] and n["containers"] for n in d["kubelets"]["nodes"]),
        "5 network per pod": any((p["receive"]["avg"] or 0) > 0 and (p["transmit"]["avg"] or 0) > 0 for p in d["network"]),
        "6 active alerts": bool(d["alerts"]["prometheus"]),
    }


def run_report(stack, clock, beacon, out, fmt, since):
    range_s = max(60, math.ceil(time.time() - since) + 5)
    cmd = [beacon, "report", "--prometheus", stack.info["prometheus"], "--alertmanager", stack.info["alertmanager"],
           "--namespace", "default", "--statefulset", "beacon", "--range", f"{range_s}s", "--step", "5s",
           "--rate-window", RATE_WINDOW, "--format", fmt, "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        clock.say(f"beacon report --format {fmt} failed ({r.returncode}): {r.stderr.strip()}")
    return r.returncode == 0


def run(stack, stop):
    clock = Clock()
    state = Path(stack.info["state_dir"])
    beacon = str(Path(stack.args.beacon).resolve())
    base_config = json.loads(stack.config_files["config.json"])
    deadline = time.monotonic() + MAX_SECONDS
    summary = {"rule_values": RULE_VALUES, "faults": FAULTS, "faulty_pod": f"beacon-{FAULTY}",
               "crashing_pod": f"beacon-{CRASHING}", "stack_started": stack.started_at, "events": {}}
    ev = summary["events"]

    def mark(name):
        ev[name] = round(clock.now(), 1)

    clock.say(f"rules rendered from the chart with {RULE_VALUES}")
    if not stack.networks:
        clock.say("warning: no network namespace per pod (needs root and iproute2): question 5 will have no data")
    traffic = {}
    for n, (rate, workers) in TRAFFIC.items():
        traffic[n] = Traffic(stack.records[n].url, rate, workers, deadline, stop)
    busiest = max(TRAFFIC, key=lambda n: TRAFFIC[n][0])
    idlest = next(n for n in range(len(stack.records)) if n not in TRAFFIC)
    summary["driven_hardest"], summary["driven_least"] = f"beacon-{busiest}", f"beacon-{idlest}"
    clock.say("traffic: " + ", ".join(f"beacon-{n} {r} req/s ({w} clients)" for n, (r, w) in TRAFFIC.items())
              + f", beacon-{idlest} none")
    stop.wait(30)  # a baseline before anything breaks: half a rate window

    publish_config(stack, 2, {**base_config, "faults": FAULTS})
    mark("faults_on")
    clock.say(f"faults on in beacon-{FAULTY} (ConfigMap update): {json.dumps(FAULTS['pods'][str(FAULTY)])}")
    wait(clock, "the banner on beacon-1", lambda: page_shows_faults(stack.records[FAULTY].url), clock.now() + 30, stop)

    stack.kill_container(CRASHING)
    mark("crash")
    clock.say(f"beacon-{CRASHING}'s container crashed (SIGKILL)")

    results = {f"{n}{'/' + p if p else ''}": {"alert": n, "pod": p} for n, p in EXPECTED}

    def track(goals, until):
        """Polls Prometheus and the webhook log for every (alert, "firing" or "resolved") in
        `goals` at once, so each time recorded is when it happened (within the 0.5 s poll)."""
        pending = set(goals)
        while pending and clock.now() < until and not stop.is_set():
            alerts = prom_alerts(stack)
            if alerts is None:
                time.sleep(0.5)
                continue
            for key, status in sorted(pending):
                r = results[key]
                name, pod = r["alert"], r["pod"]
                here = [a for a in alerts if matches(a["labels"], name, pod)]
                seen = "fired_at" if status == "firing" else "resolved_at"
                if seen not in r and ((status == "firing" and any(a["state"] == "firing" for a in here))
                                      or (status == "resolved" and not here)):
                    r[seen] = round(clock.now(), 1)
                    clock.say(f"{key} {'firing' if status == 'firing' else 'resolved'} in Prometheus")
                got = delivered(stack, name, pod, status)
                if got and f"{status}_delivered_at" not in r:
                    r[f"{status}_delivered_at"] = round(got[0] - clock.wall0, 1)
                    clock.say(f"{key} {status} delivered to the webhook")
                if seen in r and f"{status}_delivered_at" in r:
                    pending.discard((key, status))
            time.sleep(0.5)
        for key, status in sorted(pending):
            clock.say(f"gave up waiting for {key} to be {status} and delivered")

    limit = clock.now() + 180
    crash_key = f"BeaconPodDown/beacon-{CRASHING}"
    # Every alert's firing is watched from the start (the burn-rate pages fire within seconds of
    # the faults), so each time recorded is when it happened; the crashed container is restarted
    # once all have fired.
    track([(k, "firing") for k in results], limit)
    if stop.is_set():
        clock.say("interrupted")
        return 1
    stack.restart_container(CRASHING)
    mark("restarted")
    clock.say(f"beacon-{CRASHING}'s container restarted (restarts: 1)")
    track([(crash_key, "resolved")], limit)
    # The report's inventory should show the restarted pod ready again, as kube-state-metrics
    # reports it a probe period or two after the restart.
    wait(clock, f"beacon-{CRASHING} ready in kube-state-metrics",
         lambda: all_ready(stack), limit, stop)

    if stop.is_set():
        clock.say("interrupted")
        return 1
    report_ok = all(run_report(stack, clock, beacon, state / f"report.{fmt}", fmt, stack.started_at) for fmt in ("json", "html"))
    summary["report_time"] = time.time()
    mark("report")
    clock.say(f"report written: {state / 'report.html'}, {state / 'report.json'}")

    publish_config(stack, 3, base_config)
    mark("faults_off")
    clock.say("faults off (ConfigMap update)")
    track([(k, "resolved") for k in results if k != crash_key], clock.now() + 180)

    for t in traffic.values():
        t.deadline = 0
    for t in traffic.values():
        t.join()
    summary["traffic"] = {f"beacon-{n}": {str(k): v for k, v in t.statuses.items()} for n, t in traffic.items()}

    answered = {}
    if report_ok:
        report = json.loads((state / "report.json").read_text())
        answered = questions_answered(report)
    summary["questions"] = answered
    summary["alerts"] = list(results.values())
    round_trip = all(all(k in r for k in ("fired_at", "firing_delivered_at", "resolved_at", "resolved_delivered_at"))
                     for r in results.values()) and len(results) == len(EXPECTED)
    summary["ok"] = bool(report_ok and answered and all(answered.values()) and round_trip)
    summary["duration_seconds"] = round(clock.now(), 1)
    (state / "demo.json").write_text(json.dumps(summary, indent=2))

    lines = ["", "beacon demo summary", ""]
    for q, ok in answered.items():
        lines.append(f"  question {q:<36} {'answered' if ok else 'NO DATA'}")
    if not report_ok:
        lines.append("  report: FAILED (see above)")
    lines.append("")
    for r in results.values():
        key = r["alert"] + (f" ({r['pod']})" if r["pod"] else "")
        def t(k):
            return f"{r[k]:6.1f}s" if k in r else "  never"
        lines.append(f"  {key:<34} fired {t('fired_at')}  delivered {t('firing_delivered_at')}"
                     f"  resolved {t('resolved_at')}  delivered {t('resolved_delivered_at')}")
    lines += ["", f"  busiest pod driven: {summary['driven_hardest']}, idlest: {summary['driven_least']}",
              f"  report: {state / 'report.html'}   summary: {state / 'demo.json'}",
              f"  {'OK' if summary['ok'] else 'FAILED'} in {summary['duration_seconds']}s", ""]
    print("\n".join(lines), flush=True)
    print("demo finished", flush=True)
    if stack.args.hold:
        clock.say("holding the stack for inspection; SIGTERM or Ctrl-C stops it")
        while not stop.wait(0.5):
            pass
    return 0 if summary["ok"] else 1
