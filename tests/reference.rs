//! The scenario-format reference (`book/src/appendix-scenario-reference.md`) stays complete and
//! its examples stay true.
//!
//! Completeness: every field of every section, every application, action, node, happening,
//! expectation and condition the schema has is named in the appendix (as `name`). The names come
//! from the schema itself, by asking the parser for an unknown one: its error lists every name it
//! expected. A field added to the schema and not to the appendix fails this test.
//!
//! Truth: every ` ```ron TYPE ` block of the appendix parses as that type, and every
//! ` ```ron Scenario ` block loads and resolves as a scenario file would.

use ksim_sim::scenario::{
    Action, App, Client, Cluster, CommitMode, Condition, Expectation, FuzzBudget, Happening, Narration, Network,
    NodeRef, Processing, Quorum, Scenario, Step, Topic,
};
use serde::de::DeserializeOwned;
use std::path::Path;

fn appendix() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src/appendix-scenario-reference.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The names the parser expected where it met an unknown one.
fn expected_names<T: DeserializeOwned + std::fmt::Debug>(probe: &str) -> Vec<String> {
    match ron::from_str::<T>(probe) {
        Ok(v) => panic!("the probe `{probe}` parsed: {v:?}"),
        Err(e) => match e.code {
            ron::error::Error::NoSuchStructField { expected, .. }
            | ron::error::Error::NoSuchEnumVariant { expected, .. } => expected.iter().map(|s| s.to_string()).collect(),
            other => panic!("the probe `{probe}` gave {other:?}, not the list of expected names"),
        },
    }
}

fn struct_fields<T: DeserializeOwned + std::fmt::Debug>() -> Vec<String> {
    expected_names::<T>("(zzz_not_a_field: 0)")
}

fn variants<T: DeserializeOwned + std::fmt::Debug>() -> Vec<String> {
    expected_names::<T>("ZzzNotAVariant")
}

/// Every name of the schema, with where it is from.
fn schema_names() -> Vec<(String, String)> {
    let mut names: Vec<(String, String)> = Vec::new();
    let mut add = |section: &str, list: Vec<String>| {
        assert!(!list.is_empty(), "{section}: no names found");
        names.extend(list.into_iter().map(|n| (section.to_string(), n)));
    };
    add("Scenario", struct_fields::<Scenario>());
    add("Cluster", struct_fields::<Cluster>());
    add("Quorum", struct_fields::<Quorum>());
    add("Network", struct_fields::<Network>());
    add("Topic", struct_fields::<Topic>());
    add("Client", struct_fields::<Client>());
    add("Step", struct_fields::<Step>());
    add("Narration", struct_fields::<Narration>());
    add("FuzzBudget", struct_fields::<FuzzBudget>());
    let apps = variants::<App>();
    for app in &apps {
        // A struct variant lists its own fields for an unknown one; a unit variant
        // (`ConnectWorker`) has none to list.
        if ron::from_str::<App>(app).is_ok() {
            continue;
        }
        add(&format!("App::{app}"), expected_names::<App>(&format!("{app}(zzz_not_a_field: 0)")));
    }
    add("App", apps);
    add("CommitMode", variants::<CommitMode>());
    add("Processing", variants::<Processing>());
    add("Action", variants::<Action>());
    add("NodeRef", variants::<NodeRef>());
    add("Happening", variants::<Happening>());
    add("Expectation", variants::<Expectation>());
    add("Condition", variants::<Condition>());
    add("ConnectSection", struct_fields::<ksim_sim::scenario::connect::ConnectSection>());
    add("SourceSystem", struct_fields::<ksim_sim::scenario::connect::SourceSystem>());
    add("SourceRow", struct_fields::<ksim_sim::scenario::connect::SourceRow>());
    add("RowGenerator", struct_fields::<ksim_sim::scenario::connect::RowGenerator>());
    add("SinkSystem", struct_fields::<ksim_sim::scenario::connect::SinkSystem>());
    add("ConnectMode", variants::<ksim_sim::scenario::connect::ConnectMode>());
    add("SinkMode", variants::<ksim_cluster::connect::external::SinkMode>());
    names
}

#[test]
fn the_reference_names_every_field_and_variant_of_the_schema() {
    let text = appendix();
    let missing: Vec<String> = schema_names()
        .into_iter()
        .filter(|(_, name)| !text.contains(&format!("`{name}`")) && !text.contains(&format!("`{name}(")))
        .map(|(section, name)| format!("{section}: `{name}`"))
        .collect();
    assert!(
        missing.is_empty(),
        "book/src/appendix-scenario-reference.md does not document:\n  {}\n(document each with its meaning, default and an example)",
        missing.join("\n  ")
    );
}

fn check<T: DeserializeOwned>(what: &str, line: usize, text: &str) -> Result<(), String> {
    // As scenario files are read: an optional field is written as its value (`at_ms: 5000`).
    ron::Options::default()
        .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
        .from_str::<T>(text)
        .map(|_| ())
        .map_err(|e| format!("line {line}: a `ron {what}` example does not parse: {e}\n{text}"))
}

#[test]
fn every_example_of_the_reference_parses_as_its_type() {
    let text = appendix();
    let mut examples = 0;
    let mut errors = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let Some(kind) = line.trim().strip_prefix("```ron") else { continue };
        let kind = kind.trim();
        let mut body = String::new();
        for (_, l) in lines.by_ref() {
            if l.trim() == "```" {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        let line = n + 1;
        let result = match kind {
            "Scenario" => Scenario::parse("example.ron", &body)
                .map_err(|e| format!("line {line}: a scenario example does not load: {e}"))
                .and_then(|s| {
                    s.resolve()
                        .map(|_| ())
                        .map_err(|e| format!("line {line}: a scenario example does not resolve: {e}"))
                }),
            "Cluster" => check::<Cluster>(kind, line, &body),
            "Network" => check::<Network>(kind, line, &body),
            "Topic" => check::<Topic>(kind, line, &body),
            "Client" => check::<Client>(kind, line, &body),
            "App" => check::<App>(kind, line, &body),
            "Step" => check::<Step>(kind, line, &body),
            "Action" => check::<Action>(kind, line, &body),
            "Narration" => check::<Narration>(kind, line, &body),
            "Happening" => check::<Happening>(kind, line, &body),
            "Expectation" => check::<Expectation>(kind, line, &body),
            "Condition" => check::<Condition>(kind, line, &body),
            "FuzzBudget" => check::<FuzzBudget>(kind, line, &body),
            "Steps" => check::<Vec<Step>>(kind, line, &body),
            "Expectations" => check::<Vec<Expectation>>(kind, line, &body),
            other => Err(format!("line {line}: `ron {other}`: not a type this test knows; use one of the schema's")),
        };
        examples += 1;
        if let Err(e) = result {
            errors.push(e);
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n\n"));
    assert!(examples >= 15, "only {examples} examples: has the appendix lost its examples?");
}
