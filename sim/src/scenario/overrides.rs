//! `--set [SCOPE.]key=value`: override a scenario's configs by their Kafka names from the command
//! line, so "what changes if I set X?" is one command instead of an edited copy of the file.
//!
//! A bare `key=value` goes to every level where Kafka defines that name: the cluster (broker
//! configs, and topic-level names, which set the broker-wide default as `log.retention.ms` does),
//! every topic (topic-level names), every client whose engines know it (a producer's `acks`, a
//! consumer's `auto.offset.reset`). `cluster.key=value`, `topic:NAME.key=value` and
//! `client:NAME.key=value` aim at one. A name that no level knows gets the closest known name as a
//! suggestion; a name aimed at a level that does not know it says where it belongs.
//!
//! Overrides replace the file's values before the scenario is resolved, so they are checked like
//! the file's own values (each value against Kafka's `ConfigDef` here, naming the `--set`; the
//! settings together when the scenario resolves). The scenario keeps their text
//! ([`Scenario::overrides`]) for the trace header, the report and every `replay:` line.

use super::{App, ConfigValue, Configs, Scenario};
use ksim_cluster::config::{BrokerConfig, ConsumerConfig, ProducerConfig, TopicConfig};
use ksim_cluster::config::{ConfigError, Configurable};
use ksim_cluster::version::KafkaVersion;

/// At most this many `--set`s: a command line, not a config file.
pub const MAX_OVERRIDES: usize = 256;

/// One `--set`, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    /// The text as given, `topic:orders.retention.ms=1000`: what replay lines repeat.
    pub text: String,
    target: Target,
    key_and_scope: String,
    value: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    /// Every level that knows the key.
    Everywhere,
    Cluster,
    /// `topic:` or `client:`, with the rest (`NAME.key`) split once the scenario's names are known:
    /// names may contain dots.
    Topic,
    Client,
}

/// The levels a config can be set at, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Cluster,
    Topic,
    Producer,
    Consumer,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Cluster => "a cluster (broker) config",
            Level::Topic => "a topic config",
            Level::Producer => "a producer config",
            Level::Consumer => "a consumer config",
        }
    }
}

impl Override {
    /// Parse `[cluster.|topic:NAME.|client:NAME.]key=value`. The value is everything after the
    /// first `=` (it may hold `=` and `,`).
    pub fn parse(text: &str) -> Result<Override, String> {
        let Some((left, value)) = text.split_once('=') else {
            return Err(format!(
                "--set `{text}`: expected key=value (e.g. acks=1, topic:orders.min.insync.replicas=2)"
            ));
        };
        let left = left.trim();
        if left.is_empty() {
            return Err(format!("--set `{text}`: the key is missing before `=`"));
        }
        let (target, rest) = if let Some(rest) = left.strip_prefix("cluster.") {
            (Target::Cluster, rest)
        } else if let Some(rest) = left.strip_prefix("topic:") {
            (Target::Topic, rest)
        } else if let Some(rest) = left.strip_prefix("client:") {
            (Target::Client, rest)
        } else {
            (Target::Everywhere, left)
        };
        if rest.is_empty() {
            return Err(format!("--set `{text}`: the key is missing after the scope"));
        }
        Ok(Override {
            text: text.to_string(),
            target,
            key_and_scope: rest.to_string(),
            value: value.trim().to_string(),
        })
    }
}

/// Whether a config struct knows `key` (an unknown key is the only error `set` gives for any
/// value when the key is unknown; a known key may refuse this value, which is not our question).
fn knows<C: Configurable + Default>(key: &str, value: &str) -> bool {
    match C::default().set(key, value) {
        Ok(()) => true,
        Err(e) => !e.message.starts_with("unknown config"),
    }
}

fn levels_knowing(key: &str, value: &str) -> Vec<Level> {
    let mut levels = Vec::new();
    if knows::<BrokerConfig>(key, value) {
        levels.push(Level::Cluster);
    }
    if knows::<TopicConfig>(key, value) {
        levels.push(Level::Topic);
    }
    if knows::<ProducerConfig>(key, value) {
        levels.push(Level::Producer);
    }
    if knows::<ConsumerConfig>(key, value) {
        levels.push(Level::Consumer);
    }
    levels
}

/// Every name ksim knows, at any level, for suggestions.
fn all_keys() -> Vec<String> {
    let mut keys: Vec<String> = BrokerConfig::KEYS
        .iter()
        .chain(TopicConfig::KEYS)
        .chain(ProducerConfig::KEYS)
        .chain(ConsumerConfig::KEYS)
        .filter(|k| !k.starts_with('('))
        .map(|k| k.to_string())
        .collect();
    // Topic-level names also go by their broker-wide `log.` names.
    keys.extend(TopicConfig::KEYS.iter().map(|k| format!("log.{k}")));
    keys.sort();
    keys.dedup();
    keys
}

