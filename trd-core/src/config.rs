//! Typed configuration, layered: built-in defaults → the `[<profile>.trd]` table of `Rocket.toml`
//! → `TRD_*` environment variables. Validated once at start-up, with the bad key named.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::logging::LogFormat;
use crate::store::identity::Scope;

/// The shortest `webhook_secret` accepted: a short key would make signatures guessable.
pub const MIN_WEBHOOK_SECRET: usize = 16;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// MongoDB connection string.
    pub mongodb_uri: String,
    /// Database name; tests give each run its own.
    pub database: String,
    /// RabbitMQ connection string.
    pub amqp_uri: String,
    /// Prefix of every queue and exchange name; tests give each run its own.
    pub queue_prefix: String,
    /// The watched work directory; batches are its sub-folders.
    pub workdir: PathBuf,
    /// HTTP address and port of the API.
    pub address: String,
    pub port: u16,
    /// Sample rate the normalizer produces and the recognizer consumes.
    pub sample_rate: u32,
    /// Recognition models: id → Vosk model directory.
    pub models: BTreeMap<String, PathBuf>,
    /// The model used when a start names none.
    pub default_model: String,
    /// Concurrent work units per worker process; 0 means one per CPU core.
    pub worker_concurrency: usize,
    /// How long a worker's claim on a stage or segment lasts without renewal.
    pub lease_seconds: u64,
    /// Work units per worker process reserved for the interactive lane (recognize-now
    /// requests), on top of `worker_concurrency`: an interactive request starts at once on a
    /// busy worker instead of waiting behind its batch work. 0 means as many as
    /// `worker_concurrency` gives the batch lane.
    pub interactive_concurrency: usize,
    /// Recognize-now requests one API process serves at once; more get 503 with
    /// `Retry-After` at once rather than a timeout later.
    pub interactive_in_flight: usize,
    /// Live streams (WebSocket sessions) one recognizer process decodes at once, beside its
    /// batch and interactive work. A stream with no free slot anywhere is refused at once.
    pub stream_slots: usize,
    /// How long an opening stream waits for a recognizer with a free slot before it is
    /// refused with 503.
    pub stream_accept_ms: u64,
    /// A stream whose client sends nothing for this long is ended.
    pub stream_idle_seconds: u64,
    /// The longest a stream may last.
    pub stream_max_seconds: u64,
    /// Audio a stream may have sent but not yet heard back about, in seconds: a client that
    /// sends faster than the recognizer hears is no longer read (TCP back-pressure) until the
    /// recognizer catches up.
    pub stream_window_seconds: f64,
    /// How long a file's normalized audio (about 115 MB per channel-hour in MongoDB) is kept
    /// after the file has ended, FINISHED or FAILED; 0 drops it as the file ends. A reset
    /// file normalizes again, so nothing needs it afterwards.
    pub pcm_retention_seconds: u64,
    /// The longest audio a file may hold. A longer one ends FAILED naming this setting: at
    /// once when its header declares its length, else once decoding passes it. It bounds what
    /// a small file that decodes to days of audio (a decompression bomb) can cost: at most
    /// this many seconds of PCM per channel are ever stored.
    pub max_audio_seconds: u64,
    /// Longest speech segment the diarizer hands to the recognizer.
    pub max_segment_seconds: f64,
    /// Audio one recognizer hears in one go: a file's segments are recognized in runs of
    /// consecutive segments of about this many seconds, each run in order by one new
    /// recognizer. A model with a lookahead graph (composed lazily, seconds of CPU per new
    /// recognizer) wants long runs; with a static graph (`scripts/lib/compile-graph.sh`) a new
    /// recognizer costs little and short runs spread a file over more workers. 0 makes every
    /// segment a run of its own.
    pub recognition_run_seconds: f64,
    /// Frames (10 ms each) of audio the recognizer's acoustic network computes in one go,
    /// laid over the model's own `conf/model.conf`; 0 (the default) keeps the model's. Vosk's
    /// models leave it at Kaldi's default for live captions, 20, where repacking the network's
    /// weights for each small chunk is about a quarter of recognition's CPU. 51 (a multiple of
    /// the models' frame subsampling; Kaldi's batch decoders use 50) takes about a quarter
    /// less CPU, but the words are not quite the same, since the speaker adaptation is updated
    /// once per chunk: on `ko/zeroth-104` the CER went from 11.09 % to 11.31 %, and one hinted
    /// near-miss was no longer among the readings. A model whose configuration names the value
    /// keeps it.
    pub recognizer_frames_per_chunk: u32,
    /// Delivery attempts before a message is dead-lettered and its file fails.
    pub max_delivery_attempts: u32,
    /// Longest one attempt at a file stage (normalize, diarize) may take; a longer attempt is
    /// abandoned and counts as a failed delivery (a poison file ends FAILED after
    /// `max_delivery_attempts`).
    pub stage_timeout_seconds: u64,
    /// How often the watcher rescans the work directory (file-system events may not arrive).
    pub rescan_interval_ms: u64,
    /// How long a file's size must stay unchanged before it is registered.
    pub settle_ms: u64,
    /// Largest accepted upload, in bytes.
    pub upload_limit_bytes: u64,
    /// Where webhooks and `validate` may connect: IP networks (`10.0.0.0/8`, `::1/128`) or
    /// host names. Loopback only by default: private networks are opted in here. Link-local
    /// networks (cloud metadata endpoints) are never reachable, and an IPv6 address carrying
    /// an IPv4 one (`::ffff:10.0.0.1`) is judged as that IPv4 address.
    pub webhook_allow: Vec<String>,
    /// Delivery attempts per webhook before giving up.
    pub webhook_max_attempts: u32,
    /// Delay before the first retry; each further retry waits twice as long.
    pub webhook_backoff_ms: u64,
    /// Time limit of one webhook request.
    pub webhook_timeout_ms: u64,
    /// Webhook requests in flight at once, over all targets.
    pub webhook_concurrency: usize,
    /// Webhook requests in flight at once to one target (`host:port`), so a target that does
    /// not answer holds up only its own deliveries.
    pub webhook_per_host: usize,
    /// The key deliveries are signed with (`X-TRD-Signature`). Unset: the API generates one at
    /// its first start and keeps it in `<state_dir>/webhook-secret`. Set it when several API
    /// instances share a database, so that every delivery is signed with the same key.
    pub webhook_secret: Option<String>,
    /// `text` for people, `json` for log collectors: one JSON object per line.
    pub log_format: LogFormat,
    /// How this host is named in the leases its workers hold (with the process id, so a
    /// person can tell which process holds a file). Defaults to the machine's host name.
    pub worker_name: String,
    /// The directory holding the diarizer's voice-activity and speaker-embedding weights
    /// (`scripts/lib/provision-diarizer.sh` fills it).
    pub diarizer_models: PathBuf,
    /// Where the service keeps its own generated secrets (the first admin key, the webhook
    /// signing secret), each file readable by its owner only.
    pub state_dir: PathBuf,
    /// A key with every scope, for bootstrapping (`TRD_ADMIN_TOKEN`). Unset and no key stored:
    /// the API generates an admin key at first start into `<state_dir>/admin-token`.
    pub admin_token: Option<String>,
    /// Networks whose requests need no credential (IP networks such as `127.0.0.0/8`). The
    /// original service had no credentials and its clients send none; behind a reverse proxy
    /// every request comes from the proxy, so empty this list there.
    pub trusted_networks: Vec<String>,
    /// What an anonymous request from a trusted network may do.
    pub anonymous_scopes: Vec<Scope>,
    /// Host names the API answers to (the `Host` header, without port); others get 421, so a
    /// rebound DNS name cannot reach it. The bind address is always allowed. `*` allows any.
    pub allowed_hosts: Vec<String>,
    /// Browser origins (`https://console.example.com`) allowed to change state, beside the
    /// API's own origin.
    pub allowed_origins: Vec<String>,
    /// Whether anyone may register a user (the DeepSpeech REST default); otherwise
    /// registration needs an admin credential.
    pub open_registration: bool,
    /// Key signing the access tokens (JWT, HS256). Unset: generated at first start into
    /// `<state_dir>/jwt-secret`.
    pub jwt_secret: Option<String>,
    /// Lifetime of an access token.
    pub access_token_seconds: u64,
    /// Lifetime of a refresh token.
    pub refresh_token_seconds: u64,
    /// Requests per second one principal may make on average; 0: no limit.
    pub rate_limit_per_second: u32,
    /// Requests one principal may make at once before the average applies.
    pub rate_limit_burst: u32,
    /// Uploads in progress at once, over all principals; more get 429. An upload takes its
    /// slot only once its first bytes have arrived, so clients that connect and send nothing
    /// (or a byte at a time) never hold one.
    pub max_concurrent_uploads: usize,
    /// How long an upload may take to send its first 512 bytes (or all of a smaller body)
    /// before it is answered 408 without ever taking an upload slot.
    pub upload_start_seconds: u64,
    /// The slowest an upload may send once it holds a slot: its body must be complete within
    /// `upload_start_seconds` plus its length at this rate (408 otherwise).
    pub upload_min_bytes_per_second: u64,
}

