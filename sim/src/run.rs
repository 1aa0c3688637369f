//! One run: a scenario, a seed, and a fresh madsim runtime on a fresh thread.

use crate::clock::now;
use crate::host::{node_main, MadsimDriver, MadsimNodes};
use crate::report::Report;
use crate::scenario::{Action, Scenario};
use crate::trace::{EventKind, Fault, Trace};
use crate::world::World;
use ksim_cluster::node::NodeId;
use ksim_cluster::time::SimTime;
use ksim_cluster::topic::TopicPartition;
use std::time::Duration;

/// Extra faults for a what-if branch: the same scenario, plus these at these times.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub extra_faults: Vec<(SimTime, Fault)>,
    /// Check every node's invariants after every step even in a release build (a debug build
    /// always does). A broken invariant stops the run as an internal error: a bug in ksim.
    pub check_invariants: bool,
    /// The event cap: the run stops with an error once its trace holds this many events
    /// (default [`crate::world::MAX_EVENTS`]).
    pub max_events: Option<usize>,
    /// Where the run reports how far it got, for a progress line (read from another thread).
    pub progress: Option<std::sync::Arc<Progress>>,
    /// End the run early once the cluster has converged, at or after this time and after the
    /// last timeline step (fuzzing: a seed's run need not idle out its whole recovery bound once
    /// it has recovered). Only for a scenario with `converge_within_ms`, whose liveness check
    /// still fails a run that has not converged by then. See [`crate::world::Settle`].
    pub end_once_converged_from_ms: Option<u64>,
}

/// How far a run got: events recorded and virtual time, updated as it goes.
#[derive(Debug, Default)]
pub struct Progress {
    pub events: std::sync::atomic::AtomicU64,
    pub virtual_us: std::sync::atomic::AtomicU64,
}

pub struct Outcome {
    pub trace: Trace,
    pub report: Report,
    /// A run that ended once the cluster converged (see [`RunOptions::end_once_converged_from_ms`]):
    /// how long after the last timeline step it had.
    pub recovered_after_ms: Option<u64>,
}

enum Directive {
    Fault(Fault),
    /// An operator's `kafka-transactions.sh abort`, from a client node.
    AbortTransaction {
        from: NodeId,
        partition: TopicPartition,
    },
    Narrate(String),
    /// Check that the cluster has converged (liveness).
    CheckConvergence {
        within_ms: u64,
    },
}

/// Run `scenario` under `seed`. `name` identifies the scenario in the trace (its file stem).
pub fn run(scenario: &Scenario, name: &str, seed: u64) -> Result<Outcome, String> {
    run_with(scenario, name, seed, &RunOptions::default())
}

pub fn run_with(scenario: &Scenario, name: &str, seed: u64, options: &RunOptions) -> Result<Outcome, String> {
    scenario.resolve()?;
    fits_the_event_cap(scenario, options.max_events)?;
    let scenario = scenario.clone();
    let name = name.to_string();
    let options = options.clone();
    // A fresh thread per run: madsim seeds the thread's std hash state, and a second runtime on
    // the same thread would not be deterministic.
    #[allow(clippy::disallowed_methods)]
    let thread = std::thread::Builder::new()
        .name(format!("ksim-{name}-{seed}"))
        .spawn(move || {
            let runtime = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
            runtime.block_on(supervise(scenario, name, seed, options))
        })
        .map_err(|e| format!("cannot start the simulation thread: {e}"))?;
    thread.join().map_err(|panic| {
        let text = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        format!("the simulation stopped on an internal error (a bug in ksim): {text}")
    })?
}

/// Refuse up front a run that cannot end under the event cap (`None`: the default cap): its
/// producers plan more sends, each one event, than the cap allows.
pub fn fits_the_event_cap(scenario: &Scenario, max_events: Option<usize>) -> Result<(), String> {
    let cap = max_events.unwrap_or(crate::world::MAX_EVENTS);
    let planned = scenario.planned_sends();
    if planned > cap as u64 {
        return Err(format!(
            "this run would reach the event cap before it ends: its producers plan {planned} sends, each \
             one event in the trace, and the cap is {cap} events (--max-events). Raise it with \
             --max-events N (well above {planned}: every send takes several events; memory grows with \
             it), or send fewer records"
        ));
    }
    Ok(())
}

