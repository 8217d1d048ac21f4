"""The servers the bench compares: how each is built, started and described.

Each target implements the same contract on 127.0.0.1:PORT: `/` counts a visit,
`/healthz`, `/metrics`. Peers live in bench/peers/ (small and written here).
"""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = Path(__file__).resolve().parent / "peers"
OUT = ROOT / "target" / "bench"  # built peers (gitignored with /target)


def apt_install(*packages):
    """Install the Debian packages that are missing (the bench may install; tests never run it)."""
    missing = [p for p in packages
               if subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True).stdout
               != "install ok installed"]
    if missing:
        print(f"installing {' '.join(missing)} (Debian)", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        # Wait for another apt/dpkg run (a colleague's install) instead of failing on its lock.
        install = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-qq", *missing]
        if subprocess.run(install, env=env, stdout=subprocess.DEVNULL).returncode:
            subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=300", "update", "-qq"], env=env, check=True)
            subprocess.run(install, env=env, check=True, stdout=subprocess.DEVNULL)


def tree_pids(pid):
    """The process and its descendants (gunicorn and nginx have workers)."""
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


def thread_names(pid):
    """The names (comm) of every thread of the process tree."""
    names = []
    for p in tree_pids(pid):
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                names.append((task / "comm").read_text().strip())
            except OSError:
                pass
    return names


class Beacon:
    name = "beacon"
    durability = "fdatasync, group commit"
    paths = ["/", "/healthz", "/metrics"]
    ready_path = "/readyz"
    visits_path = "/visits"
    # Its own histograms of the durable-visit path, read before and after each `/` run.
    durability_histograms = ("beacon_visits_sync_duration_seconds", "beacon_visits_commit_wait_seconds")
    # The binary the container image ships (static-pie, packed relocations), not a dev build.
    binary = ROOT / "target" / "static" / "x86_64-unknown-linux-gnu" / "release" / "beacon"

    def build(self):
        subprocess.run([str(ROOT / "scripts" / "build-static")], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)

    def command(self, port, work):
        # Access logs off: every peer is measured without per-request logging.
        env = {"BEACON_LOG": "warn", "BEACON_LOG_FORMAT": "json"}
        return [str(self.binary), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(work / "data"),
                "--config", str(work / "config.json"), "--init-data-dir", str(work / "init_data")], env

    def size(self):
        return self.binary.stat().st_size

    def parallelism(self, pid, work):
        """How the runtime sized itself: beacon names its tokio workers apart from blocking-pool threads."""
        n = thread_names(pid).count("tokio-rt-worker")
        return f"{n} tokio worker{'' if n == 1 else 's'}"


class GoPeer:
    name = "go"
    durability = "fsync per visit (mutex, WriteAt + f.Sync)"
    commit = "per-visit"
    paths = ["/", "/healthz", "/metrics"]
    ready_path = "/healthz"
    visits_path = "/visits"
    binary = OUT / "go-peer"

    def build(self):
        apt_install("golang-go", "golang-github-prometheus-client-golang-dev")
        OUT.mkdir(parents=True, exist_ok=True)
        # Offline GOPATH-mode build against Debian's Go sources in /usr/share/gocode.
        with tempfile.TemporaryDirectory() as gopath:
            env = {**os.environ, "GOPATH": f"{gopath}:/usr/share/gocode", "GO111MODULE": "off", "GOPROXY": "off",
                   "GOFLAGS": "", "GOCACHE": str(OUT / "gocache")}
            subprocess.run(["go", "build", "-o", str(self.binary), "./bench/peers/go"], cwd=ROOT, env=env, check=True)

    def command(self, port, work):
        return [str(self.binary), "--listen", f"127.0.0.1:{port}", "--data-dir", str(work / "data"),
                "-commit", self.commit], {}

    def size(self):
        return self.binary.stat().st_size

    def parallelism(self, pid, work):
        # The peer logs runtime.GOMAXPROCS(0) at start (run.py keeps each target's stderr).
        m = re.search(r"gomaxprocs=(\d+)", (work / "stderr.log").read_text(errors="replace"))
        return f"GOMAXPROCS {m.group(1)}" if m else "-"


class GoGroupCommit(GoPeer):
    """The same peer with leader-based group commit: the strongest honest rival on `/`."""
    name = "go-group-commit"
    durability = "fdatasync, group commit (leader, WriteAt + fdatasync)"
    commit = "group"


class PythonPeer:
    name = "python"
    durability = "flock + fsync per visit"
    paths = ["/", "/healthz", "/metrics"]
    ready_path = "/healthz"
    visits_path = "/visits"
    workers = os.cpu_count() or 1  # workers = cores (all on the one pinned core)

    def build(self):
        # Debian's packages are for the system python (/usr/bin/python3), not a pyenv one on PATH.
        apt_install("python3-flask", "python3-prometheus-client", "gunicorn")

    def command(self, port, work):
        (work / "prom").mkdir()
        env = {"PROMETHEUS_MULTIPROC_DIR": str(work / "prom"), "PEER_DATA_DIR": str(work / "data"),
               "PYTHONDONTWRITEBYTECODE": "1"}
        # Sync workers, no access log (gunicorn's default), as such apps are deployed.
        return ["/usr/bin/python3", "-m", "gunicorn", "--workers", str(self.workers), "--worker-class", "sync",
                "--bind", f"127.0.0.1:{port}", "--chdir", str(PEERS / "python"), "app:app"], env

    def size(self):
        return None  # interpreter + packages: no single binary

    def parallelism(self, pid, work):
        return f"{len(tree_pids(pid)) - 1} workers"


class Nginx:
    name = "nginx"
    durability = "none (fixed 200, ceiling)"
    paths = ["/", "/healthz", "/metrics"]
    ready_path = "/healthz"
    visits_path = None  # counts nothing
    binary = Path("/usr/sbin/nginx")

    def build(self):
        apt_install("nginx-light")

    def command(self, port, work):
        conf = work / "nginx.conf"
        conf.write_text((PEERS / "nginx" / "nginx.conf.template").read_text().format(work=work, port=port))
        return [str(self.binary), "-p", str(work), "-e", str(work / "error.log"), "-c", str(conf)], {}

    def size(self):
        return self.binary.stat().st_size

    def parallelism(self, pid, work):
        n = len(tree_pids(pid)) - 1
        return f"{n} worker process{'' if n == 1 else 'es'}"


# beacon and its strongest rival first and adjacent: the host (disk, other work) drifts during a run.
ALL = ["beacon", "go-group-commit", "go", "python", "nginx"]
_TARGETS = {"beacon": Beacon, "go": GoPeer, "go-group-commit": GoGroupCommit, "python": PythonPeer, "nginx": Nginx}


def get(name):
    try:
        return _TARGETS[name]()
    except KeyError:
        raise SystemExit(f"unknown target {name!r}; known: {', '.join(ALL)}")
