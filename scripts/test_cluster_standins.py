"""Unit tests of the local stack's stand-ins (scripts/cluster_standins.py): the cgroup v1 and v2
readers against fake hierarchies (this machine has only v1), the exposition format, and what
the kubelet and kube-state-metrics stand-ins count. Run by crates/beacon/tests/local_stack.rs:

    python3 scripts/test_cluster_standins.py
"""

import tempfile
import unittest
from pathlib import Path

import cluster_standins as s


class FakeProc:
    def __init__(self, alive=True, pid=1):
        self.alive, self.pid = alive, pid

    def poll(self):
        return None if self.alive else 1


class CgroupReaders(unittest.TestCase):
    def test_v1_cpuacct_and_memory_working_set(self):
        with tempfile.TemporaryDirectory() as d:
            cg = s.Cgroups.at(1, {"cpuacct": f"{d}/cpuacct", "memory": f"{d}/memory"})
            cg.create("kubepods/burstable/podu/c1")
            (Path(d) / "cpuacct/kubepods/burstable/podu/c1/cpuacct.usage").write_text("2500000000\n")
            mem = Path(d) / "memory/kubepods/burstable/podu/c1"
            (mem / "memory.usage_in_bytes").write_text("10485760\n")
            (mem / "memory.stat").write_text("cache 4096\ntotal_inactive_file 2097152\n")
            self.assertEqual(cg.cpu_seconds("kubepods/burstable/podu/c1"), 2.5)
            self.assertEqual(cg.working_set("kubepods/burstable/podu/c1"), 8 * 1024 * 1024)
            self.assertIsNone(cg.cpu_seconds("kubepods/burstable/podu/missing"))

    def test_v2_cpu_stat_and_memory_current(self):
        with tempfile.TemporaryDirectory() as d:
            cg = s.Cgroups.at(2, {"unified": d})
            cg.create("kubepods/burstable/podu/c1")
            c = Path(d) / "kubepods/burstable/podu/c1"
            (c / "cpu.stat").write_text("usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n")
            (c / "memory.current").write_text("3145728\n")
            (c / "memory.stat").write_text("anon 1048576\ninactive_file 1048576\n")
            self.assertEqual(cg.cpu_seconds("kubepods/burstable/podu/c1"), 1.5)
            self.assertEqual(cg.working_set("kubepods/burstable/podu/c1"), 2 * 1024 * 1024)
            # No memory controller delegated: no memory.current, so no number (procfs fallback).
            (c / "memory.current").unlink()
            self.assertIsNone(cg.working_set("kubepods/burstable/podu/c1"))


class Exposition(unittest.TestCase):
    def test_label_values_are_escaped_and_families_grouped(self):
        e = s.Exposition()
        e.add("m", "gauge", "help", {"a": 'x"y\\z\n'}, 1)
        e.add("m", "gauge", "help", {"a": "b"}, 2.5)
        text = e.render().decode()
        self.assertEqual(text.count("# TYPE m gauge"), 1)
        self.assertIn('m{a="x\\"y\\\\z\\n"} 1.0', text)
        self.assertIn('m{a="b"} 2.5', text)

    def test_quantities(self):
        self.assertEqual(s.parse_quantity("10Mi"), 10 * 2**20)
        self.assertEqual(s.parse_quantity("1G"), 1e9)
        self.assertEqual(s.parse_quantity("512"), 512)


class Counts(unittest.TestCase):
    def cluster(self):
        cg = s.Cgroups.at(None, {})
        c = s.Cluster.__new__(s.Cluster)
        c.node, c.namespace, c.release, c.image, c.objects, c.cgroups = "n", "default", "beacon", "img:1", [], cg
        c.created, c.pods = 0, []
        for n, alive in enumerate([True, True, False]):
            p = s.PodRecord(f"beacon-{n}", n, f"10.0.0.{n}", init_containers=4)
            p.pause, p.proc = FakeProc(), FakeProc(alive)
            c.pods.append(p)
        return c

    def test_kubelet_counts_running_and_exited_containers(self):
        text = self.cluster().kubelet().decode()
        self.assertIn("kubelet_running_pods{} 3.0", text)
        self.assertIn('kubelet_running_containers{container_state="running"} 2.0', text)
        # 3 pods x 4 init containers, plus the dead instance of the crashed one.
        self.assertIn('kubelet_running_containers{container_state="exited"} 13.0', text)

    def test_crashed_container_is_not_ready_and_its_restarts_are_counted(self):
        c = self.cluster()
        c.pods[2].restarts = 2
        text = c.kube_state_metrics().decode()
        uid = c.pods[2].uid
        self.assertIn(f'kube_pod_container_status_running{{namespace="default",pod="beacon-2",uid="{uid}",container="beacon"}} 0', text)
        self.assertIn(f'kube_pod_container_status_restarts_total{{namespace="default",pod="beacon-2",uid="{uid}",container="beacon"}} 2', text)
        self.assertIn('phase="Running"} 1', text)

    def test_no_network_series_without_a_namespace_of_its_own(self):
        c = self.cluster()
        self.assertNotIn("container_network_", c.cadvisor().decode())


if __name__ == "__main__":
    unittest.main()
