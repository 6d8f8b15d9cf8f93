//! A file served with HTTP Range support (RFC 9110 §14): a browser's `<audio>` element asks
//! for byte ranges to seek and to learn the duration, and only plays what answers 206.
//!
//! One range is served as 206 with `Content-Range`; several ranges (which no media element
//! asks for) are answered with the whole file, as the RFC allows; a range past the end is 416
//! with `Content-Range: bytes */<length>`. The body is the file itself, read as it is sent.

use std::io::SeekFrom;
use std::ops::RangeInclusive;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use rocket::http::{ContentType, Header, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Responder, Response};
use tokio::io::{AsyncRead, AsyncSeek, ReadBuf};

/// The request's `Range` header, if any.
pub struct RangeHeader(Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for RangeHeader {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(RangeHeader(
            req.headers().get_one("Range").map(str::to_owned),
        ))
    }
}

/// What to send of a file `len` bytes long, given the request's `Range` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Whole,
    Range(RangeInclusive<u64>),
    Unsatisfiable,
}

impl Part {
    pub fn of(header: &RangeHeader, len: u64) -> Part {
        let Some(value) = header.0.as_deref() else {
            return Part::Whole;
        };
        match http_range_header::parse_range_header(value) {
            // A header that does not parse (another unit, bad syntax) is ignored (RFC 9110
            // §14.2): the whole file.
            Err(_) => Part::Whole,
            Ok(ranges) => match ranges.validate(len) {
                Ok(ranges) if ranges.len() == 1 => Part::Range(ranges[0].clone()),
                Ok(_) => Part::Whole,
                Err(_) => Part::Unsatisfiable,
            },
        }
    }
}

/// A file's content served as [`Part`] of it.
pub struct RangedFile {
    pub file: std::fs::File,
    pub len: u64,
    pub content_type: ContentType,
    /// Sent as `Content-Disposition: inline; filename*=…` (the original name).
    pub filename: String,
    pub part: Part,
}

impl<'r> Responder<'r, 'static> for RangedFile {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut response = Response::build();
        response
            .header(self.content_type)
            .header(Header::new("Accept-Ranges", "bytes"))
            .header(Header::new("Cache-Control", "private, no-cache"))
            .header(Header::new(
                "Content-Disposition",
                format!(
                    "inline; filename*=UTF-8''{}",
                    percent_encode(&self.filename)
                ),
            ));
        let (start, count) = match self.part {
            Part::Whole => (0, self.len),
            Part::Range(range) => {
                response.status(Status::PartialContent).header(Header::new(
                    "Content-Range",
                    format!("bytes {}-{}/{}", range.start(), range.end(), self.len),
                ));
                (*range.start(), range.end() - range.start() + 1)
            }
            Part::Unsatisfiable => {
                return Response::build()
                    .status(Status::RangeNotSatisfiable)
                    .header(Header::new(
                        "Content-Range",
                        format!("bytes */{}", self.len),
                    ))
                    .ok();
            }
        };
        let size = usize::try_from(count).map_err(|_| Status::InternalServerError)?;
        let window = Window::new(self.file, start, count).map_err(|e| {
            tracing::warn!(error = %e, "cannot position the audio file");
            Status::InternalServerError
        })?;
        response.sized_body(size, window);
        response.ok()
    }
}

/// `len` bytes of a file from `start` on, readable and seekable as if they were the file:
/// what Rocket sends as a sized body. The file is positioned at `start` before it is wrapped.
struct Window {
    file: tokio::fs::File,
    start: u64,
    len: u64,
    /// The next byte to read, relative to `start`.
    at: u64,
}

impl Window {
    fn new(mut file: std::fs::File, start: u64, len: u64) -> std::io::Result<Self> {
        use std::io::Seek;
        // A seek is one system call that never waits on the disk: done here, at once.
        file.seek(SeekFrom::Start(start))?;
        Ok(Window {
            file: tokio::fs::File::from_std(file),
            start,
            len,
            at: 0,
        })
    }
}

impl AsyncRead for Window {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let left = usize::try_from(self.len.saturating_sub(self.at)).unwrap_or(usize::MAX);
        if left == 0 {
            return Poll::Ready(Ok(()));
        }
        let mut limited = buf.take(left);
        ready!(Pin::new(&mut self.file).poll_read(cx, &mut limited))?;
        let read = limited.filled().len();
        // SAFETY: the file wrote `read` initialised bytes into the start of `buf`'s unfilled
        // part, which `limited` borrowed.
        unsafe { buf.assume_init(read) };
        buf.advance(read);
        self.at += read as u64;
        Poll::Ready(Ok(()))
    }
}

impl AsyncSeek for Window {
    fn start_seek(mut self: Pin<&mut Self>, to: SeekFrom) -> std::io::Result<()> {
        let target = match to {
            SeekFrom::Start(n) => i128::from(n),
            SeekFrom::End(d) => i128::from(self.len) + i128::from(d),
            SeekFrom::Current(d) => i128::from(self.at) + i128::from(d),
        };
        let target = u64::try_from(target.clamp(0, i128::from(self.len))).unwrap_or(0);
        let absolute = self.start + target;
        Pin::new(&mut self.file).start_seek(SeekFrom::Start(absolute))
    }

    fn poll_complete(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<u64>> {
        let absolute = ready!(Pin::new(&mut self.file).poll_complete(cx))?;
        self.at = absolute.saturating_sub(self.start).min(self.len);
        Poll::Ready(Ok(self.at))
    }
}

/// RFC 8187 encoding of a file name for `filename*`.
fn percent_encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(v: &str) -> RangeHeader {
        RangeHeader(Some(v.to_owned()))
    }

    #[test]
    fn one_range_is_served_and_others_are_whole_or_refused() {
        assert_eq!(Part::of(&RangeHeader(None), 100), Part::Whole);
        assert_eq!(Part::of(&header("bytes=0-"), 100), Part::Range(0..=99));
        assert_eq!(Part::of(&header("bytes=10-19"), 100), Part::Range(10..=19));
        assert_eq!(Part::of(&header("bytes=-10"), 100), Part::Range(90..=99));
        assert_eq!(Part::of(&header("bytes=90-500"), 100), Part::Range(90..=99));
        assert_eq!(Part::of(&header("bytes=0-1,5-6"), 100), Part::Whole);
        assert_eq!(Part::of(&header("items=0-1"), 100), Part::Whole);
        assert_eq!(Part::of(&header("bytes=100-"), 100), Part::Unsatisfiable);
    }

    #[test]
    fn names_are_percent_encoded() {
        assert_eq!(percent_encode("a b/ü.wav"), "a%20b%2F%C3%BC.wav");
    }
}
