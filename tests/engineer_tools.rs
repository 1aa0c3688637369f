//! The engineer's tools: `--set` overrides and `ksim compare`.

mod support;
use support::ksim;

use ksim_sim::compare::{self, Variant};
use ksim_sim::scenario::overrides::Override;
use ksim_sim::Scenario;
use std::path::Path;

fn variant(file: &str, name: &str, sets: &[&str]) -> Variant {
    let mut scenario = Scenario::load(Path::new(env!("CARGO_MANIFEST_DIR")).join(file).as_path()).expect("loads");
    let overrides: Vec<Override> = sets.iter().map(|s| Override::parse(s).expect("parses")).collect();
    scenario.apply_overrides(&overrides).expect("applies");
    Variant { name: name.into(), scenario }
}

/// Two variants under one seed meet the same faults at the same moments, and where their configs
/// differ, so do their outcomes: acks=1 loses acknowledged writes that acks=all (with idempotence)
/// keeps.
#[test]
fn variants_under_one_seed_meet_the_same_faults_and_differ_where_the_configs_do() {
    let variants = [
        variant("scenarios/acks-1-loses-data.ron", "acks=1", &["acks=1"]),
        variant("scenarios/acks-1-loses-data.ron", "acks=all", &["acks=all", "enable.idempotence=true"]),
    ];
    let result = compare::run_seed(&variants, 2);
    let [one, all] = &result.runs[..] else { panic!("two runs") };
    assert!(result.fault_steps > 0);
    assert!(!one.faults.is_empty(), "the faults show in the trace");
    assert_eq!(one.faults, all.faults, "the same faults at the same virtual times");
    assert_ne!(one.digest, all.digest);
    assert!(one.lessons.contains_key("acked-write-lost"), "{one:?}");
    assert!(!all.lessons.contains_key("acked-write-lost") && all.violations.is_empty(), "{all:?}");
    assert!(result.differs());
}

/// The CLI prints one schedule digest per seed, a replay line per differing seed, and that line
/// works as printed (it gives the same runs: the same digests).
#[test]
fn compare_prints_the_schedule_and_a_replay_line_that_works() {
    let args = [
        "compare",
        "scenarios/acks-1-loses-data.ron",
        "--variant",
        "acks=1",
        "--variant",
        "safe: acks=all; enable.idempotence=true",
        "--seeds",
        "2..3",
        "--jobs",
        "1",
    ];
    let (code, out, err) = ksim(&args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("seed 2      faults "), "{out}");
    let replay = out.lines().find_map(|l| l.trim().strip_prefix("seed 2: replay: ")).expect("a replay line");
    assert_eq!(
        replay,
        "ksim compare scenarios/acks-1-loses-data.ron --variant acks=1 --variant 'safe: acks=all; enable.idempotence=true' --seeds 2..3"
    );
    // Run it as a shell would split it.
    let words = [
        "compare",
        "scenarios/acks-1-loses-data.ron",
        "--variant",
        "acks=1",
        "--variant",
        "safe: acks=all; enable.idempotence=true",
        "--seeds",
        "2..3",
    ];
    let (code, again, _) = ksim(&words);
    assert_eq!(code, 0);
    let digests = |text: &str| -> Vec<String> {
        text.lines().filter_map(|l| l.split("(digest ").nth(1)).map(str::to_string).collect()
    };
    assert_eq!(digests(&out), digests(&again));
    let (code, json, _) = ksim(&[&args[..8], &["--format", "json"]].concat());
    assert_eq!(code, 0);
    let value: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(value["variants"][1], "safe");
    assert!(value["totals"][0]["lesson_seeds"]["acked-write-lost"].as_u64() == Some(1), "{json}");
}