/// Optimal string alignment distance (Damerau–Levenshtein with adjacent swaps).
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The known name closest to `key`, if it is close enough to be a typo.
pub fn did_you_mean(key: &str, known: &[String]) -> Option<String> {
    let limit = (key.chars().count() / 4).max(2);
    known.iter().map(|k| (distance(key, k), k)).filter(|(d, _)| *d <= limit).min().map(|(_, k)| k.clone())
}

fn unknown_key(o: &Override, key: &str) -> String {
    match did_you_mean(key, &all_keys()) {
        Some(s) => format!("--set `{}`: unknown config `{key}`; did you mean `{s}`?", o.text),
        None => format!(
            "--set `{}`: unknown config `{key}`: not a setting ksim models (the book's appendix on the scenario format lists them)",
            o.text
        ),
    }
}

/// Check the value as Kafka's `ConfigDef` would, at this level.
fn check_value(o: &Override, level: Level, key: &str, version: KafkaVersion) -> Result<(), String> {
    let result: Result<(), ConfigError> = match level {
        Level::Cluster => BrokerConfig::default().set_checked(key, &o.value, version),
        Level::Topic => TopicConfig::default().set_checked(key, &o.value, version),
        Level::Producer => ProducerConfig::default().set_checked(key, &o.value, version),
        Level::Consumer => ConsumerConfig::default().set_checked(key, &o.value, version),
    };
    result.map_err(|e| format!("--set `{}`: `{}`: {}", o.text, e.key, e.message))
}

/// How a value is written in the scenario: as the file would have it.
fn config_value(text: &str) -> ConfigValue {
    match text {
        "true" => ConfigValue::Bool(true),
        "false" => ConfigValue::Bool(false),
        _ => text.parse::<i64>().map_or_else(|_| ConfigValue::Text(text.to_string()), ConfigValue::Int),
    }
}

fn client_levels(app: &App) -> Vec<Level> {
    let mut levels = Vec::new();
    if app.uses_producer() {
        levels.push(Level::Producer);
    }
    if app.uses_consumer() {
        levels.push(Level::Consumer);
    }
    levels
}

/// Split `NAME.key` where NAME is one of `names` (the longest that fits: names may hold dots).
fn split_name<'a>(rest: &'a str, names: &[&str]) -> Option<(&'a str, &'a str)> {
    names
        .iter()
        .filter(|n| rest.len() > n.len() + 1 && rest.starts_with(**n) && rest.as_bytes()[n.len()] == b'.')
        .max_by_key(|n| n.len())
        .map(|n| (&rest[..n.len()], &rest[n.len() + 1..]))
}

impl Scenario {
    /// Apply `--set` overrides in order (a later one wins), and remember their text.
    pub fn apply_overrides(&mut self, overrides: &[Override]) -> Result<(), String> {
        if overrides.len() > MAX_OVERRIDES {
            return Err(format!("{} --set overrides: at most {MAX_OVERRIDES}", overrides.len()));
        }
        let version = match &self.cluster.kafka_version {
            Some(v) => v.parse::<KafkaVersion>().map_err(|e| format!("cluster.kafka_version: {e}"))?,
            None => KafkaVersion::CURRENT,
        };
        for o in overrides {
            self.apply_override(o, version)?;
            self.overrides.push(o.text.clone());
        }
        Ok(())
    }

