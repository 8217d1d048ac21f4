//! Read-only access to the files init containers wrote (`/init-data/`).
//!
//! Every name is opened through [`beneath::open`], so neither `..`, `%2e%2e`, absolute
//! paths, a symlink pointing outside nor a file swapped between check and use can reach
//! other files, and only regular files are served. Hidden names are refused because init
//! steps keep their temp and bookkeeping files there.

use std::{
    io::{self, SeekFrom},
    path::Path,
    time::SystemTime,
};

use axum::{
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Json, Redirect, Response},
};
use futures_util::StreamExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use tokio::{
    io::{AsyncReadExt, AsyncSeekExt},
    sync::OwnedSemaphorePermit,
};
use tokio_util::io::ReaderStream;

use crate::{
    beneath::{self, Opened, Refusal},
    byte_range::{self, Requested},
    page::escape,
    state::AppState,
};

/// Everything but RFC 3986 unreserved characters is encoded in listing links, so `#`, `?`,
/// `%`, spaces and control characters in file names give working links.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

const CHUNK: usize = 64 * 1024;

/// Files being sent at once. A download whose client stops reading holds a read buffer and a
/// chunk in flight (~140 KiB) until the write timeout; unbounded, one client with a thousand
/// of them grew the server past the chart's 128 MiB limit. Browsing init data needs a few.
pub const MAX_DOWNLOADS: usize = 64;

/// Headers for content that came from elsewhere: never sniffed, never scripted in our origin.
fn harden(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
}

pub async fn file(
    State(state): State<AppState>,
    axum::extract::Path(name): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let Ok(download) = state.downloads.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "too many downloads in progress\n",
        )
            .into_response();
    };
    let root = state.init_data_dir.clone();
    let lookup = name.clone();
    let opened = tokio::task::spawn_blocking(move || beneath::open(&root, &lookup))
        .await
        .unwrap_or_else(|e| Err(Refusal::Failed(io::Error::other(e))));
    let mut response = match opened {
        Ok(opened) => match respond(opened, &name, &headers, download).await {
            Ok(response) => response,
            Err(e) => {
                tracing::error!(name, error = %e, "cannot read init data file");
                return (StatusCode::INTERNAL_SERVER_ERROR, "cannot read file\n").into_response();
            }
        },
        Err(Refusal::Invalid) => {
            return (StatusCode::BAD_REQUEST, "invalid path\n").into_response();
        }
        Err(Refusal::NotFound) => return (StatusCode::NOT_FOUND, "not found\n").into_response(),
        Err(Refusal::Failed(e)) => {
            tracing::error!(name, dir = %state.init_data_dir.display(), error = %e, "cannot open init data file");
            return (StatusCode::INTERNAL_SERVER_ERROR, "cannot open file\n").into_response();
        }
    };
    harden(response.headers_mut());
    response
}

/// `download` is held until the body is sent or dropped.
async fn respond(
    opened: Opened,
    name: &str,
    headers: &HeaderMap,
    download: OwnedSemaphorePermit,
) -> io::Result<Response> {
    let Opened {
        file,
        len,
        modified,
    } = opened;
    let last_modified = modified.map(http_date);
    if let (Some(lm), Some(since)) = (&last_modified, headers.get(header::IF_MODIFIED_SINCE)) {
        // Exact match of our own format is what browsers send back; anything else is ignored.
        if since.as_bytes() == lm.as_bytes() {
            return Ok(StatusCode::NOT_MODIFIED.into_response());
        }
    }
    // If-Range would need validators compared; sending the whole file is always correct.
    let range_header = if headers.contains_key(header::IF_RANGE) {
        None
    } else {
        headers.get(header::RANGE).and_then(|v| v.to_str().ok())
    };
    let mut builder = Response::builder()
        .header(
            header::CONTENT_TYPE,
            mime_guess::from_path(name)
                .first_raw()
                .unwrap_or("application/octet-stream"),
        )
        .header(header::ACCEPT_RANGES, "bytes");
    if let Some(lm) = last_modified {
        builder = builder.header(header::LAST_MODIFIED, lm);
    }
    let (status, first, count) = match byte_range::parse(range_header, len) {
        Requested::Full => (StatusCode::OK, 0, len),
        Requested::Part { first, last } => {
            builder = builder.header(header::CONTENT_RANGE, format!("bytes {first}-{last}/{len}"));
            (StatusCode::PARTIAL_CONTENT, first, last - first + 1)
        }
        Requested::Unsatisfiable => {
            return Ok(builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .body(Body::empty())
                .expect("valid response"));
        }
    };
    let mut file = tokio::fs::File::from_std(file);
    if first > 0 {
        file.seek(SeekFrom::Start(first)).await?;
    }
    // The length is fixed at open: a file that grows meanwhile is cut, one that shrinks ends early.
    let chunks = ReaderStream::with_capacity(file.take(count), CHUNK).map(move |chunk| {
        let _held = &download;
        chunk
    });
    let body = Body::from_stream(chunks);
    Ok(builder
        .status(status)
        .header(header::CONTENT_LENGTH, count)
        .body(body)
        .expect("valid response"))
}

/// IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t)
        .map(|ts| ts.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string())
        .unwrap_or_default()
}

pub async fn redirect_to_listing() -> Redirect {
    Redirect::permanent("/init-data/")
}

#[derive(Debug, Serialize)]
struct Entry {
    name: String,
    size: u64,
}

fn list(root: &Path) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let dir = match std::fs::read_dir(root) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(entries),
        Err(e) => return Err(e),
    };
    for entry in dir {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        // The same rules as serving: only what could be fetched is listed.
        if let Ok(opened) = beneath::open(root, name) {
            entries.push(Entry {
                name: name.to_owned(),
                size: opened.len,
            });
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

pub async fn listing(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let root = state.init_data_dir.clone();
    let entries = match tokio::task::spawn_blocking(move || list(&root)).await {
        Ok(Ok(entries)) => entries,
        Ok(Err(e)) => {
            tracing::error!(dir = %state.init_data_dir.display(), error = %e, "cannot list init data");
            return (StatusCode::INTERNAL_SERVER_ERROR, "cannot list init data\n").into_response();
        }
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    if wants_json {
        return Json(entries).into_response();
    }
    let items: String = entries
        .iter()
        .map(|e| {
            let href = utf8_percent_encode(&e.name, PATH_SEGMENT);
            format!(
                "<li><a href=\"/init-data/{href}\">{}</a> ({} bytes)</li>\n",
                escape(&e.name),
                e.size
            )
        })
        .collect();
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>init data</title></head>\n<body><h1>Init data</h1>\n<ul>\n{items}</ul>\n</body></html>\n"
    ))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_names_only_servable_files() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("init_data");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("index.html"), "hi").unwrap();
        std::fs::write(root.join(".hidden"), "h").unwrap();
        std::fs::write(tmp.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret"), root.join("escape")).unwrap();
        std::os::unix::fs::symlink("index.html", root.join("alias.html")).unwrap();
        std::os::unix::fs::symlink(".hidden", root.join("peek")).unwrap();
        let names: Vec<_> = list(&root).unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["alias.html", "index.html"]);
    }

    #[test]
    fn http_dates_are_imf_fixdate() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(784_111_777);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
