//! Every assignor against Kafka's own, on 318 groups.
//!
//! `testdata/kafka_golden.txt` holds inputs (members in JoinGroup order, subscriptions, owned
//! partitions, generations, static members, same-generation conflicts, topics that do not exist)
//! and what Kafka's `RangeAssignor`, `RoundRobinAssignor`, `StickyAssignor` and
//! `CooperativeStickyAssignor` returned for them; its header says how it was produced.

use super::test_support::{partitions, render};
use super::{AssignorKind, MemberSubscription};
use std::collections::BTreeMap;
use std::str::FromStr;

struct Case {
    name: String,
    topics: BTreeMap<String, i32>,
    members: Vec<MemberSubscription>,
    /// assignor -> member id -> rendered line.
    expected: Vec<(AssignorKind, BTreeMap<String, String>)>,
}

fn parse(text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut case: Option<Case> = None;
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let words: Vec<&str> = line.split(' ').collect();
        match words[0] {
            "case" => {
                case = Some(Case {
                    name: words[1].to_string(),
                    topics: BTreeMap::new(),
                    members: vec![],
                    expected: vec![],
                })
            }
            "topic" => {
                case.as_mut().expect("in a case").topics.insert(words[1].to_string(), words[2].parse().expect("count"));
            }
            "member" => {
                let field = |prefix: &str, word: &str| -> Option<String> {
                    let value = word.strip_prefix(prefix).expect("field name");
                    (value != "-").then(|| value.to_string())
                };
                let topics =
                    field("topics=", words[4]).map(|t| t.split(',').map(String::from).collect()).unwrap_or_default();
                case.as_mut().expect("in a case").members.push(MemberSubscription {
                    member_id: words[1].to_string(),
                    group_instance_id: field("inst=", words[2]),
                    generation: field("gen=", words[3]).map(|g| g.parse().expect("generation")),
                    topics,
                    owned_partitions: field("owned=", words[5]).map(|o| partitions(&o)).unwrap_or_default(),
                });
            }
            "expect" => {
                let kind = AssignorKind::from_str(words[1]).expect("assignor name");
                case.as_mut().expect("in a case").expected.push((kind, BTreeMap::new()));
            }
            "end" => cases.push(case.take().expect("in a case")),
            _ => {
                let (id, _) = line.split_once(':').expect("ID: partitions");
                let expected = &mut case.as_mut().expect("in a case").expected;
                expected.last_mut().expect("after expect").1.insert(id.to_string(), line.to_string());
            }
        }
    }
    cases
}

#[test]
fn every_assignor_matches_kafka_on_generated_groups() {
    let cases = parse(include_str!("testdata/kafka_golden.txt"));
    assert_eq!(cases.len(), 318);
    let mut failures = Vec::new();
    for case in &cases {
        for (kind, expected) in &case.expected {
            let assignment = kind.assign(&case.topics, &case.members);
            let actual: BTreeMap<String, String> = render(&assignment)
                .into_iter()
                .map(|line| (line.split_once(':').expect("rendered").0.to_string(), line))
                .collect();
            if actual != *expected {
                failures.push(format!(
                    "case {} {kind}:\n  expected {:?}\n  actual   {:?}",
                    case.name,
                    expected.values(),
                    actual.values()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} differ from Kafka:\n{}",
        failures.len(),
        cases.len() * 4,
        failures.join("\n")
    );
}