fn timeline(scenario: &Scenario, options: &RunOptions) -> Vec<(SimTime, Directive)> {
    let mut out: Vec<(SimTime, Directive)> = Vec::new();
    for n in &scenario.narration {
        if let Some(at) = n.at_ms {
            out.push((SimTime::from_ms(at), Directive::Narrate(n.text.clone())));
        }
    }
    // A step after the end never happens (the scenario is warned about it).
    for step in scenario.timeline.iter().filter(|s| s.at_ms < scenario.duration_ms) {
        let id = |n| scenario.node_id(n);
        if let Action::AbortTransaction { from, partition } = &step.action {
            let from = id(&crate::scenario::NodeRef::Client(from.clone()));
            let partition = crate::scenario::parse_partition(partition).expect("validated before the run");
            out.push((SimTime::from_ms(step.at_ms), Directive::AbortTransaction { from, partition }));
            continue;
        }
        let fault = action_fault(scenario, &step.action).expect("AbortTransaction is handled above");
        out.push((SimTime::from_ms(step.at_ms), Directive::Fault(fault)));
    }
    for (at, fault) in &options.extra_faults {
        out.push((*at, Directive::Fault(fault.clone())));
    }
    if let Some(within_ms) = scenario.converge_within_ms {
        let last = scenario.last_step_ms();
        out.push((SimTime::from_ms(last.saturating_add(within_ms)), Directive::CheckConvergence { within_ms }));
    }
    // Stable: same-time directives keep their order (narration first, then the timeline).
    out.sort_by_key(|(at, _)| *at);
    out
}

/// The fault a timeline action is, in the scenario's node ids (`None`: an operator's
/// AbortTransaction, which is a request, not a fault). `Isolate(n)` cuts `n` from every other
/// node of the scenario.
pub fn action_fault(scenario: &Scenario, action: &Action) -> Option<Fault> {
    let id = |n| scenario.node_id(n);
    Some(match action {
        Action::Kill(n) => Fault::Kill(id(n)),
        Action::PowerFail(n) => Fault::PowerFail(id(n)),
        Action::Restart(n) => Fault::Restart(id(n)),
        Action::Pause(n) => Fault::Pause(id(n)),
        Action::Resume(n) => Fault::Resume(id(n)),
        Action::Stop(n) => Fault::Stop(id(n)),
        Action::Partition(groups) => Fault::Partition(groups.iter().map(|g| g.iter().map(id).collect()).collect()),
        Action::PartitionOneWay(a, b) => {
            Fault::PartitionOneWay { from: a.iter().map(id).collect(), to: b.iter().map(id).collect() }
        }
        Action::Isolate(n) => {
            let target = id(n);
            let others = scenario.all_nodes().into_iter().filter(|x| *x != target).collect();
            Fault::Partition(vec![vec![target], others])
        }
        Action::Heal => Fault::Heal,
        Action::SlowLink(a, b, ms) => Fault::SlowLink { a: id(a), b: id(b), extra_latency_ms: *ms },
        Action::AbortTransaction { .. } => return None,
    })
}

async fn wait_until(at: SimTime) {
    let now = now();
    if at > now {
        madsim::time::sleep(Duration::from_micros(at.0 - now.0)).await;
    }
}

