//! Init-container steps (`beacon init …`) for a distroless image with no shell, no `wget`
//! and no `nslookup`: download a file atomically, append lines idempotently, and wait for
//! dependencies. The binary's `init_cmd` turns flags into calls of these functions; each step's
//! help text (`ABOUT`, `EXAMPLE`) lives with its module.

pub mod error;
pub mod fetch;
mod fsutil;
mod progress;
mod resolve;
pub mod retry;
pub mod signals;
mod tls;
pub mod wait;
pub mod write;

pub use error::{Error, Result};
