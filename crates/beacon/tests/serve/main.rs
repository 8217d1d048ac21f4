//! `beacon serve` end to end over real loopback HTTP: in process through `Application::build`
//! ([`helpers::TestApp`]), or the real binary where the process itself is tested
//! ([`helpers::TestServer`]: start-up failures, exit codes, signals, stderr, its own memory).
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
mod visits;