    fn apply_override(&mut self, o: &Override, version: KafkaVersion) -> Result<(), String> {
        let set = |configs: &mut Configs, key: &str| {
            configs.insert(key.to_string(), config_value(&o.value));
        };
        match o.target {
            Target::Everywhere => {
                let key = o.key_and_scope.as_str();
                let levels = levels_knowing(key, &o.value);
                if levels.is_empty() {
                    return Err(unknown_key(o, key));
                }
                let mut applied = 0;
                if levels.contains(&Level::Cluster) {
                    check_value(o, Level::Cluster, key, version)?;
                    set(&mut self.cluster.configs, key);
                    applied += 1;
                }
                if levels.contains(&Level::Topic) {
                    check_value(o, Level::Topic, key, version)?;
                    for topic in &mut self.topics {
                        set(&mut topic.configs, key);
                        applied += 1;
                    }
                }
                for client in &mut self.clients {
                    let here: Vec<Level> =
                        client_levels(&client.app).into_iter().filter(|l| levels.contains(l)).collect();
                    for level in &here {
                        check_value(o, *level, key, version)?;
                    }
                    if !here.is_empty() {
                        set(&mut client.configs, key);
                        applied += 1;
                    }
                }
                if applied == 0 {
                    let what: Vec<&str> = levels.iter().map(|l| l.name()).collect();
                    return Err(format!(
                        "--set `{}`: `{key}` is {}, and this scenario has nothing it applies to",
                        o.text,
                        what.join(" and ")
                    ));
                }
            }
            Target::Cluster => {
                let key = o.key_and_scope.as_str();
                let levels = levels_knowing(key, &o.value);
                if levels.is_empty() {
                    return Err(unknown_key(o, key));
                }
                if !levels.contains(&Level::Cluster) {
                    return Err(misplaced(o, key, "the cluster", &levels));
                }
                check_value(o, Level::Cluster, key, version)?;
                set(&mut self.cluster.configs, key);
            }
            Target::Topic => {
                let names: Vec<&str> = self.topics.iter().map(|t| t.name.as_str()).collect();
                let Some((name, key)) = split_name(&o.key_and_scope, &names) else {
                    return Err(format!(
                        "--set `{}`: expected topic:NAME.key=value with NAME one of the scenario's topics: {}",
                        o.text,
                        names.join(", ")
                    ));
                };
                let (name, key) = (name.to_string(), key.to_string());
                let levels = levels_knowing(&key, &o.value);
                if levels.is_empty() {
                    return Err(unknown_key(o, &key));
                }
                if !levels.contains(&Level::Topic) {
                    return Err(misplaced(o, &key, &format!("topic {name}"), &levels));
                }
                check_value(o, Level::Topic, &key, version)?;
                let topic = self.topics.iter_mut().find(|t| t.name == name).expect("split_name found it");
                set(&mut topic.configs, &key);
            }
            Target::Client => {
                let names: Vec<&str> = self.clients.iter().map(|c| c.name.as_str()).collect();
                let Some((name, key)) = split_name(&o.key_and_scope, &names) else {
                    return Err(format!(
                        "--set `{}`: expected client:NAME.key=value with NAME one of the scenario's clients: {}",
                        o.text,
                        names.join(", ")
                    ));
                };
                let (name, key) = (name.to_string(), key.to_string());
                let levels = levels_knowing(&key, &o.value);
                if levels.is_empty() {
                    return Err(unknown_key(o, &key));
                }
                let client = self.clients.iter_mut().find(|c| c.name == name).expect("split_name found it");
                let here: Vec<Level> = client_levels(&client.app).into_iter().filter(|l| levels.contains(l)).collect();
                if here.is_empty() {
                    return Err(misplaced(o, &key, &format!("client {name}"), &levels));
                }
                for level in &here {
                    check_value(o, *level, &key, version)?;
                }
                set(&mut client.configs, &key);
            }
        }
        Ok(())
    }
}

fn misplaced(o: &Override, key: &str, place: &str, levels: &[Level]) -> String {
    let what: Vec<&str> = levels.iter().map(|l| l.name()).collect();
    let hint = match levels.first() {
        Some(Level::Cluster) => format!("cluster.{key}"),
        Some(Level::Topic) => format!("topic:NAME.{key}"),
        _ => format!("client:NAME.{key}"),
    };
    format!(
        "--set `{}`: `{key}` is {}, not something {place} has; use `{hint}=...`, or a bare `{key}=...` for every level that has it",
        o.text,
        what.join(" and ")
    )
}

