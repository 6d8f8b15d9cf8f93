//! Normalized audio: 16-bit little-endian PCM per file and channel, stored in MongoDB in
//! fixed-size chunks. Fixed chunks make "read seconds 31.2–44.9 of channel 2" one indexed
//! query, which is what segment-parallel recognition on other hosts needs.

use futures::TryStreamExt;
use mongodb::bson::{doc, oid::ObjectId, spec::BinarySubtype, Binary};
use serde::{Deserialize, Serialize};

use super::{MongoResultExt, Store, StoreResult};

/// Samples per stored chunk (10 s at 16 kHz, 320 KB).
pub const CHUNK_SAMPLES: u64 = 160_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PcmChunk {
    pub audiofile_id: ObjectId,
    pub channel: u32,
    pub start_sample: i64,
    pub data: Binary,
}

/// Streams one channel's samples into the store, a chunk at a time (constant memory).
pub struct PcmWriter {
    store: Store,
    audiofile_id: ObjectId,
    channel: u32,
    written: u64,
    buffer: Vec<u8>,
}

impl PcmWriter {
    pub fn new(store: &Store, audiofile_id: ObjectId, channel: u32) -> Self {
        Self {
            store: store.clone(),
            audiofile_id,
            channel,
            written: 0,
            buffer: Vec::with_capacity(CHUNK_SAMPLES as usize * 2),
        }
    }

    pub async fn write(&mut self, samples: &[i16]) -> StoreResult<()> {
        for s in samples {
            self.buffer.extend_from_slice(&s.to_le_bytes());
            if self.buffer.len() == CHUNK_SAMPLES as usize * 2 {
                self.flush().await?;
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> StoreResult<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let samples = (self.buffer.len() / 2) as u64;
        let chunk = PcmChunk {
            audiofile_id: self.audiofile_id,
            channel: self.channel,
            start_sample: self.written as i64,
            data: Binary {
                subtype: BinarySubtype::Generic,
                bytes: std::mem::take(&mut self.buffer),
            },
        };
        self.store.pcm.insert_one(&chunk).await.store()?;
        self.written += samples;
        self.buffer.reserve(CHUNK_SAMPLES as usize * 2);
        Ok(())
    }

    /// Flushes the tail; returns the number of samples written.
    pub async fn finish(mut self) -> StoreResult<u64> {
        self.flush().await?;
        Ok(self.written)
    }
}

impl Store {
    /// Reads samples `[start, end)` of one channel.
    pub async fn read_pcm(
        &self,
        audiofile_id: ObjectId,
        channel: u32,
        start: u64,
        end: u64,
    ) -> StoreResult<Vec<i16>> {
        let end = end.min(i64::MAX as u64);
        let first_chunk = (start / CHUNK_SAMPLES * CHUNK_SAMPLES) as i64;
        let chunks: Vec<PcmChunk> = self
            .pcm
            .find(doc! {
                "audiofile_id": audiofile_id,
                "channel": channel as i64,
                "start_sample": {"$gte": first_chunk, "$lt": end as i64},
            })
            .sort(doc! {"start_sample": 1})
            .await
            .store()?
            .try_collect()
            .await
            .store()?;
        let mut out = Vec::new();
        for chunk in chunks {
            let chunk_start = chunk.start_sample as u64;
            for (i, pair) in chunk.data.bytes.chunks_exact(2).enumerate() {
                let pos = chunk_start + i as u64;
                if pos >= start && pos < end {
                    out.push(i16::from_le_bytes([pair[0], pair[1]]));
                }
            }
        }
        Ok(out)
    }

    pub async fn delete_pcm(&self, audiofile_id: ObjectId) -> StoreResult<()> {
        self.pcm
            .delete_many(doc! {"audiofile_id": audiofile_id})
            .await
            .store()?;
        Ok(())
    }

    /// Drops channels above `last_kept` (a redundant file keeps only its first channel).
    pub async fn delete_pcm_channels_after(
        &self,
        audiofile_id: ObjectId,
        last_kept: u32,
    ) -> StoreResult<()> {
        self.pcm
            .delete_many(doc! {"audiofile_id": audiofile_id, "channel": {"$gt": last_kept as i64}})
            .await
            .store()?;
        Ok(())
    }

    pub async fn count_pcm_chunks(&self, audiofile_id: ObjectId) -> StoreResult<u64> {
        self.pcm
            .count_documents(doc! {"audiofile_id": audiofile_id})
            .await
            .store()
    }
}
