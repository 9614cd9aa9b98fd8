//! The model survives a JSON round trip, so `soak gate` can re-render a
//! saved report.

use soakgate_reports::model::{AbReport, GateStatus, Unit, Verdict};

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
        serde_json::to_string(&Verdict::NoRegression).unwrap(),
        "\"no_regression\""
    );
    assert_eq!(
        serde_json::to_string(&GateStatus::CannotTell).unwrap(),
        "\"cannot_tell\""
    );
    assert_eq!(
        serde_json::to_string(&Unit::Milliseconds).unwrap(),
        "\"milliseconds\""
    );
    let words: Vec<String> = [
        Verdict::Regression,
        Verdict::Improvement,
        Verdict::NoRegression,
        Verdict::CannotTell,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(
        words,
        ["regression", "improvement", "no regression", "cannot tell"]
    );
}

#[test]
fn noise_band_and_detectable_are_optional_in_json() {
    let mut value = serde_json::to_value(fixture::report()).unwrap();
    for row in value["sections"].as_array_mut().unwrap() {
        let row = row.as_object_mut().unwrap();
        row.remove("noise_band");
        row.remove("detectable");
    }
    let back: AbReport = serde_json::from_value(value).unwrap();
    assert!(back.sections.iter().all(|row| row.noise_band.is_none()));
    assert!(back.sections.iter().all(|row| row.detectable.is_none()));
}

#[test]
fn rules_out_and_could_catch_are_optional_in_json() {
    let mut value = serde_json::to_value(fixture::report()).unwrap();
    let gate = value["gate"].as_object_mut().unwrap();
    gate.remove("rules_out");
    gate.remove("could_catch");
    let back: AbReport = serde_json::from_value(value).unwrap();
    assert_eq!((back.gate.rules_out, back.gate.could_catch), (None, None));
}
