//! A JSON array written as its elements are read: a listing of any length leaves the API in
//! constant memory, and its first records go out before the last are read.

use futures::{Stream, StreamExt};
use rocket::http::ContentType;
use rocket::response::stream::ByteStream;
use serde::Serialize;

/// `[item,item,…]` of `items`, as the body of a JSON response. The status is sent before the
/// first item is read, so a read that fails midway ends the body without its `]`: the client
/// sees a broken document, never a short list that looks whole.
pub fn json_array<T: Serialize, E: std::fmt::Display>(
    items: impl Stream<Item = Result<T, E>> + Send,
) -> (ContentType, ByteStream<impl Stream<Item = Vec<u8>> + Send>) {
    let elements = items
        .map(Some)
        .chain(futures::stream::once(async { None }))
        .scan((0usize, false), |(index, failed), next| {
            let chunk = match next {
                _ if *failed => return futures::future::ready(None),
                Some(Ok(item)) => {
                    let mut out = if *index == 0 { Vec::new() } else { vec![b','] };
                    serde_json::to_writer(&mut out, &item).expect("an API shape serialises");
                    *index += 1;
                    out
                }
                Some(Err(e)) => {
                    tracing::error!(error = %e, "a listing was cut short");
                    *failed = true;
                    return futures::future::ready(None);
                }
                None => b"]".to_vec(),
            };
            futures::future::ready(Some(chunk))
        });
    let body = futures::stream::once(async { b"[".to_vec() }).chain(elements);
    (ContentType::JSON, ByteStream(body))
}
