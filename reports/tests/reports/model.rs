//! The model survives a JSON round trip, so `soak gate` can re-render a
//! saved report.

use soakgate_reports::model::{AbReport, Unit, Verdict};

use crate::fixture;

#[test]
fn report_round_trips_through_json() {
    let report = fixture::report();
    let json = serde_json::to_string(&report).unwrap();
    let back: AbReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
}

#[test]
fn enums_serialize_in_snake_case_and_display_in_words() {
    assert_eq!(
        serde_json::to_string(&Verdict::NoChange).unwrap(),
        "\"no_change\""
    );
    assert_eq!(
        serde_json::to_string(&Unit::Milliseconds).unwrap(),
        "\"milliseconds\""
    );
    let words: Vec<String> = [
        Verdict::Regression,
        Verdict::Improvement,
        Verdict::NoChange,
        Verdict::Inconclusive,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(
        words,
        ["regression", "improvement", "no change", "inconclusive"]
    );
}

#[test]
fn noise_band_is_optional_in_json() {
    let mut value = serde_json::to_value(fixture::report()).unwrap();
    for row in value["sections"].as_array_mut().unwrap() {
        row.as_object_mut().unwrap().remove("noise_band");
    }
    let back: AbReport = serde_json::from_value(value).unwrap();
    assert!(back.sections.iter().all(|row| row.noise_band.is_none()));
}
