//! The transformation chain of one connector, built from its configuration the way Kafka's
//! Connect runtime builds it, and applied to records one by one.
//!
//! Configuration (`connect/runtime/.../ConnectorConfig.java`):
//! - `transforms=a,b` names the transformations, applied in that order; `transforms.a.type` is
//!   each one's class and `transforms.a.<key>` its settings. `predicates=p` and
//!   `predicates.p.type` / `predicates.p.<key>` likewise name predicates (KIP-585);
//!   `transforms.a.predicate=p` makes `a` apply only to records `p` holds for, and
//!   `transforms.a.negate=true` only to those it does not.
//! - Kafka checks in three rounds, and the first error stops it: `ConnectorConfig.enrich` loads
//!   each alias's class (transforms, then predicates); `ConfigDef.parse` of the enriched
//!   definition checks the alias lists, then each alias's settings under their full names
//!   (`transforms.mask.fields`); `ConnectorConfig.transformationStages` configures each
//!   transformation (its own checks, under the short names) and finds its predicate.
//!
//! Applying (`TransformationChain.apply`, `TransformationStage.apply`): each stage in order
//! applies its transformation when it has no predicate or when `negate XOR predicate.test(r)`;
//! a transformation that returns null drops the record and ends the chain.

use super::config::{self, java_trim, parse_type, with_prefix, ConfigException, Default, Key, Parsed, Props, Type};
use super::error::{BuildError, RecordError};
use super::predicates::{self, Predicate};
use super::record::Record;
use super::transforms::{self, Class, Kind, Side, Transformation};

/// A configured chain of transformations.
#[derive(Clone, Debug)]
pub struct Chain {
    stages: Vec<Stage>,
}

/// `TransformationStage`: a transformation and the predicate that guards it.
#[derive(Clone, Debug)]
struct Stage {
    transformation: Transformation,
    predicate: Option<Predicate>,
    negate: bool,
}

/// A transform alias whose class loaded.
struct Loaded {
    alias: String,
    kind: Kind,
    side: Option<Side>,
}

impl Chain {
    /// The chain a connector with these settings runs. Only `transforms*` and `predicates*` keys
    /// are read, so a whole connector configuration can be passed.
    pub fn from_properties(props: &Props) -> Result<Chain, BuildError> {
        let transform_aliases = alias_list(props, "transforms");
        let predicate_aliases = alias_list(props, "predicates");

        // Round 1, ConnectorConfig.enrich: load every class.
        let mut transforms_loaded = Vec::new();
        for alias in unique(&transform_aliases) {
            let (kind, side) = load_transformation(props, alias)?;
            transforms_loaded.push(Loaded { alias: alias.clone(), kind, side });
        }
        let mut predicates_loaded = Vec::new();
        for alias in unique(&predicate_aliases) {
            predicates_loaded.push((alias.clone(), load_predicate(props, alias)?));
        }

        // Round 2, ConfigDef.parse of the enriched definition, in its key order.
        check_unique("transforms", &transform_aliases)?;
        check_unique("predicates", &predicate_aliases)?;
        for loaded in &transforms_loaded {
            let prefix = format!("transforms.{}.", loaded.alias);
            // The type's validator: EnrichablePlugin.validateProps.
            if props.contains_key(&format!("{prefix}negate")) && !props.contains_key(&format!("{prefix}predicate")) {
                return Err(ConfigException::new(format!(
                    "Config '{prefix}negate' was provided but there is no config '{prefix}predicate' defining a predicate to be negated."
                ))
                .into());
            }
            let own = with_prefix(props, &prefix);
            config::parse(STAGE_KEYS, &own, &prefix)?;
            let keys: Vec<Key> = transforms::config_def(loaded.kind)
                .iter()
                .filter(|k| k.name != "predicate" && k.name != "negate")
                .copied()
                .collect();
            config::parse(&keys, &own, &prefix)?;
        }
        for (alias, kind) in &predicates_loaded {
            let prefix = format!("predicates.{alias}.");
            config::parse(predicates::config_def(*kind), &with_prefix(props, &prefix), &prefix)?;
        }

        // Round 3, ConnectorConfig.transformationStages.
        let mut stages = Vec::new();
        for loaded in &transforms_loaded {
            let mut own = with_prefix(props, &format!("transforms.{}.", loaded.alias));
            let predicate_alias = own.remove("predicate");
            let negate = own.remove("negate");
            let values = config::parse(transforms::config_def(loaded.kind), &own, "")?;
            let transformation = Transformation::configure(loaded.kind, loaded.side, &values)?;
            let predicate = match predicate_alias {
                None => None,
                Some(alias) => {
                    // AbstractConfig.getClass on a key the enriched definition lacks: the
                    // alias is not listed in `predicates`.
                    let Some((_, kind)) = predicates_loaded.iter().find(|(a, _)| *a == alias) else {
                        return Err(
                            ConfigException::new(format!("Unknown configuration 'predicates.{alias}.type'")).into()
                        );
                    };
                    let values = config::parse(
                        predicates::config_def(*kind),
                        &with_prefix(props, &format!("predicates.{alias}.")),
                        "",
                    )?;
                    Some(Predicate::configure(*kind, &values)?)
                }
            };
            // `Boolean.parseBoolean(negate.toString())` on the text as written: untrimmed, so
            // ` true` (which round 2 accepted, trimmed) does not negate.
            let negate = negate.is_some_and(|n| n.eq_ignore_ascii_case("true"));
            stages.push(Stage { transformation, predicate, negate });
        }
        Ok(Chain { stages })
    }