/// How a `--set` is written on a command line so a shell gives it back unchanged.
pub fn shell_word(text: &str) -> String {
    let plain = text.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:=,/@+%".contains(c));
    if plain && !text.is_empty() {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// ` --set a=1 --set b=2`, for replay lines.
pub fn replay_args(overrides: &[String]) -> String {
    overrides.iter().map(|o| format!(" --set {}", shell_word(o))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        Scenario::parse(
            "test.ron",
            r#"(
                title: "t", duration_ms: 1000,
                cluster: (brokers: [1, 2, 3], configs: {"min.insync.replicas": 1}),
                topics: [(name: "orders", partitions: 1, replication_factor: 3),
                         (name: "my.events", partitions: 1, replication_factor: 3)],
                clients: [(name: "checkout", app: Producer(topic: "orders", records: 1), configs: {"acks": 1}),
                          (name: "billing", app: GroupConsumer(topics: ["orders"]), configs: {"group.id": "billing"})],
            )"#,
        )
        .expect("test scenario parses")
    }

    fn set(s: &mut Scenario, texts: &[&str]) -> Result<(), String> {
        let overrides: Vec<Override> = texts.iter().map(|t| Override::parse(t)).collect::<Result<_, _>>()?;
        s.apply_overrides(&overrides)
    }

    #[test]
    fn a_bare_producer_key_goes_to_every_producer_and_nowhere_else() {
        let mut s = scenario();
        set(&mut s, &["acks=all"]).unwrap();
        assert_eq!(s.clients[0].configs.get("acks"), Some(&ConfigValue::Text("all".into())));
        assert_eq!(s.clients[1].configs.get("acks"), None, "a consumer has no acks");
        assert_eq!(s.cluster.configs.get("acks"), None);
        assert_eq!(s.overrides, vec!["acks=all".to_string()]);
        s.resolve().expect("the overridden scenario resolves");
    }

    #[test]
    fn a_bare_topic_key_goes_to_the_cluster_and_every_topic() {
        let mut s = scenario();
        set(&mut s, &["min.insync.replicas=2"]).unwrap();
        assert_eq!(s.cluster.configs.get("min.insync.replicas"), Some(&ConfigValue::Int(2)));
        assert!(s.topics.iter().all(|t| t.configs.get("min.insync.replicas") == Some(&ConfigValue::Int(2))));
    }

    #[test]
    fn scoped_overrides_reach_one_place_and_names_may_hold_dots() {
        let mut s = scenario();
        set(&mut s, &["topic:my.events.retention.ms=5000", "client:billing.auto.offset.reset=latest"]).unwrap();
        assert_eq!(s.topics[1].configs.get("retention.ms"), Some(&ConfigValue::Int(5000)));
        assert_eq!(s.topics[0].configs.get("retention.ms"), None);
        assert_eq!(s.clients[1].configs.get("auto.offset.reset"), Some(&ConfigValue::Text("latest".into())));
        set(&mut s, &["cluster.unclean.leader.election.enable=true"]).unwrap();
        assert_eq!(s.cluster.configs.get("unclean.leader.election.enable"), Some(&ConfigValue::Bool(true)));
    }

    #[test]
    fn a_typo_gets_did_you_mean() {
        let err = set(&mut scenario(), &["min.insync.replica=2"]).unwrap_err();
        assert!(err.contains("did you mean `min.insync.replicas`?"), "{err}");
        let err = set(&mut scenario(), &["client:checkout.ackss=1"]).unwrap_err();
        assert!(err.contains("did you mean `acks`?"), "{err}");
    }

    #[test]
    fn a_misplaced_key_says_where_it_belongs() {
        let err = set(&mut scenario(), &["topic:orders.acks=1"]).unwrap_err();
        assert!(err.contains("`acks` is a producer config, not something topic orders has"), "{err}");
        let err = set(&mut scenario(), &["client:billing.acks=1"]).unwrap_err();
        assert!(err.contains("not something client billing has"), "{err}");
        let err = set(&mut scenario(), &["cluster.auto.offset.reset=latest"]).unwrap_err();
        assert!(err.contains("a consumer config"), "{err}");
    }

    #[test]
    fn unknown_names_and_bad_values_are_refused_naming_the_set() {
        let err = set(&mut scenario(), &["topic:payments.retention.ms=1"]).unwrap_err();
        assert!(err.contains("one of the scenario's topics: orders, my.events"), "{err}");
        let err = set(&mut scenario(), &["max.in.flight.requests.per.connection=0"]).unwrap_err();
        assert!(err.starts_with("--set `max.in.flight.requests.per.connection=0`:"), "{err}");
        assert!(err.contains("at least 1"), "{err}");
        assert!(Override::parse("acks").unwrap_err().contains("expected key=value"));
        assert!(Override::parse("=1").unwrap_err().contains("key is missing"));
    }

    #[test]
    fn values_keep_commas_and_equals_and_replay_quotes_what_a_shell_would_split() {
        let o = Override::parse("client:checkout.acks=all").unwrap();
        assert_eq!(o.value, "all");
        assert_eq!(shell_word("acks=all"), "acks=all");
        assert_eq!(shell_word("x=a b"), "'x=a b'");
        assert_eq!(
            replay_args(&["acks=1".into(), "min.insync.replicas=2".into()]),
            " --set acks=1 --set min.insync.replicas=2"
        );
    }

    #[test]
    fn the_cross_settings_check_still_runs_when_the_scenario_resolves() {
        // acks=1 with an explicit enable.idempotence=true is refused by the producer's
        // constructor (ProducerConfig.postProcessAndValidateIdempotenceConfigs).
        let mut s = scenario();
        set(&mut s, &["enable.idempotence=true"]).unwrap();
        let err = s.resolve().unwrap_err();
        assert!(err.contains("idempotence"), "{err}");
    }
}
