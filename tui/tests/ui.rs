//! The UI driven by keys, as a learner would, over real runs of the walkthrough scenarios; and
//! frames at the key moments as snapshots (`snapshots/tui/`), for people to read.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ksim_sim::report::Report;
use ksim_sim::scenario::Scenario;
use ksim_sim::trace::{Trace, TraceHeader};
use ksim_sim::Outcome;
use ksim_tui::markers::MarkerKind;
use ksim_tui::update::Msg;
use ksim_tui::view::to_text;
use ksim_tui::App;
use std::path::PathBuf;
use std::sync::OnceLock;

fn scenario_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("scenarios").join(format!("{name}.ron"))
}

/// Each scenario is simulated once per test binary and shared.
fn run(name: &'static str) -> (Scenario, Trace, Report) {
    type Runs = Vec<(&'static str, Scenario, Trace, Report)>;
    static RUNS: OnceLock<std::sync::Mutex<Runs>> = OnceLock::new();
    let runs = RUNS.get_or_init(Default::default);
    let mut runs = runs.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, s, t, r)) = runs.iter().find(|(n, _, _, _)| *n == name) {
        return (s.clone(), t.clone(), r.clone());
    }
    let scenario = Scenario::load(&scenario_path(name)).expect("scenario loads");
    let outcome = ksim_sim::run(&scenario, name, scenario.seed).expect("scenario runs");
    runs.push((name, scenario.clone(), outcome.trace.clone(), outcome.report.clone()));
    (scenario, outcome.trace, outcome.report)
}

fn app(name: &'static str) -> App {
    let (scenario, trace, report) = run(name);
    let seed = scenario.seed;
    App::from_outcome(Outcome { trace, report, recovered_after_ms: None }, scenario, name.to_string(), seed)
}

/// The app as `ksim tui` opens it: where the story begins.
fn story(name: &'static str) -> App {
    let mut app = app(name);
    app.model.open_at_story();
    app
}

fn press(app: &mut App, keys: &str) {
    for key in keys.split(' ').filter(|k| !k.is_empty()) {
        let code = match key {
            "tab" => KeyCode::Tab,
            "space" => KeyCode::Char(' '),
            "right" => KeyCode::Right,
            "left" => KeyCode::Left,
            one => KeyCode::Char(one.chars().next().expect("a key")),
        };
        app.key(KeyEvent::new(code, KeyModifiers::NONE));
    }
}

/// Press `]` until the stop it lands on is the `nth` (from 1) stop of this kind.
fn jump_to(app: &mut App, kind: MarkerKind, nth: usize) {
    let mut seen = 0;
    for _ in 0..10_000 {
        press(app, "]");
        let model = &app.model;
        let stop = model.recording.markers.stops.iter().find(|(step, _)| *step == model.cursor);
        if stop.map(|(_, k)| *k) == Some(kind) {
            seen += 1;
            if seen == nth {
                return;
            }
        }
    }
    panic!("no {kind:?} number {nth} in the trace");
}

fn screen(app: &App) -> String {
    to_text(&app.model, 80, 24)
}

fn snapshot(name: &str, app: &App) {
    for (width, height) in [(80, 24), (120, 40)] {
        let frame = to_text(&app.model, width, height);
        insta::with_settings!({ snapshot_path => "../../snapshots/tui", prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_snapshot!(format!("{name}_{width}x{height}"), frame);
        });
    }
}

// ---- key moments, as snapshots -------------------------------------------------------------

#[test]
fn leader_failover_frames_at_the_kill_the_election_and_the_isr_expansion() {
    let mut app = app("leader-failover");
    snapshot("leader_failover_0_start", &app);
    jump_to(&mut app, MarkerKind::Fault, 1);
    snapshot("leader_failover_1_leader_killed", &app);
    jump_to(&mut app, MarkerKind::Election, 1);
    snapshot("leader_failover_2_new_leader_elected", &app);
    jump_to(&mut app, MarkerKind::IsrChange, 1);
    snapshot("leader_failover_3_broker1_back_in_isr", &app);
}

#[test]
fn unclean_election_frames_offline_unclean_election_and_truncation() {
    let mut app = app("unclean-election-loses-data");
    jump_to(&mut app, MarkerKind::Offline, 1);
    snapshot("unclean_election_1_partition_offline", &app);
    jump_to(&mut app, MarkerKind::UncleanElection, 1);
    snapshot("unclean_election_2_unclean_election", &app);
    jump_to(&mut app, MarkerKind::Truncation, 1);
    snapshot("unclean_election_3_first_truncation", &app);
    // The last step before the end event: the end itself shows the verdict.
    press(&mut app, "G p");
    snapshot("unclean_election_4_end", &app);
}

#[test]
fn consumer_group_frame_at_the_rebalance() {
    let mut app = app("consumer-joins");
    jump_to(&mut app, MarkerKind::Rebalance, 2);
    snapshot("consumer_joins_second_rebalance", &app);
    assert!(screen(&app).contains("PreparingRebalance"), "{}", screen(&app));
}

/// consumer-dies: billing-2 is killed, and only after session.timeout.ms does the coordinator
/// remove it and hand its partitions to billing-1.
#[test]
fn consumer_dies_frames_at_the_crash_and_the_rebalance_that_follows() {
    let mut app = app("consumer-dies");
    jump_to(&mut app, MarkerKind::Fault, 1);
    snapshot("consumer_dies_1_killed", &app);
    let text = screen(&app);
    assert!(text.contains("billing-2"), "the crashed member is on screen:\n{text}");
    let killed_at = app.model.time_us();
    // The rebalance that removes it comes session.timeout.ms (45 s) later, not at once.
    let rebalances_before = count_markers_before(&app, MarkerKind::Rebalance);
    jump_to(&mut app, MarkerKind::Rebalance, 1);
    while count_markers_before(&app, MarkerKind::Rebalance) <= rebalances_before {
        jump_to(&mut app, MarkerKind::Rebalance, 1);
    }
    assert!(app.model.time_us() >= killed_at + 40_000_000, "the coordinator waits for the session timeout");
    snapshot("consumer_dies_2_rebalance", &app);
    assert!(screen(&app).contains("PreparingRebalance"), "{}", screen(&app));
}

