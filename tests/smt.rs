//! Single message transforms: golden cases that reproduce Kafka's own unit tests
//! (`connect/transforms/src/test/java/org/apache/kafka/connect/transforms/`, schemaless cases),
//! each named after the Kafka test it follows, then `ksim smt`'s command-line contract, run on
//! the built binary.
//!
//! Kafka's tests configure a transform directly, with its short key names; here every case goes
//! through a connector's chain (`transforms=t`, `transforms.t.type=...`), as a worker builds it,
//! so a message that Kafka's enriched connector configuration words with the full key name
//! (`transforms.t.fields`) is checked with it.

mod support;

use ksim_cluster::connect::smt::{BuildError, Chain, Map, Props, Record, RecordError, Value};
use std::path::Path;

const T: &str = "org.apache.kafka.connect.transforms.";
const P: &str = "org.apache.kafka.connect.transforms.predicates.";

fn props(pairs: &[(&str, &str)]) -> Props {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// A chain of one transform, `t`, of class `class` (short name after the package), with settings.
fn one(class: &str, settings: &[(&str, &str)]) -> Chain {
    try_one(class, settings).unwrap_or_else(|e| panic!("{class}: {e}"))
}

fn try_one(class: &str, settings: &[(&str, &str)]) -> Result<Chain, BuildError> {
    let mut p = props(&[("transforms", "t")]);
    p.insert("transforms.t.type".into(), format!("{T}{class}"));
    for (k, v) in settings {
        p.insert(format!("transforms.t.{k}"), v.to_string());
    }
    Chain::from_properties(&p)
}

fn config_error(class: &str, settings: &[(&str, &str)]) -> String {
    match try_one(class, settings) {
        Err(BuildError::Config(e)) => e.message,
        other => panic!("{class} {settings:?}: expected a ConfigException, got {other:?}"),
    }
}

fn json(text: &str) -> Value {
    Value::from_json(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn map(pairs: Vec<(&str, Value)>) -> Value {
    Value::Map(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map>())
}

/// `new SinkRecord("test", 0, null, key, null, value, 0)`.
fn sink(key: Value, value: Value) -> Record {
    Record::sink("test", 0, 0, key, value, None)
}

/// `new SourceRecord(null, null, "test", 0, null, key, null, value, 123L)`-style.
fn source(key: Value, value: Value, timestamp: Option<i64>) -> Record {
    Record::source("test", Some(0), key, value, timestamp)
}

fn applied(chain: &Chain, record: Record) -> Record {
    chain.apply(record).expect("no error").expect("not dropped")
}

fn data_error(chain: &Chain, record: Record) -> String {
    match chain.apply(record) {
        Err(RecordError { exception: "DataException", message }) => message,
        other => panic!("expected a DataException, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// MaskField
// ---------------------------------------------------------------------------------------------

/// MaskFieldTest's VALUES, the types JSON can carry plus the ones a Cast makes.
fn mask_values() -> Value {
    map(vec![
        ("magic", Value::Int32(42)),
        ("bool", Value::Boolean(true)),
        ("byte", Value::Int8(42)),
        ("short", Value::Int16(42)),
        ("int", Value::Int32(42)),
        ("long", Value::Int64(42)),
        ("float", Value::Float32(42.0)),
        ("double", Value::Float64(42.0)),
        ("string", Value::String("55.121.20.20".into())),
        ("list", Value::Array(vec![Value::Int32(42)])),
        ("map", map(vec![("key", Value::String("value".into()))])),
    ])
}

// MaskFieldTest.testSchemaless: each type gets its "null value"; the unlisted field stays.
#[test]
fn mask_field_schemaless_replaces_each_value_with_its_types_null_value() {
    let chain = one("MaskField$Value", &[("fields", "bool,byte,short,int,long,float,double,string,list,map")]);
    let out = applied(&chain, sink(Value::Null, mask_values()));
    assert_eq!(
        out.value,
        map(vec![
            ("magic", Value::Int32(42)),
            ("bool", Value::Boolean(false)),
            ("byte", Value::Int8(0)),
            ("short", Value::Int16(0)),
            ("int", Value::Int32(0)),
            ("long", Value::Int64(0)),
            ("float", Value::Float32(0.0)),
            ("double", Value::Float64(0.0)),
            ("string", Value::String(String::new())),
            ("list", Value::Array(vec![])),
            ("map", map(vec![])),
        ])
    );
}

// MaskFieldTest.testSchemalessWithReplacement: the replacement converted to each numeric type,
// or taken as it is for a string.
#[test]
fn mask_field_replacement_is_converted_to_the_fields_type() {
    for (field, expected) in [
        ("short", Value::Int16(123)),
        ("byte", Value::Int8(123)),
        ("int", Value::Int32(123)),
        ("long", Value::Int64(123)),
        ("float", Value::Float32(123.0)),
        ("double", Value::Float64(123.0)),
        ("string", Value::String("123".into())),
    ] {
        let chain = one("MaskField$Value", &[("fields", field), ("replacement", "123")]);
        let Value::Map(out) = applied(&chain, sink(Value::Null, mask_values())).value else { panic!() };
        assert_eq!(out.get(field), Some(&expected), "{field}");
    }
}

// MaskFieldTest.testSchemalessUnsupportedReplacementType: booleans, lists and maps take no
// replacement.
#[test]
fn mask_field_replacement_refuses_booleans_lists_and_maps() {
    for (field, class) in [("bool", "java.lang.Boolean"), ("list", "java.util.ArrayList"), ("map", "java.util.HashMap")]
    {
        let chain = one("MaskField$Value", &[("fields", field), ("replacement", "false")]);
        assert_eq!(
            data_error(&chain, sink(Value::Null, mask_values())),
            format!("Cannot mask value of type class {class} with custom replacement.")
        );
    }
}

// MaskFieldTest.testReplacementTypeMismatch: text that is not a number, for a numeric field.
#[test]
fn mask_field_replacement_that_is_not_a_number_fails_numeric_fields() {
    for field in ["byte", "short", "int", "long", "float", "double"] {
        let chain = one("MaskField$Value", &[("fields", field), ("replacement", "foo")]);
        assert_eq!(
            data_error(&chain, sink(Value::Null, mask_values())),
            "Unable to convert foo (class java.lang.String) to a number",
            "{field}"
        );
    }
    // A string field takes it; the int listed after it still fails the record.
    let chain = one("MaskField$Value", &[("fields", "string,int"), ("replacement", "foo")]);
    assert!(chain.apply(sink(Value::Null, mask_values())).is_err());
}

// MaskFieldTest.testEmptyStringReplacementValue: ConfigDef.NonEmptyString.
#[test]
fn mask_field_refuses_an_empty_replacement() {
    assert_eq!(
        config_error("MaskField$Value", &[("fields", "short"), ("replacement", "")]),
        "Invalid value  for configuration transforms.t.replacement: String must be non-empty"
    );
    assert_eq!(
        config_error("MaskField$Value", &[]),
        "Missing required configuration \"transforms.t.fields\" which has no default value."
    );
    assert_eq!(
        config_error("MaskField$Value", &[("fields", "")]),
        "Invalid value [] for configuration transforms.t.fields: Empty list"
    );
}

// MaskField.applySchemaless: a listed field the value lacks is put as null; a value that is
// not a map is refused.
#[test]
fn mask_field_adds_absent_fields_as_null_and_needs_a_map() {
    let chain = one("MaskField$Value", &[("fields", "ip,missing")]);
    let out = applied(&chain, sink(Value::Null, json(r#"{"ip": "1.2.3.95"}"#)));
    assert_eq!(out.value.to_json(), r#"{"ip":"","missing":null}"#);
    assert_eq!(
        data_error(&chain, sink(Value::Null, Value::Null)),
        "Only Map objects supported in absence of schema for [mask fields], found: null"
    );
}

// ---------------------------------------------------------------------------------------------
// ReplaceField
// ---------------------------------------------------------------------------------------------

// ReplaceFieldTest.schemaless.
#[test]
fn replace_field_excludes_and_renames() {
    let chain = one("ReplaceField$Value", &[("exclude", "dont"), ("renames", "abc:xyz,foo:bar")]);
    let out = applied(&chain, sink(Value::Null, json(r#"{"dont": "whatever", "abc": 42, "foo": true, "etc": "etc"}"#)));
    assert_eq!(out.value.to_json(), r#"{"xyz":42,"bar":true,"etc":"etc"}"#);
}

// ReplaceFieldTest.tombstoneSchemaless.
#[test]
fn replace_field_passes_a_tombstone() {
    let chain = one("ReplaceField$Value", &[("include", "abc,foo"), ("renames", "abc:xyz,foo:bar")]);
    assert_eq!(applied(&chain, sink(Value::Null, Value::Null)).value, Value::Null);
}

// ReplaceFieldTest (schemaless, include): only the listed fields stay; exclude wins over include.
#[test]
fn replace_field_include_keeps_only_the_listed_fields() {
    let chain = one("ReplaceField$Value", &[("include", "abc,foo"), ("exclude", "foo"), ("renames", "abc:xyz")]);
    let out = applied(&chain, sink(Value::Null, json(r#"{"dont": 1, "abc": 42, "foo": true}"#)));
    assert_eq!(out.value.to_json(), r#"{"xyz":42}"#);
}

// ReplaceField.parseRenameMappings; the pre-2.7 `blacklist` was removed in Kafka 4.0.
#[test]
fn replace_field_refuses_a_bad_rename_and_ignores_blacklist() {
    assert_eq!(
        config_error("ReplaceField$Value", &[("renames", "abc:xyz,foo")]),
        "Invalid value [abc:xyz, foo] for configuration renames: Invalid rename mapping: foo"
    );
    let chain = one("ReplaceField$Value", &[("blacklist", "a")]);
    assert_eq!(applied(&chain, sink(Value::Null, json(r#"{"a": 1}"#))).value.to_json(), r#"{"a":1}"#);
}

// ---------------------------------------------------------------------------------------------
// InsertField
// ---------------------------------------------------------------------------------------------

const INSERT_ALL: &[(&str, &str)] = &[
    ("topic.field", "topic_field!"),
    ("partition.field", "partition_field"),
    ("timestamp.field", "timestamp_field?"),
    ("static.field", "instance_id"),
    ("static.value", "my-instance-id"),
];

// InsertFieldTest.schemalessInsertConfiguredFields.
#[test]
fn insert_field_schemaless_inserts_the_configured_fields() {
    let chain = one("InsertField$Value", INSERT_ALL);
    let out = applied(&chain, source(Value::Null, json(r#"{"magic": 42}"#), Some(123)));
    assert_eq!(
        out.value,
        map(vec![
            ("magic", Value::Int64(42)),
            ("topic_field", Value::String("test".into())),
            ("partition_field", Value::Int32(0)),
            ("timestamp_field", Value::Int64(123)),
            ("instance_id", Value::String("my-instance-id".into())),
        ])
    );
}

// InsertFieldTest.insertConfiguredFieldsIntoTombstoneEventWithoutSchemaLeavesValueUnchanged.
#[test]
fn insert_field_leaves_a_tombstone_unchanged() {
    let chain = one("InsertField$Value", INSERT_ALL);
    assert_eq!(applied(&chain, source(Value::Null, Value::Null, None)).value, Value::Null);
}

// InsertFieldTest.insertKeyFieldsIntoTombstoneEvent: no timestamp, no timestamp field.
#[test]
fn insert_field_key_without_timestamp() {
    let chain = one("InsertField$Key", INSERT_ALL);
    let out = applied(&chain, source(json(r#"{"magic": 42}"#), Value::Null, None));
    assert_eq!(
        out.key.to_json(),
        r#"{"magic":42,"topic_field":"test","partition_field":0,"instance_id":"my-instance-id"}"#
    );
    assert_eq!(out.value, Value::Null);
}

// InsertFieldTest.insertIntoNullKeyLeavesRecordUnchanged.
#[test]
fn insert_field_leaves_a_null_key_unchanged() {
    let chain = one("InsertField$Key", INSERT_ALL);
    let record = source(Value::Null, json(r#"{"magic": 42}"#), None);
    assert_eq!(applied(&chain, record.clone()), record);
}

// InsertFieldTest.topLevelStructRequired's schemaless twin, and offset.field on a source record
// (Requirements.requireSinkRecord): an offset exists only on sink records.
#[test]
fn insert_field_offset_only_on_sink_records() {
    let chain = one("InsertField$Value", &[("offset.field", "offset")]);
    assert_eq!(
        data_error(&chain, source(Value::Null, json("{}"), None)),
        "Only SinkRecord supported for [field insertion], found: org.apache.kafka.connect.source.SourceRecord"
    );
    let out = applied(&chain, Record::sink("test", 0, 42, Value::Null, json("{}"), None));
    assert_eq!(out.value.to_json(), r#"{"offset":42}"#);
    let topic_only = one("InsertField$Value", &[("topic.field", "topic_field")]);
    assert_eq!(
        data_error(&topic_only, source(Value::Null, Value::Int64(42), None)),
        "Only Map objects supported in absence of schema for [field insertion], found: java.lang.Long"
    );
}

// InsertField.configure.
#[test]
fn insert_field_needs_something_to_insert() {
    assert_eq!(config_error("InsertField$Value", &[]), "No field insertion configured");
}

// ---------------------------------------------------------------------------------------------
// Cast
// ---------------------------------------------------------------------------------------------

// CastTest.testConfigEmpty, testConfigInvalidSchemaType, testConfigInvalidTargetType,
// testUnsupportedTargetType, testConfigInvalidMap, testConfigMixWholeAndFieldTransformation.
#[test]
fn cast_refuses_bad_specs() {
    assert_eq!(config_error("Cast$Key", &[("spec", "")]), "Must specify at least one field to cast.");
    assert_eq!(config_error("Cast$Key", &[("spec", "foo:faketype")]), "Invalid type found in casting spec: faketype");
    let to_array = "Cast transformation does not support casting to ARRAY; supported types are \
                    [INT8, INT16, INT32, INT64, FLOAT32, FLOAT64, BOOLEAN, STRING]";
    assert_eq!(config_error("Cast$Key", &[("spec", "foo:array")]), to_array);
    assert_eq!(config_error("Cast$Key", &[("spec", "array")]), to_array);
    assert!(config_error("Cast$Key", &[("spec", "foo:bytes")]).contains("does not support casting to BYTES"));
    assert_eq!(
        config_error("Cast$Key", &[("spec", "foo:int8:extra")]),
        "Invalid value [foo:int8:extra] for configuration renames: Invalid rename mapping: foo:int8:extra"
    );
    assert_eq!(
        config_error("Cast$Key", &[("spec", "foo:int8,int32")]),
        "Cast transformations that specify a type to cast the entire value to may only specify a single cast in their spec"
    );
}

// CastTest.castNullValueRecordSchemaless, castNullKeyRecordSchemaless.
#[test]
fn cast_passes_null_keys_and_values() {
    let chain = one("Cast$Value", &[("spec", "foo:int64")]);
    let record = sink(Value::Null, Value::Null);
    assert_eq!(applied(&chain, record.clone()), record);
    let chain = one("Cast$Key", &[("spec", "foo:int64")]);
    assert_eq!(applied(&chain, record.clone()), record);
}

// CastTest.castWholeRecordValueSchemalessInt8 ... String, castWholeRecordKeySchemaless.
#[test]
fn cast_whole_schemaless_value() {
    for (spec, input, expected) in [
        ("int8", Value::Int32(42), Value::Int8(42)),
        ("int16", Value::Int32(42), Value::Int16(42)),
        ("int32", Value::Int32(42), Value::Int32(42)),
        ("int64", Value::Int32(42), Value::Int64(42)),
        ("float32", Value::Int32(42), Value::Float32(42.0)),
        ("float64", Value::Int32(42), Value::Float64(42.0)),
        ("boolean", Value::Int32(42), Value::Boolean(true)),
        ("boolean", Value::Int32(0), Value::Boolean(false)),
        ("string", Value::Int32(42), Value::String("42".into())),
    ] {
        let chain = one("Cast$Value", &[("spec", spec)]);
        assert_eq!(applied(&chain, sink(Value::Null, input)).value, expected, "{spec}");
    }
    let chain = one("Cast$Key", &[("spec", "int8")]);
    assert_eq!(applied(&chain, sink(Value::Int32(42), Value::Null)).key, Value::Int8(42));
}

// CastTest.castWholeRecordValueSchemalessUnsupportedType.
#[test]
fn cast_refuses_a_list() {
    let chain = one("Cast$Value", &[("spec", "int8")]);
    assert_eq!(
        data_error(&chain, sink(Value::Null, json(r#"["foo"]"#))),
        "Cast transformation does not support casting from ARRAY; supported types are \
         [INT8, INT16, INT32, INT64, FLOAT32, FLOAT64, BOOLEAN, STRING, BYTES]"
    );
}

// CastTest.castFieldsSchemaless.
#[test]
fn cast_fields_schemaless() {
    let chain = one(
        "Cast$Value",
        &[("spec", "int8:int16,int16:int32,int32:int64,int64:boolean,float32:float64,float64:boolean,boolean:int8,string:int32")],
    );
    let value = map(vec![
        ("int8", Value::Int8(8)),
        ("int16", Value::Int16(16)),
        ("int32", Value::Int32(32)),
        ("int64", Value::Int64(64)),
        ("float32", Value::Float32(32.0)),
        ("float64", Value::Float64(-64.0)),
        ("boolean", Value::Boolean(true)),
        ("string", Value::String("42".into())),
    ]);
    let out = applied(&chain, source(Value::Null, value, None));
    assert_eq!(
        out.value,
        map(vec![
            ("int8", Value::Int16(8)),
            ("int16", Value::Int32(16)),
            ("int32", Value::Int64(32)),
            ("int64", Value::Boolean(true)),
            ("float32", Value::Float64(32.0)),
            ("float64", Value::Boolean(true)),
            ("boolean", Value::Int8(1)),
            ("string", Value::Int32(42)),
        ])
    );
}

// Cast.castValueToType: Java's narrowing and parsing.
#[test]
fn cast_narrows_and_parses_as_java_does() {
    let cast = |spec: &str, value: Value| {
        let chain = one("Cast$Value", &[("spec", spec)]);
        chain.apply(sink(Value::Null, value)).map(|r| r.expect("kept").value)
    };
    assert_eq!(cast("int8", Value::Int64(300)), Ok(Value::Int8(44)));
    assert_eq!(cast("int8", Value::Float64(300.7)), Ok(Value::Int8(44)));
    assert_eq!(cast("boolean", Value::Float64(0.5)), Ok(Value::Boolean(false)));
    assert_eq!(cast("string", Value::Float64(1e10)), Ok(Value::String("1.0E10".into())));
    assert_eq!(cast("float64", Value::String(" 2.5 ".into())), Ok(Value::Float64(2.5)));
    assert_eq!(cast("boolean", Value::String("TRUE".into())), Ok(Value::Boolean(true)));
    assert_eq!(
        cast("int8", Value::String("300".into())).unwrap_err().message,
        "Value (300) was out of range for requested data type"
    );
}

// ---------------------------------------------------------------------------------------------
// ValueToKey, ExtractField, HoistField, Flatten
// ---------------------------------------------------------------------------------------------

// ValueToKeyTest.schemaless.
#[test]
fn value_to_key_schemaless() {
    let chain = one("ValueToKey", &[("fields", "a,b")]);
    let out = applied(&chain, Record::sink("", 0, 0, Value::Null, json(r#"{"a": 1, "b": 2, "c": 3}"#), None));
    assert_eq!(out.key.to_json(), r#"{"a":1,"b":2}"#);
    assert_eq!(
        data_error(&chain, sink(Value::Null, Value::Null)),
        "Only Map objects supported in absence of schema for [copying fields from value to key], found: null"
    );
}

// ExtractFieldTest.schemaless, nullSchemaless, schemalessAndNestedPath.
#[test]
fn extract_field_schemaless() {
    let chain = one("ExtractField$Key", &[("field", "magic")]);
    assert_eq!(applied(&chain, sink(json(r#"{"magic": 42}"#), Value::Null)).key, Value::Int64(42));
    assert_eq!(applied(&chain, sink(Value::Null, Value::Null)).key, Value::Null);
    let nested = one("ExtractField$Key", &[("field", "magic.foo"), ("field.syntax.version", "V2")]);
    assert_eq!(applied(&nested, sink(json(r#"{"magic": {"foo": 42}}"#), Value::Null)).key, Value::Int64(42));
    // V1 takes the dotted name as one field.
    let v1 = one("ExtractField$Key", &[("field", "magic.foo")]);
    assert_eq!(applied(&v1, sink(json(r#"{"magic.foo": 7}"#), Value::Null)).key, Value::Int64(7));
    assert_eq!(
        config_error("ExtractField$Key", &[("field", "x"), ("field.syntax.version", "v3")]),
        "Invalid value v3 for configuration transforms.t.field.syntax.version: String must be one of (case insensitive): V1, V2"
    );
}

// HoistFieldTest.schemaless.
#[test]
fn hoist_field_schemaless() {
    let chain = one("HoistField$Key", &[("field", "magic")]);
    assert_eq!(applied(&chain, sink(Value::Int64(42), Value::Null)).key.to_json(), r#"{"magic":42}"#);
}

// FlattenTest.testNestedMapWithDelimiter, testSchemalessArray, tombstoneEventWithoutSchemaShouldPassThrough.
#[test]
fn flatten_schemaless() {
    let chain = one("Flatten$Value", &[("delimiter", "#")]);
    let out = applied(&chain, sink(Value::Null, json(r#"{"A": {"B": {"int8": 8, "array": [1, 2]}}, "n": null}"#)));
    assert_eq!(out.value.to_json(), r#"{"A#B#int8":8,"A#B#array":[1,2],"n":null}"#);
    assert_eq!(applied(&chain, sink(Value::Null, Value::Null)).value, Value::Null);
}

// ---------------------------------------------------------------------------------------------
// Routers and Filter
// ---------------------------------------------------------------------------------------------

// RegexRouterTest: staticReplacement, doesntMatch, identity, addPrefix, addSuffix, slice.
#[test]
fn regex_router() {
    for (regex, replacement, topic, expected) in [
        ("foo", "bar", "foo", "bar"),
        ("foo", "bar", "orig", "orig"),
        ("(.*)", "$1", "orig", "orig"),
        ("(.*)", "prefix-$1", "orig", "prefix-orig"),
        ("(.*)", "$1-suffix", "orig", "orig-suffix"),
        (r"(.*)-(\d\d\d\d\d\d\d\d)", "$1", "index-20160117", "index"),
    ] {
        let chain = one("RegexRouter", &[("regex", regex), ("replacement", replacement)]);
        let out = applied(&chain, Record::sink(topic, 0, 0, Value::Null, Value::Null, None));
        assert_eq!(out.topic.as_deref(), Some(expected), "{regex} -> {replacement} on {topic}");
        assert_eq!(out.sink.expect("a sink record").original_topic.as_deref(), Some(topic), "KIP-793");
    }
    assert!(config_error("RegexRouter", &[("regex", "["), ("replacement", "x")])
        .starts_with("Invalid value [ for configuration transforms.t.regex: Invalid regex: "));
}

// TimestampRouterTest.defaultConfiguration.
#[test]
fn timestamp_router() {
    let chain = one("TimestampRouter", &[]);
    let out = applied(&chain, Record::source("test", Some(0), Value::Null, Value::Null, Some(1_483_425_001_864)));
    assert_eq!(out.topic.as_deref(), Some("test-20170103"));
    let custom = one("TimestampRouter", &[("topic.format", "${timestamp}_${topic}"), ("timestamp.format", "yyyy-MM")]);
    let out = applied(&custom, Record::source("test", Some(0), Value::Null, Value::Null, Some(1_483_425_001_864)));
    assert_eq!(out.topic.as_deref(), Some("2017-01_test"));
    assert_eq!(
        data_error(&chain, Record::source("test", None, Value::Null, Value::Int64(1), None)),
        "Timestamp missing on record: SourceRecord{sourcePartition=null, sourceOffset=null} ConnectRecord{topic='test', \
         kafkaPartition=null, key=null, keySchema=null, value=1, valueSchema=null, timestamp=null, headers=ConnectHeaders(headers=)}"
    );
}

// Filter: drops every record it applies to (KIP-585).
#[test]
fn filter_drops() {
    let chain = one("Filter", &[]);
    assert_eq!(chain.apply(sink(Value::Null, Value::Int64(1))), Ok(None));
}

// ---------------------------------------------------------------------------------------------
// Predicates
// ---------------------------------------------------------------------------------------------

fn guarded(predicate: &[(&str, &str)], negate: Option<&str>) -> Result<Chain, BuildError> {
    let mut p = props(&[("transforms", "drop"), ("transforms.drop.type", &format!("{T}Filter"))]);
    p.insert("transforms.drop.predicate".into(), "p".into());
    if let Some(negate) = negate {
        p.insert("transforms.drop.negate".into(), negate.into());
    }
    p.insert("predicates".into(), "p".into());
    for (k, v) in predicate {
        p.insert(format!("predicates.p.{k}"), v.to_string());
    }
    Chain::from_properties(&p)
}

fn dropped(chain: &Chain, record: Record) -> bool {
    chain.apply(record).expect("no error").is_none()
}

fn on_topic(topic: &str) -> Record {
    Record::source(topic, None, Value::Null, Value::Int64(1), None)
}

// TopicNameMatchesTest.testTest: the whole topic name must match.
#[test]
fn topic_name_matches() {
    let chain = guarded(&[("type", &format!("{P}TopicNameMatches")), ("pattern", "my-prefix-.*")], None).unwrap();
    for (topic, matches) in [
        ("my-prefix-", true),
        ("my-prefix-foo", true),
        ("x-my-prefix-", false),
        ("x-my-prefix-foo", false),
        ("your-prefix-", false),
        ("your-prefix-foo", false),
    ] {
        assert_eq!(dropped(&chain, on_topic(topic)), matches, "{topic}");
    }
    let mut no_topic = on_topic("x");
    no_topic.topic = None;
    assert!(!dropped(&chain, no_topic));
    // negate=true: the transform runs where the predicate does not hold.
    let negated =
        guarded(&[("type", &format!("{P}TopicNameMatches")), ("pattern", "my-prefix-.*")], Some("true")).unwrap();
    assert!(!dropped(&negated, on_topic("my-prefix-foo")));
    assert!(dropped(&negated, on_topic("other")));
}

// TopicNameMatchesTest.testPatternRequiredInConfig, testPatternMayNotBeEmptyInConfig,
// testPatternIsValidRegexInConfig.
#[test]
fn topic_name_matches_config() {
    let error = |settings: &[(&str, &str)]| match guarded(settings, None) {
        Err(BuildError::Config(e)) => e.message,
        other => panic!("{other:?}"),
    };
    let ty = format!("{P}TopicNameMatches");
    assert!(error(&[("type", &ty)]).contains("Missing required configuration \"predicates.p.pattern\""));
    assert!(error(&[("type", &ty), ("pattern", "")]).contains("String must be non-empty"));
    assert!(error(&[("type", &ty), ("pattern", "[")]).contains("Invalid regex"));
    assert!(error(&[("type", &ty), ("pattern", "*")]).contains("Invalid regex"));
}

// HasHeaderKeyTest.testTest, testNameRequiredInConfig, testConfig.
#[test]
fn has_header_key() {
    let ty = format!("{P}HasHeaderKey");
    let chain = guarded(&[("type", &ty), ("name", "foo")], None).unwrap();
    let with =
        |keys: &[&str]| on_topic("t").with_headers(keys.iter().map(|k| (k.to_string(), String::new())).collect());
    assert!(dropped(&chain, with(&["foo"])));
    assert!(dropped(&chain, with(&["foo", "bar"])));
    assert!(dropped(&chain, with(&["bar", "foo", "bar", "foo"])));
    assert!(!dropped(&chain, with(&["bar"])));
    assert!(!dropped(&chain, with(&["bar", "bar"])));
    assert!(!dropped(&chain, with(&[])));
    let Err(BuildError::Config(e)) = guarded(&[("type", &ty), ("name", "")], None) else { panic!() };
    assert_eq!(e.message, "Invalid value  for configuration predicates.p.name: String must be non-empty");
    let Err(BuildError::Config(e)) = guarded(&[("type", &ty)], None) else { panic!() };
    assert!(e.message.contains("Missing required configuration \"predicates.p.name\""));
}

// RecordIsTombstone: true for a null value.
#[test]
fn record_is_tombstone() {
    let chain = guarded(&[("type", &format!("{P}RecordIsTombstone"))], None).unwrap();
    assert!(dropped(&chain, sink(Value::Null, Value::Null)));
    assert!(!dropped(&chain, sink(Value::Null, Value::Int64(0))));
}

// ---------------------------------------------------------------------------------------------
// The chain's configuration (ConnectorConfig)
// ---------------------------------------------------------------------------------------------

#[test]
fn chain_configuration_errors_read_as_kafka_words_them() {
    let error = |pairs: &[(&str, &str)]| match Chain::from_properties(&props(pairs)) {
        Err(BuildError::Config(e)) => e.message,
        other => panic!("{pairs:?}: {other:?}"),
    };
    assert_eq!(
        error(&[("transforms", "a")]),
        "Invalid value null for configuration transforms.a.type: Not a Transformation"
    );
    assert_eq!(
        error(&[("transforms", "a"), ("transforms.a.type", "com.example.Mask")]),
        "Invalid value com.example.Mask for configuration transforms.a.type: Class com.example.Mask could not be found."
    );
    assert_eq!(
        error(&[("transforms", "a"), ("transforms.a.type", &format!("{T}MaskField"))]),
        format!("This class is abstract and cannot be created. Did you mean {T}MaskField$Key, {T}MaskField$Value?")
    );
    assert_eq!(
        error(&[("transforms", "a"), ("transforms.a.type", &format!("{P}RecordIsTombstone"))]),
        format!("Class class {P}RecordIsTombstone does not implement the Transformation interface")
    );
    let filter = format!("{T}Filter");
    assert_eq!(
        error(&[("transforms", "a,a"), ("transforms.a.type", &filter)]),
        "Invalid value [a, a] for configuration transforms: Duplicate alias provided."
    );
    assert_eq!(
        error(&[("transforms", "a"), ("transforms.a.type", &filter), ("transforms.a.negate", "true")]),
        "Config 'transforms.a.negate' was provided but there is no config 'transforms.a.predicate' defining a predicate to be negated."
    );
    assert_eq!(
        error(&[
            ("transforms", "a"),
            ("transforms.a.type", &filter),
            ("transforms.a.predicate", "p"),
            ("transforms.a.negate", "yes")
        ]),
        "Invalid value yes for configuration transforms.a.negate: Expected value to be either true or false"
    );
    assert_eq!(
        error(&[("transforms", "a"), ("transforms.a.type", &filter), ("transforms.a.predicate", "p")]),
        "Unknown configuration 'predicates.p.type'"
    );
    assert!(matches!(
        Chain::from_properties(&props(&[
            ("transforms", "a"),
            ("transforms.a.type", &format!("{T}TimestampConverter$Value"))
        ])),
        Err(BuildError::Unsupported(_))
    ));
}

#[test]
fn transforms_apply_in_order_and_a_drop_ends_the_chain() {
    let chain = Chain::from_properties(&props(&[
        ("name", "ignored"),
        ("connector.class", "ignored"),
        ("transforms", "hoist, route"),
        ("transforms.hoist.type", &format!("{T}HoistField$Value")),
        ("transforms.hoist.field", "payload"),
        ("transforms.route.type", &format!("{T}RegexRouter")),
        ("transforms.route.regex", "(.*)"),
        ("transforms.route.replacement", "$1-out"),
    ]))
    .unwrap();
    assert_eq!(chain.len(), 2);
    let out = applied(&chain, on_topic("in"));
    assert_eq!((out.topic.as_deref(), out.value.to_json().as_str()), (Some("in-out"), r#"{"payload":1}"#));
    assert!(Chain::from_properties(&props(&[("name", "no transforms")])).unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// `ksim smt`, the command
// ---------------------------------------------------------------------------------------------

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Run `ksim smt ARGS` from the repository root: (exit code, stdout, stderr).
fn ksim_smt(args: &[&str]) -> (i32, String, String) {
    support::ksim(&[&["smt"], args].concat())
}

const TALK_RECORD: &str = r#"{"value": {"user": "ab123", "gender": "female", "ip": "1.2.3.95"}}"#;

// The talk's example, {user: ab123, gender: female, ip: 1.2.3.95} -> {user: ab123, ip: 1.2.3.XXX},
// with the built-ins that come closest: MaskField blanks the whole IP (or puts its
// `replacement` there, the same text for every record); ReplaceField drops the gender. No
// built-in transform masks part of a value.
#[test]
fn the_talks_pii_example() {
    let (code, stdout, stderr) =
        ksim_smt(&["--config", "examples/smt/pii.properties", "--topic", "users", TALK_RECORD]);
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert_eq!(
        stdout,
        "{\"topic\":\"users\",\"partition\":null,\"timestamp\":null,\"key\":null,\"value\":{\"user\":\"ab123\",\"ip\":\"\"},\"headers\":{}}\n"
    );
    let (code, stdout, _) =
        ksim_smt(&["--config", "examples/smt/pii-replacement.properties", "--topic", "users", TALK_RECORD]);
    assert_eq!(code, 0);
    assert!(stdout.contains(r#""value":{"user":"ab123","ip":"1.2.3.XXX"}"#), "{stdout}");
}

fn temp_config(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("ksim-smt-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the config");
    path.display().to_string()
}

#[test]
fn a_record_a_transform_rejects_is_reported_and_the_exit_status_is_1() {
    let config = temp_config(
        "rejects.properties",
        "transforms=mask,drop\n\
         transforms.mask.type=org.apache.kafka.connect.transforms.MaskField$Value\n\
         transforms.mask.fields=ip\n\
         transforms.drop.type=org.apache.kafka.connect.transforms.Filter\n\
         transforms.drop.predicate=tombstone\n\
         predicates=tombstone\n\
         predicates.tombstone.type=org.apache.kafka.connect.transforms.predicates.RecordIsTombstone\n",
    );
    let (code, stdout, stderr) = ksim_smt(&[
        "--config",
        &config,
        "--topic",
        "t",
        "--partition",
        "2",
        "--offset",
        "7",
        "--timestamp",
        "1000",
        r#"{"value": {"ip": "x"}, "headers": {"h": "v"}}"#,
        r#"{"value": "not a map", "offset": 8}"#,
    ]);
    assert_eq!(stderr, "");
    assert_eq!(
        stdout,
        "{\"topic\":\"t\",\"partition\":2,\"offset\":7,\"timestamp\":1000,\"key\":null,\"value\":{\"ip\":\"\"},\"headers\":{\"h\":\"v\"}}\n\
         error: DataException: Only Map objects supported in absence of schema for [mask fields], found: java.lang.String\n"
    );
    assert_eq!(code, 1);
    // MaskField comes first in `transforms`, so a tombstone meets its map check before Filter
    // can drop it: the order of `transforms` matters.
    let (code, stdout, _) = ksim_smt(&["--config", &config, "--topic", "t", r#"{"value": null}"#]);
    assert_eq!(
        (code, stdout.as_str()),
        (1, "error: DataException: Only Map objects supported in absence of schema for [mask fields], found: null\n")
    );
}

#[test]
fn a_dropped_record_prints_dropped() {
    let config = temp_config(
        "drops.properties",
        "transforms=drop\ntransforms.drop.type=org.apache.kafka.connect.transforms.Filter\n\
         transforms.drop.predicate=isTombstone\npredicates=isTombstone\n\
         predicates.isTombstone.type=org.apache.kafka.connect.transforms.predicates.RecordIsTombstone\n",
    );
    let (code, stdout, _) = ksim_smt(&["--config", &config, "--topic", "t", r#"{"value": null}"#, r#"{"value": 1}"#]);
    assert_eq!(code, 0);
    assert_eq!(
        stdout,
        "dropped\n{\"topic\":\"t\",\"partition\":null,\"timestamp\":null,\"key\":null,\"value\":1,\"headers\":{}}\n"
    );
}

#[test]
fn a_configuration_kafka_refuses_exits_2_before_any_record() {
    let config = temp_config(
        "refused.properties",
        "name=my-connector\ntransforms=mask\ntransforms.mask.type=org.apache.kafka.connect.transforms.MaskField$Value\n",
    );
    let (code, stdout, stderr) = ksim_smt(&["--config", &config, "--topic", "t", r#"{"value": {}}"#]);
    assert_eq!(code, 2);
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        "error: ConfigException: Missing required configuration \"transforms.mask.fields\" which has no default value.\n"
    );
}

#[test]
fn bad_input_names_the_file_line_or_record() {
    let config = temp_config("syntax.properties", "transforms=x\ntransforms.x.type=\\u00ZZ\n");
    let (code, _, stderr) = ksim_smt(&["--config", &config, "--topic", "t", r#"{"value": 1}"#]);
    assert_eq!(code, 2);
    assert_eq!(stderr, format!("error: {config}:2: Malformed \\uxxxx encoding.\n"));
    let (code, _, stderr) =
        ksim_smt(&["--config", "examples/smt/pii.properties", "--topic", "t", r#"{"value": 1}"#, r#"{"valu": 1}"#]);
    assert_eq!(code, 2);
    assert!(stderr.starts_with("error: RECORD 2: unknown field `valu`"), "{stderr}");
    let (code, _, stderr) = ksim_smt(&["--config", "no/such/file.properties", r#"{"value": 1}"#]);
    assert_eq!(code, 2);
    assert!(stderr.starts_with("error: cannot read no/such/file.properties: "), "{stderr}");
}

/// The book's chapter shows `examples/smt/pii.properties` in full; `tests/book.rs` checks the
/// command output it shows, this the file.
#[test]
fn the_book_shows_the_example_configuration_as_it_is() {
    let chapter =
        std::fs::read_to_string(root().join("book/src/13-single-message-transforms.md")).expect("the chapter");
    let file = std::fs::read_to_string(root().join("examples/smt/pii.properties")).expect("the example");
    assert!(
        chapter.contains(&format!("```properties\n{file}```")),
        "book/src/13-single-message-transforms.md must show examples/smt/pii.properties verbatim"
    );
}
