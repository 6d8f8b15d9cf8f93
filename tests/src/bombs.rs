//! Audio files built to cost a decoder: a few bytes on disk, days of audio decoded.
//!
//! Written frame by frame here because any encoder would have to be fed the days of samples
//! the file stands for; FLAC's CONSTANT subframes say "this value, N times" in three bytes.

/// The bytes of a FLAC file of `seconds` of digital silence in `channels` channels at
/// `rate` Hz (one the frame header can code: 8, 16, 22.05, 24, 32, 44.1, 48 or 96 kHz), 16-bit.
/// `declare_length`: whether STREAMINFO says how long it is (0 means "unknown" in FLAC).
pub fn silent_flac(seconds: u64, channels: u8, rate: u32, declare_length: bool) -> Vec<u8> {
    assert!((1..=8).contains(&channels));
    const BLOCK: u64 = 65_535;
    let rate_code: u8 = match rate {
        8_000 => 0b0100,
        16_000 => 0b0101,
        22_050 => 0b0110,
        24_000 => 0b0111,
        32_000 => 0b1000,
        44_100 => 0b1001,
        48_000 => 0b1010,
        96_000 => 0b1011,
        other => panic!("{other} Hz has no frame header code"),
    };
    let total = seconds * u64::from(rate);
    let mut out = b"fLaC".to_vec();
    // STREAMINFO, the last metadata block: 34 bytes.
    out.extend_from_slice(&[0x80, 0, 0, 34]);
    out.extend_from_slice(&(BLOCK as u16).to_be_bytes());
    out.extend_from_slice(&(BLOCK as u16).to_be_bytes());
    out.extend_from_slice(&[0; 6]); // frame sizes unknown
    let declared = if declare_length { total } else { 0 };
    let packed = (u64::from(rate) << 44)
        | (u64::from(channels - 1) << 41)
        | (15u64 << 36)
        | (declared & 0xF_FFFF_FFFF);
    out.extend_from_slice(&packed.to_be_bytes());
    out.extend_from_slice(&[0; 16]); // no MD5
    let frames = total.div_ceil(BLOCK);
    for number in 0..frames {
        let size = BLOCK.min(total - number * BLOCK);
        let start = out.len();
        // Sync, fixed block size; block size in 16 bits after the number; 16-bit samples.
        out.extend_from_slice(&[0xFF, 0xF8, (0b0111 << 4) | rate_code]);
        out.push(((channels - 1) << 4) | (0b100 << 1));
        out.extend_from_slice(&utf8_number(number));
        out.extend_from_slice(&((size - 1) as u16).to_be_bytes());
        let crc = crc8(&out[start..]);
        out.push(crc);
        for _ in 0..channels {
            // CONSTANT subframe, no wasted bits, value 0.
            out.extend_from_slice(&[0, 0, 0]);
        }
        let crc = crc16(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    out
}

/// A frame number in FLAC's UTF-8-like coding.
fn utf8_number(n: u64) -> Vec<u8> {
    if n < 0x80 {
        return vec![n as u8];
    }
    let mut tail = Vec::new();
    let mut rest = n;
    let mut room = 0x3F; // bits the lead byte can still take
    while rest > room {
        tail.push(0x80 | (rest & 0x3F) as u8);
        rest >>= 6;
        room >>= 1;
    }
    let lead_mask = !((room << 1) | 1) as u8; // 110…, 1110…
    let mut out = vec![lead_mask | rest as u8];
    out.extend(tail.into_iter().rev());
    out
}

fn crc8(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |mut crc, &b| {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
        crc
    })
}

fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |mut crc, &b| {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x8005
            } else {
                crc << 1
            };
        }
        crc
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_numbers_are_coded_as_flac_codes_them() {
        assert_eq!(utf8_number(0x7F), vec![0x7F]);
        assert_eq!(utf8_number(0x80), vec![0xC2, 0x80]);
        assert_eq!(utf8_number(0x7FF), vec![0xDF, 0xBF]);
        assert_eq!(utf8_number(0x800), vec![0xE0, 0xA0, 0x80]);
        assert_eq!(utf8_number(0xFFFF), vec![0xEF, 0xBF, 0xBF]);
        assert_eq!(utf8_number(0x10000), vec![0xF0, 0x90, 0x80, 0x80]);
    }

    #[test]
    fn a_day_of_eight_channels_is_a_few_megabytes_and_ffmpeg_reads_its_length() {
        let bytes = silent_flac(48 * 3600, 8, 16_000, true);
        assert!(bytes.len() < 4 << 20, "{} bytes", bytes.len());
        let path = std::env::temp_dir().join(format!("bomb-{}.flac", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let probe = std::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=channels,duration",
                "-of",
                "csv=p=0",
            ])
            .arg(&path)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        let text = String::from_utf8_lossy(&probe.stdout);
        assert!(text.starts_with("8,172800"), "{text}");
    }
}