fn count_markers_before(app: &App, kind: MarkerKind) -> usize {
    (0..app.model.cursor).filter(|i| app.model.recording.markers.at(*i) == Some(kind)).count()
}

#[test]
fn help_overlay_lists_every_key() {
    let mut app = app("leader-failover");
    press(&mut app, "?");
    snapshot("help_overlay", &app);
    let text = to_text(&app.model, 120, 40);
    for (keys, _) in ksim_tui::keys::KEYS {
        assert!(text.contains(keys), "help lacks {keys}:\n{text}");
    }
    press(&mut app, "n");
    assert!(!app.model.help, "any key closes the help");
    assert_eq!(app.model.cursor, 0, "the key that closes the help does nothing else");
}

/// Mid-story: the story pane tells the run so far, narration among the events, up to the cursor.
#[test]
fn the_story_pane_tells_the_run_up_to_the_cursor() {
    let mut app = story("leader-failover");
    jump_to(&mut app, MarkerKind::Fault, 1);
    snapshot("leader_failover_story_at_the_kill", &app);
    let text = to_text(&app.model, 120, 40);
    assert!(text.contains("Story"), "{text}");
    assert!(text.contains("broker-1 is killed"), "the latest line is the kill:\n{text}");
    assert!(!text.contains("broker-2 elected leader"), "nothing after the cursor:\n{text}");
    // The same lines `ksim run` prints, in order.
    let run = ksim_sim::narrate::render(app.model.trace(), ksim_sim::narrate::Detail::Story);
    let (_, kill) = app.model.recording.story.iter().rev().find(|(i, _)| *i < app.model.cursor).expect("a line");
    assert!(run.contains(kill.as_str()));
}

/// At the end: the verdict, every expectation and every finding in full, as `ksim run` prints.
#[test]
fn the_end_of_the_run_shows_the_verdict() {
    let mut app = story("unclean-election-loses-data");
    press(&mut app, "G");
    snapshot("unclean_election_verdict", &app);
    let text = to_text(&app.model, 120, 40);
    let report = app.model.recording.report.clone().expect("a report");
    for e in &report.expectations {
        let line = format!("[{}] {}", if e.met { "ok" } else { "FAILED" }, e.expectation);
        assert!(text.contains(&line), "{line} on the verdict:\n{text}");
    }
    for text in [text, screen(&app)] {
        assert!(!text.contains("more lines"), "the whole verdict fits:\n{text}");
        for f in &report.findings {
            let rule = f.finding.rule.to_string();
            assert!(text.contains(&rule), "finding {rule} on the verdict:\n{text}");
        }
    }
    press(&mut app, "p");
    assert!(!to_text(&app.model, 120, 40).contains("Verdict"), "one step back, the panes return");
}

/// consumer-joins: once billing-2 owns some partitions, billing-1 still remembers its positions
/// there; what is behind in them is billing-2's lag, not billing-1's. And billing-2 is on screen
/// at 80x24.
#[test]
fn consumer_lag_counts_only_owned_partitions_and_no_member_is_cut() {
    let mut app = app("consumer-joins");
    while app.model.recording.markers.next_step(app.model.cursor).is_some_and(|(s, _)| s < app.model.recording.len()) {
        press(&mut app, "]");
        if app.model.view.groups.values().any(|g| g.members.len() == 2) {
            let small = screen(&app);
            assert!(small.contains("billing-2") || small.contains(" more"), "billing-2 shown or counted:\n{small}");
        }
    }
    // Every step, until a member remembers positions it gave away that are behind.
    let differs = |app: &App| {
        let view = &app.model.view;
        view.clients.values().find_map(|client| {
            let owned = client.owned_positions();
            let owned_lag = view.lag(&owned)?;
            (!owned.is_empty() && Some(owned_lag) != view.lag(&client.positions)).then_some((owned, owned_lag))
        })
    };
    app.model.seek(0);
    while differs(&app).is_none() && app.model.cursor < app.model.recording.len() {
        app.model.seek(app.model.cursor + 1);
    }
    let (owned, owned_lag) = differs(&app).expect("a member gives partitions away while they are behind");
    let text = to_text(&app.model, 120, 40);
    let line = format!("{}, lag {owned_lag}", ksim_tui::view::style::offsets(&owned));
    assert!(text.contains(&line), "{line}: lag over owned partitions only:\n{text}");
}

/// eager-vs-cooperative at 120x40: more members than rows; the ones left out are named.
#[test]
fn panes_name_what_does_not_fit() {
    let mut app = app("eager-vs-cooperative");
    let mut named = 0;
    while app.model.recording.markers.next_step(app.model.cursor).is_some_and(|(s, _)| s < app.model.recording.len()) {
        press(&mut app, "]");
        let model = &app.model;
        let text = to_text(model, 120, 40);
        for (group, g) in &model.view.groups {
            let hidden_group = text.contains(&format!("group {group}"));
            assert!(text.contains(group.as_str()), "group {group} neither shown nor named:\n{text}");
            for member in g.members.keys().filter(|_| !hidden_group) {
                assert!(text.contains(member.as_str()), "{member} neither shown nor named:\n{text}");
            }
        }
        named += usize::from(text.contains(" more: "));
    }
    assert!(named > 0, "at 120x40 some moment has more members than rows");
}