/// Wait until `at`, or until the world says the cluster has converged (`true`).
async fn wait_until_or_converged(at: SimTime, converged: Option<&tokio::sync::Notify>) -> bool {
    let Some(converged) = converged else {
        wait_until(at).await;
        return false;
    };
    let notified = converged.notified();
    let sleep = wait_until(at);
    let mut notified = std::pin::pin!(notified);
    let mut sleep = std::pin::pin!(sleep);
    use std::future::Future;
    std::future::poll_fn(|cx| {
        if notified.as_mut().poll(cx).is_ready() {
            std::task::Poll::Ready(true)
        } else if sleep.as_mut().poll(cx).is_ready() {
            std::task::Poll::Ready(false)
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

async fn supervise(scenario: Scenario, name: String, seed: u64, options: RunOptions) -> Result<Outcome, String> {
    let resolved = scenario.resolve().expect("validated before the run");
    let handle = madsim::runtime::Handle::current();
    let fabric = handle.create_node().name("fabric").build();
    let madsim_nodes = MadsimNodes::default();
    let world = World::new(&scenario, resolved, seed, &name, |world| {
        Box::new(MadsimDriver::new(world, fabric, madsim_nodes.clone()))
    });
    {
        let mut w = world.lock().expect("world lock");
        w.check_invariants = options.check_invariants || cfg!(debug_assertions);
        w.max_events = options.max_events.unwrap_or(crate::world::MAX_EVENTS);
        w.progress = options.progress.clone();
        if let (Some(from_ms), Some(_)) = (options.end_once_converged_from_ms, scenario.converge_within_ms) {
            let last = SimTime::from_ms(scenario.last_step_ms());
            let end_from = SimTime::from_ms(from_ms).max(last);
            w.settle = Some(crate::world::Settle::new(last, end_from, std::sync::Arc::new(tokio::sync::Notify::new())));
        }
    }
    let converged = world.lock().expect("world lock").settle.as_ref().map(|s| s.notify.clone());

    let mut nodes: Vec<(NodeId, Option<(crate::scenario::App, u64)>)> =
        scenario.controller_ids().into_iter().map(|id| (NodeId::Controller(id), None)).collect();
    nodes.extend(scenario.cluster.brokers.iter().map(|b| (NodeId::Broker(*b), None)));
    nodes.extend(
        scenario.clients.iter().enumerate().map(|(i, c)| (NodeId::Client(i as u32), Some((c.app.clone(), c.start_ms)))),
    );
    for (node, app) in nodes {
        let name = world.lock().expect("world lock").header_name(node);
        let w = world.clone();
        let built = handle.create_node().name(name).init(move || node_main(w.clone(), node, app.clone())).build();
        madsim_nodes.lock().expect("madsim nodes").insert(node, built.id());
    }

    let mut ended_early = false;
    for (at, directive) in timeline(&scenario, &options) {
        if wait_until_or_converged(at, converged.as_deref()).await {
            ended_early = true;
            break;
        }
        let mut w = world.lock().expect("world lock");
        match directive {
            Directive::Fault(fault) => w.apply_fault(fault),
            Directive::AbortTransaction { from, partition } => w.admin_abort_transaction(from, &partition),
            Directive::Narrate(text) => w.record_world(EventKind::Narration(text)),
            Directive::CheckConvergence { within_ms } => {
                let problems = w.convergence_problems();
                if !problems.is_empty() {
                    // A hanging transaction's hold is a lesson (see `check::liveness`).
                    let hanging = crate::check::liveness::HANGING_TRANSACTION;
                    let finding = crate::trace::Finding {
                        rule: crate::trace::Rule::NoConvergence,
                        violation: !problems.iter().all(|p| p.starts_with(hanging)),
                        message: format!(
                            "{within_ms} ms after the last fault the cluster has not recovered: {}",
                            problems.join("; ")
                        ),
                    };
                    w.record_world(EventKind::Finding(finding));
                }
            }
        }
    }
    if !ended_early {
        ended_early = wait_until_or_converged(SimTime::from_ms(scenario.duration_ms), converged.as_deref()).await;
    }

    let mut w = world.lock().expect("world lock");
    let mut recovered_after_ms = None;
    if ended_early {
        let last = scenario.last_step_ms();
        let at = w.now().0 / 1_000;
        // Since when the world has seen it converged (within a second).
        let converged = w.settle.as_ref().and_then(|s| s.converged_since).map_or(at, |t| t.0 / 1_000);
        recovered_after_ms = Some(converged.saturating_sub(last));
        w.record_world(EventKind::Narration(format!(
            "The cluster had converged {} ms after the last fault, and stayed so (every node up, every partition led with its full ISR, every group stable, every consumer caught up): the run ends here, at {at} ms of {} ms.",
            converged.saturating_sub(last),
            scenario.duration_ms
        )));
    }
    if let Some(at) = w.overflowed_at {
        w.release();
        return Err(format!(
            "the run stopped at {at} of {} ms: it reached the event cap of {} events (--max-events). \
             A long or large run may need more: raise it with --max-events N (memory grows with it). \
             A small scenario that reaches it has a node retrying in a tight loop, a bug in ksim: \
             please report it with the scenario and seed",
            scenario.duration_ms, w.max_events
        ));
    }
    Ok(Outcome { recovered_after_ms, ..conclude(&mut w, &scenario) })
}

/// The end of a run, simulated or live: the checker's end-of-run findings, the report, and the
/// trace taken out of the world.
pub fn conclude(w: &mut World, scenario: &Scenario) -> Outcome {
    let findings = {
        let World { checker, slots, connect, .. } = &mut *w;
        let stores = connect
            .as_ref()
            .map(|c| c.stores.iter().map(|(name, s)| (name.clone(), s.entries().clone())).collect())
            .unwrap_or_default();
        checker.finish(slots, &stores)
    };
    for finding in findings {
        w.record_world(EventKind::Finding(finding));
    }
    w.finish();
    let report = Report::evaluate(scenario, w);
    let trace = Trace { header: w.header.clone(), events: w.take_events() };
    // madsim leaks the tasks still pending when the runtime drops; leave them little to hold.
    w.release();
    Outcome { trace, report, recovered_after_ms: None }
}
