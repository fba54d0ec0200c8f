//! Scan settings: what a scan looks for (the guard's configuration) and what it reports (the least
//! score per entity type, or not at all). Read from YAML by `tollgate guard scan --policy`; the
//! per-use-case policies build on the same fields.
//!
//! ```yaml
//! threshold: 0.5            # the least score reported (default 0.5)
//! entities:                 # per type: its own least score, or `off`
//!   PHONE_NUMBER: 0.7
//!   DATE_OF_BIRTH: off
//! guard:                    # what to look for beyond the built-in types
//!   packs: [uk, de]
//!   phone_regions: [US, GB, DE]
//!   custom_terms: [Project Falcon]
//! ```

use crate::{DEFAULT_THRESHOLD, Entity, Guard, GuardConfig, GuardError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a scan looks for and what it reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanSettings {
    /// The least score reported for types without their own.
    pub threshold: f32,
    /// Per type: its own least score, or `off`.
    pub entities: BTreeMap<Entity, Report>,
    /// What to look for beyond the built-in types.
    pub guard: GuardConfig,
}

impl Default for ScanSettings {
    fn default() -> Self {
        ScanSettings {
            threshold: DEFAULT_THRESHOLD,
            entities: BTreeMap::new(),
            guard: GuardConfig::default(),
        }
    }
}

/// Whether and from which score one entity type is reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Report {
    /// Reported from this score (0.0–1.0).
    From(f32),
    /// Not reported.
    Off,
}

impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Report::From(t) => s.serialize_f32(*t),
            Report::Off => s.serialize_str("off"),
        }
    }
}

impl<'de> Deserialize<'de> for Report {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Report, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Report;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a score from 0 to 1, or `off`")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Report, E> {
                score(v).map(Report::From).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Report, E> {
                self.visit_f64(v as f64)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Report, E> {
                self.visit_f64(v as f64)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Report, E> {
                match v {
                    "off" => Ok(Report::Off),
                    _ => Err(E::custom(format!(
                        "expected a score from 0 to 1, or `off`; got `{v}`"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

fn score(v: f64) -> Result<f32, String> {
    if (0.0..=1.0).contains(&v) {
        Ok(v as f32)
    } else {
        Err(format!("a score must be from 0 to 1; got {v}"))
    }
}

/// Why settings cannot be used, with the path of the mistake (`entities.PHONE_NUMBER`,
/// `guard.custom_terms[2]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SettingsError {
    /// Where.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl ScanSettings {
    /// Checks what serde cannot: the default threshold's range.
    pub fn validate(&self) -> Result<(), SettingsError> {
        score(f64::from(self.threshold)).map_err(|message| SettingsError {
            path: "threshold".into(),
            message,
        })?;
        Ok(())
    }

    /// The least score reported for `entity` (`None`: not reported).
    pub fn threshold(&self, entity: Entity) -> Option<f32> {
        match self.entities.get(&entity) {
            Some(Report::From(t)) => Some(*t),
            Some(Report::Off) => None,
            None => Some(self.threshold),
        }
    }

    /// Compiles the guard these settings describe.
    pub fn guard(&self) -> Result<Guard, SettingsError> {
        self.validate()?;
        Guard::new(self.guard.clone()).map_err(|e| match e {
            GuardError::Term {
                list,
                index,
                message,
            } => SettingsError {
                path: format!("guard.{list}[{index}]"),
                message,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<ScanSettings, String> {
        let de = serde_yaml::Deserializer::from_str(yaml);
        serde_path_to_error::deserialize(de)
            .map_err(|e| format!("{}: {}", e.path(), e.inner()))
            .and_then(|s: ScanSettings| s.validate().map(|()| s).map_err(|e| e.to_string()))
    }

    #[test]
    fn settings_read_thresholds_off_and_the_guard_config() {
        let s = parse(
            "threshold: 0.6\nentities: { PHONE_NUMBER: 0.8, DATE_OF_BIRTH: off, US_SSN: 1 }\nguard: { packs: [uk], custom_terms: [Falcon] }\n",
        )
        .unwrap();
        assert_eq!(s.threshold(Entity::EmailAddress), Some(0.6));
        assert_eq!(s.threshold(Entity::PhoneNumber), Some(0.8));
        assert_eq!(s.threshold(Entity::UsSsn), Some(1.0));
        assert_eq!(s.threshold(Entity::DateOfBirth), None);
        assert!(s.guard.packs.contains(&crate::Pack::Uk));
        assert!(s.guard().is_ok());
        assert_eq!(parse("").unwrap(), ScanSettings::default());
    }

    #[test]
    fn bad_settings_name_the_path_of_the_mistake() {
        for (yaml, path, says) in [
            (
                "entities: { EMAIL: 0.5 }",
                "entities",
                "unknown entity type `EMAIL`",
            ),
            (
                "entities: { EMAIL_ADDRESS: 1.5 }",
                "entities.EMAIL_ADDRESS",
                "from 0 to 1",
            ),
            (
                "entities: { EMAIL_ADDRESS: never }",
                "entities.EMAIL_ADDRESS",
                "or `off`",
            ),
            ("threshold: 2", "threshold", "from 0 to 1"),
            ("thresold: 0.5", "thresold", "unknown field `thresold`"),
            (
                "guard: { packs: [xx] }",
                "guard.packs[0]",
                "unknown variant `xx`",
            ),
            (
                "guard: { colour: red }",
                "guard.colour",
                "unknown field `colour`",
            ),
        ] {
            let err = parse(yaml).unwrap_err();
            assert!(err.starts_with(path), "{yaml}: {err}");
            assert!(err.contains(says), "{yaml}: {err}");
        }
        let s = parse("guard: { custom_terms: [ok, ''] }").unwrap();
        let err = s.guard().unwrap_err();
        assert_eq!(err.path, "guard.custom_terms[1]", "{err}");
    }
}