// ---- driving it with keys ---------------------------------------------------------------------

#[test]
fn jumping_from_the_start_stops_at_the_narration_then_the_narrated_election_then_the_fault() {
    let mut app = app("leader-failover");
    assert!(screen(&app).contains("step 0 of"), "{}", screen(&app));
    press(&mut app, "]");
    assert!(screen(&app).contains("Three brokers start"), "the first stop is the opening narration");
    press(&mut app, "]");
    assert!(screen(&app).contains("A producer starts writing"), "then the clients start (and the topic)");
    press(&mut app, "]");
    let text = screen(&app);
    assert!(
        text.contains("The controller picks the first replica"),
        "the election lands with its narration shown, not one step before it:\n{text}"
    );
    assert_eq!(Some(app.model.cursor), app.model.recording.markers.story_start, "where the story begins");
    press(&mut app, "]");
    let text = screen(&app);
    assert!(text.contains("FAULT: broker-1 is killed"), "the event line names the fault:\n{text}");
    assert!(text.contains("F fault"), "the timeline names the marker:\n{text}");
    assert!(text.contains("Broker 1, the leader, crashes"), "the narration for that moment:\n{text}");
    assert!(text.contains("broker-1   x killed"), "the cluster pane shows the kill:\n{text}");
    press(&mut app, "[");
    assert!(screen(&app).contains("The controller picks the first replica"), "[ goes back to the election");
}

/// The default walkthrough opens on the partition with its leader, ISR, HW and LEO, and a hint;
/// start-up is one `g` away.
#[test]
fn the_walkthrough_opens_where_the_story_begins() {
    let mut app = story("leader-failover");
    snapshot("leader_failover_opening", &app);
    let text = screen(&app);
    for shown in ["payments-0 leader b1", "ISR [1,2,3]", "hw 0 leo 0", "] jumps to the next moment"] {
        assert!(text.contains(shown), "{shown} on the first screen:\n{text}");
    }
    press(&mut app, "g");
    assert_eq!(app.model.cursor, 0, "g goes to start-up");
}

#[test]
fn step_and_step_back_return_to_the_same_frame() {
    let mut app = app("leader-failover");
    jump_to(&mut app, MarkerKind::Fault, 1);
    let before = screen(&app);
    let step = app.model.cursor;
    press(&mut app, "n n right");
    assert_eq!(app.model.cursor, step + 3);
    press(&mut app, "p left p");
    assert_eq!(app.model.cursor, step);
    assert_eq!(screen(&app), before);
}

#[test]
fn start_and_end() {
    let mut app = app("leader-failover");
    let n = app.model.recording.len();
    press(&mut app, "G");
    let text = screen(&app);
    assert!(text.contains(&format!("step {n} of {n}")), "{text}");
    assert!(text.contains("Verdict: passed"), "the end shows the verdict:\n{text}");
    press(&mut app, "n");
    assert_eq!(app.model.cursor, n, "no step past the end");
    press(&mut app, "g");
    assert!(screen(&app).contains(&format!("step 0 of {n}")));
    press(&mut app, "p");
    assert_eq!(app.model.cursor, 0, "no step before the start");
}

#[test]
fn playing_moves_through_virtual_time_at_the_chosen_speed() {
    let mut app = app("leader-failover");
    press(&mut app, "space");
    assert!(app.model.playing);
    app.dispatch(Msg::Tick { elapsed_ms: 2500 }, &mut |_| {});
    // x1: 2.5 s of wall time shows everything up to 2.5 s of virtual time.
    assert_eq!(app.model.cursor, app.model.recording.step_at_time(2_500_000));
    assert!(screen(&app).contains("PLAYING x1"));
    press(&mut app, "+");
    app.dispatch(Msg::Tick { elapsed_ms: 1000 }, &mut |_| {});
    assert_eq!(app.model.cursor, app.model.recording.step_at_time(4_500_000), "x2 after +");
    press(&mut app, "space");
    app.dispatch(Msg::Tick { elapsed_ms: 1000 }, &mut |_| {});
    assert_eq!(app.model.cursor, app.model.recording.step_at_time(4_500_000), "paused: time stands still");
    press(&mut app, "space");
    app.dispatch(Msg::Tick { elapsed_ms: 1_000_000 }, &mut |_| {});
    assert!(!app.model.playing, "playing stops at the end");
    assert_eq!(app.model.cursor, app.model.recording.len());
}

#[test]
fn tab_selects_brokers_then_partitions_and_focuses_the_panes() {
    let mut app = app("leader-failover");
    jump_to(&mut app, MarkerKind::Fault, 1);
    press(&mut app, "tab");
    let text = screen(&app);
    assert!(text.contains("▸broker-1"), "{text}");
    assert!(text.contains("(to or from broker-1)"), "the messages pane follows the selection:\n{text}");
    press(&mut app, "tab tab tab");
    assert!(screen(&app).contains("▸payments-0"), "{}", screen(&app));
    press(&mut app, "tab");
    assert!(screen(&app).contains("▸producer"), "then the clients:\n{}", screen(&app));
    assert!(screen(&app).contains("(to or from producer)"), "{}", screen(&app));
    press(&mut app, "tab tab");
    assert!(screen(&app).contains("▸controller"), "then the controller:\n{}", screen(&app));
    press(&mut app, "tab");
    assert_eq!(app.model.selection, ksim_tui::model::Selection::Nothing, "after the last, nothing");
}

#[test]
fn a_what_if_without_a_selection_says_how_to_select() {
    let mut app = app("leader-failover");
    press(&mut app, "] k");
    assert!(app.model.branch.is_none());
    assert!(screen(&app).contains("select a broker first"), "{}", screen(&app));
}

