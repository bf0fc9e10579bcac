//! trade2026 configuration.
//!
//! One YAML file (every key optional: no file at all gives a working platform) plus environment
//! overrides `TRADE2026_<SECTION>__<KEY>[__<SUBKEY>...]`. Double underscore separates levels,
//! names are case-insensitive, values are read as YAML scalars (`9000` is a number, `true` a
//! bool; anything else a string). A few short aliases exist for common settings, see
//! [`ALIASES`]. `TRADE2026_CONFIG` is reserved for the config file path (binaries read it
//! through their `--config` flag) and is not an override.
//!
//! The loader never guesses silently: unknown keys come back as warnings naming the key path
//! and where it came from; wrong types and out-of-range values are errors of the shape
//! `<file or variable>: <key path>: expected <what>, got <value>`.
//!
//! The plan's per-service files (ptrc, feast-pipeline) are valid config files as written: their
//! sections are part of [`Config`].

mod env;
mod schema;
mod validate;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;
use thiserror::Error;

pub use env::{ALIASES, CONFIG_PATH_VAR, ENV_PREFIX};
pub use schema::*;
pub use validate::parse_hh_mm;

/// The result of loading: the configuration, the warnings the caller should log (unknown keys,
/// missing file), and a description of where the values came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
    /// `config.yaml`, `defaults`, plus the names of any environment overrides applied.
    pub source: String,
}

/// Why configuration could not be loaded. Every variant names where the bad input came from.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{}: cannot read config file: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is not valid YAML.
    #[error("{origin}: invalid YAML: {message}")]
    Syntax { origin: String, message: String },
    /// A key holds a value of the wrong type or out of range. `origin` is the file name or
    /// `environment variable TRADE2026_...`.
    #[error("{origin}: {key}: {message}")]
    Invalid {
        origin: String,
        key: String,
        message: String,
    },
    /// An environment variable cannot be applied (bad name, non-UTF-8 value, or it would nest
    /// under a scalar).
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    /// The configuration could not be written out as YAML.
    #[error("cannot write configuration as YAML: {0}")]
    Serialize(String),
}

