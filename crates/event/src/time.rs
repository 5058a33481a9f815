//! Event times, kept in milliseconds since the Unix epoch.

use serde_json::Value;

/// Milliseconds between 1601-01-01 (Windows FILETIME epoch) and 1970-01-01.
const FILETIME_EPOCH_OFFSET_MS: i64 = 11_644_473_600_000;

/// Parses an RFC 3339 string (`2025-03-04T06:22:18.819232Z`, truncated to milliseconds) or a
/// number: Windows FILETIME (100 ns ticks, > 10^17), epoch milliseconds (> 10^11), else epoch
/// seconds (fractions kept to the millisecond).
pub fn parse_timestamp(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => parse_str(s),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(from_int(i))
            } else {
                let f = n.as_f64()?;
                if f.abs() > 1e11 {
                    Some(from_int(f as i64))
                } else {
                    Some((f * 1000.0).round() as i64)
                }
            }
        }
        _ => None,
    }
}

fn from_int(i: i64) -> i64 {
    if i > 100_000_000_000_000_000 {
        i / 10_000 - FILETIME_EPOCH_OFFSET_MS
    } else if i > 100_000_000_000 {
        i
    } else {
        i * 1000
    }
}

fn parse_str(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_millis());
    }
    // "2025-03-04 06:22:18.819Z" and zone-less "2025-03-04T06:22:18" (taken as UTC).
    let fixed = s.replacen(' ', "T", 1);
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(&fixed) {
        return Some(dt.timestamp_millis());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(&fixed, fmt) {
            return Some(dt.and_utc().timestamp_millis());
        }
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') && !s.is_empty() {
        if let Ok(i) = s.parse::<i64>() {
            return Some(from_int(i));
        }
        if let Ok(f) = s.parse::<f64>() {
            return Some((f * 1000.0).round() as i64);
        }
    }
    None
}

/// RFC 3339 with milliseconds, UTC.
pub fn format_timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|dt| {
            use chrono::Datelike;
            // The RFC 3339 writer is the same text for four-digit years, without parsing a
            // format string per call (alerts print one timestamp each).
            if (0..=9999).contains(&dt.year()) {
                dt.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            } else {
                dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
            }
        })
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_the_shapes_sources_use() {
        assert_eq!(
            parse_timestamp(&json!("2025-03-04T06:22:18.819232Z")),
            Some(1741069338819)
        );
        assert_eq!(
            parse_timestamp(&json!("2025-03-04T07:22:18.819+01:00")),
            Some(1741069338819)
        );
        assert_eq!(
            parse_timestamp(&json!("2025-03-04 06:22:18.819Z")),
            Some(1741069338819)
        );
        assert_eq!(
            parse_timestamp(&json!(1741069338819i64)),
            Some(1741069338819)
        );
        assert_eq!(parse_timestamp(&json!(1741069338)), Some(1741069338000));
        assert_eq!(
            parse_timestamp(&json!(131509374020000000i64)),
            Some(1506463802000)
        );
        assert_eq!(parse_timestamp(&json!("yesterday")), None);
        assert_eq!(format_timestamp(1741069338819), "2025-03-04T06:22:18.819Z");
    }
}
