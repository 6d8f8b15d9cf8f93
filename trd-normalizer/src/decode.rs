//! Decoding with symphonia: container probing, codec selection, packet-by-packet decoding.

use std::fs::File;
use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{self, CodecType, Decoder, DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::{MetadataOptions, StandardTagKey};
use symphonia::core::probe::Hint;

use crate::error::{describe, NormalizeError};

/// AAC encoders prime the decoder with at least one frame of silence. MP4 files declare it in
/// an edit list that the container reader does not apply; without that, one frame is the
/// convention every AAC-LC encoder follows.
const AAC_PRIMING_FRAMES: u64 = 1024;

/// Sample rates outside this range are not audio a person recorded; refuse them up front.
const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 1_000..=768_000;
const MAX_CHANNELS: usize = 32;

/// An opened audio stream and what its headers say.
pub struct AudioSource {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track_id: u32,
    pub sample_rate: u32,
    pub channels: usize,
    pub codec: String,
    pub container: String,
    pub bits_per_sample: Option<u32>,
    /// Frames the header promises, when it says (encoder delay excluded).
    pub declared_frames: Option<u64>,
    /// Leading frames that are encoder delay, not audio.
    skip_frames: u64,
    pub tags: Tags,
}

#[derive(Debug, Default, Clone)]
pub struct Tags {
    pub comment: String,
    pub encoder: String,
    pub track: String,
}

/// One decoded block: `samples[channel][frame]`, in [-1, 1].
pub type Block = Vec<Vec<f32>>;

/// How decoding ended.
#[derive(Debug, Default)]
pub struct DecodeEnd {
    /// Set when the stream stopped early because of damage; the audio before it is kept.
    pub truncated: Option<String>,
    /// Packets that failed to decode and were skipped.
    pub skipped_packets: u64,
}

impl AudioSource {
    pub fn open(path: &Path) -> Result<Self, NormalizeError> {
        let file = File::open(path).map_err(NormalizeError::Unreadable)?;
        Self::from_file(file, path)
    }

    /// Reads an opened file; `path` names it (its extension hints at the container).
    pub fn from_file(file: File, path: &Path) -> Result<Self, NormalizeError> {
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len == 0 {
            return Err(NormalizeError::Empty);
        }
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let stream = MediaSourceStream::new(Box::new(file), Default::default());
        let mut probed = symphonia::default::get_probe()
            .format(
                &hint,
                stream,
                &FormatOptions {
                    enable_gapless: true,
                    ..Default::default()
                },
                &MetadataOptions::default(),
            )
            .map_err(NormalizeError::NotAudio)?;
        let container = container_name(path);
        let track = probed
            .format
            .tracks()
            .iter()
            .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
            .ok_or(NormalizeError::NoAudioTrack)?;
        let params = track.codec_params.clone();
        let track_id = track.id;
        let codec = codec_name(params.codec);
        let sample_rate = params
            .sample_rate
            .ok_or_else(|| NormalizeError::BadHeader("no sample rate is declared".into()))?;
        if !SAMPLE_RATES.contains(&sample_rate) {
            return Err(NormalizeError::BadHeader(format!(
                "declared sample rate {sample_rate} Hz is outside {}–{} Hz",
                SAMPLE_RATES.start(),
                SAMPLE_RATES.end()
            )));
        }
        let channels = params.channels.map(|c| c.count()).unwrap_or(1);
        if channels == 0 || channels > MAX_CHANNELS {
            return Err(NormalizeError::BadHeader(format!(
                "declared channel count {channels} is outside 1–{MAX_CHANNELS}"
            )));
        }
        let decoder = symphonia::default::get_codecs()
            .make(&params, &DecoderOptions::default())
            .map_err(|_| NormalizeError::UnsupportedCodec(codec.clone()))?;
        // Coded bits set the bit rate (µ-law decodes to 16 bits but is stored as 8).
        let bits_per_sample = params
            .bits_per_coded_sample
            .or(params.bits_per_sample)
            .or_else(|| codec.starts_with("G.711").then_some(8));
        let skip_frames = if codec == "AAC" && params.delay.is_none() {
            AAC_PRIMING_FRAMES
        } else {
            0
        };
        let mut tags = Tags::default();
        let mut collect = |rev: &symphonia::core::meta::MetadataRevision| {
            for tag in rev.tags() {
                // Tags are often padded with NULs by the tools that wrote them.
                let value = tag
                    .value
                    .to_string()
                    .trim_matches(|c: char| c == '\0' || c.is_whitespace())
                    .to_owned();
                match tag.std_key {
                    Some(StandardTagKey::Comment) => tags.comment = value,
                    Some(StandardTagKey::Encoder) => tags.encoder = value,
                    Some(StandardTagKey::TrackNumber) => tags.track = value,
                    _ => {}
                }
            }
        };
        if let Some(rev) = probed.metadata.get().as_ref().and_then(|m| m.current()) {
            collect(rev);
        }
        if let Some(rev) = probed.format.metadata().current() {
            collect(rev);
        }
        Ok(Self {
            format: probed.format,
            decoder,
            track_id,
            sample_rate,
            channels,
            codec,
            container,
            bits_per_sample,
            declared_frames: params.n_frames.map(|n| n.saturating_sub(skip_frames)),
            skip_frames,
            tags,
        })
    }

    /// Decodes the whole stream, handing each block to `sink`. Damage ends decoding early
    /// (recorded in the result) instead of failing: the audio before it is still good.
    pub fn decode_all(
        &mut self,
        mut sink: impl FnMut(&Block) -> Result<(), NormalizeError>,
    ) -> Result<DecodeEnd, NormalizeError> {
        let mut end = DecodeEnd::default();
        let mut buffer: Option<SampleBuffer<f32>> = None;
        let mut block: Block = vec![Vec::new(); self.channels];
        let (mut skipped, mut emitted) = (0u64, 0u64);
        loop {
            let packet = match self.format.next_packet() {
                Ok(p) => p,
                Err(SymphoniaError::IoError(e))
                    if e.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    break
                }
                Err(SymphoniaError::ResetRequired) => break,
                Err(e) => {
                    end.truncated = Some(describe(&e));
                    break;
                }
            };
            if packet.track_id() != self.track_id {
                continue;
            }
            let decoded = match self.decoder.decode(&packet) {
                Ok(d) => d,
                Err(SymphoniaError::DecodeError(_)) | Err(SymphoniaError::IoError(_)) => {
                    end.skipped_packets += 1;
                    continue;
                }
                Err(e) => {
                    end.truncated = Some(describe(&e));
                    break;
                }
            };
            let spec = *decoded.spec();
            if spec.channels.count() != self.channels {
                end.truncated = Some("the channel count changes mid-stream".into());
                break;
            }
            let frames = decoded.frames();
            if frames == 0 {
                continue;
            }
            let buf = match &mut buffer {
                Some(b) if b.capacity() >= frames * self.channels => b,
                _ => buffer.insert(SampleBuffer::new(decoded.capacity() as u64, spec)),
            };
            buf.copy_planar_ref(decoded);
            let planar = buf.samples();
            // Drop encoder delay at the start, and never emit more than the container declares
            // (codecs decode whole frames, so the last one overhangs the end of the audio).
            let skip = (self.skip_frames.saturating_sub(skipped) as usize).min(frames);
            skipped += skip as u64;
            let room = self
                .declared_frames
                .map_or(u64::MAX, |d| d.saturating_sub(emitted));
            let take = ((frames - skip) as u64).min(room) as usize;
            if take == 0 {
                continue;
            }
            for (ch, out) in block.iter_mut().enumerate() {
                out.clear();
                out.extend_from_slice(&planar[ch * frames + skip..ch * frames + skip + take]);
            }
            emitted += take as u64;
            sink(&block)?;
        }
        Ok(end)
    }
}

