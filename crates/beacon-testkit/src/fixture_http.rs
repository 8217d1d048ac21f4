//! A tiny HTTP/1.1 server on 127.0.0.1 that misbehaves on purpose: raw responses, so it can
//! lie about Content-Length, reset mid-body, stall, loop redirects and so on. One request per
//! connection (`Connection: close`) keeps the fault injection per attempt.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// What a path answers; `hit` (1-based) lets a route change its answer over attempts.
#[derive(Clone)]
pub enum Route {
    /// 200 with the body, sent in `chunk`-byte pieces `pause` apart (a slow download).
    Body {
        body: Vec<u8>,
        chunk: usize,
        pause: Duration,
    },
    /// 200 with the body and no Content-Length (read until close).
    Unsized(Vec<u8>),
    /// A bare status with an optional Retry-After.
    Status {
        code: u16,
        retry_after: Option<&'static str>,
    },
    /// The first `n` hits get `first`, the rest `then`.
    FirstThen {
        n: usize,
        first: Box<Route>,
        then: Box<Route>,
    },
    /// Sends the headers and `sent` bytes of the body, then a TCP reset.
    ResetAfter { body: Vec<u8>, sent: usize },
    /// Sends the headers and `sent` bytes of the body, then goes silent for `stall`.
    StallAfter {
        body: Vec<u8>,
        sent: usize,
        stall: Duration,
    },
    /// Claims `claimed` bytes in Content-Length, sends the body, and closes.
    LyingLength { body: Vec<u8>, claimed: usize },
    /// 302 to another path on this server.
    Redirect(&'static str),
    /// 200 with `Content-Encoding: encoding` and the (already encoded) body as is.
    Encoded {
        body: Vec<u8>,
        encoding: &'static str,
    },
}

impl Route {
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Route::Body {
            body: body.into(),
            chunk: usize::MAX,
            pause: Duration::ZERO,
        }
    }

    pub fn first_then(n: usize, first: Route, then: Route) -> Self {
        Route::FirstThen {
            n,
            first: Box::new(first),
            then: Box::new(then),
        }
    }
}

pub struct FixtureHttp {
    pub addr: SocketAddr,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    last_head: Arc<Mutex<String>>,
    _runtime: tokio::runtime::Runtime,
}

impl FixtureHttp {
    pub fn start(routes: Vec<(&str, Route)>) -> Self {
        let routes: Arc<HashMap<String, Route>> =
            Arc::new(routes.into_iter().map(|(p, r)| (p.to_owned(), r)).collect());
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let hits2 = hits.clone();
        let last_head = Arc::new(Mutex::new(String::new()));
        let last2 = last_head.clone();
        runtime.spawn(async move {
            let listener = TcpListener::from_std(std_listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (routes, hits, last) = (routes.clone(), hits2.clone(), last2.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, &routes, &hits, &last).await;
                });
            }
        });
        Self {
            addr,
            hits,
            last_head,
            _runtime: runtime,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The request line and headers of the last request received.
    pub fn last_request_head(&self) -> String {
        self.last_head.lock().unwrap().clone()
    }

    /// Requests received for `path` so far.
    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

async fn serve(
    mut stream: TcpStream,
    routes: &HashMap<String, Route>,
    hits: &Mutex<HashMap<String, usize>>,
    last_head: &Mutex<String>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    *last_head.lock().unwrap() = head.to_string();
    let hit = {
        let mut hits = hits.lock().unwrap();
        let n = hits.entry(path.clone()).or_default();
        *n += 1;
        *n
    };
    match routes.get(&path) {
        Some(route) => respond(&mut stream, route, hit).await,
        None => {
            respond(
                &mut stream,
                &Route::Status {
                    code: 404,
                    retry_after: None,
                },
                hit,
            )
            .await
        }
    }
}

async fn respond(stream: &mut TcpStream, route: &Route, hit: usize) -> std::io::Result<()> {
    match route {
        Route::FirstThen { n, first, then } => {
            let next = if hit <= *n { first } else { then };
            Box::pin(respond(stream, next, hit)).await
        }
        Route::Body { body, chunk, pause } => {
            stream
                .write_all(head(200, &[("Content-Length", body.len().to_string())]).as_bytes())
                .await?;
            for piece in body.chunks((*chunk).max(1)) {
                stream.write_all(piece).await?;
                stream.flush().await?;
                tokio::time::sleep(*pause).await;
            }
            Ok(())
        }
        Route::Unsized(body) => {
            stream.write_all(head(200, &[]).as_bytes()).await?;
            stream.write_all(body).await
        }
        Route::Status { code, retry_after } => {
            let mut headers = vec![("Content-Length", "0".to_owned())];
            if let Some(ra) = retry_after {
                headers.push(("Retry-After", (*ra).to_owned()));
            }
            stream.write_all(head(*code, &headers).as_bytes()).await
        }
        Route::ResetAfter { body, sent } => {
            stream
                .write_all(head(200, &[("Content-Length", body.len().to_string())]).as_bytes())
                .await?;
            stream.write_all(&body[..*sent]).await?;
            stream.flush().await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
            // SO_LINGER 0: close sends RST instead of FIN — a "connection reset by peer".
            socket2::SockRef::from(&*stream).set_linger(Some(Duration::ZERO))?;
            Ok(())
        }
        Route::StallAfter { body, sent, stall } => {
            stream
                .write_all(head(200, &[("Content-Length", body.len().to_string())]).as_bytes())
                .await?;
            stream.write_all(&body[..*sent]).await?;
            stream.flush().await?;
            tokio::time::sleep(*stall).await;
            stream.write_all(&body[*sent..]).await
        }
        Route::LyingLength { body, claimed } => {
            stream
                .write_all(head(200, &[("Content-Length", claimed.to_string())]).as_bytes())
                .await?;
            stream.write_all(body).await
        }
        Route::Encoded { body, encoding } => {
            let headers = [
                ("Content-Encoding", (*encoding).to_owned()),
                ("Content-Length", body.len().to_string()),
            ];
            stream.write_all(head(200, &headers).as_bytes()).await?;
            stream.write_all(body).await
        }
        Route::Redirect(to) => {
            let headers = [
                ("Location", (*to).to_owned()),
                ("Content-Length", "0".to_owned()),
            ];
            stream.write_all(head(302, &headers).as_bytes()).await
        }
    }
}

fn head(code: u16, headers: &[(&str, String)]) -> String {
    let mut out = format!("HTTP/1.1 {code} {}\r\nConnection: close\r\n", reason(code));
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        302 => "Found",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}
