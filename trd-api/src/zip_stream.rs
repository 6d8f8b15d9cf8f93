//! The batch result download: a ZIP built entry by entry while the client receives it.
//!
//! The `zip` writer is synchronous, so it runs on a blocking thread and hands its output to the
//! response through a small bounded channel: the archive is never held in memory, and a slow
//! client slows the building down instead of letting the buffer grow. Each file's record and
//! segments are read from MongoDB only when its entry is written.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::Stream;
use mongodb::bson::oid::ObjectId;
use rocket::http::{ContentType, Header};
use rocket::response::stream::ByteStream;
use rocket::response::{self, Responder, Response};
use rocket::Request;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use trd_core::domain::BatchName;
use trd_core::Store;
use trd_export::ExportFormat;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::shapes::TranscriptResult;

/// What each file of the batch becomes in the archive.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchFormat {
    /// One `<filename>.json` per file: its result document.
    Json,
    /// One `<batch>.json`: an array of every file's result document.
    JsonArray,
    /// One `<filename>.<extension>` per file.
    Export(ExportFormat),
}

/// Bytes handed to the response at a time, and how many such pieces may wait for the client.
const PIECE_BYTES: usize = 64 * 1024;
const PIECES_IN_FLIGHT: usize = 4;

/// Streams the archive of `files` (in that order). An error after the first byte can only cut
/// the archive short (the status line is gone by then); it is logged.
pub fn batch_zip(
    store: Store,
    batch: BatchName,
    files: Vec<ObjectId>,
    format: BatchFormat,
) -> impl Stream<Item = Vec<u8>> + Send + 'static {
    let (tx, rx) = mpsc::channel::<Vec<u8>>(PIECES_IN_FLIGHT);
    let runtime = Handle::current();
    tokio::task::spawn_blocking(move || {
        let sink = ChannelWriter {
            tx,
            buffer: Vec::with_capacity(PIECE_BYTES),
            abandoned: Arc::default(),
        };
        let builder = ArchiveBuilder {
            runtime,
            store,
            batch: batch.clone(),
        };
        if let Err(e) = builder.write(sink, &files, &format) {
            if e.kind() == io::ErrorKind::BrokenPipe {
                tracing::info!(batch = %batch, "batch download abandoned by the client");
            } else {
                tracing::error!(batch = %batch, error = %e, "batch download cut short");
            }
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        let piece = rx.recv().await?;
        Some((piece, rx))
    })
}

struct ArchiveBuilder {
    runtime: Handle,
    store: Store,
    batch: BatchName,
}

type Zip = ZipWriter<zip::write::StreamWriter<ChannelWriter>>;

impl ArchiveBuilder {
    fn write(
        &self,
        sink: ChannelWriter,
        files: &[ObjectId],
        format: &BatchFormat,
    ) -> io::Result<()> {
        let abandon = sink.abandoned.clone();
        let mut zip = ZipWriter::new_stream(sink);
        match self.write_entries(&mut zip, files, format) {
            Ok(()) => zip.finish().map_err(io::Error::other)?.into_inner().flush(),
            Err(e) => {
                // The writer completes the archive when dropped; a complete-looking archive
                // that lacks files would hide the failure, so the sink refuses that.
                abandon.store(true, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    fn write_entries(
        &self,
        zip: &mut Zip,
        files: &[ObjectId],
        format: &BatchFormat,
    ) -> io::Result<()> {
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        if *format == BatchFormat::JsonArray {
            zip.start_file(format!("{}.json", self.batch), options)
                .map_err(io::Error::other)?;
            zip.write_all(b"[")?;
        }
        let mut first = true;
        for id in files {
            // A file deleted while the archive is being built is simply left out.
            let Some(record) = self
                .runtime
                .block_on(self.store.audiofile(*id))
                .map_err(io::Error::other)?
            else {
                continue;
            };
            let segments = self
                .runtime
                .block_on(self.store.segments_of(*id))
                .map_err(io::Error::other)?;
            match format {
                BatchFormat::Json => {
                    zip.start_file(format!("{}.json", record.filename), options)
                        .map_err(io::Error::other)?;
                    serde_json::to_writer(&mut *zip, &TranscriptResult::new(&record, &segments))?;
                }
                BatchFormat::JsonArray => {
                    if !first {
                        zip.write_all(b",")?;
                    }
                    serde_json::to_writer(&mut *zip, &TranscriptResult::new(&record, &segments))?;
                }
                BatchFormat::Export(export) => {
                    let name = format!("{}.{}", record.filename, export.extension());
                    zip.start_file(name, options).map_err(io::Error::other)?;
                    trd_export::render(export, &record, &segments, &mut *zip)
                        .map_err(io::Error::other)?;
                }
            }
            first = false;
        }
        if *format == BatchFormat::JsonArray {
            zip.write_all(b"]")?;
        }
        Ok(())
    }
}

/// A `Write` that hands its bytes to the response in pieces, waiting while the client is
/// behind. Fails with `BrokenPipe` once the response is gone.
struct ChannelWriter {
    tx: mpsc::Sender<Vec<u8>>,
    buffer: Vec<u8>,
    abandoned: Arc<AtomicBool>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.abandoned.load(Ordering::Relaxed) {
            return Err(io::Error::other("the archive was abandoned"));
        }
        if self.buffer.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.buffer, Vec::with_capacity(PIECE_BYTES));
        self.tx
            .blocking_send(piece)
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.abandoned.load(Ordering::Relaxed) {
            return Err(io::Error::other("the archive was abandoned"));
        }
        self.buffer.extend_from_slice(buf);
        if self.buffer.len() >= PIECE_BYTES {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// `application/zip`, downloaded as `<batch>.zip`.
pub struct ZipDownload<S> {
    pub name: String,
    pub body: S,
}

impl<'r, S> Responder<'r, 'r> for ZipDownload<S>
where
    S: Stream<Item = Vec<u8>> + Send + 'static,
{
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'r> {
        let quoted = self.name.replace('\\', "\\\\").replace('"', "\\\"");
        Response::build_from(ByteStream(self.body).respond_to(request)?)
            .header(ContentType::ZIP)
            .header(Header::new(
                "Content-Disposition",
                format!("attachment; filename=\"{quoted}.zip\""),
            ))
            .ok()
    }
}
