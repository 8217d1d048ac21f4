use std::{io, net::SocketAddr, path::PathBuf};

use crate::{config::ConfigError, store::StoreError};

/// Errors that stop `beacon serve` from starting or running. The cause is the error's
/// `source`, never repeated in its message: the binary prints the chain (`a: b: c`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot create data directory {}", path.display())]
    DataDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the address the listener is bound to")]
    LocalAddr {
        #[source]
        source: io::Error,
    },
    #[error("the task closing the visits store did not finish")]
    StoreTask {
        #[source]
        source: tokio::task::JoinError,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