impl Default for Settings {
    fn default() -> Self {
        let cache = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/cache"))
            .join(".cache/trd");
        let mut models = BTreeMap::new();
        models.insert(
            "ko".to_owned(),
            cache.join("models/vosk-model-small-ko-0.1.0"),
        );
        Self {
            mongodb_uri: "mongodb://127.0.0.1:27017".to_owned(),
            database: "trd".to_owned(),
            amqp_uri: "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
            queue_prefix: "trd.".to_owned(),
            workdir: PathBuf::from("workdir"),
            address: "127.0.0.1".to_owned(),
            port: 8080,
            sample_rate: 16_000,
            models,
            default_model: "ko".to_owned(),
            worker_concurrency: 0,
            lease_seconds: 60,
            interactive_concurrency: 0,
            interactive_in_flight: 8,
            stream_slots: 8,
            stream_accept_ms: 2_000,
            stream_idle_seconds: 30,
            stream_max_seconds: 3_600,
            stream_window_seconds: 10.0,
            pcm_retention_seconds: 0,
            max_audio_seconds: 4 * 3600,
            max_segment_seconds: 30.0,
            recognition_run_seconds: 30.0,
            recognizer_frames_per_chunk: 0,
            max_delivery_attempts: 5,
            stage_timeout_seconds: 7_200,
            rescan_interval_ms: 2_000,
            settle_ms: 1_000,
            upload_limit_bytes: 4 * 1024 * 1024 * 1024,
            webhook_allow: ["127.0.0.0/8", "::1/128"].map(String::from).to_vec(),
            webhook_max_attempts: 8,
            webhook_backoff_ms: 1_000,
            webhook_timeout_ms: 10_000,
            webhook_concurrency: 16,
            webhook_per_host: 2,
            webhook_secret: None,
            log_format: LogFormat::default(),
            worker_name: gethostname::gethostname().to_string_lossy().into_owned(),
            diarizer_models: cache.join("diarizer-models"),
            state_dir: PathBuf::from("var"),
            admin_token: None,
            trusted_networks: vec!["127.0.0.0/8".to_owned(), "::1/128".to_owned()],
            anonymous_scopes: vec![Scope::Read, Scope::Operate],
            allowed_hosts: ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec(),
            allowed_origins: Vec::new(),
            open_registration: false,
            jwt_secret: None,
            access_token_seconds: 900,
            refresh_token_seconds: 30 * 24 * 3600,
            rate_limit_per_second: 50,
            rate_limit_burst: 200,
            max_concurrent_uploads: 16,
            upload_start_seconds: 10,
            upload_min_bytes_per_second: 16 * 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Parse(#[from] Box<figment::Error>),
    #[error("configuration key `{key}`: {problem}")]
    Invalid { key: &'static str, problem: String },
}

impl Settings {
    /// Loads `Rocket.toml` (or `$TRD_CONFIG`) and the environment, then validates.
    pub fn load() -> Result<Self, ConfigError> {
        let path = std::env::var_os("TRD_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("Rocket.toml"));
        let profile = std::env::var("ROCKET_PROFILE").unwrap_or_else(|_| "default".to_owned());
        Self::from_figment(Self::figment(&path, &profile))
    }

    pub fn figment(path: &Path, profile: &str) -> Figment {
        let file = Figment::from(Toml::file(path).nested())
            .select(profile)
            .focus("trd");
        Figment::from(Serialized::defaults(Settings::default()))
            .merge(file)
            .merge(Env::prefixed("TRD_").ignore(&["CONFIG"]))
    }

    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let settings: Settings = figment.extract().map_err(Box::new)?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, problem: &str| {
            Err(ConfigError::Invalid {
                key,
                problem: problem.to_owned(),
            })
        };
        if !(8_000..=48_000).contains(&self.sample_rate) {
            return invalid("sample_rate", "must be between 8000 and 48000 Hz");
        }
        if !self.models.contains_key(&self.default_model) {
            return invalid("default_model", "must name one of the configured `models`");
        }
        if self.database.is_empty() || self.database.contains(['/', '.', ' ', '$']) {
            return invalid("database", "must be a plain MongoDB database name");
        }
        if self.lease_seconds < 5 {
            return invalid("lease_seconds", "must be at least 5");
        }
        if !(1.0..=600.0).contains(&self.max_segment_seconds) {
            return invalid("max_segment_seconds", "must be between 1 and 600");
        }
        if !(0.0..=3_600.0).contains(&self.recognition_run_seconds) {
            return invalid("recognition_run_seconds", "must be between 0 and 3600");
        }
        if self.recognizer_frames_per_chunk > 1_000 {
            return invalid("recognizer_frames_per_chunk", "must be between 0 and 1000");
        }
        if self.webhook_max_attempts == 0 {
            return invalid("webhook_max_attempts", "must be at least 1");
        }
        if self.interactive_in_flight == 0 {
            return invalid("interactive_in_flight", "must be at least 1");
        }
        if self.stream_accept_ms == 0 || self.stream_idle_seconds == 0 {
            return invalid(
                "stream_accept_ms",
                "stream_accept_ms and stream_idle_seconds must be at least 1",
            );
        }
        if self.stream_max_seconds == 0 {
            return invalid("stream_max_seconds", "must be at least 1");
        }
        if !(0.5..=600.0).contains(&self.stream_window_seconds) {
            return invalid("stream_window_seconds", "must be between 0.5 and 600");
        }
        if self.webhook_concurrency == 0 {
            return invalid("webhook_concurrency", "must be at least 1");
        }
        if self.webhook_per_host == 0 {
            return invalid("webhook_per_host", "must be at least 1");
        }
        if self
            .webhook_secret
            .as_ref()
            .is_some_and(|s| s.len() < MIN_WEBHOOK_SECRET)
        {
            return invalid(
                "webhook_secret",
                &format!("must be at least {MIN_WEBHOOK_SECRET} characters"),
            );
        }
        if self.stage_timeout_seconds == 0 {
            return invalid("stage_timeout_seconds", "must be at least 1");
        }
        if self.max_delivery_attempts == 0 {
            return invalid("max_delivery_attempts", "must be at least 1");
        }
        if self
            .trusted_networks
            .iter()
            .any(|n| n.parse::<ipnet::IpNet>().is_err())
        {
            return invalid(
                "trusted_networks",
                "must be IP networks such as 127.0.0.0/8",
            );
        }
        if self.access_token_seconds == 0 || self.refresh_token_seconds == 0 {
            return invalid(
                "access_token_seconds",
                "token lifetimes must be at least 1 s",
            );
        }
        if self.admin_token.as_deref().is_some_and(|t| t.len() < 16) {
            return invalid("admin_token", "must be at least 16 characters");
        }
        if self.max_concurrent_uploads == 0 {
            return invalid("max_concurrent_uploads", "must be at least 1");
        }
        if self.max_audio_seconds == 0 {
            return invalid("max_audio_seconds", "must be at least 1");
        }
        if self.upload_start_seconds == 0 {
            return invalid("upload_start_seconds", "must be at least 1");
        }
        if self.upload_min_bytes_per_second == 0 {
            return invalid("upload_min_bytes_per_second", "must be at least 1");
        }
        if self.worker_name.is_empty() {
            return invalid("worker_name", "must not be empty");
        }
        Ok(())
    }

    /// The effective number of concurrent work units for a worker process.
    pub fn concurrency(&self) -> usize {
        match self.worker_concurrency {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// The effective number of work units a worker process keeps for the interactive lane.
    pub fn interactive_slots(&self) -> usize {
        match self.interactive_concurrency {
            0 => self.concurrency(),
            n => n,
        }
    }

    pub fn model_dir(&self, id: &str) -> Option<&Path> {
        self.models.get(id).map(PathBuf::as_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults_and_bad_values_name_their_key() {
        let dir = std::env::temp_dir().join(format!("trd-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("Rocket.toml");
        std::fs::write(
            &path,
            "[default]\nport = 9\n[default.trd]\ndatabase = \"x\"\nsample_rate = 100\n",
        )
        .unwrap();
        let err = Settings::from_figment(Settings::figment(&path, "default")).unwrap_err();
        assert!(err.to_string().contains("sample_rate"), "{err}");

        std::fs::write(&path, "[default.trd]\ndatabase = \"x\"\nport = 9000\n").unwrap();
        let s = Settings::from_figment(Settings::figment(&path, "default")).unwrap();
        assert_eq!(s.database, "x");
        assert_eq!(s.port, 9000);
        assert_eq!(s.sample_rate, 16_000);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
