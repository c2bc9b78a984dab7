//! Offline scoring of one series from CSV: the code path behind `phoenix anomaly score`.
//!
//! Input: a header naming `timestamp` and `value` columns, then one row per point in time
//! order. Timestamps are numbers (any unit) or dates (`YYYY-MM-DD HH:MM:SS[.fff]`,
//! RFC 3339, `YYYY-MM-DD`); equal timestamps are allowed, decreasing ones are not. Output:
//! `timestamp,value,anomaly_score`, one row per input row, fields echoed as given. Every input
//! problem is reported with its 1-based line number before anything is written.

use std::io::Write;

use chrono::{DateTime, NaiveDate, NaiveDateTime};

use crate::{Detector, DetectorConfig, Score};

/// Output header.
pub const OUTPUT_HEADER: &str = "timestamp,value,anomaly_score";

/// Errors of the CSV scorer.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The input is malformed at `line` (1-based).
    #[error("line {line}: {message}")]
    Invalid {
        /// 1-based line number.
        line: usize,
        /// What is wrong, quoting the offending text.
        message: String,
    },
    /// The detector config is invalid.
    #[error(transparent)]
    Config(#[from] crate::Error),
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
}

/// One parsed input row, borrowing its text from the input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row<'a> {
    /// 1-based line number in the input.
    pub line: usize,
    /// Timestamp as written.
    pub timestamp: &'a str,
    /// Value as written.
    pub value_text: &'a str,
    /// Parsed value (finite).
    pub value: f64,
}

/// What a scoring run produced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Rows scored.
    pub rows: usize,
    /// Rows that raised an alarm.
    pub alarms: usize,
    /// Highest score.
    pub max_score: f64,
}

/// How timestamps of a file are written; all rows must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TsKind {
    Number,
    Date,
}

fn invalid(line: usize, message: String) -> CsvError {
    CsvError::Invalid { line, message }
}

fn field(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(s)
        .trim()
}

/// Orders timestamps: numbers as they are, dates as seconds since the epoch.
fn timestamp_key(s: &str) -> Option<(TsKind, f64)> {
    if let Ok(x) = s.parse::<f64>() {
        return x.is_finite().then_some((TsKind::Number, x));
    }
    let date = |dt: NaiveDateTime| {
        let utc = dt.and_utc();
        (
            TsKind::Date,
            utc.timestamp() as f64 + f64::from(utc.timestamp_subsec_nanos()) * 1e-9,
        )
    };
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(date(dt.naive_utc()));
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(date(dt));
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(date)
}

/// Parses and validates the whole input.
///
/// # Errors
/// [`CsvError::Invalid`] for a missing or wrong header, a row with the wrong number of fields,
/// an unparsable or decreasing timestamp, or a value that is not a finite number.
pub fn parse(input: &str) -> Result<Vec<Row<'_>>, CsvError> {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let mut lines = input.lines().enumerate().map(|(i, l)| (i + 1, l));
    let (header_line, header) = lines
        .by_ref()
        .find(|(_, l)| !l.trim().is_empty())
        .ok_or_else(|| invalid(1, "empty input: expected a header `timestamp,value`".into()))?;
    let names: Vec<String> = header
        .split(',')
        .map(|f| field(f).to_ascii_lowercase())
        .collect();
    let ts_col = names.iter().position(|n| n == "timestamp");
    let value_col = names.iter().position(|n| n == "value");
    let (Some(ts_col), Some(value_col)) = (ts_col, value_col) else {
        let looks_like_data = header.split(',').count() >= 2
            && header
                .split(',')
                .nth(1)
                .is_some_and(|v| field(v).parse::<f64>().is_ok());
        let message = if looks_like_data {
            format!(
                "missing header: expected `timestamp,value`, found data row `{}`",
                header.trim()
            )
        } else {
            format!(
                "header must name columns `timestamp` and `value`, found `{}`",
                header.trim()
            )
        };
        return Err(invalid(header_line, message));
    };
    let width = names.len();
    let mut rows = Vec::new();
    let mut prev: Option<(TsKind, f64, &str, usize)> = None;
    for (line, text) in lines {
        if text.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = text.split(',').collect();
        if fields.len() != width {
            return Err(invalid(
                line,
                format!(
                    "expected {width} fields like the header, found {}: `{}`",
                    fields.len(),
                    text.trim()
                ),
            ));
        }
        let ts = field(fields[ts_col]);
        let value_text = field(fields[value_col]);
        let (kind, key) = timestamp_key(ts).ok_or_else(|| {
            invalid(
                line,
                format!("timestamp `{ts}` is neither a number nor a date (YYYY-MM-DD HH:MM:SS or RFC 3339)"),
            )
        })?;
        let value: f64 = value_text
            .parse()
            .map_err(|_| invalid(line, format!("value `{value_text}` is not a number")))?;
        if !value.is_finite() {
            return Err(invalid(line, format!("value `{value_text}` is not finite")));
        }
        if let Some((pkind, pkey, pts, pline)) = prev {
            if pkind != kind {
                return Err(invalid(
                    line,
                    format!("timestamp `{ts}` is written differently from `{pts}` on line {pline}"),
                ));
            }
            if key < pkey {
                return Err(invalid(
                    line,
                    format!(
                        "timestamp `{ts}` is earlier than `{pts}` on line {pline}; rows must be in time order"
                    ),
                ));
            }
        }
        prev = Some((kind, key, ts, line));
        rows.push(Row {
            line,
            timestamp: ts,
            value_text,
            value,
        });
    }
    Ok(rows)
}