#[test]
fn a_what_if_that_changes_nothing_is_refused_with_a_word() {
    let mut app = app("leader-failover");
    jump_to(&mut app, MarkerKind::Fault, 1);
    press(&mut app, "tab k");
    assert!(app.model.branch.is_none(), "no re-run for killing a dead broker");
    let text = screen(&app);
    assert!(text.contains("broker-1 is killed: to kill broker-1 would change nothing"), "{text}");
}

/// The what-if runs a real simulation: kill broker-2 where the story begins (the first election).
#[test]
fn what_if_kill_branches_at_the_same_step_and_b_returns() {
    let mut app = story("leader-failover");
    let step = app.model.cursor;
    let original_len = app.model.recording.len();
    press(&mut app, "tab tab k");
    assert_eq!(app.model.cursor, step, "the branch continues at the same step");
    let text = screen(&app);
    let at = format!("{}", ksim_cluster::time::SimTime(app.model.time_us()));
    assert!(text.contains(&format!("BRANCH: what if we kill broker-2 at {at}?")), "{text}");
    assert!(text.contains("broker-2   ● up"), "the fault comes one microsecond after this event:\n{text}");
    // Other events at the same microsecond may come first; the fault comes before anything later.
    let fault_us = app.model.time_us() + 1;
    let mut text = String::new();
    for _ in 0..20 {
        press(&mut app, "n");
        text = screen(&app);
        assert!(app.model.time_us() <= fault_us, "nothing happens between the step and the fault:\n{text}");
        if text.contains("broker-2   x killed") {
            break;
        }
    }
    assert!(text.contains("broker-2   x killed"), "the what-if fault comes next:\n{text}");
    assert!(text.contains("FAULT: broker-2 is killed"), "{text}");
    assert!(
        app.model.recording.trace.events[..step] == app.model.original.as_ref().expect("kept").trace.events[..step]
    );
    press(&mut app, "b");
    let text = screen(&app);
    assert!(app.model.branch.is_none() && app.model.recording.len() == original_len);
    assert!(text.contains("original run") && !text.contains("BRANCH"), "{text}");
    assert!(text.contains("broker-2   ● up"), "{text}");
    // Past the fault, steps no longer line up between the runs; the moment in time does.
    let fault_us = app.model.recording.time_at(step) + 1;
    assert!(app.model.cursor > step && app.model.time_us() <= fault_us, "back at the same moment");
}

/// A second real what-if: cut the leader off the network (selected through its partition).
#[test]
fn what_if_cut_off_the_leader_of_the_selected_partition() {
    let mut app = story("leader-failover");
    // Brokers 1..3, then payments-0.
    press(&mut app, "tab tab tab tab");
    press(&mut app, "x");
    let fault_us = app.model.time_us() + 1;
    let mut text = String::new();
    for _ in 0..20 {
        press(&mut app, "n");
        text = to_text(&app.model, 120, 40);
        assert!(app.model.time_us() <= fault_us, "nothing happens between the step and the fault:\n{text}");
        if text.contains("cut: [") {
            break;
        }
    }
    assert!(
        text.contains("what if we cut broker-1 off the network"),
        "the leader of payments-0 is the target:\n{text}"
    );
    assert!(text.contains("cut: [b1] ╳ [ctrl b2 b3"), "the cut is drawn between the groups:\n{text}");
    assert!(text.contains("broker-1   ● up     cut"), "{text}");
}

// ---- robustness -----------------------------------------------------------------------------

#[test]
fn any_size_renders_without_panicking_and_small_ones_say_so() {
    let mut app = app("unclean-election-loses-data");
    let sizes =
        [(0, 0), (1, 1), (10, 3), (79, 24), (80, 23), (80, 24), (81, 25), (100, 30), (120, 40), (250, 80), (80, 200)];
    for step in [0, 1, 50, app.model.recording.len() / 2, app.model.recording.len()] {
        app.model.seek(step);
        for help in [false, true] {
            app.model.help = help;
            for (w, h) in sizes {
                let text = to_text(&app.model, w, h);
                if (w < 80 || h < 24) && w >= 40 && h >= 3 {
                    assert!(text.contains("at least 80x24"), "{w}x{h}:\n{text}");
                }
            }
        }
    }
}

#[test]
fn an_empty_trace_is_shown_and_every_key_is_harmless() {
    let header = TraceHeader {
        scenario: "empty".into(),
        title: "nothing happens".into(),
        seed: 1,
        brokers: vec![],
        clients: vec![],
        duration_ms: 0,
        racks: Default::default(),
        overrides: Vec::new(),
    };
    let mut app = App::for_trace(Trace { header, events: vec![] });
    press(&mut app, "n p ] [ g G tab k f z r x b + - space ? ?");
    app.dispatch(Msg::Tick { elapsed_ms: 100 }, &mut |_| {});
    let text = screen(&app);
    assert!(text.contains("step 0 of 0"), "{text}");
    assert!(text.contains("none in this scenario"), "{text}");
}

#[test]
fn brokers_show_their_rack() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/leader-failover.ron");
    let mut scenario = Scenario::load(&path).expect("loads");
    scenario.cluster.racks = [(1, "eu-a".to_string()), (2, "eu-b".to_string())].into_iter().collect();
    let mut app = App::run(scenario, "leader-failover".into(), 42).expect("runs");
    // One step before the end, whose screen is the verdict.
    press(&mut app, "G p");
    let text = to_text(&app.model, 120, 40);
    assert!(text.contains("rack eu-a") && text.contains("rack eu-b"), "{text}");
}

// ---- the log as a picture, transactions, the quorum -----------------------------------------

