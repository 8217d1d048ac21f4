use std::os::unix::fs::symlink;

use crate::helpers::*;

const SECRET: &str = "TOP-SECRET-MARKER-7f3a";

fn server_with_files() -> TestServer {
    let server = TestServer::start();
    let dir = server.init_data_dir();
    std::fs::write(dir.join("index.html"), "<html><body>CERN</body></html>").unwrap();
    std::fs::write(
        dir.join("example.txt"),
        "bla-bla\nwhoa\nthis is the 14th lab\n",
    )
    .unwrap();
    std::fs::write(dir.join(".example.txt.steps"), "bookkeeping").unwrap();
    std::fs::write(server.root.join("secret.txt"), SECRET).unwrap();
    symlink(server.root.join("secret.txt"), dir.join("escape.txt")).unwrap();
    symlink("/etc/passwd", dir.join("passwd")).unwrap();
    server
}

#[test]
fn files_are_served_read_only_with_their_content_type() {
    let server = server_with_files();
    let http = blocking_client();
    let html = http
        .get(server.url("/init-data/index.html"))
        .send()
        .unwrap();
    assert_eq!(html.status(), 200);
    assert_eq!(html.headers()["content-type"], "text/html");
    assert_eq!(html.headers()["x-content-type-options"], "nosniff");
    assert_eq!(html.text().unwrap(), "<html><body>CERN</body></html>");
    let txt = http
        .get(server.url("/init-data/example.txt"))
        .send()
        .unwrap();
    assert_eq!(txt.headers()["content-type"], "text/plain");
    assert_eq!(txt.text().unwrap(), "bla-bla\nwhoa\nthis is the 14th lab\n");
    for method in [
        reqwest::Method::PUT,
        reqwest::Method::POST,
        reqwest::Method::DELETE,
    ] {
        let resp = http
            .request(method.clone(), server.url("/init-data/example.txt"))
            .body("x")
            .send()
            .unwrap();
        assert_eq!(resp.status(), 405, "{method}");
    }
    assert_eq!(
        std::fs::read_to_string(server.init_data_dir().join("example.txt")).unwrap(),
        "bla-bla\nwhoa\nthis is the 14th lab\n"
    );
}

#[test]
fn listing_shows_only_servable_files() {
    let server = server_with_files();
    let http = blocking_client();
    let json: serde_json::Value = http
        .get(server.url("/init-data/"))
        .header("accept", "application/json")
        .send()
        .unwrap()
        .json()
        .unwrap();
    let names: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["example.txt", "index.html"]);
    let html = http
        .get(server.url("/init-data/"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        html.contains("<a href=\"/init-data/index.html\">index.html</a>"),
        "{html}"
    );
    assert!(
        !html.contains("escape.txt")
            && !html.contains("passwd")
            && !html.contains(".example.txt.steps"),
        "{html}"
    );
    let redirect = raw_get(server.addr, "/init-data");
    assert!(
        redirect.starts_with("HTTP/1.1 308") && redirect.contains("location: /init-data/"),
        "{redirect}"
    );
}

#[test]
fn traversal_payloads_are_all_refused() {
    let server = server_with_files();
    let payloads = [
        "/init-data/../secret.txt",
        "/init-data/../../../../etc/passwd",
        "/init-data/%2e%2e/secret.txt",
        "/init-data/%2E%2E%2Fsecret.txt",
        "/init-data/..%2fsecret.txt",
        "/init-data/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/init-data//etc/passwd",
        "/init-data/%2fetc%2fpasswd",
        "/init-data/escape.txt",
        "/init-data/passwd",
        "/init-data/.example.txt.steps",
        "/init-data/index.html%00.txt",
        "/init-data/./index.html/..",
        "/init-data/..\\secret.txt",
    ];
    for payload in payloads {
        let resp = raw_get(server.addr, payload);
        let status: u16 = resp[9..12].parse().unwrap();
        assert!(
            status == 400 || status == 404,
            "{payload} answered {status}:\n{resp}"
        );
        assert!(
            !resp.contains(SECRET) && !resp.contains("root:x:0:0"),
            "{payload} leaked:\n{resp}"
        );
    }
}
