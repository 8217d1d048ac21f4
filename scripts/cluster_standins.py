"""Stand-ins for the cluster-side exporters, for scripts/local-stack only (test and demo tooling,
never part of beacon): cAdvisor as the kubelet serves it (/metrics/cadvisor), the kubelet's own
/metrics, and kube-state-metrics.

Nothing here is invented: every number is measured from the replica processes the local stack
runs, or read from the objects the chart renders.

  * Pods get what a kubelet with containerd and the cgroupfs driver gives them: a pod cgroup
    `kubepods/burstable/pod<uid>` holding a sandbox ("pause") container and the `beacon`
    container, each in its own cgroup. CPU and memory are read from those cgroups (v1: cpuacct,
    memory; v2: cpu.stat, memory.current), exactly the files cAdvisor reads; without cgroups
    (not root) they fall back to /proc/<pid>/stat and status of the processes.
  * The network of a pod is its own network namespace: the sandbox process holds it, like the
    pause container, and its counters are /proc/<sandbox pid>/net/dev, as cAdvisor reads them.
  * kube-state-metrics series describe the StatefulSet, its Services, PVCs and ConfigMap from
    `helm template`, and the pods' live state (phase, readiness from the chart's readiness probe on /readyz, restarts).

Label sets follow the upstream documentation; docs/local-stack.md lists the sources.
"""

import http.server
import os
import shutil
import threading
import time
import urllib.request
import uuid
from pathlib import Path

PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
QOS = "burstable"  # the chart sets requests below limits


def esc(v):
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Exposition:
    """Prometheus text format 0.0.4, one HELP/TYPE block per metric family."""

    def __init__(self):
        self.families = {}

    def add(self, name, kind, help_text, labels, value):
        fam = self.families.setdefault(name, (kind, help_text, []))
        fam[2].append((labels, value))

    def render(self):
        out = []
        for name, (kind, help_text, samples) in self.families.items():
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                body = ",".join(f'{k}="{esc(v)}"' for k, v in labels.items())
                out.append(f"{name}{{{body}}} {float(value)!r}")
        return ("\n".join(out) + "\n").encode()


# ---------------------------------------------------------------------------------------------
# cgroups
# ---------------------------------------------------------------------------------------------

class Cgroups:
    """A private subtree of this process's own cgroup (never the machine's root), per controller.

    v1 (this machine): separate `cpuacct` and `memory` hierarchies. v2: one unified hierarchy;
    memory.* files exist only where the memory controller is delegated, else memory falls back
    to procfs.
    """

    def __init__(self, tag):
        self.version = None
        self.roots = {}
        self.error = None
        try:
            if Path("/sys/fs/cgroup/cgroup.controllers").exists():
                own = next(l.split(":", 2)[2] for l in Path("/proc/self/cgroup").read_text().splitlines() if l.startswith("0::"))
                self.roots = {"unified": Path("/sys/fs/cgroup") / own.lstrip("/") / tag}
                self.version = 2
            else:
                own = {}
                for line in Path("/proc/self/cgroup").read_text().splitlines():
                    _, ctrls, path = line.split(":", 2)
                    for c in ctrls.split(","):
                        own[c] = path
                roots = {}
                for ctrl in ("cpuacct", "memory"):
                    mount = next((m for m in (Path(f"/sys/fs/cgroup/{ctrl}"), Path("/sys/fs/cgroup/cpu,cpuacct"))
                                  if (m / f"{ctrl}.usage" if ctrl == "cpuacct" else m / "memory.usage_in_bytes").exists()), None)
                    if mount is None:
                        raise OSError(f"no cgroup v1 {ctrl} hierarchy")
                    roots[ctrl] = mount / own.get(ctrl, "/").lstrip("/") / tag
                self.roots = roots
                self.version = 1
            for root in self.roots.values():
                root.mkdir(parents=True, exist_ok=True)
        except (OSError, StopIteration) as e:
            self.error = str(e)
            self.version = None
            self.roots = {}

    @classmethod
    def at(cls, version, roots):
        """Cgroups rooted at explicit directories (tests: a fake v1 or v2 tree)."""
        c = cls.__new__(cls)
        c.version, c.roots, c.error = version, {k: Path(v) for k, v in roots.items()}, None
        return c

    @property
    def usable(self):
        return self.version is not None

    def create(self, rel):
        for root in self.roots.values():
            (root / rel).mkdir(parents=True, exist_ok=True)

    def enter_self(self, rel):
        """For preexec_fn: moves the calling (child) process into `rel` before it execs."""
        for root in self.roots.values():
            (root / rel / "cgroup.procs").write_text(str(os.getpid()))

    def cpu_seconds(self, rel):
        try:
            if self.version == 1:
                return int((self.roots["cpuacct"] / rel / "cpuacct.usage").read_text()) / 1e9
            stat = (self.roots["unified"] / rel / "cpu.stat").read_text().split()
            return int(stat[stat.index("usage_usec") + 1]) / 1e6
        except (OSError, ValueError, KeyError):
            return None

    def working_set(self, rel):
        """cAdvisor's working set: usage minus inactive file pages."""
        try:
            if self.version == 1:
                d = self.roots["memory"] / rel
                usage = int((d / "memory.usage_in_bytes").read_text())
                stat = dict(l.split() for l in (d / "memory.stat").read_text().splitlines())
                inactive = int(stat.get("total_inactive_file", 0))
            else:
                d = self.roots["unified"] / rel
                usage = int((d / "memory.current").read_text())
                stat = dict(l.split() for l in (d / "memory.stat").read_text().splitlines())
                inactive = int(stat.get("inactive_file", 0))
            return max(0, usage - inactive)
        except (OSError, ValueError, KeyError):
            return None

    def remove(self, rel):
        for root in self.roots.values():
            d = root / rel
            for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) if d.exists() else []:
                try:
                    sub.rmdir()
                except OSError:
                    pass
            try:
                d.rmdir()
            except OSError:
                pass

    def remove_all(self):
        for root in self.roots.values():
            if not root.exists():
                continue
            for sub in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                try:
                    sub.rmdir()
                except OSError:
                    pass
            try:
                root.rmdir()
            except OSError:
                pass


