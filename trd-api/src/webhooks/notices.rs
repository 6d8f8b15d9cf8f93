//! Notifications in a protocol's own form (`trd_core::domain::Notice`): the outbox keeps and
//! retries them like TRD's webhooks, and the face that asked for them renders each request
//! (its query, body and user agent) through a [`NoticeRenderer`] registered under its name.
//! The webhooks module never depends on a face; the app wires the renderers in.

use std::collections::HashMap;
use std::sync::Arc;

use trd_core::domain::{AudioFile, Notice, Segment};

/// What a face sends for one notice.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RenderedNotice {
    /// Appended to the notice's URL.
    pub query: Vec<(String, String)>,
    pub user_agent: &'static str,
    /// `None` for an empty body.
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// A face's rendering of its notices.
pub trait NoticeRenderer: Send + Sync {
    /// The request telling `notice`'s target that `record` ended, with its `segments`.
    fn render(
        &self,
        notice: &Notice,
        record: &AudioFile,
        segments: &[Segment],
    ) -> Result<RenderedNotice, String>;
}

/// The renderers by face name.
#[derive(Clone, Default)]
pub struct NoticeRenderers(HashMap<&'static str, Arc<dyn NoticeRenderer>>);

impl NoticeRenderers {
    pub fn with(mut self, face: &'static str, renderer: impl NoticeRenderer + 'static) -> Self {
        self.0.insert(face, Arc::new(renderer));
        self
    }

    pub fn get(&self, face: &str) -> Option<&dyn NoticeRenderer> {
        self.0.get(face).map(|r| r.as_ref())
    }
}
