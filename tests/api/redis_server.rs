//! A real `redis-server` for the tests: started on a random loopback port when it is on PATH
//! (plain, or TLS only with `spawn_tls`), or the one at `REDIS_URL`. Without either, a test says
//! so loudly and skips, or fails under `REQUIRE_REDIS=1` (`.ci/run` sets it and installs
//! redis-server).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A Redis the tests can use; a spawned one is killed on drop.
pub struct RedisServer {
    pub url: String,
    port: u16,
    /// Serves TLS only (`--tls-port`), with `tests/fixtures/tls/server.pem`.
    tls: bool,
    child: Option<Child>,
    /// Where a persistent server keeps its append-only file (`spawn_persistent`).
    dir: Option<std::path::PathBuf>,
}

/// Skips `test` loudly, or fails it under `REQUIRE_REDIS=1`.
fn skip(test: &str, why: &str) {
    crate::helpers::skip_unless_required(
        "REQUIRE_REDIS",
        test,
        why,
        "Install redis-server (apt-get install redis-server) or set REDIS_URL; .ci/run installs it",
    );
}

/// Whether something accepts connections at the host and port of `url` (never printed: it may
/// carry a password).
fn reachable(url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else {
        return false;
    };
    let (Some(host), port) = (url.host_str(), url.port().unwrap_or(6379)) else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (host, port).to_socket_addrs().is_ok_and(|mut addresses| {
        addresses.any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether something answers PING with PONG at `port`.
fn answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

impl RedisServer {
    /// The Redis for `test`: `REDIS_URL` if set, else a fresh `redis-server`; `None` (said loudly,
    /// or a failure under `REQUIRE_REDIS=1`) when there is neither or nothing answers at
    /// `REDIS_URL`.
    pub fn start(test: &str) -> Option<Self> {
        if let Ok(url) = std::env::var("REDIS_URL") {
            if !reachable(&url) {
                skip(test, "nothing accepts connections at REDIS_URL");
                return None;
            }
            return Some(Self {
                url,
                port: 0,
                tls: false,
                child: None,
                dir: None,
            });
        }
        Self::spawn(test)
    }

    /// Always a fresh `redis-server` of the test's own (needed to stop and restart it).
    pub fn spawn(test: &str) -> Option<Self> {
        let mut server = Self::reserved(test)?;
        server.restart();
        Some(server)
    }

    /// A port where nothing listens yet, and the URL a server started later (`restart`) will
    /// have there.
    pub fn reserved(test: &str) -> Option<Self> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            skip(test, "redis-server is not on PATH");
            return None;
        }
        let port = free_port();
        Some(Self {
            url: format!("redis://127.0.0.1:{port}/"),
            port,
            tls: false,
            child: None,
            dir: None,
        })
    }

    /// A fresh `redis-server` that persists every write (append-only file, fsync always) in a
    /// directory of its own, so a `stop` and `restart` keeps its data.
    pub fn spawn_persistent(test: &str) -> Option<Self> {
        let mut server = Self::reserved(test)?;
        let dir = std::env::temp_dir().join(format!("redis-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        server.dir = Some(dir);
        server.restart();
        Some(server)
    }

    /// A fresh `redis-server` speaking TLS only, its certificate for `localhost` signed by
    /// `tests/fixtures/tls/ca.pem`; its URL is `rediss://localhost:<port>/`. `None` (said
    /// loudly) when redis-server is missing or built without TLS.
    pub fn spawn_tls(test: &str) -> Option<Self> {
        let mut server = Self::reserved(test)?;
        server.url = format!("rediss://localhost:{}/", server.port);
        server.tls = true;
        if !server.start_tls() {
            skip(
                test,
                "redis-server does not start with --tls-port (built without TLS?)",
            );
            return None;
        }
        Some(server)
    }

    /// Kills the server, as a crash would (its data is gone: no persistence).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the TLS server and waits until its port accepts connections; false if it exits.
    fn start_tls(&mut self) -> bool {
        let tls = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");
        let mut child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--tls-auth-clients", "no"])
            .args(["--tls-cert-file", &format!("{tls}/server.pem")])
            .args(["--tls-key-file", &format!("{tls}/server-key.pem")])
            .args(["--tls-ca-cert-file", &format!("{tls}/ca.pem")])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                self.child = Some(child);
                return true;
            }
            if child.try_wait().is_ok_and(|status| status.is_some()) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// Starts the server on its port (again) and waits until it answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        assert!(!self.tls, "restart is for plain servers");
        let mut command = Command::new("redis-server");
        command.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"]);
        match &self.dir {
            Some(dir) => command
                .args([
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                ])
                .arg("--dir")
                .arg(dir),
            None => command.args(["--save", "", "--appendonly", "no"]),
        };
        let child = command
            .args(["--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        for _ in 0..100 {
            if answers(self.port) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server on port {} does not answer", self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A key prefix of the test's own, so tests sharing one Redis (`REDIS_URL`) never meet.
pub fn unique_prefix(test: &str) -> String {
    format!("test:{test}:{}:", uuid::Uuid::new_v4().simple())
}