#[test]
fn compare_refuses_bad_input_with_status_2() {
    let (code, _, err) = ksim(&["compare", "scenarios/acks-1-loses-data.ron", "--variant", "acks=1"]);
    assert_eq!(code, 2);
    assert!(err.contains("at least two variants"), "{err}");
    let (code, _, err) = ksim(&["compare", "scenarios/acks-1-loses-data.ron", "scenarios/consumer-joins.ron"]);
    assert_eq!(code, 2);
    assert!(err.contains("must have the same nodes"), "{err}");
    let (code, _, err) =
        ksim(&["compare", "scenarios/acks-1-loses-data.ron", "--variant", "ackz=1", "--variant", "acks=all"]);
    assert_eq!(code, 2);
    assert!(err.contains("did you mean `acks`?"), "{err}");
}

/// `--set` is recorded in the trace header and the report, and the replay line a failing run
/// prints carries it and reproduces the run.
#[test]
fn run_with_set_records_the_override_and_replays_it() {
    let (code, out, err) = ksim(&["run", "scenarios/acks-1-loses-data.ron", "--set", "acks=all"]);
    assert_eq!(code, 1, "acks=all breaks this lesson's expectation that acks=1 loses data\n{out}{err}");
    assert!(out.contains("with --set acks=all"), "the story's first lines say so");
    assert!(out.contains("overrides: acks=all"), "the report says so");
    let replay = out.lines().find_map(|l| l.strip_prefix("replay: ksim ")).expect("a replay line");
    assert_eq!(replay, "run scenarios/acks-1-loses-data.ron --seed 3 --set acks=all");
    let (_, again, _) = ksim(&replay.split(' ').collect::<Vec<_>>());
    let digest = |t: &str| t.lines().find(|l| l.starts_with("trace digest:")).map(str::to_string);
    assert_eq!(digest(&out), digest(&again));
    // The trace comes first, then the report.
    let first_json = |text: &str| -> serde_json::Value {
        serde_json::Deserializer::from_str(text).into_iter().next().expect("a value").expect("json")
    };
    let (_, json, _) = ksim(&["run", "scenarios/acks-1-loses-data.ron", "--set", "acks=all", "--format", "json"]);
    let value = first_json(&json);
    assert_eq!(value["header"]["overrides"][0], "acks=all");
    // Without --set the header has no overrides field: older traces and digests stand.
    let (_, json, _) = ksim(&["run", "scenarios/acks-1-loses-data.ron", "--format", "json"]);
    let value = first_json(&json);
    assert!(value["header"].get("overrides").is_none());
}

#[test]
fn set_errors_name_the_override_and_exit_2() {
    let (code, _, err) = ksim(&["run", "scenarios/acks-1-loses-data.ron", "--set", "topic:clicks.acks=1"]);
    assert_eq!(code, 2);
    assert!(err.contains("`acks` is a producer config, not something topic clicks has"), "{err}");
    let (code, _, err) = ksim(&["check", "scenarios/acks-1-loses-data.ron", "--set", "min.insync.replica=2"]);
    assert_eq!(code, 1, "check reports the file as an error row");
    let _ = err;
    let (code, _, err) = ksim(&["fuzz", "scenarios/acks-1-loses-data.ron", "--seeds", "0..1", "--set", "linger.ms=-5"]);
    assert_eq!(code, 2);
    assert!(err.contains("--set `linger.ms=-5`"), "{err}");
}

/// `compare::measure` pairs the k-th `send` the trace shows with send id k to time each
/// acknowledgement; this holds while the world numbers sends in the order it records them.
#[test]
fn the_kth_send_event_is_send_id_k() {
    use ksim_cluster::note::Note;
    use ksim_sim::trace::EventKind;
    let scenario = Scenario::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/consumer-joins.ron").as_path())
        .expect("loads");
    let outcome = ksim_sim::run(&scenario, "consumer-joins", scenario.seed).expect("runs");
    let sends: Vec<&str> = outcome
        .trace
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::App(text) => text.strip_prefix("send "),
            _ => None,
        })
        .collect();
    let mut checked = 0;
    for event in &outcome.trace.events {
        if let EventKind::Note(Note::ProduceAcked { send_id, value, .. }) = &event.kind {
            let sent = sends[*send_id as usize - 1];
            let value = value.as_deref().unwrap_or("null");
            assert!(sent.contains(&format!("{value} to ")), "send {send_id}: `{sent}` is not {value}");
            checked += 1;
        }
    }
    assert!(checked > 10);
    let (acked, _, latencies) = ksim_sim::compare::measure(&outcome.trace);
    assert_eq!((acked as usize, latencies.len()), (checked, checked));
}

