//! Hostile input: every bad file or flag is a clear error (file, line, column, field, what was
//! expected), never a panic, an endless read or an allocation sized by a typo; and ksim never
//! loses what a user wrote.

mod support;
use support::ksim;

use ksim_sim::scenario::Scenario;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn error_for(text: &str) -> String {
    match Scenario::from_text("case.ron", text) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("accepted a bad scenario:\n{text}"),
    }
}

fn scenario(timeline: &str, extra: &str) -> String {
    format!(
        "Scenario(\n    title: \"t\",\n    duration_ms: 30000,\n    cluster: (brokers: [1, 2, 3]),\n    \
         topics: [(name: \"orders\", partitions: 1, replication_factor: 3)],\n    \
         clients: [(name: \"p\", app: Producer(topic: \"orders\", records: 10), configs: {{\"acks\": \"all\"}})],\n    \
         timeline: [{timeline}],\n{extra})"
    )
}

/// A Kill or PowerFail at time 0 means the node never ran; its Restart is its first start.
#[test]
fn faults_at_time_zero_work() {
    let text = scenario(
        "(at_ms: 0, action: Kill(Broker(1))), (at_ms: 0, action: PowerFail(Broker(2))), \
         (at_ms: 0, action: Pause(Broker(3))), (at_ms: 0, action: Kill(Client(\"p\"))), \
         (at_ms: 3000, action: Resume(Broker(3))), (at_ms: 5000, action: Restart(Broker(1))), \
         (at_ms: 6000, action: Restart(Broker(2))), (at_ms: 7000, action: Restart(Client(\"p\")))",
        "    expect: [Finally(Acked(\"p\", 10)), Finally(AllAckedWritesPresent)],\n    converge_within_ms: 20000,\n",
    );
    let s = Scenario::from_text("zero.ron", &text).expect("valid");
    let outcome = ksim_sim::run(&s, "zero", 1).expect("runs without an internal error");
    assert!(outcome.report.passed(), "{}", outcome.report.render());
    // broker-1 never ran before its restart: its first registration comes after 5 s.
    let story = ksim_sim::narrate::render(&outcome.trace, ksim_sim::narrate::Detail::Story);
    let first = story.lines().find(|l| l.contains("broker-1 registered")).expect("broker-1 registers");
    assert!(first.trim_start().starts_with("5.0"), "{first}");
}

