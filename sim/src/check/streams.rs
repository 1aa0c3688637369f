//! Kafka Streams' processing guarantees, over what its instances made visible.
//!
//! An input record is *counted* once its effects are visible downstream: under at_least_once as
//! soon as every record its processing sent (sink rows, changelog writes) is acknowledged; under
//! exactly_once_v2 when the transaction holding them commits. Counting one input twice is what
//! at_least_once allows after a crash between output and commit (a lesson), and what
//! exactly_once_v2 promises never happens (KIP-129, KIP-447: "each input record is processed
//! exactly once, and its results are reflected exactly once in the output and the state").

use crate::trace::{Finding, Rule};
use ksim_cluster::TopicPartition;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Default)]
pub(super) struct Streams {
    /// Inputs counted, by application id.
    counted: BTreeMap<String, BTreeSet<(TopicPartition, i64)>>,
}

impl Streams {
    /// `instance` of `application` made these inputs' effects visible.
    pub(super) fn on_counted(
        &mut self,
        application: &str,
        instance: &str,
        exactly_once: bool,
        inputs: &[(TopicPartition, i64)],
    ) -> Vec<Finding> {
        let seen = self.counted.entry(application.to_string()).or_default();
        let mut again: BTreeMap<&TopicPartition, Vec<i64>> = BTreeMap::new();
        for (tp, offset) in inputs {
            if !seen.insert((tp.clone(), *offset)) {
                again.entry(tp).or_default().push(*offset);
            }
        }
        again
            .into_iter()
            .map(|(tp, offsets)| {
                let list: Vec<String> = offsets.iter().map(i64::to_string).collect();
                let guarantee = if exactly_once { "exactly_once_v2" } else { "at_least_once" };
                Finding::promise(
                    Rule::CountedTwice,
                    exactly_once,
                    format!(
                        "application {application} ({guarantee}): {instance} counted {tp} offset(s) {} a second time: their results are in the output and the state twice",
                        list.join(", ")
                    ),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Class;

    #[test]
    fn an_input_counted_twice_is_a_lesson_under_at_least_once_and_a_violation_under_exactly_once() {
        let tp = TopicPartition::new("payments", 0);
        let mut alo = Streams::default();
        assert!(alo.on_counted("a", "i1", false, &[(tp.clone(), 0), (tp.clone(), 1)]).is_empty());
        let found = alo.on_counted("a", "i2", false, &[(tp.clone(), 1), (tp.clone(), 2)]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].class(), Class::Lesson);
        assert!(found[0].message.contains("offset(s) 1 a second time"), "{}", found[0].message);

        let mut eos = Streams::default();
        assert!(eos.on_counted("e", "i1", true, &[(tp.clone(), 0)]).is_empty());
        let found = eos.on_counted("e", "i2", true, &[(tp.clone(), 0)]);
        assert_eq!(found[0].class(), Class::Violation);
        // Another application counting the same input is its own business.
        assert!(eos.on_counted("other", "i3", true, &[(tp, 0)]).is_empty());
    }
}