def proc_cpu_seconds(pid):
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def proc_rss(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def net_dev(pid, interface="eth0"):
    """(rx_bytes, tx_bytes) of `interface` in the network namespace of `pid`."""
    try:
        for line in Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]:
            name, data = line.split(":", 1)
            if name.strip() == interface:
                f = data.split()
                return int(f[0]), int(f[8])
    except (OSError, ValueError, IndexError):
        pass
    return None


# ---------------------------------------------------------------------------------------------
# The pod model the local stack keeps, and what the stand-ins read from it
# ---------------------------------------------------------------------------------------------

def new_container_id():
    return uuid.uuid4().hex + uuid.uuid4().hex  # 64 hex digits, like containerd's ids


class PodRecord:
    """One pod of the StatefulSet as the kubelet would know it."""

    def __init__(self, name, ordinal, ip, init_containers):
        self.name = name
        self.ordinal = ordinal
        self.uid = str(uuid.uuid4())
        self.ip = ip
        self.created = time.time()
        self.sandbox_id = new_container_id()
        self.container_id = new_container_id()
        self.init_containers = init_containers
        self.restarts = 0
        self.last_terminated_reason = None
        self.pause = None  # Popen of the sandbox process
        self.proc = None  # Popen of beacon serve
        self.url = None
        self.started = None
        self.ready = False
        self.labels = {}  # the pod template's labels kube-state-metrics is allowed to export
        self.netns = None  # its own network namespace; without one there are no network series
        self.data_dir = None  # its "PVC"

    @property
    def pod_cgroup(self):
        return f"kubepods/{QOS}/pod{self.uid}"

    def cgroup(self, container_id):
        return f"{self.pod_cgroup}/{container_id}"

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def sandbox_running(self):
        return self.pause is not None and self.pause.poll() is None


