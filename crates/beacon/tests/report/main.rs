//! `beacon report` end to end: the real binary against a real Prometheus (and Alertmanager)
//! on 127.0.0.1 holding fixture series whose values are known exactly.

mod access;
mod answers;
mod bench;
mod exemplars;
mod fixture;
mod slo;
mod stack;
mod wide_cluster;
mod workloads;
