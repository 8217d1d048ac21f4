//! `beacon serve` end to end: the real binary, over real loopback HTTP.
//! Set `BEACON_TEST_LOG=1` to see the servers' logs.

mod browser;
mod config_reload;
mod endpoints;
mod faults;
mod helpers;
mod init_data;
mod limits;
mod probes;
mod runtime;
mod shutdown;
mod trace_context;
mod visits;