class Cluster:
    """What the stand-ins describe: the node, the pods, and the chart's other objects."""

    def __init__(self, node, namespace, release, image, objects, cgroups, probe_period=5):
        self.node = node
        self.namespace = namespace
        self.release = release
        self.image = image
        self.objects = objects  # rendered manifests from `helm template`
        self.cgroups = cgroups
        self.pods = []
        self.created = time.time()
        self.probe_period = probe_period
        threading.Thread(target=self._probe_readiness, daemon=True).start()

    def _probe_readiness(self):
        """The kubelet's readiness probe: GET /readyz every `periodSeconds` (the chart's)."""
        while True:
            for pod in list(self.pods):
                ok = False
                if pod.running() and pod.url:
                    try:
                        with urllib.request.urlopen(f"{pod.url}/readyz", timeout=1) as r:
                            ok = r.status == 200
                    except OSError:
                        ok = False
                pod.ready = ok
            time.sleep(self.probe_period)

    # -- cAdvisor ---------------------------------------------------------------------------

    def _cpu(self, rel, pids):
        v = self.cgroups.cpu_seconds(rel) if self.cgroups.usable else None
        if v is None:
            vals = [proc_cpu_seconds(p) for p in pids]
            v = sum(x for x in vals if x is not None) if any(x is not None for x in vals) else None
        return v

    def _mem(self, rel, pids):
        v = self.cgroups.working_set(rel) if self.cgroups.usable else None
        if v is None:
            vals = [proc_rss(p) for p in pids]
            v = sum(x for x in vals if x is not None) if any(x is not None for x in vals) else None
        return v

    def cadvisor(self):
        e = Exposition()
        cpu_help = "Cumulative cpu time consumed in seconds."
        mem_help = "Current working set in bytes."
        for pod in self.pods:
            if not pod.sandbox_running():
                continue  # cAdvisor drops a container's series once its cgroup is gone
            base = {"namespace": self.namespace, "pod": pod.name}
            containers = [("", PAUSE_IMAGE, pod.sandbox_id, [pod.pause.pid])]
            if pod.running():
                containers.append(("beacon", self.image, pod.container_id, [pod.proc.pid]))
            # The pod-level cgroup: container, image and name empty.
            pids = [p for _, _, _, ps in containers for p in ps]
            labels = {"container": "", "id": f"/{pod.pod_cgroup}", "image": "", "name": "", **base}
            for metric, kind, help_text, value in (
                ("container_cpu_usage_seconds_total", "counter", cpu_help, self._cpu(pod.pod_cgroup, pids)),
                ("container_memory_working_set_bytes", "gauge", mem_help, self._mem(pod.pod_cgroup, pids)),
            ):
                if value is not None:
                    e.add(metric, kind, help_text, labels, value)
            for container, image, cid, cpids in containers:
                rel = pod.cgroup(cid)
                labels = {"container": container, "id": f"/{rel}", "image": image, "name": cid, **base}
                cpu = self._cpu(rel, cpids)
                mem = self._mem(rel, cpids)
                if cpu is not None:
                    e.add("container_cpu_usage_seconds_total", "counter", cpu_help, labels, cpu)
                if mem is not None:
                    e.add("container_memory_working_set_bytes", "gauge", mem_help, labels, mem)
                if cid == pod.sandbox_id and pod.netns:
                    # Network only on the sandbox, which holds the pod's network namespace (and
                    # never the host's counters: without a namespace of its own, no series).
                    net = net_dev(pod.pause.pid)
                    if net is not None:
                        nl = {**labels, "interface": "eth0"}
                        e.add("container_network_receive_bytes_total", "counter",
                              "Cumulative count of bytes received", nl, net[0])
                        e.add("container_network_transmit_bytes_total", "counter",
                              "Cumulative count of bytes transmitted", nl, net[1])
        return e.render()

    # -- kubelet ----------------------------------------------------------------------------

    def kubelet(self):
        e = Exposition()
        pods = [p for p in self.pods if p.sandbox_running()]
        running = sum(1 for p in pods if p.running())
        # Exited: the init containers (kept until the pod is deleted) and the last dead instance
        # of a restarted container (the kubelet keeps one for `kubectl logs --previous`).
        exited = sum(p.init_containers + (1 if p.restarts or not p.running() else 0) for p in pods)
        e.add("kubelet_running_pods", "gauge", "[ALPHA] Number of pods that have a running pod sandbox", {}, len(pods))
        for state, n in (("running", running), ("exited", exited), ("created", 0), ("unknown", 0)):
            e.add("kubelet_running_containers", "gauge", "[ALPHA] Number of containers currently running",
                  {"container_state": state}, n)
        for pod in self.pods:
            if pod.data_dir is None:
                continue
            try:
                st = os.statvfs(pod.data_dir)
            except OSError:
                continue
            labels = {"namespace": self.namespace, "persistentvolumeclaim": f"data-{pod.name}"}
            cap, avail = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
            e.add("kubelet_volume_stats_capacity_bytes", "gauge", "[ALPHA] Capacity in bytes of the volume", labels, cap)
            e.add("kubelet_volume_stats_available_bytes", "gauge", "[ALPHA] Number of available bytes in the volume", labels, avail)
            e.add("kubelet_volume_stats_used_bytes", "gauge", "[ALPHA] Number of used bytes in the volume", labels,
                  (st.f_blocks - st.f_bfree) * st.f_frsize)
        return e.render()

    # -- kube-state-metrics -----------------------------------------------------------------

    def kube_state_metrics(self):
        e = Exposition()
        ns = self.namespace
        g = "gauge"
        for pod in self.pods:
            pl = {"namespace": ns, "pod": pod.name, "uid": pod.uid}
            e.add("kube_pod_info", g, "Information about pod.", {
                **pl, "host_ip": "127.0.0.1", "pod_ip": pod.ip, "node": self.node,
                "created_by_kind": "StatefulSet", "created_by_name": self.release,
                "priority_class": "", "host_network": "false"}, 1)
            e.add("kube_pod_owner", g, "Information about the Pod's owner.", {
                **pl, "owner_kind": "StatefulSet", "owner_name": self.release, "owner_is_controller": "true"}, 1)
            labels = {f"label_{k.replace('.', '_').replace('/', '_').replace('-', '_')}": v
                      for k, v in pod.labels.items()}
            e.add("kube_pod_labels", g, "Kubernetes labels converted to Prometheus labels.", {**pl, **labels}, 1)
            e.add("kube_pod_created", g, "Unix creation timestamp", pl, int(pod.created))
            if pod.started:
                e.add("kube_pod_start_time", g, "Start time in unix timestamp for a pod.", pl, int(pod.started))
            phase = "Running" if pod.sandbox_running() else "Pending"
            for p in ("Pending", "Running", "Succeeded", "Failed", "Unknown"):
                e.add("kube_pod_status_phase", g, "The pods current phase.", {**pl, "phase": p}, int(p == phase))
            for cond in ("true", "false", "unknown"):
                e.add("kube_pod_status_ready", g, "Describes whether the pod is ready to serve requests.",
                      {**pl, "condition": cond}, int(cond == ("true" if pod.ready else "false")))
            cl = {**pl, "container": "beacon"}
            e.add("kube_pod_container_info", g, "Information about a container in a pod.", {
                **cl, "image_spec": self.image, "image": self.image,
                "image_id": f"{self.image.split(':')[0]}@sha256:{'0' * 64}",
                "container_id": f"containerd://{pod.container_id}"}, 1)
            e.add("kube_pod_container_status_ready", g, "Describes whether the containers readiness check succeeded.", cl, int(pod.ready))
            e.add("kube_pod_container_status_running", g, "Describes whether the container is currently in running state.", cl, int(pod.running()))
            e.add("kube_pod_container_status_terminated", g, "Describes whether the container is currently in terminated state.", cl, int(not pod.running()))
            e.add("kube_pod_container_status_waiting", g, "Describes whether the container is currently in waiting state.", cl, 0)
            e.add("kube_pod_container_status_restarts_total", "counter", "The number of container restarts per container.", cl, pod.restarts)
            if pod.last_terminated_reason:
                e.add("kube_pod_container_status_last_terminated_reason", g,
                      "Describes the last reason the container was in terminated state.",
                      {**cl, "reason": pod.last_terminated_reason}, 1)
        for obj in self.objects:
            kind, meta = obj["kind"], obj["metadata"]
            name, created = meta["name"], int(self.created)
            if kind == "StatefulSet":
                sl = {"namespace": ns, "statefulset": name}
                ready = sum(1 for p in self.pods if p.ready)
                current = sum(1 for p in self.pods if p.sandbox_running())
                for metric, value in (("kube_statefulset_replicas", obj["spec"]["replicas"]),
                                      ("kube_statefulset_status_replicas", current),
                                      ("kube_statefulset_status_replicas_current", current),
                                      ("kube_statefulset_status_replicas_updated", current),
                                      ("kube_statefulset_status_replicas_ready", ready),
                                      ("kube_statefulset_status_replicas_available", ready),
                                      ("kube_statefulset_metadata_generation", 1),
                                      ("kube_statefulset_status_observed_generation", 1),
                                      ("kube_statefulset_created", created)):
                    e.add(metric, g, "", sl, value)
            elif kind == "Service":
                uid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"service/{name}"))
                sl = {"namespace": ns, "service": name, "uid": uid}
                spec = obj["spec"]
                cluster_ip = spec.get("clusterIP") or "10.96.0.%d" % (10 + len(name))
                e.add("kube_service_info", g, "Information about service.", {
                    **sl, "cluster_ip": cluster_ip, "external_name": spec.get("externalName", ""),
                    "external_traffic_policy": spec.get("externalTrafficPolicy", ""),
                    "load_balancer_ip": spec.get("loadBalancerIP", "")}, 1)
                e.add("kube_service_spec_type", g, "Type about service.", {**sl, "type": spec.get("type", "ClusterIP")}, 1)
                e.add("kube_service_created", g, "Unix creation timestamp", sl, created)
            elif kind == "ConfigMap":
                cl = {"namespace": ns, "configmap": name}
                e.add("kube_configmap_info", g, "Information about configmap.", cl, 1)
                e.add("kube_configmap_created", g, "Unix creation timestamp", cl, created)
            elif kind == "PersistentVolumeClaim":
                pl = {"namespace": ns, "persistentvolumeclaim": name}
                spec = obj["spec"]
                e.add("kube_persistentvolumeclaim_info", g, "Information about persistent volume claim.", {
                    **pl, "storageclass": spec.get("storageClassName", "") or "local-stack",
                    "volumename": f"pvc-{uuid.uuid5(uuid.NAMESPACE_URL, name)}", "volumemode": "Filesystem"}, 1)
                for phase in ("Bound", "Lost", "Pending"):
                    e.add("kube_persistentvolumeclaim_status_phase", g, "The phase the persistent volume claim is currently in.",
                          {**pl, "phase": phase}, int(phase == "Bound"))
                e.add("kube_persistentvolumeclaim_resource_requests_storage_bytes", g,
                      "The capacity of storage requested by the persistent volume claim.", pl,
                      parse_quantity(spec["resources"]["requests"]["storage"]))
                for mode in spec.get("accessModes", []):
                    e.add("kube_persistentvolumeclaim_access_mode", g, "The access mode(s) specified by the persistent volume claim.",
                          {**pl, "access_mode": mode}, 1)
                e.add("kube_persistentvolumeclaim_created", g, "Unix creation timestamp", pl, created)
        return e.render()


