//! A slice of a listing: `skip` records, then at most `limit`.

/// The most records one page may ask for.
pub const MAX_PAGE: u64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub skip: u64,
    /// None: every record after `skip`.
    pub limit: Option<u64>,
}

/// Why `limit` or `skip` is not a page.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PageError {
    #[error("{name} must be a whole number, not '{value}'")]
    NotANumber { name: &'static str, value: String },
    #[error("limit must be between 1 and {MAX_PAGE}, not {0}")]
    LimitOutOfRange(u64),
    #[error("skip must be at most 9223372036854775807, not {0}")]
    SkipOutOfRange(u64),
}

impl Page {
    /// The whole listing.
    pub const ALL: Page = Page {
        skip: 0,
        limit: None,
    };

    /// From a request's `limit` and `skip` parameters; either may be absent.
    pub fn parse(limit: Option<&str>, skip: Option<&str>) -> Result<Self, PageError> {
        let number = |name: &'static str, value: &str| {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| PageError::NotANumber {
                    name,
                    value: value.to_owned(),
                })
        };
        let limit = limit.map(|l| number("limit", l)).transpose()?;
        if let Some(l) = limit.filter(|l| !(1..=MAX_PAGE).contains(l)) {
            return Err(PageError::LimitOutOfRange(l));
        }
        let skip = skip.map(|s| number("skip", s)).transpose()?.unwrap_or(0);
        // The database counts in signed 64 bits.
        if skip > i64::MAX as u64 {
            return Err(PageError::SkipOutOfRange(skip));
        }
        Ok(Page { skip, limit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_parse_and_refuse_what_is_no_page() {
        assert_eq!(Page::parse(None, None), Ok(Page::ALL));
        assert_eq!(
            Page::parse(Some("50"), Some("100")),
            Ok(Page {
                skip: 100,
                limit: Some(50)
            })
        );
        assert_eq!(
            Page::parse(Some("0"), None),
            Err(PageError::LimitOutOfRange(0))
        );
        assert_eq!(
            Page::parse(Some("10001"), None),
            Err(PageError::LimitOutOfRange(10_001))
        );
        assert_eq!(
            Page::parse(None, Some("9223372036854775808")),
            Err(PageError::SkipOutOfRange(1 << 63))
        );
        assert!(matches!(
            Page::parse(None, Some("-1")),
            Err(PageError::NotANumber { name: "skip", .. })
        ));
        assert!(matches!(
            Page::parse(Some("ten"), None),
            Err(PageError::NotANumber { name: "limit", .. })
        ));
    }
}
