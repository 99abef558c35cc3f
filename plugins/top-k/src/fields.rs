//! `fields`: reading the configured group, key and score fields out of any
//! record value, and writing result rows under the same field names.
//!
//! The operator is generic (a leaderboard of `points` per `player_id` per
//! `contest_id`, or top streams by `viewers`), so field names come from the
//! config. [`Names::extract`] walks the value's map once, borrowing strings
//! from the batch and skipping every field it was not asked for.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sluice_sdk::codec;
use sluice_sdk::{Error, Window};

/// Group of every record when no `group_field` is configured.
pub const NO_GROUP: &str = "all";

/// The configured field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Names {
    /// Field naming the group (`contest_id`); `None`: one group for all.
    pub group: Option<String>,
    /// Field naming the ranked entry (`player_id`).
    pub key: String,
    /// Integer field holding the score (`points`).
    pub score: String,
}

/// What a record holds under the configured names.
#[derive(Debug, PartialEq, Eq)]
pub struct Scored<'a> {
    /// The group ([`NO_GROUP`] without a group field).
    pub group: Cow<'a, str>,
    /// The entry.
    pub key: Cow<'a, str>,
    /// The score.
    pub score: i64,
}

/// A string or integer field value, as text.
struct Id<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Id<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl<'de> Visitor<'de> for IdVisitor {
            type Value = Id<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Id(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Id(Cow::Owned(v.to_owned())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Id(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Id(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_any(IdVisitor)
    }
}

/// The seed that walks one value's map for the three fields.
struct Seek<'n>(&'n Names);

#[derive(Default)]
struct Found<'a> {
    group: Option<Cow<'a, str>>,
    key: Option<Cow<'a, str>>,
    score: Option<i64>,
}

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = Found<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Found<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = Found<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found<'de>, A::Error> {
        let names = self.0;
        let mut found = Found::default();
        while let Some(field) = map.next_key::<Id<'de>>()? {
            let field = field.0;
            if names.group.as_deref() == Some(&*field) {
                found.group = Some(map.next_value::<Id<'de>>()?.0);
            } else if field == names.key {
                found.key = Some(map.next_value::<Id<'de>>()?.0);
            } else if field == names.score {
                found.score = Some(map.next_value::<i64>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

impl Names {
    /// The group, key and score of `value` (MessagePack), or why it has none.
    pub fn extract<'a>(&self, value: &'a [u8]) -> Result<Scored<'a>, Error> {
        let mut de = codec::Deserializer::new(value);
        let found = Seek(self).deserialize(&mut de).map_err(|e| {
            Error::msg(format!(
                "value is not a map with the configured fields: {e}"
            ))
        })?;
        let missing = |field: &str| Error::msg(format!("value has no field `{field}`"));
        let group = match &self.group {
            Some(name) => found.group.ok_or_else(|| missing(name))?,
            None => Cow::Borrowed(NO_GROUP),
        };
        Ok(Scored {
            group,
            key: found.key.ok_or_else(|| missing(&self.key))?,
            score: found.score.ok_or_else(|| missing(&self.score))?,
        })
    }

    /// The record key of an entry: `<group>/<key>`, or `<key>` without groups.
    pub fn entry_key(&self, group: &str, key: &str) -> String {
        match self.group {
            Some(_) => format!("{group}/{key}"),
            None => key.to_owned(),
        }
    }
}

/// One result row, written with the configured field names:
/// `{<group>: .., <key>: .., <score>: .., rank, as_of | window_start, window_end}`.
pub struct Row<'a> {
    /// Field names.
    pub names: &'a Names,
    /// The group.
    pub group: &'a str,
    /// The entry.
    pub key: &'a str,
    /// Its score.
    pub score: i64,
    /// Its rank (1 = best); `None` in partials.
    pub rank: Option<u64>,
    /// Running mode: the window end the standing is as of.
    pub as_of: Option<i64>,
    /// Window mode: the window the row ranks.
    pub window: Option<Window>,
}

impl Serialize for Row<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if let Some(group) = &self.names.group {
            map.serialize_entry(group, self.group)?;
        }
        map.serialize_entry(&self.names.key, self.key)?;
        map.serialize_entry(&self.names.score, &self.score)?;
        if let Some(rank) = self.rank {
            map.serialize_entry("rank", &rank)?;
        }
        if let Some(as_of) = self.as_of {
            map.serialize_entry("as_of", &as_of)?;
        }
        if let Some(w) = self.window {
            map.serialize_entry("window_start", &w.start)?;
            map.serialize_entry("window_end", &w.end)?;
        }
        map.end()
    }
}

/// One entry of a `top` list: `{rank, <key>: .., <score>: ..}`.
pub struct Ranked<'a> {
    /// Field names.
    pub names: &'a Names,
    /// Rank (1 = best).
    pub rank: u64,
    /// The entry.
    pub key: &'a str,
    /// Its score.
    pub score: i64,
}

impl Serialize for Ranked<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("rank", &self.rank)?;
        map.serialize_entry(&self.names.key, self.key)?;
        map.serialize_entry(&self.names.score, &self.score)?;
        map.end()
    }
}

/// A group's top list (the `top` output value):
/// `{<group>: .., top: [..], entries, window_start, window_end}`.
pub struct TopList<'a> {
    /// Field names.
    pub names: &'a Names,
    /// The group.
    pub group: &'a str,
    /// The best entries, best first.
    pub top: Vec<Ranked<'a>>,
    /// How many entries the group has.
    pub entries: u64,
    /// The window the list is as of.
    pub window: Window,
}

impl Serialize for TopList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if let Some(group) = &self.names.group {
            map.serialize_entry(group, self.group)?;
        }
        map.serialize_entry("top", &self.top)?;
        map.serialize_entry("entries", &self.entries)?;
        map.serialize_entry("window_start", &self.window.start)?;
        map.serialize_entry("window_end", &self.window.end)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(group: Option<&str>) -> Names {
        Names {
            group: group.map(str::to_owned),
            key: "player_id".into(),
            score: "points".into(),
        }
    }

    #[test]
    fn fields_are_found_by_name_and_others_skipped() {
        let v = codec::encode(
            &serde_json::json!({"ts": 5, "points": -2, "nested": {"points": 9},
                                                   "contest_id": "c-1", "player_id": 17}),
        )
        .unwrap();
        let s = names(Some("contest_id")).extract(&v).unwrap();
        assert_eq!(
            s,
            Scored {
                group: "c-1".into(),
                key: "17".into(),
                score: -2
            }
        );
        let s = names(None).extract(&v).unwrap();
        assert_eq!(s.group, NO_GROUP);
    }

    #[test]
    fn a_missing_or_mistyped_field_is_named() {
        let v = codec::encode(&serde_json::json!({"player_id": "p", "points": 1.5})).unwrap();
        let err = names(None).extract(&v).unwrap_err().to_string();
        assert!(err.contains("expected i64"), "{err}");
        let v = codec::encode(&serde_json::json!({"player_id": "p"})).unwrap();
        let err = names(None).extract(&v).unwrap_err().to_string();
        assert_eq!(err, "value has no field `points`");
    }
}