def parse_quantity(q):
    """Kubernetes resource quantity (`10Mi`, `1G`, `512`) to a number."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    for suffix, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if str(q).endswith(suffix):
            return float(str(q)[: -len(suffix)]) * factor
    return float(q)


def serve(cluster, routes):
    """An HTTP server on 127.0.0.1 answering `routes` (path -> method of `cluster`)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            fn = routes.get(self.path.split("?")[0])
            if fn is None:
                self.send_error(404)
                return
            body = fn()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ---------------------------------------------------------------------------------------------
# Network namespaces
# ---------------------------------------------------------------------------------------------

class PodNetworks:
    """One network namespace per pod, joined to the host by a veth pair with link-local
    addresses (169.254.<block>.<4n+1> on the host, .<4n+2> in the pod, /30): traffic to a pod
    crosses its own interface, so its counters are its own. Link-local never leaves the machine
    (no route, not forwarded); 127.0.0.0/8 cannot be used on a veth without loosening the
    kernel's martian checks."""

    def __init__(self, tag, run):
        self.tag = tag  # short and unique per stack: interface names are at most 15 bytes
        self.run = run
        self.made = []  # (netns, host veth)
        used = set()
        out = run(["ip", "-o", "-4", "addr", "show"], capture=True)
        for line in out.splitlines():
            parts = line.split()
            if "inet" in parts:
                addr = parts[parts.index("inet") + 1]
                if addr.startswith("169.254."):
                    used.add(int(addr.split(".")[2]))
        self.block = next(b for b in range(100, 250) if b not in used)

    def create(self, n):
        ns, host, peer = f"{self.tag}-{n}", f"{self.tag}h{n}", f"{self.tag}p{n}"
        host_ip, pod_ip = f"169.254.{self.block}.{4 * n + 1}", f"169.254.{self.block}.{4 * n + 2}"
        self.run(["ip", "netns", "add", ns])
        self.made.append((ns, host))
        self.run(["ip", "link", "add", host, "type", "veth", "peer", "name", peer])
        self.run(["ip", "link", "set", peer, "netns", ns])
        self.run(["ip", "addr", "add", f"{host_ip}/30", "dev", host])
        self.run(["ip", "link", "set", host, "up"])
        self.run(["ip", "-n", ns, "link", "set", peer, "name", "eth0"])
        self.run(["ip", "-n", ns, "addr", "add", f"{pod_ip}/30", "dev", "eth0"])
        self.run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        self.run(["ip", "-n", ns, "link", "set", "lo", "up"])
        return ns, pod_ip

    def remove_all(self):
        for ns, host in reversed(self.made):
            self.run(["ip", "link", "del", host], check=False)
            self.run(["ip", "netns", "del", ns], check=False)
        self.made = []


def netns_available():
    return os.geteuid() == 0 and shutil.which("ip") is not None