#[test]
fn nonsense_is_refused_with_the_field_and_its_position() {
    let cases: &[(&str, &str)] = &[
        ("(at_ms: 0, action: Restart(Broker(1)))", "case.ron:7:27: timeline[0].action: Restart at 0 ms"),
        ("(at_ms: 10, action: Partition([[Broker(1)], [Broker(1), Broker(2)]]))", "is in two groups"),
        ("(at_ms: 10, action: Partition([[Broker(1)], []]))", "group 1 is empty"),
        ("(at_ms: 10, action: Partition([[Broker(1)]]))", "at least two groups"),
        ("(at_ms: 10, action: PartitionOneWay([Broker(1)], [Broker(1)]))", "on both sides"),
        ("(at_ms: 10, action: SlowLink(Broker(2), Broker(2), 100))", "to itself"),
    ];
    for (timeline, expected) in cases {
        let err = error_for(&scenario(timeline, ""));
        assert!(err.contains(expected), "{timeline}: {err}");
    }
    let base = scenario("", "");
    let cases: &[(&str, &str, &str)] = &[
        ("name: \"orders\"", "name: \"or ders\"", "' ' is not allowed in a topic name"),
        ("name: \"orders\"", "name: \"..\"", "`..` is not a legal topic name"),
        ("brokers: [1, 2, 3]", "brokers: [1, 2, 3000]", "3000 is the dedicated controller's node.id"),
        ("{\"acks\": \"all\"}", "{\"acks\": \"all\", \"acks\": 1}", "`acks` is set twice"),
        ("{\"acks\": \"all\"}", "{\"ackz\": \"all\"}", "did you mean `acks`?"),
        ("{\"acks\": \"all\"}", "{\"linger.ms\": 1.5}", "`linger.ms`: a config value is true or false"),
        ("duration_ms: 30000", "duration_ms: 30000.5", "case.ron:3:23: `duration_ms`: expected a whole number"),
        ("title: \"t\",", "title: \"t\", 0: 1,", "`0` is not a field name"),
        ("Producer(topic", "Producer(topik: \"x\", topic", "unknown field `topik`"),
        ("duration_ms: 30000", "duration_ms: 94608000000", "duration_ms: 94608000000 is more than ksim's limit"),
        ("partitions: 1,", "partitions: 2147483647,", "topics[0].partitions: 2147483647 is more than ksim's limit"),
        ("records: 10", "records: 10000000000", "is more than ksim's limit of 100000000 records"),
        ("timeline: [],", "timeline: [], fuzz: (kills: 1000000000, heal_by_ms: 20000),", "fuzz.kills: 1000000000"),
        (
            "timeline: [],",
            "timeline: [(at_ms: 10, action: Heal)], converge_within_ms: 18446744073709551000,",
            "converge_within_ms",
        ),
        (
            "cluster: (brokers",
            "network: (latency_ms_min: 20000, latency_ms_max: 20000), cluster: (brokers",
            "would time out",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(base.contains(from), "{from}");
        let err = error_for(&base.replacen(from, to, 1));
        assert!(err.contains(expected), "{to}: {err}");
    }
}

#[test]
fn files_are_read_with_bounds_and_a_bom_is_skipped() {
    let dir = std::env::temp_dir().join(format!("ksim-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bom = dir.join("bom.ron");
    std::fs::write(&bom, format!("\u{feff}{}", scenario("", ""))).unwrap();
    Scenario::load(&bom).expect("a BOM is skipped");
    let bad = dir.join("latin1.ron");
    std::fs::write(&bad, b"Scenario(\n  title: \"caf\xe9\",\n)").unwrap();
    let err = Scenario::load(&bad).unwrap_err().to_string();
    assert!(err.ends_with("latin1.ron:2:14: not UTF-8 text: save the file as UTF-8"), "{err}");
    let big = dir.join("big.ron");
    std::fs::write(&big, vec![b' '; 5 * 1024 * 1024]).unwrap();
    assert!(Scenario::load(&big).unwrap_err().to_string().contains("larger than 4 MiB"));
    assert!(Scenario::load(&dir).unwrap_err().to_string().contains("is a folder"));
    let (code, _, err) = ksim(&["check", dir.join("empty").to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    let (code, _, err) = ksim(&["check", dir.join("empty").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("no scenario files"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn flags_are_bounded_and_outputs_never_overwrite_inputs() {
    let (code, _, err) = ksim(&["fuzz", "scenarios/acks-1-loses-data.ron", "--jobs", "100000"]);
    assert_eq!(code, 2);
    assert!(err.contains("--jobs 100000: at most 256"), "{err}");
    let (code, _, err) = ksim(&["fuzz", "scenarios/acks-1-loses-data.ron", "--seeds", "0..18446744073709551615"]);
    assert_eq!(code, 2);
    assert!(err.contains("split it with --shard"), "{err}");
    let before = std::fs::read_to_string("scenarios/acks-1-loses-data.ron").unwrap();
    let (code, _, err) =
        ksim(&["run", "scenarios/acks-1-loses-data.ron", "--trace", "./scenarios/../scenarios/acks-1-loses-data.ron"]);
    assert_eq!(code, 2);
    assert!(err.contains("that is the scenario file itself"), "{err}");
    assert_eq!(std::fs::read_to_string("scenarios/acks-1-loses-data.ron").unwrap(), before);
    let (_, table, _) = ksim(&["check", "scenarios/acks-1-loses-data.ron", "--set", "ackz=1"]);
    let row = table.lines().find(|l| l.starts_with("acks-1-loses-data")).expect("a row");
    assert!(row.contains(" -  ERROR"), "a file that failed to load is `-`, not DIFF: {row}");
}

/// `ksim run FAILING | head -1` still fails: the closed pipe drops the rest of the output, not
/// the exit status.
#[test]
fn a_failing_run_piped_into_head_still_fails() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ksim"))
        .args(["run", "scenarios/acks-1-loses-data.ron", "--set", "acks=all"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ksim runs");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut first).expect("a line");
    // The reader is gone now.
    let status = child.wait().expect("ksim exits");
    assert_eq!(status.code(), Some(1), "first line: {first}");
}

/// A run that reaches the event cap stops with the cap's name and how to raise it; `ksim fuzz`
/// keeps a replay file for such an internal error, with the command that reproduces it.
#[test]
fn the_event_cap_is_named_and_fuzz_keeps_internal_errors_replayable() {
    let (code, _, err) = ksim(&["run", "scenarios/acks-1-loses-data.ron", "--max-events", "500"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("event cap of 500 events (--max-events)") && err.contains("raise it with --max-events"),
        "{err}"
    );
    let out_dir = std::env::temp_dir().join(format!("ksim-fuzz-cap-{}", std::process::id()));
    let (code, out, _) = ksim(&[
        "fuzz",
        "scenarios/acks-1-loses-data.ron",
        "--seeds",
        "0..1",
        "--jobs",
        "1",
        "--max-events",
        "500",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    let replay = out.lines().find_map(|l| l.trim().strip_prefix("replay: ksim ")).expect("a replay line");
    assert!(replay.ends_with("--seed 0 --max-events 500"), "{replay}");
    let (code, _, err) = ksim(&replay.split(' ').collect::<Vec<_>>());
    assert_eq!(code, 2, "the replay reproduces the internal error");
    assert!(err.contains("event cap"), "{err}");
    let _ = std::fs::remove_dir_all(&out_dir);
}

/// A run that cannot end under the event cap is refused before it starts, when the plan says so:
/// `acks-1-loses-data` sends 60 records, one event each.
#[test]
fn a_run_that_must_reach_the_event_cap_is_refused_up_front() {
    for command in [&["run"][..], &["fuzz", "--seeds", "0..3", "--no-shrink"][..]] {
        let mut args = vec![command[0], "scenarios/acks-1-loses-data.ron", "--max-events", "59"];
        args.extend_from_slice(&command[1..]);
        let (code, out, err) = ksim(&args);
        assert_eq!(code, 2, "{out}{err}");
        assert!(err.contains("producers plan 60 sends") && err.contains("--max-events N"), "{err}");
        assert!(!out.contains("seed"), "nothing ran: {out}");
    }
    let s = Scenario::from_text("late.ron", &scenario("", "").replace("records: 10)", "records: 10), start_ms: 40000"))
        .expect("valid");
    assert_eq!(s.planned_sends(), 0, "a producer that never starts sends nothing");
}

#[test]
fn a_scenario_that_can_teach_nothing_is_warned_about() {
    let text = scenario("(at_ms: 45000, action: Kill(Broker(1)))", "")
        .replace("records: 10)", "records: 10), start_ms: 40000");
    let s = Scenario::from_text("late.ron", &text).expect("valid: only warned");
    let warnings = s.warnings();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("timeline[0].at_ms: 45000") && warnings[0].contains("never happens"), "{warnings:?}");
    assert!(warnings[1].contains("it never starts"), "{warnings:?}");
    // It runs, and the late step is not in the trace.
    let outcome = ksim_sim::run(&s, "late", 1).expect("runs");
    assert!(!outcome.trace.events.iter().any(|e| matches!(e.kind, ksim_sim::trace::EventKind::Fault(_))));
    let (code, _, err) = {
        let path = std::env::temp_dir().join(format!("ksim-late-{}.ron", std::process::id()));
        std::fs::write(&path, &text).unwrap();
        let r = ksim(&["run", path.to_str().unwrap()]);
        let _ = std::fs::remove_file(&path);
        r
    };
    assert_eq!(code, 0);
    assert!(err.contains("warning:") && err.contains("it never starts"), "{err}");
}

/// Ctrl-C during a sweep keeps what it found: the seeds run so far are printed and written, and
/// ksim exits non-zero.
#[cfg(unix)]
#[test]
fn ctrl_c_during_fuzz_keeps_the_results_so_far() {
    let out_dir = std::env::temp_dir().join(format!("ksim-fuzz-int-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_ksim"))
        .args(["fuzz", "scenarios/acks-1-loses-data.ron", "--seeds", "0..100000", "--jobs", "1"])
        .args(["--max-events", "500", "--out", out_dir.to_str().unwrap()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ksim runs");
    // Wait until it has run a few seeds (its progress goes to stderr), then interrupt it.
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("the sweep starts");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    let output = child.wait_with_output().expect("ksim exits");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("interrupted (Ctrl-C) after"), "{stdout}");
    let kept = std::fs::read_dir(&out_dir).map(|d| d.count()).unwrap_or(0);
    assert!(kept > 0, "the seeds found so far are written");
    assert_eq!(kept, stdout.matches("replay: ksim run").count(), "each printed with its replay command");
    let _ = std::fs::remove_dir_all(&out_dir);
}
