//! `beacon serve`: the HTTP service that runs in every pod of the StatefulSet.
//!
//! [`Application::build`] loads the configuration, opens the visits store and binds
//! the listener; [`Application::run_until_stopped`] serves until the shutdown future
//! resolves, then drains in-flight requests and flushes the store.

mod beneath;
mod byte_range;
pub mod config;
mod config_watch;
mod error;
pub mod faults;
pub mod identity;
mod init_data;
mod json_object;
pub mod metrics;
mod page;
mod process_metrics;
mod readiness;
mod redaction;
mod routes;
mod server;
pub mod settings;
mod state;
pub mod store;
pub mod trace_context;

pub use error::{Error, Result};
pub use server::Application;
pub use settings::{BuildInfo, Settings};