/// Step on (one event at a time) until `done` holds; panics if it never does.
fn step_until(app: &mut App, what: &str, done: impl Fn(&App) -> bool) {
    while !done(app) {
        assert!(app.model.cursor < app.model.recording.len(), "never: {what}");
        press(app, "n");
    }
}

/// open-transaction-blocks-read-committed, while the transaction is open: `l` draws the log with
/// its ruler, the LSO held at the transaction's first offset below the HW, the records between
/// them shaded as not yet stable, each reader's position with its lag out to the HW, and who
/// leads what.
#[test]
fn the_log_picture_shows_the_lso_held_back_and_each_readers_lag() {
    let mut app = story("open-transaction-blocks-read-committed");
    jump_to(&mut app, MarkerKind::Narration, 1);
    let tp = ksim_cluster::topic::TopicPartition::new("payments", 0);
    let leader = |app: &App| app.model.view.partitions[&tp].leader_log().cloned().expect("a leader");
    let held = leader(&app);
    assert!(
        held.last_stable_offset() < held.high_watermark,
        "the open transaction holds the LSO ({}) below the HW ({})",
        held.last_stable_offset(),
        held.high_watermark
    );
    press(&mut app, "l");
    snapshot("open_transaction_log_picture", &app);
    for text in [screen(&app), to_text(&app.model, 120, 40)] {
        for shown in
            ["Log (l: back", "S start L LSO H HW E end", "Who leads what", "java-reader at", "dotnet-reader at"]
        {
            assert!(text.contains(shown), "{shown} on the log picture:\n{text}");
        }
        assert!(text.contains(ksim_tui::view::style::UNSTABLE), "records above the LSO are shaded:\n{text}");
        assert!(text.contains(ksim_tui::view::style::POSITION), "positions are marked:\n{text}");
        assert!(text.contains(&format!("lso {}", held.last_stable_offset())), "the LSO by the HW:\n{text}");
    }
    // The read_committed reader waits at the LSO: its lag is drawn out to the HW.
    let dotnet = app.model.view.clients.values().map(|c| c.positions.get(&tp).copied()).collect::<Vec<_>>();
    assert!(dotnet.contains(&Some(held.last_stable_offset())), "a reader sits at the LSO: {dotnet:?}");
    // Once the commit is written and replicated, the LSO jumps to the HW.
    jump_to(&mut app, MarkerKind::Transaction, 1);
    step_until(&mut app, "the LSO reaches the HW", |app| {
        let log = leader(app);
        log.last_stable_offset() == log.high_watermark && log.markers().count() == 1
    });
    let text = screen(&app);
    assert!(text.contains(ksim_tui::view::style::COMMIT_MARKER), "the COMMIT marker on the strip:\n{text}");
    press(&mut app, "l");
    assert!(screen(&app).contains("Partitions"), "l again: back to the partitions");
}

/// transactions-commit-and-abort: the transactions pane (state, producer id and epoch,
/// partitions), COMMIT and ABORT markers on the strips, the LSO next to the HW; and the long
/// narration stays inside its pane at 80x24, cut with `…`.
#[test]
fn the_transactions_pane_and_markers_on_the_strip() {
    let mut app = story("transactions-commit-and-abort");
    jump_to(&mut app, MarkerKind::Narration, 1);
    snapshot("transactions_ongoing", &app);
    let text = screen(&app);
    assert!(text.contains("Transactions"), "{text}");
    assert!(text.contains("payments-tx Ongoing"), "the coordinator's state:\n{text}");
    assert!(text.contains(" …"), "the long narration is cut with an ellipsis at 80x24:\n{text}");
    assert!(!to_text(&app.model, 120, 40).contains("stays there. …"), "120x40 has room for all of it");
    step_until(&mut app, "an ABORT marker", |app| {
        app.model
            .view
            .partitions
            .values()
            .any(|p| p.logs.values().any(|l| l.markers().any(|(_, m)| m == ksim_cluster::record::ControlType::Abort)))
    });
    step_until(&mut app, "the producer hears of the abort", |app| {
        app.model.view.transactions.get("payments-tx").is_some_and(|t| t.aborted == 1)
    });
    snapshot("transactions_after_abort", &app);
    let text = to_text(&app.model, 120, 40);
    for shown in ["lso", "aborted 1", "committed 1"] {
        assert!(text.contains(shown), "{shown}:\n{text}");
    }
    assert!(text.contains('A') && text.contains('C'), "both markers on the strip:\n{text}");
}

/// controller-failover: the quorum pane shows the voters, the leader and its epoch, each voter's
/// HW; after the active controller dies, the new leader and its activation.
#[test]
fn the_quorum_pane_follows_a_controller_failover() {
    let mut app = story("controller-failover");
    assert_eq!(app.model.recording.controllers, vec![3001, 3002, 3003], "the voters, read from the trace");
    let text = screen(&app);
    assert!(text.contains("quorum epoch"), "{text}");
    let (leader, epoch) = app.model.view.quorum_leader().expect("a leader where the story begins");
    assert!(text.contains(&format!("quorum epoch {epoch}, leader c{leader}")), "{text}");
    assert!(text.contains(&format!("c{leader} ● up     active")), "the leader is the active controller:\n{text}");
    jump_to(&mut app, MarkerKind::Fault, 1);
    snapshot("controller_failover_active_killed", &app);
    assert!(screen(&app).contains("c3001 x killed"), "{}", screen(&app));
    step_until(&mut app, "a new active controller", |app| {
        app.model.view.controllers.iter().any(|(id, v)| *id != leader && v.active)
    });
    snapshot("controller_failover_new_active", &app);
    let (new_leader, new_epoch) = app.model.view.quorum_leader().expect("a new leader");
    assert!(new_leader != leader && new_epoch > epoch);
    let text = screen(&app);
    assert!(text.contains(&format!("quorum epoch {new_epoch}, leader c{new_leader}")), "{text}");
    assert!(text.contains(&format!("c{new_leader} ● up     active")), "{text}");
    assert!(text.contains(&format!("c{leader} x killed e{epoch} hw")), "the dead one in its old epoch:\n{text}");
    assert!(!text.contains("controller ● up"), "no single controller of id 3000 is assumed:\n{text}");
}

