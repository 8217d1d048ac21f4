use std::{io, net::SocketAddr, path::PathBuf};

use crate::{config::ConfigError, store::StoreError};

/// Errors that stop `beacon serve` from starting or running.
///
/// An I/O cause is a `cause` field in the message, not an error `source`: `main` prints the
/// whole chain (`{:#}`), so a cause that is both would be printed twice (`…: X: X`), and the
/// log lines that show only the message would lose it if it were only a source.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {cause}")]
    Bind { addr: SocketAddr, cause: io::Error },
    #[error("cannot create data directory {path}: {cause}")]
    DataDir { path: PathBuf, cause: io::Error },
    #[error("server I/O error: {cause}")]
    Io { cause: io::Error },
}

impl From<io::Error> for Error {
    fn from(cause: io::Error) -> Self {
        Self::Io { cause }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
