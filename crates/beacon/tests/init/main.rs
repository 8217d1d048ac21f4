//! `beacon init` end to end: the real binary, as the kubelet runs its init containers, against
//! local servers that misbehave on purpose. Set `BEACON_TEST_LOG=1` to see beacon's logs.

mod dns;
mod end_to_end;
mod fetch;
mod helpers;
mod https;
mod messages;
mod wait;
mod write;