/// A what-if on a client: pause consumer billing-2 in consumer-joins; the branch says what
/// turned out differently and why; killing a dead client is refused with a word.
#[test]
fn what_if_on_a_consumer_and_the_branch_says_what_differs() {
    let mut app = story("consumer-joins");
    let billing_2 = ksim_cluster::node::NodeId::Client(
        app.model.trace().header.clients.iter().position(|c| c == "billing-2").expect("billing-2") as u32,
    );
    jump_to(&mut app, MarkerKind::Group, 1);
    while app.model.selection != ksim_tui::model::Selection::Client(billing_2) {
        press(&mut app, "tab");
    }
    assert!(screen(&app).contains("▸billing-2"), "the client is selected:\n{}", screen(&app));
    press(&mut app, "k");
    let branch = app.model.branch.clone().expect("a branch");
    assert!(branch.labels[0].starts_with("kill billing-2 at"), "{:?}", branch.labels);
    assert!(!branch.differences.is_empty());
    step_until(&mut app, "billing-2 killed", |app| {
        app.model.view.process(billing_2) == ksim_tui::fold::Process::Killed
    });
    press(&mut app, "n");
    snapshot("what_if_kill_consumer", &app);
    let text = to_text(&app.model, 120, 40);
    assert!(text.contains("Unlike the original run:"), "the narration says what differs:\n{text}");
    assert!(text.contains("billing-2 (the what-if struck it): read 0"), "billing-2's counts differ:\n{text}");
    press(&mut app, "k");
    assert!(screen(&app).contains("billing-2 is killed: to kill billing-2 would change nothing"), "{}", screen(&app));
    press(&mut app, "G");
    let text = to_text(&app.model, 120, 40);
    assert!(text.contains("Unlike the original run:") && text.contains("Verdict"), "{text}");
}

/// Wrapped text stays inside its pane at 80x24: at every stop of these walkthroughs, in both body
/// views, the narration pane shows the scenario's text whole or cut at a word with ` …`, and the
/// event line keeps its place below it.
#[test]
fn wrapped_text_stays_inside_its_pane_at_80x24() {
    let normalize = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    for name in ["leader-failover", "consumer-joins", "transactions-commit-and-abort", "controller-failover"] {
        let mut app = app(name);
        let mut cut = 0;
        while app
            .model
            .recording
            .markers
            .next_step(app.model.cursor)
            .is_some_and(|(s, _)| s < app.model.recording.len())
        {
            press(&mut app, "]");
            for log_view in [false, true] {
                app.model.log_view = log_view;
                let text = screen(&app);
                let rows: Vec<&str> = text.lines().collect();
                let top = rows.iter().position(|r| r.starts_with(" Narration")).expect("a narration pane");
                let event = rows.iter().position(|r| r.starts_with(" ▶")).expect("the event line");
                assert!(event > top && event <= top + 4, "{name}: the event line keeps its place:\n{text}");
                let Some(said) = app.model.view.last_narration.map(|i| &app.model.trace().events[i].kind) else {
                    continue;
                };
                let ksim_sim::trace::EventKind::Narration(said) = said else { unreachable!() };
                let shown = normalize(&rows[top + 1..event].join(" "));
                let said = normalize(said);
                match shown.strip_suffix(" …") {
                    Some(prefix) => {
                        cut += 1;
                        assert!(said.starts_with(prefix), "{name}: a cut narration is a prefix:\n{text}");
                    }
                    None => assert_eq!(shown, said, "{name}: the whole narration:\n{text}"),
                }
            }
        }
        if name == "transactions-commit-and-abort" {
            assert!(cut > 0, "its long narration is cut at 80x24, with an ellipsis");
        }
    }
}

/// controller-quorum-lost: two of three voters die; the survivor cannot be elected, so the
/// quorum pane shows no active controller while the brokers keep their partitions.
#[test]
fn the_quorum_pane_shows_a_lost_quorum() {
    let mut app = story("controller-quorum-lost");
    jump_to(&mut app, MarkerKind::Fault, 2);
    step_until(&mut app, "the survivor gives up on its leader", |app| {
        app.model.time_us() > 9_000_000 && !app.model.view.controllers.values().any(|v| v.active)
    });
    snapshot("controller_quorum_lost", &app);
    let text = screen(&app);
    for shown in ["c3001 x killed", "c3002 x killed", "c3003 ● up"] {
        assert!(text.contains(shown), "{shown}:\n{text}");
    }
    assert!(!text.contains("active"), "no active controller:\n{text}");
    assert!(text.contains("no leader"), "and no leader:\n{text}");
}

/// commit-before-process-loses at the crash: the log picture marks the worker's position, the
/// group's committed offset and the lag, so "committed" and "lag" are seen, not read.
#[test]
fn the_log_picture_marks_a_groups_committed_offset() {
    let mut app = story("commit-before-process-loses");
    jump_to(&mut app, MarkerKind::Fault, 1);
    press(&mut app, "l");
    snapshot("commit_before_process_log_picture", &app);
    let tp = ksim_cluster::topic::TopicPartition::new("payments", 0);
    let committed = app.model.view.groups["payments-app"].committed[&tp];
    for text in [screen(&app), to_text(&app.model, 120, 40)] {
        assert!(text.contains(&format!("payments-app committed {committed}")), "{text}");
        assert!(text.contains(ksim_tui::view::style::COMMITTED_OFFSET), "{text}");
        assert!(text.contains("worker at "), "{text}");
    }
}