/// A sweep split into shards and merged is the sweep run whole: the same seeds, the same failing
/// seeds with the same findings, the same internal errors. A missing shard fails the merge; a
/// shard given twice, or a report of another sweep, is refused.
#[test]
fn merged_shards_equal_the_sweep_run_whole() {
    let dir = std::env::temp_dir().join(format!("ksim-fuzz-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let sweep = |extra: &[&str], report: &str| {
        // acks=1 with unclean elections: random faults lose acknowledged writes on some seeds, a
        // broken `Never` lesson for the report to carry.
        let mut args = vec!["fuzz", "scenarios/leader-failover.ron", "--seeds", "0..16", "--jobs", "2", "--no-shrink"];
        args.extend(["--set", "acks=1", "--set", "unclean.leader.election.enable=true"]);
        args.extend_from_slice(extra);
        let report = path(report);
        args.extend(["--report", report.as_str()]);
        let (code, out, err) = ksim(&args);
        assert!(code == 0 || code == 1, "{out}{err}");
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&report).unwrap()).unwrap()
    };
    let whole = sweep(&[], "whole.json");
    sweep(&["--shard", "0/2"], "shard-0.json");
    sweep(&["--shard", "1/2"], "shard-1.json");
    let (code, out, err) =
        ksim(&["fuzz-merge", &path("shard-1.json"), &path("shard-0.json"), "--report", &path("merged.json")]);
    assert!(code == 0 || code == 1, "{out}{err}");
    assert!(out.contains("shards 2 of 2"), "{out}");
    let merged: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path("merged.json")).unwrap()).unwrap();
    for field in ["scenario_digest", "seeds", "planned", "ran", "failing", "errors", "interrupted"] {
        assert_eq!(merged[field], whole[field], "{field}");
    }
    assert!(whole["failing"].as_array().is_some_and(|f| !f.is_empty()), "the sweep has findings to compare: {whole}");
    assert_eq!(
        code == 0,
        whole["failing"].as_array().unwrap().iter().all(|f| f["failures"].as_array().unwrap().is_empty())
    );

    // One shard alone is incomplete, and fails.
    let (code, out, _) = ksim(&["fuzz-merge", &path("shard-0.json")]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("incomplete: no report for shard(s) 1/2 (8 of 16 planned seeds ran)"), "{out}");
    // A shard twice, another sweep, or not a report: refused.
    let (code, _, err) = ksim(&["fuzz-merge", &path("shard-0.json"), &path("shard-0.json")]);
    assert_eq!(code, 2);
    assert!(err.contains("shard 0/2 is in both"), "{err}");
    let (code, _, err) = ksim(&["fuzz-merge", &path("shard-0.json"), &path("whole.json")]);
    assert_eq!(code, 2);
    assert!(err.contains("not the same sweep (shard count: 2 vs 1)"), "{err}");
    std::fs::write(path("junk.json"), "{\"format\": 3}").unwrap();
    let (code, _, err) = ksim(&["fuzz-merge", &path("junk.json")]);
    assert_eq!(code, 2);
    assert!(err.contains("junk.json: `format`: expected a string"), "{err}");
    let (code, _, err) = ksim(&["fuzz-merge", &path("shard-0.json"), "--report", &path("shard-0.json")]);
    assert_eq!(code, 2);
    assert!(err.contains("one of the reports to merge"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
