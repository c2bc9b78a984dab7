//! Bad input to the CSV scorer behind `phoenix anomaly score`: a clear error naming the line,
//! and nothing written.

use phoenix_anomaly::offline::{score_csv, CsvError};
use phoenix_anomaly::DetectorConfig;

fn error_of(input: &str) -> (usize, String) {
    let mut out = Vec::new();
    match score_csv(input, &mut out, &DetectorConfig::default()) {
        Err(CsvError::Invalid { line, message }) => {
            assert!(out.is_empty(), "output written despite invalid input");
            (line, message)
        }
        other => panic!("expected an invalid-input error, got {other:?}"),
    }
}

/// Scenario: a file without a header line. Guarantee: error on line 1 saying the header is missing.
#[test]
fn missing_header() {
    let (line, msg) = error_of("1000,1.5\n1060,1.7\n");
    assert_eq!(line, 1);
    assert!(msg.contains("missing header"), "{msg}");
}

/// Scenario: a row whose value is not a number, and one with too few fields. Guarantee: the
/// error names that row's line and quotes the text.
#[test]
fn unparsable_rows() {
    let (line, msg) = error_of("timestamp,value\n1,1.0\n2,2.0\n3,oops\n");
    assert_eq!(line, 4);
    assert!(msg.contains("`oops`"), "{msg}");
    let (line, msg) = error_of("timestamp,value\n1,1.0\n\n3\n");
    assert_eq!(line, 4);
    assert!(msg.contains("fields"), "{msg}");
}

/// Scenario: timestamps that go back in time (numbers and dates). Guarantee: the error names the
/// offending line and the earlier one.
#[test]
fn non_monotonic_timestamps() {
    let (line, msg) = error_of("timestamp,value\n10,1\n20,2\n15,3\n");
    assert_eq!(line, 4);
    assert!(msg.contains("line 3"), "{msg}");
    let (line, _) = error_of(
        "timestamp,value\n2024-01-01 00:05:00,1\n2024-01-01 00:10:00,2\n2024-01-01 00:00:00,3\n",
    );
    assert_eq!(line, 4);
}

/// Scenario: NaN and infinite values. Guarantee: error naming the line and saying not finite.
#[test]
fn nan_and_infinity() {
    for bad in ["NaN", "nan", "inf", "-inf", "Infinity"] {
        let (line, msg) = error_of(&format!("timestamp,value\n1,1\n2,{bad}\n"));
        assert_eq!(line, 3, "{bad}");
        assert!(msg.contains("not finite"), "{bad}: {msg}");
    }
}
