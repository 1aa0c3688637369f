//! `ksim partition --partitions N KEY...`: which partition the Java client and .NET's
//! Confluent.Kafka pick for each key.
//!
//! The Java producer hashes a key with murmur2; Confluent.Kafka runs on librdkafka, whose default
//! partitioner (`consistent_random`) takes the CRC-32 of the key and treats an empty key as no key
//! at all. The table shows both, tab-separated so it pastes into a spreadsheet or `column -t`.
//! The rules themselves live in `ksim_cluster::partitioner`.

use ksim_cluster::partitioner::{java_partition, partition_for_key, PartitionerKind};

/// The whole output: a header line, then one line per key (key, Java's partition, librdkafka's
/// partition), each ending in a newline. `Err` if `partitions` is below 1.
pub fn render(partitions: i32, keys: &[String]) -> Result<String, String> {
    if partitions < 1 {
        return Err(format!(
            "--partitions must be at least 1 (a topic has at least one partition), found {partitions}"
        ));
    }
    let mut out = String::from("key\tjava (murmur2)\t.NET / librdkafka (crc32)\n");
    for key in keys {
        let bytes = key.as_bytes();
        let java = java_partition(bytes, partitions);
        let librdkafka = match partition_for_key(PartitionerKind::LibrdkafkaConsistentRandom, Some(bytes), partitions) {
            Some(partition) => partition.to_string(),
            // consistent_random sends an empty key where it sends a null one: anywhere.
            None => "random".to_string(),
        };
        out.push_str(&format!("{}\t{java}\t{librdkafka}\n", display_key(key)));
    }
    Ok(out)
}

/// The key as typed, or quoted with escapes when it would otherwise be invisible or break the
/// columns: the empty key shows as `""`, a tab as `"\t"`.
fn display_key(key: &str) -> String {
    if key.is_empty() || key.starts_with('"') || key.chars().any(char::is_control) {
        format!("{key:?}")
    } else {
        key.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(keys: &[&str]) -> Vec<String> {
        keys.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn six_partitions_a_few_keys() {
        // murmur2: hejsan 0x5ec19395, 23456 0x058d780f (librdkafka tests/0048-partitioner.c),
        // kafka 0xd067cf64 (librdkafka src/rdmurmur2.c), "" 0x106e08d9.
        // crc32: hejsan 0xd077037e, 23456 0xb1b451d7 (0048-partitioner.c), kafka 0x5bbc7517 (zlib).
        let out = render(6, &keys(&["hejsan", "23456", "kafka", ""])).unwrap();
        assert_eq!(
            out,
            "key\tjava (murmur2)\t.NET / librdkafka (crc32)\n\
             hejsan\t1\t0\n\
             23456\t5\t5\n\
             kafka\t4\t5\n\
             \"\"\t3\trandom\n"
        );
    }

    #[test]
    fn one_partition_puts_every_key_on_partition_zero() {
        let out = render(1, &keys(&["a", "b"])).unwrap();
        assert_eq!(out, "key\tjava (murmur2)\t.NET / librdkafka (crc32)\na\t0\t0\nb\t0\t0\n");
    }

    #[test]
    fn no_keys_prints_the_header_only() {
        assert_eq!(render(3, &[]).unwrap(), "key\tjava (murmur2)\t.NET / librdkafka (crc32)\n");
    }

    #[test]
    fn keys_that_would_break_the_columns_are_quoted() {
        let out = render(3, &keys(&["a\tb", "\"q\""])).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[1].starts_with("\"a\\tb\"\t"), "{out}");
        assert!(lines[2].starts_with("\"\\\"q\\\"\"\t"), "{out}");
        assert!(lines.iter().all(|line| line.split('\t').count() == 3), "{out}");
    }

    #[test]
    fn fewer_than_one_partition_is_an_error() {
        for partitions in [0, -3] {
            let err = render(partitions, &keys(&["k"])).unwrap_err();
            assert!(err.contains("--partitions must be at least 1"), "{err}");
            assert!(err.contains(&partitions.to_string()), "{err}");
        }
    }
}
