//! `ksim assign`: run one of Kafka's partition assignors on a group you describe, and print who
//! gets what; with `--until-stable`, replay the follow-up rebalances too, so the cooperative
//! protocol's revoke-then-assign shows round by round.
//!
//! The assignors are `ksim_cluster::group::assignor`, the same code the simulated group leaders
//! run, and they reproduce Kafka's own assignors exactly.

use ksim_cluster::group::assignor::{AssignorKind, MemberSubscription};
use ksim_cluster::TopicPartition;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::str::FromStr;

/// A bound on `--until-stable`: cooperative-sticky settles in two or three rounds.
const MAX_ROUNDS: usize = 10;
/// Partitions per topic we accept (the sticky assignors do work quadratic in partitions).
const MAX_PARTITIONS: i32 = 10_000;
/// Kafka's limit on topic name length.
const MAX_TOPIC_NAME_LEN: usize = 249;

const EXAMPLES: &str = "\
Examples:
  # Range cuts each topic into contiguous blocks; the first members get the extra partitions.
  ksim assign --strategy range --topic orders=3 --topic payments=3 \\
    --member c1=orders,payments --member c2=orders,payments

  # A third member joins a cooperative group: partitions that move are revoked first (round 1)
  # and handed to the newcomer in the follow-up rebalance (round 2).
  ksim assign --strategy cooperative-sticky --topic orders=6 \\
    --member a=orders --member b=orders --member c=orders \\
    --owned a=orders-0,orders-1,orders-2 --owned b=orders-3,orders-4,orders-5 \\
    --generation a=1 --generation b=1 --until-stable

Output: one line per member, in the order the assignor considered them, with its partitions
sorted: `c1: orders-0 orders-1 payments-0 payments-1`; a member with nothing is `c3:`.";

/// Run a partition assignor on a consumer group you describe.
///
/// Members join a consumer group with their subscriptions; the group leader runs the assignor
/// named by `partition.assignment.strategy` and decides which member reads which partition.
/// Describe the group with --topic and --member (plus what members own now, for the sticky
/// assignors) and see the leader's decision.
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
#[command(after_long_help = EXAMPLES)]
pub struct AssignArgs {
    /// The assignor: `range`, `roundrobin`, `sticky` (eager) or `cooperative-sticky`
    /// (cooperative, KIP-429); the names of Kafka's `partition.assignment.strategy`.
    #[arg(long, value_name = "STRATEGY")]
    pub strategy: String,

    /// A topic and its partition count, e.g. `orders=6`. Repeat for each topic.
    #[arg(long = "topic", value_name = "NAME=PARTITIONS", required = true)]
    pub topics: Vec<String>,

    /// A member and the topics it subscribes to, e.g. `c1=orders,payments`. Repeat for each
    /// member, in the order the coordinator lists them in its JoinGroup response: range and
    /// round-robin sort members anyway, but when sticky members own more than they may keep, that
    /// order can decide which one keeps more (as in Kafka).
    #[arg(long = "member", value_name = "ID=TOPIC[,TOPIC...]", required = true)]
    pub members: Vec<String>,

    /// What a member owns now, e.g. `c1=orders-0,orders-3` (the partition number is after the
    /// last `-`, so `my-topic-2-0` is partition 0 of `my-topic-2`). The sticky assignors keep
    /// what they can; two members may claim the same partition, and --generation settles it.
    /// Range and round-robin ignore it.
    #[arg(long = "owned", value_name = "ID=TOPIC-P[,TOPIC-P...]")]
    pub owned: Vec<String>,

    /// The generation in which a member got its owned partitions, e.g. `c1=4`. When two members
    /// claim a partition the higher generation wins; in the same generation neither does. A
    /// member without one claims at generation -1, below everyone.
    #[arg(long = "generation", value_name = "ID=N")]
    pub generations: Vec<String>,

    /// Make a member static (KIP-345) with this `group.instance.id`, e.g. `c1=host-a`. Range and
    /// round-robin order static members by it, ahead of dynamic ones, so a restarted static
    /// member gets the same partitions back.
    #[arg(long = "instance", value_name = "ID=GROUP_INSTANCE_ID")]
    pub instances: Vec<String>,

