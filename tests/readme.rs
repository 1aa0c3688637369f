//! The README's sample output is ksim's real output: its digest must be today's.

use ksim_sim::scenario::Scenario;
use std::path::Path;

#[test]
fn the_readme_taste_shows_the_current_run() {
    let readme = std::fs::read_to_string("README.md").expect("README.md");
    let taste = readme.split("## A taste").nth(1).expect("a taste section").split("\n## ").next().expect("its text");
    assert!(taste.contains("run scenarios/acks-1-loses-data.ron"), "the taste runs acks-1-loses-data");
    let shown = taste
        .lines()
        .find_map(|l| l.trim().strip_prefix("trace digest: "))
        .expect("the taste ends with the run's digest");
    let scenario = Scenario::load(Path::new("scenarios/acks-1-loses-data.ron")).expect("loads");
    let outcome = ksim_sim::run(&scenario, "acks-1-loses-data", scenario.seed).expect("runs");
    assert_eq!(
        shown,
        outcome.trace.digest(),
        "README.md's 'A taste' is stale: paste the new output of `ksim run scenarios/acks-1-loses-data.ron`"
    );
    let story = ksim_sim::narrate::render(&outcome.trace, ksim_sim::narrate::Detail::Story);
    for line in taste.lines().filter(|l| {
        l.starts_with("  ") && l.contains('s') && l.trim().chars().next().is_some_and(|c| c.is_ascii_digit())
    }) {
        assert!(story.contains(line), "README.md shows a line the run does not print: {line}");
    }
}
