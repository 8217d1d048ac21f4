"""The servers the bench compares: how each is built, started and described.

Each target implements the same contract on 127.0.0.1:PORT: `/` counts a visit,
`/healthz`, `/metrics`. Peers live in bench/peers/ (small and written here).
"""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class Beacon:
    name = "beacon"
    durability = "fdatasync, group commit"
    paths = ["/", "/healthz", "/metrics"]
    ready_path = "/readyz"
    binary = ROOT / "target" / "release" / "beacon"

    def build(self):
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "beacon"], cwd=ROOT, check=True)

    def command(self, port, work):
        # Access logs off: every peer is measured without per-request logging.
        env = {"BEACON_LOG": "warn", "BEACON_LOG_FORMAT": "json"}
        return [str(self.binary), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(work / "data"),
                "--config", str(work / "config.json"), "--init-data-dir", str(work / "init_data")], env

    def size(self):
        return self.binary.stat().st_size


ALL = ["beacon"]
_TARGETS = {"beacon": Beacon}


def get(name):
    try:
        return _TARGETS[name]()
    except KeyError:
        raise SystemExit(f"unknown target {name!r}; known: {', '.join(ALL)}")
