//! Job notifications (`notification_config`, and the v1 `callback`): when a job ends, its
//! URL is called with `?id=<job>&status=success|error` and user agent `Speechmatics-API/2.0`,
//! carrying the `contents` asked for: none (an empty body), one (the body itself), or several
//! (a multipart form, one file per item). TRD's durable webhook outbox sends them, with its
//! retries, allow-list and signature.

use trd_core::domain::{AudioFile, Control, Notice, Segment};

use super::config::Notification;
use super::error::{SmError, SmResult};
use super::job::{Job, TranscriptFormat, FACE};
use crate::webhooks::notices::{NoticeRenderer, RenderedNotice};

/// The user agent the vendor's notifications carry.
pub const USER_AGENT: &str = "Speechmatics-API/2.0";

/// The `contents` a notification may ask for, and the transcript format of each (`None`:
/// the job's details).
const CONTENTS: [(&str, Option<TranscriptFormat>); 6] = [
    ("transcript", Some(TranscriptFormat::JsonV2)),
    ("transcript.json-v2", Some(TranscriptFormat::JsonV2)),
    ("transcript.json", Some(TranscriptFormat::Json)),
    ("transcript.txt", Some(TranscriptFormat::Txt)),
    ("transcript.srt", Some(TranscriptFormat::Srt)),
    ("jobinfo", None),
];

/// The notices a job's notifications become, checked: known contents, POST or PUT, headers
/// of the form `Name: value`.
pub fn notices(notifications: &[Notification]) -> SmResult<Vec<Notice>> {
    notifications
        .iter()
        .map(|n| {
            if let Some(unknown) = n
                .contents
                .iter()
                .find(|c| !CONTENTS.iter().any(|(name, _)| name == c))
            {
                let known: Vec<&str> = CONTENTS.iter().map(|(name, _)| *name).collect();
                return Err(SmError::bad_request(format!(
                    "notification contents '{unknown}' is not one of {}",
                    known.join(", ")
                )));
            }
            if let Some(method) = n
                .method
                .as_deref()
                .filter(|m| !m.eq_ignore_ascii_case("post") && !m.eq_ignore_ascii_case("put"))
            {
                return Err(SmError::bad_request(format!(
                    "notification method '{method}' is not post or put"
                )));
            }
            let header_name = |name: &str| {
                reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).is_ok()
            };
            if let Some(bad) = n
                .auth_headers
                .iter()
                .find(|h| h.split_once(':').is_none_or(|(name, _)| !header_name(name)))
            {
                return Err(SmError::bad_request(format!(
                    "notification auth header '{bad}' is not 'Name: value'"
                )));
            }
            Ok(Notice {
                url: n.url.clone(),
                face: FACE.to_owned(),
                contents: n.contents.clone(),
                headers: n.auth_headers.clone(),
                method: n.method.clone(),
            })
        })
        .collect()
}

/// Renders the face's notices for the webhook sender.
pub struct Notifications;

impl NoticeRenderer for Notifications {
    fn render(
        &self,
        notice: &Notice,
        record: &AudioFile,
        segments: &[Segment],
    ) -> Result<RenderedNotice, String> {
        let job = Job::of(record.clone());
        let done = record.control == Control::Finished;
        let mut items = Vec::new();
        for name in &notice.contents {
            let format = CONTENTS
                .iter()
                .find(|(known, _)| known == name)
                .and_then(|(_, format)| *format);
            let (content_type, body) = match format {
                // A rejected job has no transcript to attach.
                Some(_) if !done => continue,
                Some(format) => {
                    let rendered = job
                        .render(segments, format)
                        .map_err(|e| format!("rendering {name}: {e}"))?;
                    (rendered.content_type, rendered.body)
                }
                None => (
                    "application/json",
                    serde_json::json!({"job": job.details()}).to_string(),
                ),
            };
            items.push((name.as_str(), content_type, body));
        }
        let (content_type, body) = match items.as_slice() {
            [] => (None, Vec::new()),
            [(_, content_type, body)] => {
                (Some((*content_type).to_owned()), body.clone().into_bytes())
            }
            many => {
                let (content_type, body) = multipart(many);
                (Some(content_type), body)
            }
        };
        Ok(RenderedNotice {
            query: vec![
                ("id".to_owned(), job.id()),
                (
                    "status".to_owned(),
                    if done { "success" } else { "error" }.to_owned(),
                ),
            ],
            user_agent: USER_AGENT,
            content_type,
            body,
        })
    }
}

/// A multipart form with one file part per item (named by the item), as the vendor sends
/// several attachments.
fn multipart(items: &[(&str, &str, String)]) -> (String, Vec<u8>) {
    let boundary = format!("trd-{}", mongodb::bson::oid::ObjectId::new().to_hex());
    let mut body = Vec::new();
    for (name, content_type, content) in items {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                 filename=\"{name}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content.as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification(contents: &[&str], method: Option<&str>, headers: &[&str]) -> Notification {
        Notification {
            url: "http://127.0.0.1:9/cb".into(),
            contents: contents.iter().map(|c| (*c).to_owned()).collect(),
            auth_headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            method: method.map(str::to_owned),
        }
    }

    #[test]
    fn notifications_are_checked_before_the_job_is_taken() {
        let ok = notices(&[notification(
            &["jobinfo", "transcript.txt"],
            Some("put"),
            &["Authorization: Bearer x"],
        )])
        .unwrap();
        assert_eq!(ok[0].face, FACE);
        assert_eq!(ok[0].contents, ["jobinfo", "transcript.txt"]);
        for bad in [
            notification(&["data"], None, &[]),
            notification(&[], Some("get"), &[]),
            notification(&[], None, &["no colon"]),
        ] {
            assert!(notices(&[bad]).is_err());
        }
    }

    #[test]
    fn several_contents_are_one_file_part_each() {
        let (content_type, body) = multipart(&[
            ("jobinfo", "application/json", "{}".into()),
            ("transcript.txt", "text/plain", "hello.".into()),
        ]);
        let boundary = content_type.split("boundary=").nth(1).unwrap();
        let text = String::from_utf8(body).unwrap();
        assert_eq!(text.matches(&format!("--{boundary}\r\n")).count(), 2);
        assert!(text.contains("name=\"transcript.txt\"; filename=\"transcript.txt\""));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
    }
}