    /// Rebalance again and again, each time with what members were just assigned as what they
    /// own (in the next generation), until a rebalance would move nothing; print every round.
    /// This is how cooperative-sticky hands over partitions: revoke in one round, assign in the
    /// next.
    #[arg(long)]
    pub until_stable: bool,
}

/// The whole output text of `ksim assign`, or what is wrong with the arguments.
pub fn run(args: &AssignArgs) -> Result<String, String> {
    let kind = AssignorKind::from_str(&args.strategy).map_err(|e| format!("--strategy: {e}"))?;
    let topics = parse_topics(&args.topics)?;
    let mut members = parse_members(&args.members, &topics)?;
    apply_owned(&args.owned, &topics, &mut members)?;
    apply_generations(&args.generations, &mut members)?;
    apply_instances(&args.instances, &mut members)?;

    let mut out = String::new();
    if !args.until_stable {
        render(&mut out, &kind.assign(&topics, &members));
        return Ok(out);
    }
    let mut generation = members.iter().filter_map(|m| m.generation).max().unwrap_or(0);
    for round in 1..=MAX_ROUNDS {
        let assignment = kind.assign(&topics, &members);
        generation += 1;
        let moved = members.iter().any(|m| {
            let owned: BTreeSet<&TopicPartition> = m.owned_partitions.iter().collect();
            let assigned: BTreeSet<&TopicPartition> = assignment.partitions_of(&m.member_id).iter().collect();
            owned != assigned
        });
        if !moved && round > 1 {
            out.push_str("# stable: another rebalance would move nothing\n");
            return Ok(out);
        }
        let _ = writeln!(out, "# round {round} (generation {generation})");
        render(&mut out, &assignment);
        if !moved {
            out.push_str("# stable: another rebalance would move nothing\n");
            return Ok(out);
        }
        for m in &mut members {
            m.owned_partitions = assignment.partitions_of(&m.member_id).to_vec();
            m.generation = Some(generation);
        }
    }
    Err(format!("the assignment did not settle within {MAX_ROUNDS} rounds"))
}

fn render(out: &mut String, assignment: &ksim_cluster::group::assignor::Assignment) {
    for (id, partitions) in assignment.iter() {
        out.push_str(id);
        out.push(':');
        for partition in partitions {
            let _ = write!(out, " {partition}");
        }
        out.push('\n');
    }
}

/// `NAME=VALUE`, with a message naming the flag and the expected shape when it is not.
fn split_pair<'a>(flag: &str, shape: &str, example: &str, text: &'a str) -> Result<(&'a str, &'a str), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name, value)),
        _ => Err(format!("--{flag} `{text}`: expected {shape}, e.g. {example}")),
    }
}

fn parse_topics(specs: &[String]) -> Result<BTreeMap<String, i32>, String> {
    if specs.is_empty() {
        return Err("give at least one --topic NAME=PARTITIONS".into());
    }
    let mut topics = BTreeMap::new();
    for spec in specs {
        let (name, count) = split_pair("topic", "NAME=PARTITIONS", "orders=6", spec)?;
        check_topic_name(name)?;
        let count: i32 = count.parse().ok().filter(|c| (1..=MAX_PARTITIONS).contains(c)).ok_or_else(|| {
            format!("--topic {spec}: the partition count must be a number from 1 to {MAX_PARTITIONS}")
        })?;
        if topics.insert(name.to_string(), count).is_some() {
            return Err(format!("--topic {name} is given twice"));
        }
    }
    Ok(topics)
}

/// Kafka's rule: 1 to 249 characters from `a-z A-Z 0-9 . _ -`, and not `.` or `..`.
fn check_topic_name(name: &str) -> Result<(), String> {
    let legal = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !legal || name.len() > MAX_TOPIC_NAME_LEN || name == "." || name == ".." {
        return Err(format!(
            "topic name `{name}` is not legal in Kafka: use up to {MAX_TOPIC_NAME_LEN} of a-z A-Z 0-9 . _ -"
        ));
    }
    Ok(())
}