impl ConfigError {
    /// The key path the error is about, when it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// The source name used when there is no file.
pub const DEFAULTS_SOURCE: &str = "defaults";

/// Loads the configuration from `path` (or defaults only when `None`) and the process
/// environment.
///
/// A `path` that does not exist is not an error: the defaults are used and a warning says so,
/// so a fresh checkout runs without any setup.
pub fn load(path: Option<&Path>) -> Result<Loaded, ConfigError> {
    let env = env::process_env()?;
    let Some(path) = path else {
        return load_from_str("", DEFAULTS_SOURCE, env);
    };
    let name = path.display().to_string();
    match fs::read_to_string(path) {
        Ok(text) => load_from_str(&text, &name, env),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut loaded = load_from_str("", &name, env)?;
            loaded
                .warnings
                .insert(0, format!("{name}: file not found, using defaults"));
            loaded.source =
                loaded
                    .source
                    .replacen(&name, &format!("{DEFAULTS_SOURCE} ({name} not found)"), 1);
            Ok(loaded)
        }
        Err(source) => Err(ConfigError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Loads from YAML text named `source_name` (used in messages) and the given environment
/// (only `TRADE2026_*` entries are looked at). This is [`load`] without any I/O.
pub fn load_from_str(
    yaml: &str,
    source_name: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, ConfigError> {
    let mut root: Value = serde_yaml_ng::from_str(yaml).map_err(|e| ConfigError::Syntax {
        origin: source_name.to_owned(),
        message: e.to_string(),
    })?;
    if root.is_null() {
        // An empty (or comments-only) file means "all defaults".
        root = Value::Mapping(Default::default());
    }
    root.apply_merge().map_err(|e| ConfigError::Syntax {
        origin: source_name.to_owned(),
        message: e.to_string(),
    })?;

    let mut overrides = env::apply(&mut root, env)?;
    let origin_of = |key: &str, overrides: &[env::Override]| -> String {
        match env::override_for(overrides, key) {
            Some(o) => format!("environment variable {}", o.var),
            None => source_name.to_owned(),
        }
    };

    let (config, unknown) = loop {
        match deserialize(root.clone()) {
            Ok(ok) => break ok,
            Err((key, message)) => {
                // `TRADE2026_SEAWEEDFS__BUCKET=2026` parses as a number; a string field
                // should still accept it, so retry once with the variable's raw text.
                if env::retry_as_string(&mut root, &mut overrides, &key) {
                    continue;
                }
                return Err(ConfigError::Invalid {
                    origin: origin_of(&key, &overrides),
                    key,
                    message,
                });
            }
        }
    };

    let warnings = unknown
        .into_iter()
        .map(|key| {
            format!(
                "{}: unknown key {key} (ignored)",
                origin_of(&key, &overrides)
            )
        })
        .collect();

    validate::validate(&config).map_err(|(key, message)| ConfigError::Invalid {
        origin: origin_of(&key, &overrides),
        key,
        message,
    })?;

    let source = if overrides.is_empty() {
        source_name.to_owned()
    } else {
        let vars: Vec<&str> = overrides.iter().map(|o| o.var.as_str()).collect();
        format!("{source_name} + environment ({})", vars.join(", "))
    };
    Ok(Loaded {
        config,
        warnings,
        source,
    })
}

/// The effective configuration as YAML (`trade2026 config check` prints this). Loading the
/// output gives back the same [`Config`] with no warnings.
pub fn to_yaml(config: &Config) -> Result<String, ConfigError> {
    serde_yaml_ng::to_string(config).map_err(|e| ConfigError::Serialize(e.to_string()))
}

/// [`to_yaml`] with `redact` applied to every string value (addresses that carry passwords or
/// tokens), for showing a configuration to a person.
pub fn to_yaml_redacted(
    config: &Config,
    redact: impl Fn(&str) -> String,
) -> Result<String, ConfigError> {
    fn walk(v: &mut Value, redact: &dyn Fn(&str) -> String) {
        match v {
            Value::String(s) => *s = redact(s),
            Value::Sequence(items) => items.iter_mut().for_each(|i| walk(i, redact)),
            Value::Mapping(map) => map.iter_mut().for_each(|(_, i)| walk(i, redact)),
            Value::Tagged(t) => walk(&mut t.value, redact),
            _ => {}
        }
    }
    let mut tree =
        serde_yaml_ng::to_value(config).map_err(|e| ConfigError::Serialize(e.to_string()))?;
    walk(&mut tree, &redact);
    serde_yaml_ng::to_string(&tree).map_err(|e| ConfigError::Serialize(e.to_string()))
}

/// Deserializes the merged tree, collecting unknown keys; on error returns (key path, message).
fn deserialize(root: Value) -> Result<(Config, Vec<String>), (String, String)> {
    let mut unknown = Vec::new();
    let mut on_ignored = |p: serde_ignored::Path<'_>| unknown.push(ignored_path(&p));
    let de = serde_ignored::Deserializer::new(root, &mut on_ignored);
    match serde_path_to_error::deserialize::<_, Config>(de) {
        Ok(config) => Ok((config, unknown)),
        Err(e) => {
            let key = error_path(e.path());
            Err((key, reshape(&e.into_inner().to_string())))
        }
    }
}

/// `modules.tax.wash_sale_windw_days`, `feed.synthetic.symbols[2].start_price`.
fn join_path(segments: &[Seg]) -> String {
    let mut out = String::new();
    for s in segments {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    if out.is_empty() {
        out.push_str("(top level)");
    }
    out
}

enum Seg {
    Key(String),
    Index(usize),
}

fn ignored_path(p: &serde_ignored::Path<'_>) -> String {
    fn walk(p: &serde_ignored::Path<'_>, out: &mut Vec<Seg>) {
        use serde_ignored::Path as P;
        match p {
            P::Root => {}
            P::Seq { parent, index } => {
                walk(parent, out);
                out.push(Seg::Index(*index));
            }
            P::Map { parent, key } => {
                walk(parent, out);
                out.push(Seg::Key(key.clone()));
            }
            // Option / newtype wrappers are invisible in the YAML.
            P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
                walk(parent, out)
            }
        }
    }
    let mut segs = Vec::new();
    walk(p, &mut segs);
    join_path(&segs)
}

fn error_path(p: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let segs: Vec<Seg> = p
        .iter()
        .map(|s| match s {
            Segment::Seq { index } => Seg::Index(*index),
            Segment::Map { key } => Seg::Key(key.clone()),
            Segment::Enum { variant } => Seg::Key(variant.clone()),
            Segment::Unknown => Seg::Key("?".to_owned()),
        })
        .collect();
    join_path(&segs)
}

/// Turns serde's `invalid type: string "high", expected u16` into the loader's uniform
/// `expected u16, got "high"`; other messages pass through.
fn reshape(msg: &str) -> String {
    let body = msg
        .strip_prefix("invalid type: ")
        .or_else(|| msg.strip_prefix("invalid value: "));
    let Some((got, expected)) = body.and_then(|b| b.split_once(", expected ")) else {
        return msg.to_owned();
    };
    let got = if let Some(s) = got.strip_prefix("string ") {
        s.to_owned()
    } else if let Some((_, v)) = got.split_once('`') {
        // integer `3`, floating point `0.5`, boolean `true`
        v.trim_end_matches('`').to_owned()
    } else {
        match got {
            "unit value" => "null".to_owned(),
            "map" => "a mapping".to_owned(),
            "sequence" => "a list".to_owned(),
            other => other.to_owned(),
        }
    };
    format!("expected {expected}, got {got}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_are_reshaped_to_expected_got() {
        assert_eq!(
            reshape("invalid type: string \"abc\", expected u16"),
            "expected u16, got \"abc\""
        );
        assert_eq!(
            reshape("invalid value: integer `70000`, expected u16"),
            "expected u16, got 70000"
        );
        assert_eq!(
            reshape("invalid type: sequence, expected a string"),
            "expected a string, got a list"
        );
        assert_eq!(reshape("missing field `symbol`"), "missing field `symbol`");
    }

    #[test]
    fn defaults_are_valid() {
        let config = Config::default();
        assert!(validate::validate(&config).is_ok());
        assert_eq!(config.feed.synthetic.symbols.len(), 5);
    }
}
