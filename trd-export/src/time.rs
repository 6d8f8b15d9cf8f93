//! The clock notations of the formats. Everything is rounded to whole milliseconds once, in
//! [`Millis::from_secs`], so a time prints the same in every format.

/// A non-negative point in the audio, in whole milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Millis(u64);

impl Millis {
    pub(crate) fn from_secs(secs: f64) -> Self {
        // Negative or NaN times can only come from a bug upstream; printing 0 keeps the file
        // parseable instead of failing the whole export.
        Self((secs * 1000.0).round().max(0.0) as u64)
    }

    /// `mm:ss:sss`, the contract's CSV notation; minutes keep counting past 59.
    pub(crate) fn csv(self) -> String {
        let (minutes, seconds, millis) = self.minutes_seconds_millis();
        format!("{minutes:02}:{seconds:02}:{millis:03}")
    }

    /// `mm:ss.mmm`, short enough for a plain-text line; minutes keep counting past 59.
    pub(crate) fn minutes(self) -> String {
        let (minutes, seconds, millis) = self.minutes_seconds_millis();
        format!("{minutes:02}:{seconds:02}.{millis:03}")
    }

    /// `HH:MM:SS` followed by `fraction_separator` and milliseconds: `.` for WebVTT, `,` for
    /// SubRip.
    pub(crate) fn clock(self, fraction_separator: char) -> String {
        let (minutes, seconds, millis) = self.minutes_seconds_millis();
        let (hours, minutes) = (minutes / 60, minutes % 60);
        format!("{hours:02}:{minutes:02}:{seconds:02}{fraction_separator}{millis:03}")
    }

    /// Seconds with at most three decimals and no trailing zeros (`7.4`, `0.56`, `12`), the way
    /// Transcriber writes its time attributes.
    pub(crate) fn seconds(self) -> String {
        let (secs, millis) = (self.0 / 1000, self.0 % 1000);
        if millis == 0 {
            return secs.to_string();
        }
        let fraction = format!("{millis:03}");
        format!("{secs}.{}", fraction.trim_end_matches('0'))
    }

    fn minutes_seconds_millis(self) -> (u64, u64, u64) {
        let millis = self.0 % 1000;
        let total_seconds = self.0 / 1000;
        (total_seconds / 60, total_seconds % 60, millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_minutes_keep_growing_past_an_hour() {
        assert_eq!(Millis::from_secs(75.5).csv(), "01:15:500");
        assert_eq!(Millis::from_secs(3725.25).csv(), "62:05:250");
        assert_eq!(Millis::from_secs(0.0).csv(), "00:00:000");
    }

    #[test]
    fn rounds_to_the_nearest_millisecond() {
        assert_eq!(Millis::from_secs(1.0004).minutes(), "00:01.000");
        assert_eq!(Millis::from_secs(1.0006).minutes(), "00:01.001");
        assert_eq!(Millis::from_secs(59.9996).minutes(), "01:00.000");
        assert_eq!(Millis::from_secs(-3.0), Millis::from_secs(0.0));
    }

    #[test]
    fn clock_carries_hours() {
        assert_eq!(Millis::from_secs(3725.25).clock('.'), "01:02:05.250");
        assert_eq!(Millis::from_secs(7.4).clock(','), "00:00:07,400");
    }

    #[test]
    fn seconds_drop_trailing_zeros() {
        assert_eq!(Millis::from_secs(7.4).seconds(), "7.4");
        assert_eq!(Millis::from_secs(0.56).seconds(), "0.56");
        assert_eq!(Millis::from_secs(12.0).seconds(), "12");
        assert_eq!(Millis::from_secs(0.005).seconds(), "0.005");
    }
}
