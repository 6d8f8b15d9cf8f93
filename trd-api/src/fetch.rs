//! Audio fetched from a URL a caller names (Speechmatics `fetch_data`, UWebASR `?url=`): only
//! a target webhooks may reach (the allow-list, checked on the resolved address), at most
//! `upload_limit_bytes`, within [`FETCH_TIMEOUT`], into the spool.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::app::App;
use crate::webhooks::allow::AllowList;
use crate::webhooks::deliver::checked_client;

/// The longest a download may take, whole: long enough for a large recording over a slow
/// link, bounded so a stalled server cannot hold the request for ever.
const FETCH_TIMEOUT: Duration = Duration::from_secs(300);

/// The user agent of every download.
pub const USER_AGENT: &str = "TRD (audio fetch)";

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL may not or could not be fetched; `status` is the source's answer, if any.
    #[error("'{url}': {why}")]
    Refused {
        url: String,
        why: String,
        status: Option<u16>,
    },
    #[error("'{url}' holds more than the size limit of {limit} bytes")]
    TooLarge { url: String, limit: u64 },
}

/// Downloads `url` into the spool with the extra `headers` (`Name: value`); the spooled path.
pub async fn download(app: &App, url: &str, headers: &[String]) -> Result<PathBuf, FetchError> {
    let refused = |why: String| FetchError::Refused {
        url: url.to_owned(),
        why,
        status: None,
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| refused(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(refused("must be an http:// or https:// URL".into()));
    }
    let allow = AllowList::new(&app.settings.webhook_allow);
    let timeout = Duration::from_millis(app.settings.webhook_timeout_ms).max(FETCH_TIMEOUT);
    let client = checked_client(&allow, &parsed, "", timeout)
        .await
        .map_err(|e| refused(e.to_string()))?;
    let mut request = client.get(parsed).header("User-Agent", USER_AGENT);
    for header in headers {
        let Some((name, value)) = header.split_once(':') else {
            return Err(refused(format!("header '{header}' is not 'Name: value'")));
        };
        request = request.header(name.trim(), value.trim());
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| refused(format!("could not be fetched: {e}")))?;
    if !response.status().is_success() {
        return Err(FetchError::Refused {
            url: url.to_owned(),
            why: format!("answered {}", response.status()),
            status: Some(response.status().as_u16()),
        });
    }
    let limit = app.settings.upload_limit_bytes;
    let too_large = || FetchError::TooLarge {
        url: url.to_owned(),
        limit,
    };
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let path = app.jobs.spool_path();
    let written = async {
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let mut file = tokio::fs::File::create(&path).await?;
        let mut size = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(std::io::Error::other)? {
            size += chunk.len() as u64;
            if size > limit {
                return Ok(false);
            }
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        Ok::<_, std::io::Error>(true)
    }
    .await;
    match written {
        Ok(true) => Ok(path),
        Ok(false) => {
            let _ = tokio::fs::remove_file(&path).await;
            Err(too_large())
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            Err(refused(format!("the download failed: {e}")))
        }
    }
}
