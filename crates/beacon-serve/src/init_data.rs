//! Read-only access to the files init containers wrote (`/init-data/`).
//!
//! Only plain, non-hidden path components are accepted; the resolved path (after
//! following symlinks) must stay inside the directory, so neither `..`, `%2e%2e`,
//! absolute paths nor a symlink pointing outside can reach other files. Hidden names
//! are refused because init steps keep their temp and bookkeeping files there.

use std::{
    io,
    path::{Component, Path, PathBuf},
};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Json, Redirect, Response},
};
use serde::Serialize;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::{page::escape, routes::AppState};

#[derive(Debug, PartialEq)]
enum Refusal {
    /// The name is not a plain relative path (`..`, absolute, NUL, empty component).
    Invalid,
    /// Absent, hidden, not a regular file, or resolving outside the directory.
    NotFound,
}

fn resolve(root: &Path, name: &str) -> Result<PathBuf, Refusal> {
    if name.is_empty() || name.contains('\0') {
        return Err(Refusal::Invalid);
    }
    let rel = Path::new(name);
    for component in rel.components() {
        match component {
            Component::Normal(part) if part.as_encoded_bytes().starts_with(b".") => {
                return Err(Refusal::NotFound);
            }
            Component::Normal(_) => {}
            _ => return Err(Refusal::Invalid),
        }
    }
    let root = std::fs::canonicalize(root).map_err(|_| Refusal::NotFound)?;
    let full = std::fs::canonicalize(root.join(rel)).map_err(|_| Refusal::NotFound)?;
    if !full.starts_with(&root) || !full.is_file() {
        return Err(Refusal::NotFound);
    }
    Ok(full)
}

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
    req: Request,
) -> Response {
    let root = state.init_data_dir.clone();
    let resolved = tokio::task::spawn_blocking(move || resolve(&root, &name)).await;
    match resolved {
        Ok(Ok(path)) => {
            let mut response = match ServeFile::new(path).oneshot(req).await {
                Ok(r) => r.map(Body::new),
                Err(never) => match never {},
            };
            harden(response.headers_mut());
            response
        }
        Ok(Err(Refusal::Invalid)) => (StatusCode::BAD_REQUEST, "invalid path\n").into_response(),
        Ok(Err(Refusal::NotFound)) | Err(_) => {
            (StatusCode::NOT_FOUND, "not found\n").into_response()
        }
    }
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
        if let Ok(path) = resolve(root, name) {
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            entries.push(Entry {
                name: name.to_owned(),
                size,
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
            let name = escape(&e.name);
            format!(
                "<li><a href=\"/init-data/{name}\">{name}</a> ({} bytes)</li>\n",
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
    fn only_plain_names_inside_the_directory_resolve() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("init_data");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("index.html"), "hi").unwrap();
        std::fs::write(root.join("sub/a.txt"), "a").unwrap();
        std::fs::write(root.join(".hidden"), "h").unwrap();
        std::fs::write(tmp.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret"), root.join("escape")).unwrap();
        std::os::unix::fs::symlink(root.join("index.html"), root.join("alias.html")).unwrap();

        assert!(
            resolve(&root, "index.html")
                .unwrap()
                .ends_with("index.html")
        );
        assert!(resolve(&root, "sub/a.txt").is_ok());
        assert!(
            resolve(&root, "alias.html")
                .unwrap()
                .ends_with("index.html")
        );
        assert_eq!(resolve(&root, "../secret"), Err(Refusal::Invalid));
        assert_eq!(resolve(&root, "sub/../../secret"), Err(Refusal::Invalid));
        assert_eq!(resolve(&root, "/etc/passwd"), Err(Refusal::Invalid));
        assert_eq!(resolve(&root, "a\0b"), Err(Refusal::Invalid));
        assert_eq!(resolve(&root, "escape"), Err(Refusal::NotFound));
        assert_eq!(resolve(&root, ".hidden"), Err(Refusal::NotFound));
        assert_eq!(resolve(&root, "sub"), Err(Refusal::NotFound));
        let names: Vec<_> = list(&root).unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["alias.html", "index.html"]);
    }
}