/// Pause a producer, then resume it: two what-ifs on a client, one branch.
#[test]
fn what_if_pause_and_resume_a_producer() {
    let mut app = story("leader-failover");
    let producer = ksim_cluster::node::NodeId::Client(0);
    while app.model.selection != ksim_tui::model::Selection::Client(producer) {
        press(&mut app, "tab");
    }
    press(&mut app, "z");
    step_until(&mut app, "the producer paused", |app| {
        app.model.view.process(producer) == ksim_tui::fold::Process::Paused
    });
    press(&mut app, "n n n n n");
    assert!(screen(&app).contains("producer z paused"), "{}", screen(&app));
    press(&mut app, "z");
    let labels = &app.model.branch.as_ref().expect("a branch").labels;
    assert!(labels[0].starts_with("pause producer") && labels[1].starts_with("resume producer"), "{labels:?}");
    step_until(&mut app, "the producer resumed", |app| app.model.view.process(producer) == ksim_tui::fold::Process::Up);
    press(&mut app, "r");
    assert!(app.model.branch.as_ref().expect("a branch").labels[2].starts_with("restart producer"));
}

/// A branch explains itself: kill broker-2 after it took over from broker-1 in leader-failover;
/// broker 3 is left alone in the ISR, and the producer's NOT_ENOUGH_REPLICAS comes with the ISR
/// it met.
#[test]
fn a_branch_says_why_the_producer_failed() {
    let mut app = story("leader-failover");
    jump_to(&mut app, MarkerKind::Election, 1);
    assert_eq!(app.model.view.partitions.values().next().and_then(|p| p.leader), Some(2), "broker-2 leads");
    press(&mut app, "tab tab k");
    let differences = app.model.branch.as_ref().expect("a branch").differences.join("\n");
    assert!(
        differences.contains("producer got NOT_ENOUGH_REPLICAS on payments-0")
            && differences.contains("the ISR was [3], smaller than min.insync.replicas asks"),
        "{differences}"
    );
    press(&mut app, "G");
    snapshot("what_if_branch_verdict", &app);
}

// ---- Kafka Connect ---------------------------------------------------------------------------

/// connect-worker-dies: the Connect pane shows the worker group's generation and who runs what;
/// after worker-1 dies, its session expires and its work is held back for
/// `scheduled.rebalance.max.delay.ms`; once the delay runs out worker-2 runs the source task, and
/// the appending sink's repeated lines are counted.
#[test]
fn the_connect_pane_follows_a_worker_crash_and_the_delayed_rebalance() {
    let mut app = story("connect-worker-dies");
    jump_to(&mut app, MarkerKind::Fault, 1);
    snapshot("connect_worker_dies_1_killed", &app);
    assert!(screen(&app).contains("Connect"), "{}", screen(&app));
    // Three connectors' tasks need more rows than 80x24 has.
    let text = to_text(&app.model, 120, 40);
    assert!(text.contains("group connect-cluster gen"), "the worker group and its generation:\n{text}");
    assert!(text.contains("worker-1 x killed"), "the dead worker:\n{text}");
    step_until(&mut app, "the lost work is held back", |app| app.model.view.connect.delayed.is_some());
    snapshot("connect_worker_dies_2_held_back", &app);
    let text = to_text(&app.model, 120, 40);
    assert!(text.contains("held back until"), "{text}");
    assert!(text.contains("worker-1 x killed, left the group"), "worker-1 is out of the group:\n{text}");
    step_until(&mut app, "the appending sink repeats a record", |app| {
        app.model.view.connect.stores.get("audit.log").is_some_and(|s| s.repeated > 0)
    });
    snapshot("connect_worker_dies_3_repeated", &app);
    let text = to_text(&app.model, 120, 40);
    assert!(text.contains("repeated"), "the duplicate lines in audit.log are counted:\n{text}");
    step_until(&mut app, "the source task runs on worker-2", |app| {
        app.model
            .view
            .connect
            .tasks
            .get("users-source-0")
            .is_some_and(|t| t.node == ksim_cluster::node::NodeId::Client(1))
    });
    assert!(app.model.view.connect.delayed.is_none(), "the delayed rebalance handed the work out");
    assert!(
        to_text(&app.model, 120, 40).contains("users-source-0 @worker-2 running"),
        "{}",
        to_text(&app.model, 120, 40)
    );
}

/// connect-sink-dead-letter-queue: the record that fails conversion is counted in its dead letter
/// queue with its `__connect.errors.*` context headers, and the upserting store shows its keys.
#[test]
fn the_connect_pane_shows_the_dead_letter_queue_and_its_headers() {
    let mut app = story("connect-sink-dead-letter-queue");
    step_until(&mut app, "a record is dead-lettered", |app| {
        app.model.view.connect.dead_letters.contains_key("dlq-orders")
    });
    snapshot("connect_dead_letter_queue", &app);
    let text = to_text(&app.model, 120, 40);
    for shown in ["DLQ dlq-orders: 1, last orders-", "exception.class.name=", "sink orders-index:", "orders-index-0 @"]
    {
        assert!(text.contains(shown), "{shown}:\n{text}");
    }
    assert!(screen(&app).contains("DLQ dlq-orders: 1"), "at 80x24 too:\n{}", screen(&app));
}

// ---- Kafka Streams ---------------------------------------------------------------------------

