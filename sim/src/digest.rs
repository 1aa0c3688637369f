//! The trace's digest: a compact binary encoding of any `Serialize` value, hashed as it is written.
//!
//! [`Trace::digest`](crate::trace::Trace::digest) summarises a run in 16 hex digits. It used to
//! hash the trace's JSON, which spent most of its time escaping strings and writing field names.
//! This encoder writes the same values as a short binary form straight into [`Fnv1a64`]: nothing
//! is buffered and nothing is allocated per value, so digesting a million-event trace costs one
//! pass over its events.
//!
//! The encoding is unambiguous (two different values of one type never give the same bytes), so
//! the digest separates every pair of traces the JSON digest separated:
//!
//! | value | bytes |
//! |---|---|
//! | `bool`, `u8`, `i8` | one byte |
//! | `u16`..`u64` | LEB128 varint |
//! | `i16`..`i64` | zigzag, then LEB128 varint |
//! | `u128`, `i128`, `f32`, `f64` | fixed width, little-endian (floats by their bits) |
//! | `char` | its scalar value as a varint |
//! | string, bytes | length (varint), then the bytes |
//! | `Option` | `0` for `None`; `1`, then the value, for `Some` |
//! | unit, unit struct | nothing |
//! | enum variant | its index (varint), then its fields as a tuple or a struct |
//! | tuple, tuple struct | the fields in order (the type fixes how many) |
//! | struct | per field in order: `1` then the value, or `0` for a field skipped by `skip_serializing_if` |
//! | sequence, map | length + 1 (varint), then the elements (a map's as key, value); a sequence of unknown length is `0`, then `1` before each element and `0` after the last |
//!
//! Nothing depends on the platform: lengths are encoded as `u64` whatever `usize` is, and serde
//! encodes `usize` as `u64`. Maps are encoded in their iteration order, so a type in the trace
//! must never hold a `HashMap` (ksim's types use `BTreeMap` and `Vec`; clippy bans the std hash
//! collections).
//!
//! The digest is a checksum for "did this run change", not a cryptographic hash.

use crate::rng::Fnv1a64;
use serde::ser::{self, Serialize};
use std::fmt;

/// Where the encoding goes: the hash, or (in tests) a buffer.
pub trait Sink {
    fn bytes(&mut self, bytes: &[u8]);
}

impl Sink for Fnv1a64 {
    fn bytes(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

impl Sink for Vec<u8> {
    fn bytes(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Encodes values into a sink: by default a running FNV-1a hash.
#[derive(Clone, Copy, Debug, Default)]
pub struct Encoder<S: Sink = Fnv1a64> {
    sink: S,
}

/// The digest of one value: FNV-1a over its encoding.
pub fn digest<T: Serialize + ?Sized>(value: &T) -> u64 {
    let mut encoder = Encoder::default();
    encoder.write(value);
    encoder.finish()
}

/// One value's encoding as bytes (to read or test it; the digest never holds them).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut encoder = Encoder { sink: Vec::new() };
    encoder.write(value);
    encoder.sink
}

impl Encoder<Fnv1a64> {
    /// The hash of everything written so far.
    pub fn finish(&self) -> u64 {
        self.sink.0
    }
}

impl<S: Sink> Encoder<S> {
    /// Feed one value's encoding to the sink.
    pub fn write<T: Serialize + ?Sized>(&mut self, value: &T) {
        value.serialize(&mut *self).expect("ksim's trace types encode without error");
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.sink.bytes(bytes);
    }

    fn byte(&mut self, byte: u8) {
        self.sink.bytes(&[byte]);
    }

    fn varint(&mut self, mut value: u64) {
        let mut buf = [0u8; 10];
        let mut n = 0;
        loop {
            let low = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                buf[n] = low;
                n += 1;
                break;
            }
            buf[n] = low | 0x80;
            n += 1;
        }
        self.bytes(&buf[..n]);
    }

    fn zigzag(&mut self, value: i64) {
        self.varint(((value << 1) ^ (value >> 63)) as u64);
    }

    fn len(&mut self, len: usize) {
        self.varint(len as u64);
    }

    /// A sequence's or map's opening: its length + 1, or 0 when the length is not known up front.
    fn open(&mut self, len: Option<usize>) -> Compound<'_, S> {
        match len {
            Some(len) => {
                self.varint(len as u64 + 1);
                Compound { encoder: self, streamed: false }
            }
            None => {
                self.byte(0);
                Compound { encoder: self, streamed: true }
            }
        }
    }
}

/// Why a value could not be encoded: only a hand-written `Serialize` that fails gives one.
#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

/// Counts the bytes a `Display` writes, so `collect_str` can prefix its length without
/// formatting into a buffer.
struct ByteCount(usize);

impl fmt::Write for ByteCount {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// Writes a `Display`'s text into the sink.
struct EncodeText<'a, S: Sink>(&'a mut Encoder<S>);

impl<S: Sink> fmt::Write for EncodeText<'_, S> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.bytes(s.as_bytes());
        Ok(())
    }
}