/// Scores the rows of one series in order with a fresh state.
///
/// # Errors
/// [`crate::Error`] if the config is invalid (rows are finite after [`parse`]).
pub fn score_rows(rows: &[Row<'_>], config: &DetectorConfig) -> Result<Vec<Score>, crate::Error> {
    let mut detector = Detector::new(config.clone())?;
    let mut state = detector.new_state();
    rows.iter()
        .map(|r| detector.score(&mut state, r.value))
        .collect()
}

/// Parses `input`, scores it and writes `timestamp,value,anomaly_score` to `out`.
///
/// # Errors
/// See [`parse`]; nothing is written when the input is invalid. [`CsvError::Io`] if writing
/// fails.
pub fn score_csv(
    input: &str,
    out: &mut impl Write,
    config: &DetectorConfig,
) -> Result<Summary, CsvError> {
    let rows = parse(input)?;
    let scores = score_rows(&rows, config)?;
    writeln!(out, "{OUTPUT_HEADER}")?;
    let mut summary = Summary {
        rows: rows.len(),
        alarms: 0,
        max_score: 0.0,
    };
    for (row, s) in rows.iter().zip(&scores) {
        writeln!(out, "{},{},{:.6}", row.timestamp, row.value_text, s.score)?;
        summary.alarms += usize::from(s.alarm);
        summary.max_score = summary.max_score.max(s.score);
    }
    out.flush()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_line(input: &str) -> (usize, String) {
        match parse(input) {
            Err(CsvError::Invalid { line, message }) => (line, message),
            other => panic!("expected an invalid-input error, got {other:?}"),
        }
    }

    /// Scenario: a well-formed file with dates, CRLF and a BOM. Guarantee: rows parse in order.
    #[test]
    fn parses_dates_and_numbers() {
        let rows = parse(
            "\u{feff}timestamp,value\r\n2015-09-01 13:45:00,1.5\r\n2015-09-01 13:50:00,2\r\n",
        )
        .expect("valid input");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].line, 3);
        assert_eq!(rows[1].value, 2.0);
        let rows = parse("value,timestamp\n3,100\n4,100\n5,101\n").expect("valid input");
        assert_eq!(
            rows.iter().map(|r| r.value).collect::<Vec<_>>(),
            vec![3.0, 4.0, 5.0]
        );
    }

    /// Scenario: each kind of bad input. Guarantee: the error names the offending line.
    #[test]
    fn errors_name_the_line() {
        assert_eq!(err_line("").0, 1);
        let (line, msg) = err_line("1,2\n3,4\n");
        assert_eq!(line, 1);
        assert!(msg.contains("missing header"), "{msg}");
        let (line, msg) = err_line("time,val\n1,2\n");
        assert_eq!(line, 1);
        assert!(msg.contains("header"), "{msg}");
        let (line, msg) = err_line("timestamp,value\n1,2\n2,abc\n");
        assert_eq!(line, 3);
        assert!(msg.contains("abc"), "{msg}");
        let (line, msg) = err_line("timestamp,value\n1,2\n2,3\n1,4\n");
        assert_eq!(line, 4);
        assert!(msg.contains("earlier"), "{msg}");
        let (line, msg) = err_line("timestamp,value\n1,2\n2,NaN\n");
        assert_eq!(line, 3);
        assert!(msg.contains("not finite"), "{msg}");
        let (line, _) = err_line("timestamp,value\n1,2\n2,inf\n");
        assert_eq!(line, 3);
        let (line, msg) = err_line("timestamp,value\n1,2\n2\n");
        assert_eq!(line, 3);
        assert!(msg.contains("fields"), "{msg}");
        let (line, msg) = err_line("timestamp,value\nyesterday,2\n");
        assert_eq!(line, 2);
        assert!(msg.contains("yesterday"), "{msg}");
    }

    /// Scenario: score a short valid file. Guarantee: header plus one row per input row, fields
    /// echoed, scores in [0, 1].
    #[test]
    fn writes_one_row_per_input_row() {
        let mut input = String::from("timestamp,value\n");
        for i in 0..50 {
            input.push_str(&format!("{i},{}.5\n", i % 7));
        }
        let mut out = Vec::new();
        let summary = score_csv(&input, &mut out, &DetectorConfig::default()).expect("valid input");
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(summary.rows, 50);
        assert_eq!(lines.len(), 51);
        assert_eq!(lines[0], OUTPUT_HEADER);
        assert!(lines[8].starts_with("7,0.5,"));
        for l in &lines[1..] {
            let s: f64 = l
                .rsplit(',')
                .next()
                .and_then(|x| x.parse().ok())
                .expect("score");
            assert!((0.0..=1.0).contains(&s));
        }
    }
}