fn parse_members(specs: &[String], topics: &BTreeMap<String, i32>) -> Result<Vec<MemberSubscription>, String> {
    if specs.is_empty() {
        return Err("give at least one --member ID=TOPIC[,TOPIC...]".into());
    }
    let mut members: Vec<MemberSubscription> = Vec::new();
    for spec in specs {
        let (id, list) = split_pair("member", "ID=TOPIC[,TOPIC...]", "c1=orders,payments", spec)?;
        if id.chars().any(char::is_whitespace) {
            return Err(format!("--member {spec}: a member id cannot contain spaces"));
        }
        if members.iter().any(|m| m.member_id == id) {
            return Err(format!("--member {id} is given twice"));
        }
        let subscribed: Vec<&str> = list.split(',').filter(|t| !t.is_empty()).collect();
        if subscribed.is_empty() {
            return Err(format!("--member {spec}: subscribe {id} to at least one topic, e.g. {id}=orders"));
        }
        for topic in &subscribed {
            if !topics.contains_key(*topic) {
                return Err(format!(
                    "--member {spec}: unknown topic `{topic}` (declare it with --topic {topic}=PARTITIONS)"
                ));
            }
        }
        members.push(MemberSubscription::new(id, &subscribed));
    }
    Ok(members)
}

fn member_mut<'a>(
    flag: &str,
    spec: &str,
    id: &str,
    members: &'a mut [MemberSubscription],
) -> Result<&'a mut MemberSubscription, String> {
    members
        .iter_mut()
        .find(|m| m.member_id == id)
        .ok_or_else(|| format!("--{flag} {spec}: unknown member `{id}` (declare it with --member {id}=TOPIC)"))
}

fn apply_owned(
    specs: &[String],
    topics: &BTreeMap<String, i32>,
    members: &mut [MemberSubscription],
) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for spec in specs {
        let (id, list) = split_pair("owned", "ID=TOPIC-P[,TOPIC-P...]", "c1=orders-0,orders-3", spec)?;
        let member = member_mut("owned", spec, id, members)?;
        if !seen.insert(id.to_string()) {
            return Err(format!(
                "--owned for {id} is given twice: list all its partitions in one, e.g. {id}=orders-0,orders-1"
            ));
        }
        for item in list.split(',').filter(|p| !p.is_empty()) {
            let partition = parse_partition(spec, item, topics)?;
            if member.owned_partitions.contains(&partition) {
                return Err(format!("--owned {spec}: {partition} is listed twice"));
            }
            member.owned_partitions.push(partition);
        }
    }
    Ok(())
}

/// `TOPIC-P`, split at the last `-` (topic names may contain `-` and digits).
fn parse_partition(spec: &str, item: &str, topics: &BTreeMap<String, i32>) -> Result<TopicPartition, String> {
    let malformed = || format!("--owned {spec}: `{item}` is not TOPIC-PARTITION, e.g. orders-0");
    let (topic, number) = item.rsplit_once('-').ok_or_else(malformed)?;
    let partition: i32 = number.parse().map_err(|_| malformed())?;
    let count = topics.get(topic).ok_or_else(|| format!("--owned {spec}: unknown topic `{topic}` in `{item}`"))?;
    if !(0..*count).contains(&partition) {
        return Err(format!("--owned {spec}: {topic} has partitions 0 to {}, not {partition}", count - 1));
    }
    Ok(TopicPartition::new(topic, partition))
}

fn apply_generations(specs: &[String], members: &mut [MemberSubscription]) -> Result<(), String> {
    for spec in specs {
        let (id, value) = split_pair("generation", "ID=N", "c1=3", spec)?;
        let member = member_mut("generation", spec, id, members)?;
        if member.generation.is_some() {
            return Err(format!("--generation for {id} is given twice"));
        }
        let generation: i32 = value
            .parse()
            .ok()
            .filter(|g| *g >= 0)
            .ok_or_else(|| format!("--generation {spec}: a generation is a number from 0 up"))?;
        member.generation = Some(generation);
    }
    Ok(())
}

