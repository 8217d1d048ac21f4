//! Structs that only a JSON object fills.
//!
//! serde's derived `Deserialize` also fills a struct from a JSON array, field by field in
//! declaration order: `{"faults": [1.0, 451]}` read as errorRatio 1.0 and errorStatus 451,
//! and `[]` as "all defaults". `only_from_objects!` gives a struct derived with
//! `#[serde(remote = "Self")]` (which turns the derived code into inherent functions) trait
//! impls that accept a JSON object and nothing else, so an array is a wrong type reported with
//! its file, line, column and key like any other.

macro_rules! only_from_objects {
    ($($t:ty),+ $(,)?) => {$(
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct ObjectOnly;
                impl<'de> serde::de::Visitor<'de> for ObjectOnly {
                    type Value = $t;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a JSON object")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<$t, A::Error> {
                        // The inherent, derived function: fields, defaults, unknown keys.
                        <$t>::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    }
                }
                d.deserialize_map(ObjectOnly)
            }
        }

        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                <$t>::serialize(self, s)
            }
        }
    )+};
}

pub(crate) use only_from_objects;
