//! Private MongoDB and RabbitMQ instances for tests that restart them (free ports, data in a
//! temporary directory), so the services shared by the rest of the suite are never disturbed.
//! `scripts/lib/services.sh` starts and stops them as it does `scripts/run`'s: on loopback
//! only, each with a user of TRD's whose password it generates.

use std::ffi::OsStr;
use std::fs::File;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_port_closed(port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline && TcpStream::connect(("127.0.0.1", port)).is_ok() {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A function of `scripts/lib/services.sh`, called with `args`.
fn services_sh<I, S>(function: &str, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/lib/services.sh");
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(r#"source "$0" && "$@""#)
        .arg(script)
        .arg(function)
        .args(args)
        .stdin(Stdio::null());
    command
}

/// Runs a function that starts or stops a service, its output appended to `log` (a file, not
/// a pipe: a server it starts in the background must not hold our end open).
fn run_logged(mut command: Command, log: &Path) -> bool {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .expect("the services log");
    command
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .status()
        .expect("bash")
        .success()
}

/// The URI a function of services.sh prints (`mongo_uri`, `amqp_uri`).
fn uri(function: &str, credentials: &Path, port: u16) -> String {
    let port = port.to_string();
    let output = services_sh(function, [credentials.as_os_str(), OsStr::new(&port)])
        .output()
        .expect("bash");
    assert!(output.status.success(), "services.sh {function} failed");
    String::from_utf8(output.stdout).expect("a URI")
}

/// A MongoDB (or its wire-compatible stand-in `secantusd-rs`) of one test.
pub struct PrivateMongo {
    pub port: u16,
    dir: PathBuf,
    /// The MongoDB-wire server's journal file size, when a test makes it small.
    log_file_max: Option<&'static str>,
}

impl PrivateMongo {
    pub fn start(dir: &Path) -> Self {
        Self::start_configured(dir, None)
    }

    /// A server whose journal files are small (the MongoDB-wire server allocates each whole,
    /// 128 MB by default), so a disk that fills up is met by the next few writes rather than
    /// once that much has been written.
    pub fn start_with_small_journal_files(dir: &Path) -> Self {
        Self::start_configured(dir, Some("1MB"))
    }

    fn start_configured(dir: &Path, log_file_max: Option<&'static str>) -> Self {
        let mongo = Self {
            port: free_port(),
            dir: dir.to_path_buf(),
            log_file_max,
        };
        mongo.launch();
        mongo
    }

    pub fn uri(&self) -> String {
        uri("mongo_uri", &self.credentials().join("mongodb"), self.port)
    }

    /// The administrator's URI (role root): for a test that reads the server's own counters.
    pub fn admin_uri(&self) -> String {
        uri(
            "mongo_uri",
            &self.credentials().join("mongodb-admin"),
            self.port,
        )
    }

    /// How many queries (finds) the server has answered on `database.collection`, from its
    /// `top` command.
    pub async fn queries_on(&self, database: &str, collection: &str) -> i64 {
        let client = mongodb::Client::with_uri_str(self.admin_uri())
            .await
            .expect("the administrator connects");
        let top = client
            .database("admin")
            .run_command(mongodb::bson::doc! {"top": 1})
            .await
            .expect("top");
        let namespace = format!("{database}.{collection}");
        top.get_document("totals")
            .ok()
            .and_then(|t| t.get_document(&namespace).ok())
            .and_then(|n| n.get_document("queries").ok())
            .and_then(|q| match q.get("count") {
                Some(mongodb::bson::Bson::Int32(n)) => Some(i64::from(*n)),
                Some(mongodb::bson::Bson::Int64(n)) => Some(*n),
                _ => None,
            })
            .unwrap_or(0)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn credentials(&self) -> PathBuf {
        self.dir.join("credentials")
    }

    fn launch(&self) {
        std::fs::create_dir_all(&self.dir).unwrap();
        let port = self.port.to_string();
        let mut command = services_sh(
            "start_mongo",
            [
                self.data().as_os_str(),
                OsStr::new(&port),
                self.credentials().as_os_str(),
            ],
        );
        if let Some(size) = self.log_file_max {
            command.env("TRD_MONGO_LOG_FILE_MAX", size);
        }
        let started = run_logged(command, &self.dir.join("services.log"));
        assert!(started, "MongoDB did not start; see {}", self.dir.display());
    }

    /// Stops the server gracefully (SIGTERM) and waits for it to go.
    pub fn stop(&mut self) {
        run_logged(
            services_sh("stop_mongo", [self.data()]),
            &self.dir.join("services.log"),
        );
        wait_port_closed(self.port, Duration::from_secs(10));
    }

    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Kills the server outright (SIGKILL), as a crash or the OOM killer does.
    pub fn kill(&self) {
        kill_listener(self.port);
    }

    /// Starts the server again on its data, as an operator does after a crash.
    pub fn start_again(&self) {
        self.launch();
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
    /// The broker's consumer timeout, when a test shortens it (checked every half of it).
    consumer_timeout: Option<Duration>,
}

impl PrivateRabbit {
    pub fn start(dir: &Path) -> Self {
        Self::start_configured(dir, None)
    }

    /// A node that takes a delivery back, and closes its consumer's channel, once it has stayed
    /// unacknowledged for `timeout`: what a stock broker does after 30 minutes.
    pub fn start_with_consumer_timeout(dir: &Path, timeout: Duration) -> Self {
        Self::start_configured(dir, Some(timeout))
    }

    fn start_configured(dir: &Path, consumer_timeout: Option<Duration>) -> Self {
        let port = free_port();
        let rabbit = Self {
            port,
            node: format!("trd-t{port}@localhost"),
            dir: dir.to_path_buf(),
            consumer_timeout,
        };
        rabbit.launch();
        rabbit
    }

    /// The broker's log files (for a test that asserts the broker did what it was set up to).
    pub fn log(&self) -> String {
        let logs = self.dir.join("node/log");
        std::fs::read_dir(&logs)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect()
    }

    pub fn uri(&self) -> String {
        uri("amqp_uri", &self.credentials(), self.port)
    }

    fn credentials(&self) -> PathBuf {
        self.dir.join("credentials/rabbitmq")
    }

    fn launch(&self) {
        std::fs::create_dir_all(&self.dir).unwrap();
        // Debian's wrapper runs the broker as `rabbitmq` when started by root: it must reach
        // its data directory, and a temporary directory is its owner's only.
        let mut parent = Some(self.dir.as_path());
        while let Some(p) = parent {
            if p == Path::new("/") {
                break;
            }
            let _ = Command::new("chmod").arg("o+x").arg(p).status();
            parent = p.parent();
        }
        let (port, dist) = (self.port.to_string(), free_port().to_string());
        let mut command = services_sh(
            "start_rabbit",
            [
                OsStr::new(&self.node),
                self.dir.join("node").as_os_str(),
                OsStr::new(&port),
                OsStr::new(&dist),
                self.credentials().as_os_str(),
            ],
        );
        if let Some(timeout) = self.consumer_timeout {
            let ms = timeout.as_millis().max(2);
            command
                .env("TRD_RABBIT_CONSUMER_TIMEOUT_MS", ms.to_string())
                .env("TRD_RABBIT_CHANNEL_TICK_MS", (ms / 2).to_string());
        }
        let started = run_logged(command, &self.dir.join("services.log"));
        assert!(
            started,
            "RabbitMQ did not start; see {}",
            self.dir.display()
        );
    }

    pub fn stop(&self) {
        run_logged(
            services_sh("stop_rabbit", [&self.node]),
            &self.dir.join("services.log"),
        );
        wait_port_closed(self.port, Duration::from_secs(30));
    }

    pub fn restart(&self) {
        self.stop();
        self.launch();
    }

    /// Kills the node outright (SIGKILL), as a crash or the OOM killer does.
    pub fn kill(&self) {
        kill_listener(self.port);
    }

    /// Starts the node again on its data, as an operator does after a crash.
    pub fn start_again(&self) {
        self.launch();
    }
}

impl Drop for PrivateRabbit {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Kills (SIGKILL) every process listening on TCP `port` and waits for the port to close.
fn kill_listener(port: u16) {
    let pids = listeners(port);
    assert!(!pids.is_empty(), "nothing listens on port {port}");
    for pid in pids {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(pid.to_string())
            .status();
    }
    wait_port_closed(port, Duration::from_secs(30));
}

/// The processes listening on TCP `port`, found through /proc (no tool needed): the socket
/// inodes in LISTEN state on that port, then the processes holding one of them.
fn listeners(port: u16) -> Vec<u32> {
    const LISTEN: &str = "0A";
    let mut inodes = std::collections::HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) && fields.get(3) == Some(&LISTEN) {
                if let Some(inode) = fields.get(9) {
                    inodes.insert(format!("socket:[{inode}]"));
                }
            }
        }
    }
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let listening = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|target| inodes.contains(target.to_string_lossy().as_ref()))
        });
        if listening {
            pids.push(pid);
        }
    }
    pids
}