fn apply_instances(specs: &[String], members: &mut [MemberSubscription]) -> Result<(), String> {
    for spec in specs {
        let (id, instance) = split_pair("instance", "ID=GROUP_INSTANCE_ID", "c1=host-a", spec)?;
        if instance.is_empty() {
            return Err(format!("--instance {spec}: give the group.instance.id after `=`"));
        }
        if let Some(other) = members.iter().find(|m| m.group_instance_id.as_deref() == Some(instance)) {
            return Err(format!("--instance {spec}: {} already has group.instance.id `{instance}`", other.member_id));
        }
        let member = member_mut("instance", spec, id, members)?;
        if member.group_instance_id.is_some() {
            return Err(format!("--instance for {id} is given twice"));
        }
        member.group_instance_id = Some(instance.to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: AssignArgs,
    }

    /// Parse a command line the way `ksim assign` does, then run it.
    fn assign(line: &str) -> Result<String, String> {
        let words = std::iter::once("assign").chain(line.split_whitespace());
        let cli = Cli::try_parse_from(words).map_err(|e| e.to_string())?;
        run(&cli.args)
    }

    #[test]
    fn range_cuts_each_topic_into_blocks() {
        let out = assign("--strategy range --topic orders=3 --topic payments=3 --member c1=orders,payments --member c2=orders,payments");
        assert_eq!(out.unwrap(), "c1: orders-0 orders-1 payments-0 payments-1\nc2: orders-2 payments-2\n");
    }

    #[test]
    fn empty_assignment_prints_just_the_id() {
        let out = assign("--strategy roundrobin --topic t=1 --member b=t --member a=t");
        assert_eq!(out.unwrap(), "a: t-0\nb:\n");
    }

    #[test]
    fn static_members_come_first_by_instance_id() {
        let out = assign(
            "--strategy roundrobin --topic t=3 --member a=t --member b=t --member c=t --instance c=host-1 --instance b=host-2",
        );
        assert_eq!(out.unwrap(), "c: t-0\nb: t-1\na: t-2\n");
    }

    #[test]
    fn cooperative_revokes_then_assigns() {
        let out = assign(
            "--strategy cooperative-sticky --topic orders=6 --member a=orders --member b=orders --member c=orders \
             --owned a=orders-0,orders-1,orders-2 --owned b=orders-3,orders-4,orders-5 \
             --generation a=1 --generation b=1 --until-stable",
        );
        assert_eq!(
            out.unwrap(),
            "# round 1 (generation 2)\n\
             a: orders-0 orders-1\n\
             b: orders-3 orders-4\n\
             c:\n\
             # round 2 (generation 3)\n\
             a: orders-0 orders-1\n\
             b: orders-3 orders-4\n\
             c: orders-2 orders-5\n\
             # stable: another rebalance would move nothing\n"
        );
    }

    #[test]
    fn eager_sticky_moves_in_one_round() {
        let out = assign(
            "--strategy sticky --topic orders=6 --member a=orders --member b=orders --member c=orders \
             --owned a=orders-0,orders-1,orders-2 --owned b=orders-3,orders-4,orders-5 \
             --generation a=1 --generation b=1 --until-stable",
        );
        assert_eq!(
            out.unwrap(),
            "# round 1 (generation 2)\n\
             a: orders-0 orders-1\n\
             b: orders-3 orders-4\n\
             c: orders-2 orders-5\n\
             # stable: another rebalance would move nothing\n"
        );
    }

    #[test]
    fn until_stable_with_nothing_to_move_prints_one_round() {
        let out =
            assign("--strategy range --topic t=2 --member a=t --member b=t --owned a=t-0 --owned b=t-1 --until-stable");
        assert_eq!(
            out.unwrap(),
            "# round 1 (generation 1)\na: t-0\nb: t-1\n# stable: another rebalance would move nothing\n"
        );
    }

    #[test]
    fn same_generation_claims_cancel_out() {
        // Both claim t-0 in generation 1: neither keeps it; the cooperative assignor waits a round.
        let out = assign(
            "--strategy cooperative-sticky --topic t=3 --member a=t --member b=t --member c=t \
             --owned a=t-0,t-1 --owned b=t-0,t-2 --generation a=1 --generation b=1 --generation c=1",
        );
        assert_eq!(out.unwrap(), "a: t-1\nb: t-2\nc:\n");
        let out = assign(
            "--strategy sticky --topic t=3 --member a=t --member b=t --member c=t \
             --owned a=t-0,t-1 --owned b=t-0,t-2 --generation a=1 --generation b=1 --generation c=1",
        );
        assert_eq!(out.unwrap(), "a: t-1\nb: t-2\nc: t-0\n");
    }

    #[test]
    fn topic_names_with_dashes_and_digits() {
        // `a-1-2` is partition 2 of topic `a-1`.
        let out = assign(
            "--strategy sticky --topic a-1=3 --member m=a-1 --member n=a-1 --owned n=a-1-2,a-1-1 --generation n=5",
        );
        assert_eq!(out.unwrap(), "m: a-1-0\nn: a-1-1 a-1-2\n");
    }

    #[test]
    fn java_class_names_are_accepted() {
        let out = assign("--strategy org.apache.kafka.clients.consumer.RangeAssignor --topic t=2 --member a=t");
        assert_eq!(out.unwrap(), "a: t-0 t-1\n");
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        let cases = [
            (
                "--strategy uniform --topic t=1 --member a=t",
                "--strategy: unknown assignor `uniform`: expected one of range, roundrobin, sticky, cooperative-sticky",
            ),
            ("--strategy range --topic t --member a=t", "--topic `t`: expected NAME=PARTITIONS, e.g. orders=6"),
            ("--strategy range --topic =3 --member a=t", "--topic `=3`: expected NAME=PARTITIONS, e.g. orders=6"),
            (
                "--strategy range --topic t=x --member a=t",
                "--topic t=x: the partition count must be a number from 1 to 10000",
            ),
            (
                "--strategy range --topic t=0 --member a=t",
                "--topic t=0: the partition count must be a number from 1 to 10000",
            ),
            ("--strategy range --topic t=1 --topic t=2 --member a=t", "--topic t is given twice"),
            (
                "--strategy range --topic a/b=1 --member a=t",
                "topic name `a/b` is not legal in Kafka: use up to 249 of a-z A-Z 0-9 . _ -",
            ),
            (
                "--strategy range --topic t=1 --member a=u",
                "--member a=u: unknown topic `u` (declare it with --topic u=PARTITIONS)",
            ),
            (
                "--strategy range --topic t=1 --member a=",
                "--member a=: subscribe a to at least one topic, e.g. a=orders",
            ),
            ("--strategy range --topic t=1 --member a=t --member a=t", "--member a is given twice"),
            (
                "--strategy range --topic t=1 --member a=t --owned b=t-0",
                "--owned b=t-0: unknown member `b` (declare it with --member b=TOPIC)",
            ),
            (
                "--strategy range --topic t=1 --member a=t --owned a=t0",
                "--owned a=t0: `t0` is not TOPIC-PARTITION, e.g. orders-0",
            ),
            (
                "--strategy range --topic t=1 --member a=t --owned a=t-x",
                "--owned a=t-x: `t-x` is not TOPIC-PARTITION, e.g. orders-0",
            ),
            (
                "--strategy range --topic t=2 --member a=t --owned a=t-2",
                "--owned a=t-2: t has partitions 0 to 1, not 2",
            ),
            ("--strategy range --topic t=1 --member a=t --owned a=u-0", "--owned a=u-0: unknown topic `u` in `u-0`"),
            (
                "--strategy range --topic t=1 --member a=t --owned a=t-0 --owned a=t-0",
                "--owned for a is given twice: list all its partitions in one, e.g. a=orders-0,orders-1",
            ),
            (
                "--strategy range --topic t=1 --member a=t --generation a=-1",
                "--generation a=-1: a generation is a number from 0 up",
            ),
            (
                "--strategy range --topic t=1 --member a=t --generation b=1",
                "--generation b=1: unknown member `b` (declare it with --member b=TOPIC)",
            ),
            (
                "--strategy range --topic t=1 --member a=t --member b=t --instance a=x --instance b=x",
                "--instance b=x: a already has group.instance.id `x`",
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(assign(line), Err(expected.to_string()), "{line}");
        }
    }

    #[test]
    fn direct_construction_needs_topics_and_members() {
        let args = AssignArgs { strategy: "range".into(), ..AssignArgs::default() };
        assert_eq!(run(&args), Err("give at least one --topic NAME=PARTITIONS".to_string()));
        let args = AssignArgs { strategy: "range".into(), topics: vec!["t=1".into()], ..AssignArgs::default() };
        assert_eq!(run(&args), Err("give at least one --member ID=TOPIC[,TOPIC...]".to_string()));
    }
}