impl<'a, S: Sink> ser::Serializer for &'a mut Encoder<S> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a, S>;
    type SerializeTuple = Compound<'a, S>;
    type SerializeTupleStruct = Compound<'a, S>;
    type SerializeTupleVariant = Compound<'a, S>;
    type SerializeMap = Compound<'a, S>;
    type SerializeStruct = Compound<'a, S>;
    type SerializeStructVariant = Compound<'a, S>;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.byte(u8::from(v));
        Ok(())
    }

    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.byte(v as u8);
        Ok(())
    }

    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.zigzag(v.into());
        Ok(())
    }

    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.zigzag(v.into());
        Ok(())
    }

    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.zigzag(v);
        Ok(())
    }

    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.bytes(&v.to_le_bytes());
        Ok(())
    }

    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.byte(v);
        Ok(())
    }

    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.varint(v.into());
        Ok(())
    }

    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.varint(v.into());
        Ok(())
    }

    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.varint(v);
        Ok(())
    }

    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.bytes(&v.to_le_bytes());
        Ok(())
    }

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.bytes(&v.to_bits().to_le_bytes());
        Ok(())
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.bytes(&v.to_bits().to_le_bytes());
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.varint(u64::from(u32::from(v)));
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.len(v.len());
        self.bytes(v.as_bytes());
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.len(v.len());
        self.bytes(v);
        Ok(())
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.byte(0);
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        self.byte(1);
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        Ok(())
    }

    fn serialize_unit_variant(self, _name: &'static str, index: u32, _variant: &'static str) -> Result<(), Error> {
        self.varint(index.into());
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.varint(index.into());
        value.serialize(self)
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a, S>, Error> {
        Ok(self.open(len))
    }

    fn serialize_tuple(self, _len: usize) -> Result<Compound<'a, S>, Error> {
        Ok(Compound { encoder: self, streamed: false })
    }

    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Compound<'a, S>, Error> {
        Ok(Compound { encoder: self, streamed: false })
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, S>, Error> {
        self.varint(index.into());
        Ok(Compound { encoder: self, streamed: false })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'a, S>, Error> {
        Ok(self.open(len))
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Compound<'a, S>, Error> {
        Ok(Compound { encoder: self, streamed: false })
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, S>, Error> {
        self.varint(index.into());
        Ok(Compound { encoder: self, streamed: false })
    }

    /// A `Display` value as a string, byte for byte what `serialize_str` of its text gives: the
    /// text is formatted twice (once to count it) rather than into a buffer.
    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<(), Error> {
        use fmt::Write;
        let mut count = ByteCount(0);
        write!(count, "{value}").map_err(|_| Error("a Display implementation failed".into()))?;
        self.len(count.0);
        let mut text = EncodeText(self);
        write!(text, "{value}").map_err(|_| Error("a Display implementation failed".into()))
    }
}

/// A sequence, tuple, map or struct being encoded.
pub struct Compound<'a, S: Sink> {
    encoder: &'a mut Encoder<S>,
    /// A sequence or map of unknown length: each element is preceded by `1`, the end is `0`.
    streamed: bool,
}

impl<S: Sink> Compound<'_, S> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if self.streamed {
            self.encoder.byte(1);
        }
        value.serialize(&mut *self.encoder)
    }

    fn close(self) -> Result<(), Error> {
        if self.streamed {
            self.encoder.byte(0);
        }
        Ok(())
    }

    fn field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.encoder.byte(1);
        value.serialize(&mut *self.encoder)
    }

    fn skipped(&mut self) {
        self.encoder.byte(0);
    }
}

impl<S: Sink> ser::SerializeSeq for Compound<'_, S> {
    type Ok = ();
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl<S: Sink> ser::SerializeTuple for Compound<'_, S> {
    type Ok = ();
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl<S: Sink> ser::SerializeTupleStruct for Compound<'_, S> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl<S: Sink> ser::SerializeTupleVariant for Compound<'_, S> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }

    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl<S: Sink> ser::SerializeMap for Compound<'_, S> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.element(key)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut *self.encoder)
    }

    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl<S: Sink> ser::SerializeStruct for Compound<'_, S> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, _key: &'static str, value: &T) -> Result<(), Error> {
        self.field(value)
    }

    fn skip_field(&mut self, _key: &'static str) -> Result<(), Error> {
        self.skipped();
        Ok(())
    }

    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl<S: Sink> ser::SerializeStructVariant for Compound<'_, S> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, _key: &'static str, value: &T) -> Result<(), Error> {
        self.field(value)
    }

    fn skip_field(&mut self, _key: &'static str) -> Result<(), Error> {
        self.skipped();
        Ok(())
    }

    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

