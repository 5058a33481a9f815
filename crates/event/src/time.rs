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

/// The common shape, `2025-03-04T06:22:18.819232Z` (UTC, any number of fraction digits), read
/// without chrono's general parser (every event's time goes through here); `None` for anything
/// else, which chrono then reads.
fn parse_utc_fast(s: &[u8]) -> Option<i64> {
    let num = |at: usize, len: usize| -> Option<i64> {
        let mut n = 0i64;
        for &b in s.get(at..at + len)? {
            if !b.is_ascii_digit() {
                return None;
            }
            n = n * 10 + i64::from(b - b'0');
        }
        Some(n)
    };
    let sep = |at: usize, c: u8| s.get(at) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let max_day = *month_days.get(usize::try_from(mo).ok()?.checked_sub(1)?)?;
    // (A leap second, 60, is left to chrono.)
    if d < 1 || d > max_day || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut at = 19;
    let mut millis = 0i64;
    if sep(at, b'.') {
        at += 1;
        let digits = s
            .get(at..)?
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        for i in 0..3 {
            millis = millis * 10
                + if i < digits {
                    i64::from(s[at + i] - b'0')
                } else {
                    0
                };
        }
        at += digits;
    }
    if at + 1 != s.len() || s[at] != b'Z' {
        return None;
    }
    let days = ruleatlas_ir::func::days_from_civil(y, mo, d);
    Some(((days * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + millis)
}

fn parse_str(s: &str) -> Option<i64> {
    let s = s.trim();
    parse_utc_fast(s.as_bytes()).or_else(|| parse_str_general(s))
}

/// Every shape `parse_timestamp` reads from a (trimmed) string, through chrono.
fn parse_str_general(s: &str) -> Option<i64> {
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
    /// 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z.
    const FOUR_DIGIT_YEARS: std::ops::RangeInclusive<i64> =
        -62_167_219_200_000..=253_402_300_799_999;
    if FOUR_DIGIT_YEARS.contains(&ms) {
        // Written from the civil date: chrono's writer goes through the formatting machinery,
        // most of an alert head's cost (a hunt prints one time per alert).
        let (year, month, day) = ruleatlas_ir::func::civil_from_days(ms.div_euclid(86_400_000));
        let in_day = ms.rem_euclid(86_400_000);
        let mut text = *b"0000-00-00T00:00:00.000Z";
        for (at, n, width) in [
            (0, year, 4),
            (5, month, 2),
            (8, day, 2),
            (11, in_day / 3_600_000, 2),
            (14, in_day / 60_000 % 60, 2),
            (17, in_day / 1000 % 60, 2),
            (20, in_day % 1000, 3),
        ] {
            let mut n = n;
            for d in text[at..at + width].iter_mut().rev() {
                *d = b'0' + (n % 10) as u8;
                n /= 10;
            }
        }
        // (ASCII digits and separators: `from_utf8` never fails here, and is a word-at-a-time
        // check where `from_utf8_lossy` walks chunks.)
        return String::from_utf8(text.to_vec()).unwrap_or_default();
    }
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|dt| dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
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

    #[test]
    fn the_fast_path_reads_what_chrono_reads() {
        let chrono_ms = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|dt| dt.timestamp_millis())
        };
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut texts = Vec::new();
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Microseconds over the four-digit years.
            let us = (x % 315_537_897_600_000_000) as i64 - 62_167_219_200_000_000;
            let Some(dt) = chrono::DateTime::from_timestamp_micros(us) else {
                panic!("{us} µs out of range");
            };
            for format in [
                "%Y-%m-%dT%H:%M:%SZ",
                "%Y-%m-%dT%H:%M:%S%.3fZ",
                "%Y-%m-%dT%H:%M:%S%.6fZ",
                "%Y-%m-%dT%H:%M:%S%.9fZ",
                "%Y-%m-%dT%H:%M:%S%.fZ",
            ] {
                texts.push(dt.format(format).to_string());
            }
        }
        // Shapes the fast path leaves to chrono, valid or not.
        for odd in [
            "2024-02-29T23:59:59.9Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-00-10T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2016-12-31T23:59:60Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00z",
            "2024-01-01t00:00:00Z",
            "2024-01-01T00:00:00+01:00",
            "2024-01-01T00:00:00.5+01:00",
            "2024-01-01T00:00:00.123456789123Z",
            "2024-01-01T00:00:00ZZ",
            "+2024-01-01T00:00:00Z",
            "2024-1-01T00:00:00Z",
            "٢٠٢٤-01-01T00:00:00Z",
            "2024-01-01T00:00:00.1٢Z",
            "",
        ] {
            texts.push(odd.to_string());
        }
        let mut fast = 0;
        for t in &texts {
            if let Some(ms) = parse_utc_fast(t.as_bytes()) {
                fast += 1;
                assert_eq!(Some(ms), chrono_ms(t), "{t}");
            }
            assert_eq!(parse_str(t), parse_str_general(t.trim()), "{t}");
        }
        assert!(fast >= 100_000, "{fast}");
    }

    #[test]
    fn formatted_times_are_chronos_rfc_3339() {
        let chrono = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|dt| dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        };
        // Edges (epoch, before it, leap day, the last millisecond of 9999, beyond it), then
        // times spread over the four-digit years.
        let mut times = vec![
            0,
            -1,
            951_782_400_000,
            253_402_300_799_999,
            253_402_300_800_000,
            -62_167_219_200_000,
            -62_167_219_200_001,
        ];
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            times.push((x % 315_537_897_600_000) as i64 - 62_167_219_200_000);
        }
        for ms in times {
            assert_eq!(Some(format_timestamp(ms)), chrono(ms), "{ms}");
        }
    }
}
