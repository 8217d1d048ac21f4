//! The issue's "done means": the three init steps, run exactly as the Helm chart runs them,
//! reproduce the original setup's /init_data/index.html and /init_data/example.txt, and
//! `beacon serve` serves both under /init-data/.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Stdio},
    sync::mpsc,
    time::Duration,
};

use crate::helpers::{beacon, run};
use beacon_testkit::fixture_http::{FixtureHttp, Route};

/// What http://info.cern.ch answers; the fixture stands in for it (tests never leave 127.0.0.1).
const INFO_CERN_CH: &str = r#"<html><head></head><body><header>
<title>http://info.cern.ch</title>
</header>

<h1>http://info.cern.ch - home of the first website</h1>
<p>From here you can:</p>
<ul>
<li><a href="http://info.cern.ch/hypertext/WWW/TheProject.html">Browse the first website</a></li>
<li><a href="http://line-mode.cern.ch/www/hypertext/WWW/TheProject.html">Browse the first website using the line-mode browser simulator</a></li>
<li><a href="http://home.web.cern.ch/topics/birth-web">Learn about the birth of the web</a></li>
<li><a href="http://home.web.cern.ch/about">Learn about CERN, the physics laboratory where the web was born</a></li>
</ul>
</body></html>
"#;

const EXAMPLE_TXT: &str = "bla-bla\nwhoa\nthis is the 14th lab\n";

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `beacon serve` and reads its JSON log until the "listening" line gives the address.
fn start_serve(root: &std::path::Path, init_data: &std::path::Path) -> (Serve, SocketAddr) {
    let mut child = beacon(&["serve", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(root.join("data"))
        .arg("--config")
        .arg(root.join("config.json"))
        .arg("--init-data-dir")
        .arg(init_data)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if v["message"] == "listening"
                && let Some(addr) = v["addr"].as_str().and_then(|a| a.parse().ok())
            {
                let _ = tx.send(addr);
            }
        }
    });
    let serve = Serve(child);
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("beacon serve logs its listening address");
    (serve, addr)
}

#[test]
fn init_steps_reproduce_the_original_init_data_and_serve_shows_it() {
    let cern = FixtureHttp::start(vec![("/", Route::ok(INFO_CERN_CH))]);
    let root = tempfile::tempdir().unwrap();
    let init_data = root.path().join("init_data");
    let index = init_data.join("index.html");
    let example = init_data.join("example.txt");

    // Twice: the second round is a pod restart with the emptyDir kept.
    for _ in 0..2 {
        run(&[
            "init",
            "wait",
            &format!("tcp:{}", cern.addr),
            "--timeout",
            "10s",
        ])
        .expect_code(0);
        run(&[
            "init",
            "fetch",
            &cern.url("/"),
            "--to",
            index.to_str().unwrap(),
        ])
        .expect_code(0);
        for line in ["bla-bla", "whoa", "this is the 14th lab"] {
            run(&["init", "write", example.to_str().unwrap(), "--line", line]).expect_code(0);
        }
    }
    assert_eq!(std::fs::read_to_string(&index).unwrap(), INFO_CERN_CH);
    assert_eq!(std::fs::read_to_string(&example).unwrap(), EXAMPLE_TXT);

    let (_serve, addr) = start_serve(root.path(), &init_data);
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let get = |path: &str| {
        let resp = client.get(format!("http://{addr}{path}")).send().unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    };
    assert_eq!(get("/init-data/index.html"), (200, INFO_CERN_CH.to_owned()));
    assert_eq!(get("/init-data/example.txt"), (200, EXAMPLE_TXT.to_owned()));
    // The write ledger is a dotfile, which serve does not expose.
    assert_eq!(get("/init-data/.example.txt.steps").0, 404);
}