/// A person-readable codec name, also for codecs symphonia can name but not decode.
pub fn codec_name(codec: CodecType) -> String {
    if let Some(d) = symphonia::default::get_codecs().get_codec(codec) {
        return friendly_codec(d.short_name).to_owned();
    }
    let known = [
        (codecs::CODEC_TYPE_OPUS, "Opus"),
        (codecs::CODEC_TYPE_SPEEX, "Speex"),
        (codecs::CODEC_TYPE_WAVPACK, "WavPack"),
        (codecs::CODEC_TYPE_MUSEPACK, "Musepack"),
        (codecs::CODEC_TYPE_EAC3, "E-AC-3"),
        (codecs::CODEC_TYPE_DCA, "DTS"),
        (codecs::CODEC_TYPE_ATRAC3, "ATRAC3"),
        (codecs::CODEC_TYPE_WMA, "WMA"),
        (codecs::CODEC_TYPE_TTA, "TTA"),
        (codecs::CODEC_TYPE_MONKEYS_AUDIO, "Monkey's Audio"),
        (codecs::CODEC_TYPE_MP1, "MP1"),
        (codecs::CODEC_TYPE_MP2, "MP2"),
        (codecs::CODEC_TYPE_PCM_ALAW, "G.711 A-law"),
    ];
    known
        .iter()
        .find(|(c, _)| *c == codec)
        .map(|(_, n)| (*n).to_owned())
        .unwrap_or_else(|| format!("unknown codec {codec}"))
}

fn friendly_codec(short: &str) -> &str {
    match short {
        s if s.starts_with("pcm_mulaw") => "G.711 µ-law",
        s if s.starts_with("pcm_alaw") => "G.711 A-law",
        s if s.starts_with("pcm") => "PCM",
        s if s.starts_with("adpcm_ima") => "IMA ADPCM",
        s if s.starts_with("adpcm_ms") => "MS ADPCM",
        "flac" => "FLAC",
        "mp3" => "MPEG Audio Layer 3",
        "mp2" => "MPEG Audio Layer 2",
        "mp1" => "MPEG Audio Layer 1",
        "vorbis" => "Vorbis",
        "aac" => "AAC",
        "alac" => "ALAC",
        other => other,
    }
}

fn container_name(path: &Path) -> String {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "wav" | "wave" => "Wave",
        "flac" => "FLAC",
        "mp3" | "mp2" | "mp1" => "MPEG Audio",
        "ogg" | "oga" => "Ogg",
        "m4a" | "mp4" | "aac" => "MPEG-4",
        "mkv" | "mka" | "webm" => "Matroska",
        "caf" => "CAF",
        "aif" | "aiff" => "AIFF",
        _ => "Unknown",
    }
    .to_owned()
}
