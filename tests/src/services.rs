//! Private MongoDB and RabbitMQ instances for tests that restart them (free ports, data in a
//! temporary directory, the same binaries `scripts/lib/services.sh` starts), so the services
//! shared by the rest of the suite are never disturbed.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn wait_port_closed(port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline && TcpStream::connect(("127.0.0.1", port)).is_ok() {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A MongoDB (or its wire-compatible stand-in `secantusd-rs`) of one test.
pub struct PrivateMongo {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateMongo {
    pub fn start(dir: &Path) -> Self {
        let mut mongo = Self {
            port: free_port(),
            dir: dir.to_path_buf(),
            child: None,
        };
        mongo.restart();
        mongo
    }

    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}", self.port)
    }

    fn command(&self) -> Command {
        std::fs::create_dir_all(&self.dir).unwrap();
        let log = std::fs::File::create(self.dir.join("server.log")).unwrap();
        let port = self.port.to_string();
        let on_path = |name: &str| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join(name))
                    .find(|p| p.is_file())
            })
        };
        let mut command = if let Some(mongod) = on_path("mongod") {
            let mut c = Command::new(mongod);
            c.args(["--bind_ip", "127.0.0.1", "--port", &port, "--dbpath"])
                .arg(&self.dir);
            c
        } else {
            let cache = std::env::var_os("TRD_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/trd")
                });
            let mut c = Command::new(cache.join("secantus-0.5.3-beta.196/bin/secantusd-rs"));
            c.args(["--host", "127.0.0.1", "--port", &port, "--storage-path"])
                .arg(&self.dir)
                .args([
                    "--sync-on-commit",
                    "--cache-size",
                    "256M",
                    "--log-level",
                    "WARNING",
                ]);
            c
        };
        command
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null());
        command
    }

    /// Stops the server gracefully (SIGTERM) and waits for it to go.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM, so the server shuts down cleanly.
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        wait_port_closed(self.port, Duration::from_secs(10));
    }

    pub fn restart(&mut self) {
        self.stop();
        self.child = Some(self.command().spawn().expect("starting the MongoDB server"));
        assert!(
            wait_for_port(self.port, Duration::from_secs(30)),
            "MongoDB did not start; see {}",
            self.dir.display()
        );
    }
}

impl Drop for PrivateMongo {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A RabbitMQ node of one test.
pub struct PrivateRabbit {
    pub port: u16,
    node: String,
    dir: PathBuf,
}

impl PrivateRabbit {
    pub fn start(dir: &Path) -> Self {
        let port = free_port();
        let rabbit = Self {
            port,
            node: format!("trd-t{port}@localhost"),
            dir: dir.to_path_buf(),
        };
        rabbit.launch();
        rabbit
    }

    pub fn uri(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    fn launch(&self) {
        for sub in ["mnesia", "log"] {
            std::fs::create_dir_all(self.dir.join(sub)).unwrap();
        }
        std::fs::write(self.dir.join("enabled_plugins"), "[].").unwrap();
        // Debian's wrapper runs the broker as `rabbitmq` when started by root: it must own
        // its directories (and reach them).
        let _ = Command::new("chown")
            .args(["-R", "rabbitmq:rabbitmq"])
            .arg(&self.dir)
            .status();
        let mut parent = self.dir.parent();
        while let Some(p) = parent {
            if p == Path::new("/") {
                break;
            }
            let _ = Command::new("chmod").arg("o+x").arg(p).status();
            parent = p.parent();
        }
        let dist = free_port();
        let status = Command::new("rabbitmq-server")
            .arg("-detached")
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", dist.to_string())
            .env("RABBITMQ_MNESIA_BASE", self.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", self.dir.join("log"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                self.dir.join("enabled_plugins"),
            )
            .env("RABBITMQ_PID_FILE", self.dir.join("rabbit.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("rabbitmq-server (install it with scripts/lib/provision.sh)");
        assert!(status.success(), "rabbitmq-server failed to start");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let ready = Command::new("rabbitmq-diagnostics")
                .args(["-n", &self.node, "-q", "check_port_connectivity"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "RabbitMQ did not start; see {}",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    pub fn stop(&self) {
        let _ = Command::new("rabbitmqctl")
            .args(["-n", &self.node, "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        wait_port_closed(self.port, Duration::from_secs(30));
    }

    pub fn restart(&self) {
        self.stop();
        self.launch();
    }
}

impl Drop for PrivateRabbit {
    fn drop(&mut self) {
        self.stop();
    }
}