/// streams-instance-dies: the Streams pane shows each instance's tasks with their stores and
/// stream time; after instance-1 dies its task is gone with it, and once the group hands the task
/// to instance-2 it restores (the replayed count) and then runs with the restored counts.
#[test]
fn the_streams_pane_follows_a_task_from_a_dead_instance_to_its_restore() {
    use ksim_cluster::node::NodeId;
    use ksim_tui::fold::streams::TaskPhase;
    let mut app = story("streams-instance-dies");
    let node = |name: &str| {
        let clients = &app.model.trace().header.clients;
        NodeId::Client(clients.iter().position(|c| c == name).expect("a client of the scenario") as u32)
    };
    let (one, two) = (node("instance-1"), node("instance-2"));
    jump_to(&mut app, MarkerKind::Fault, 1);
    snapshot("streams_instance_dies_1_killed", &app);
    let text = to_text(&app.model, 120, 40);
    assert!(text.contains("Streams"), "{text}");
    assert!(text.contains("instance-1 x killed"), "the dead instance:\n{text}");
    assert!(app.model.view.streams.instances[&one].tasks.is_empty(), "its task died with it");
    step_until(&mut app, "instance-2 runs both tasks", |app| {
        app.model
            .view
            .streams
            .instances
            .get(&two)
            .is_some_and(|i| i.tasks.len() == 2 && i.tasks.values().all(|t| t.phase == TaskPhase::Running))
    });
    snapshot("streams_instance_dies_2_restored", &app);
    let text = to_text(&app.model, 120, 40);
    assert!(text.contains("replayed"), "the restore is counted:\n{text}");
    assert!(text.contains("clicks_per_user-store: "), "the restored store's entries:\n{text}");
}

/// stream-table-duality: the balance table as the store holds it, key by key, as payments fold
/// in: Alice +50, Bob +18, Alice +25, Alice -60 leave Alice at 15 and Bob at 18.
#[test]
fn the_streams_pane_shows_the_balance_table_fold() {
    let mut app = story("stream-table-duality");
    step_until(&mut app, "alice's balance is 15", |app| {
        app.model.view.streams.instances.values().any(|i| {
            i.tasks
                .values()
                .any(|t| t.stores.values().any(|s| s.entries.get("alice").is_some_and(|v| v.starts_with("15"))))
        })
    });
    snapshot("stream_table_duality_balances", &app);
    let text = to_text(&app.model, 120, 40);
    assert!(text.contains("alice = 15"), "{text}");
}

// ---- a live run (`ksim serve FILE --tui`) ----------------------------------------------------

/// A live run stands in for `ksim serve`: it hands over a real run's events a slice per poll, and
/// keeps the actions the what-if keys send.
struct Replay {
    events: std::collections::VecDeque<ksim_sim::trace::Event>,
    per_poll: usize,
    actions: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ksim_tui::LiveRun for Replay {
    fn new_events(&mut self) -> Vec<ksim_sim::trace::Event> {
        let n = self.per_poll.min(self.events.len());
        self.events.drain(..n).collect()
    }
    fn act(&mut self, action: &str) -> Result<(), String> {
        self.actions.lock().unwrap().push(action.to_string());
        if action.contains("Controller") {
            return Err("refused".into());
        }
        Ok(())
    }
}

/// Following a live run: the view keeps up with the newest event, equals the finished run's view
/// at every step, stepping back stops following and `G` resumes; a what-if key sends the fault to
/// the cluster as a scenario action instead of branching, and the answer shows.
#[test]
fn a_live_run_is_followed_and_the_what_if_keys_act_on_it() {
    let (_, trace, _) = run("leader-failover");
    let actions = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let replay = Replay { events: trace.events.iter().cloned().collect(), per_poll: 500, actions: actions.clone() };
    let controllers = ksim_tui::fold::controllers_of(&trace);
    let mut app = App::live(trace.header.clone(), controllers, Box::new(replay));
    assert!(app.model.recording.is_empty());
    assert!(to_text(&app.model, 120, 40).contains("LIVE: following the run"));
    assert!(app.poll_live());
    assert_eq!(app.model.cursor, 500, "following: at the newest event");
    press(&mut app, "p");
    assert!(!app.model.follow, "stepping back stops following");
    assert!(app.poll_live());
    assert_eq!(app.model.cursor, 499, "events arrive; the learner stays where they are");
    assert!(to_text(&app.model, 120, 40).contains("LIVE: stopped following"));
    press(&mut app, "G");
    assert!(app.model.follow);
    while app.poll_live() {}
    assert_eq!(app.model.recording.len(), trace.events.len());
    assert_eq!(app.model.cursor, trace.events.len());
    let whole = App::for_trace(trace.clone());
    assert_eq!(app.model.view, whole.model.recording.view_at(trace.events.len()), "appending folds as loading does");
    assert_eq!(app.model.recording.story, whole.model.recording.story);

    // tab selects broker-1 first; k kills it on the live cluster.
    press(&mut app, "tab");
    press(&mut app, "k");
    let sent = actions.lock().unwrap().clone();
    let status = app.model.status.clone().unwrap_or_default();
    assert_eq!(app.model.recording.len(), trace.events.len(), "no branch: nothing re-simulated");
    assert!(app.model.branch.is_none());
    let broker_1_dead = app.model.view.process(ksim_cluster::node::NodeId::Broker(1)) != ksim_tui::fold::Process::Up;
    if broker_1_dead {
        assert!(sent.is_empty() && status.contains("would change nothing"), "{status}");
    } else {
        assert_eq!(sent, ["Kill(Broker(1))"]);
        assert!(status.contains("done: kill broker-1 (on the live cluster)"), "{status}");
    }
    press(&mut app, "b");
    assert!(app.model.status.as_deref().unwrap_or_default().contains("a live run has no branches"));
}
