//! The field names of a wire type, read from its serde `Deserialize` impl: the derive hands
//! them to `Deserializer::deserialize_struct`, so a deserializer that records them and stops
//! learns exactly the names on the wire (renames applied). The docs check uses it to find every
//! field in `docs/api.md`; nothing is listed by hand, so a new field cannot go undocumented.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// The JSON field names of `T`, in declaration order; `None` when `T` is not read as a plain
/// struct (a flattened struct is read as a map: ask for its parts instead).
pub fn field_names<T: for<'de> Deserialize<'de>>() -> Option<&'static [&'static str]> {
    let mut seen = None;
    // The capture always stops with an error once it has the names; the value is never built.
    let _ = T::deserialize(Capture { seen: &mut seen });
    seen
}

/// Stops deserialization once the field names are known.
#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field names captured")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<M: fmt::Display>(_message: M) -> Stop {
        Stop
    }
}

struct Capture<'a> {
    seen: &'a mut Option<&'static [&'static str]>,
}

impl<'de> Deserializer<'de> for Capture<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Stop> {
        *self.seen = Some(fields);
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{CashRequest, ReceiptStatus};

    #[test]
    fn names_come_from_the_derive_with_renames() {
        assert_eq!(
            field_names::<CashRequest>(),
            Some(&["kind", "amount", "reason"][..])
        );
    }

    #[test]
    fn a_type_that_is_not_a_struct_has_no_field_names() {
        assert_eq!(field_names::<ReceiptStatus>(), None);
        assert_eq!(field_names::<u64>(), None);
    }
}