    /// How many transformations the chain has.
    pub fn len(&self) -> usize {
        self.stages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Run the record through the chain: `Ok(None)` when a transformation dropped it.
    pub fn apply(&self, mut record: Record) -> Result<Option<Record>, RecordError> {
        for stage in &self.stages {
            let applies = match &stage.predicate {
                None => true,
                Some(predicate) => stage.negate ^ predicate.test(&record),
            };
            if !applies {
                continue;
            }
            match stage.transformation.apply(record)? {
                Some(next) => record = next,
                None => return Ok(None),
            }
        }
        Ok(Some(record))
    }
}

/// The settings every transformation gets implicitly (`ConnectorConfig.enrich`).
const STAGE_KEYS: &[Key] =
    &[Key::new("predicate", Type::String, Default::Null), Key::new("negate", Type::Boolean, Default::Boolean(false))];

/// `transforms` / `predicates` as a LIST (absent: none).
fn alias_list(props: &Props, key: &str) -> Vec<String> {
    match props.get(key).map(|raw| parse_type(key, raw, Type::List)) {
        Some(Ok(Parsed::List(items))) => items,
        _ => Vec::new(),
    }
}

/// `new LinkedHashSet<>(aliases)`.
fn unique(aliases: &[String]) -> Vec<&String> {
    let mut out: Vec<&String> = Vec::new();
    for alias in aliases {
        if !out.contains(&alias) {
            out.push(alias);
        }
    }
    out
}

/// `ConnectorConfig.aliasValidator`.
fn check_unique(key: &str, aliases: &[String]) -> Result<(), ConfigException> {
    if unique(aliases).len() < aliases.len() {
        return Err(ConfigException::invalid(key, &format!("[{}]", aliases.join(", ")), "Duplicate alias provided."));
    }
    Ok(())
}

/// Load `transforms.<alias>.type` (`ConfigDef.parseType(.., CLASS)` and
/// `EnrichablePlugin.getConfigDefFromConfigProvidingClass`).
fn load_transformation(props: &Props, alias: &str) -> Result<(Kind, Option<Side>), BuildError> {
    let key = format!("transforms.{alias}.type");
    let Some(raw) = props.get(&key) else {
        return Err(ConfigException::invalid(&key, "null", "Not a Transformation").into());
    };
    let name = java_trim(raw);
    match transforms::class(name) {
        Class::Transformation(kind, side) => Ok((kind, side)),
        // Utils.ensureConcreteSubclass.
        Class::Abstract(children) => {
            Err(ConfigException::new(format!("This class is abstract and cannot be created. Did you mean {children}?"))
                .into())
        }
        Class::NotInKsim => Err(BuildError::Unsupported(format!(
            "the transformation {name} (a Kafka built-in that ksim does not implement yet)"
        ))),
        Class::Unknown if predicates::class(name).is_some() => {
            Err(ConfigException::new(format!("Class class {name} does not implement the Transformation interface"))
                .into())
        }
        Class::Unknown => Err(unknown_class(&key, raw)),
    }
}

/// Load `predicates.<alias>.type`.
fn load_predicate(props: &Props, alias: &str) -> Result<predicates::Kind, BuildError> {
    let key = format!("predicates.{alias}.type");
    let Some(raw) = props.get(&key) else {
        return Err(ConfigException::invalid(&key, "null", "Not a Predicate").into());
    };
    let name = java_trim(raw);
    if let Some(kind) = predicates::class(name) {
        return Ok(kind);
    }
    match transforms::class(name) {
        Class::Unknown => Err(unknown_class(&key, raw)),
        _ => Err(ConfigException::new(format!("Class class {name} does not implement the Predicate interface")).into()),
    }
}

/// A class Kafka's class loader would not find. (A custom transform on the worker's plugin path
/// would load in Kafka; ksim knows only the built-ins.)
fn unknown_class(key: &str, raw: &str) -> BuildError {
    ConfigException::invalid(key, raw, &format!("Class {raw} could not be found.")).into()
}