#[cfg(test)]
mod tests {
    use super::{digest, encode};
    use serde::ser::{SerializeSeq, Serializer};
    use serde::Serialize;
    use std::collections::BTreeMap;

    /// Each case: two values of one type that must encode differently (the pairs a careless
    /// encoding confuses: where one value ends and the next begins, absence against a zero).
    #[test]
    fn adjacent_and_ambiguous_values_encode_differently() {
        fn differ<T: Serialize + std::fmt::Debug>(a: T, b: T) {
            assert_ne!(encode(&a), encode(&b), "{a:?} and {b:?} encode alike");
            assert_ne!(digest(&a), digest(&b), "{a:?} and {b:?} digest alike");
        }
        // Where one string ends and the next begins.
        differ(("ab", "c"), ("a", "bc"));
        differ(("", "a"), ("a", ""));
        // Absence against a zero, and nested absence.
        differ(None, Some(0u64));
        differ(None, Some(None::<u8>));
        differ(Some(None), Some(Some(0u8)));
        // Enum variants by index, with and without the same payload.
        differ(Unit::A, Unit::B);
        differ(Payload::A(1), Payload::B(1));
        // Sequences: where an inner one ends.
        differ(vec![vec![1u8], vec![]], vec![vec![], vec![1u8]]);
        differ(vec![vec![1u8, 2]], vec![vec![1u8], vec![2]]);
        differ(vec![0u8], vec![]);
        // Maps: a key against a value.
        differ(BTreeMap::from([(1u8, 2u8)]), BTreeMap::new());
        differ(BTreeMap::from([(1u8, 2u8)]), BTreeMap::from([(2u8, 1u8)]));
        // Fields skipped by `skip_serializing_if`: which one is present.
        differ(Skips { a: Some(5), b: None }, Skips { a: None, b: Some(5) });
        differ(Skips { a: None, b: None }, Skips { a: Some(0), b: None });
        // A sequence whose length is not known up front.
        differ(Streamed(vec![1]), Streamed(vec![]));
        differ(Streamed(vec![1, 0]), Streamed(vec![1]));
        // Integers across a varint byte boundary, and signs.
        differ(127u64, 128);
        differ(-1i64, 1);
        differ(i64::MIN, i64::MAX);
    }

    #[derive(Debug, Serialize)]
    enum Unit {
        A,
        B,
    }

    #[derive(Debug, Serialize)]
    enum Payload {
        A(u8),
        B(u8),
    }

    #[derive(Debug, Serialize)]
    struct Skips {
        #[serde(skip_serializing_if = "Option::is_none")]
        a: Option<u8>,
        #[serde(skip_serializing_if = "Option::is_none")]
        b: Option<u8>,
    }

    /// Serialized as a sequence of unknown length, as an iterator without an exact size is.
    #[derive(Debug)]
    struct Streamed(Vec<u8>);

    impl Serialize for Streamed {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut seq = serializer.serialize_seq(None)?;
            for item in &self.0 {
                seq.serialize_element(item)?;
            }
            seq.end()
        }
    }

    /// Serialized with `collect_str`, as a type that writes itself through `Display` is.
    struct Shown(&'static str);

    impl Serialize for Shown {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_str(self.0)
        }
    }

    /// The bytes themselves, so a change to the encoding (and so to every digest) is deliberate.
    #[test]
    fn the_encoding_byte_by_byte() {
        assert_eq!(encode(&("ab", "c")), [2, b'a', b'b', 1, b'c']);
        assert_eq!(encode(&None::<u64>), [0]);
        assert_eq!(encode(&Some(0u64)), [1, 0]);
        assert_eq!(encode(&Payload::B(7)), [1, 7]);
        assert_eq!(encode(&300u64), [0xac, 0x02]);
        assert_eq!(encode(&u64::MAX).len(), 10);
        assert_eq!(encode(&-1i32), [1]);
        assert_eq!(encode(&1i32), [2]);
        assert_eq!(encode(&vec![5u8, 6]), [3, 5, 6], "length + 1, then the elements");
        assert_eq!(encode(&Streamed(vec![5, 6])), [0, 1, 5, 1, 6, 0]);
        assert_eq!(encode(&Skips { a: None, b: Some(5) }), [0, 1, 1, 5]);
        assert_eq!(encode(&Shown("abc")), encode("abc"), "collect_str encodes as the string it shows");
        assert_eq!(encode(&5usize), encode(&5u64), "no dependence on the width of usize");
    }
}
