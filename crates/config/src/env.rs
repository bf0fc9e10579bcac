//! `TRADE2026_*` environment overrides, applied to the parsed YAML tree before it is typed, so
//! an override goes through exactly the same type checks and unknown-key warnings as the file.

use serde_yaml_ng::{Mapping, Value};

use crate::ConfigError;

/// Every override variable starts with this (matched case-insensitively).
pub const ENV_PREFIX: &str = "TRADE2026_";

/// Reserved for the config file path; never treated as an override.
pub const CONFIG_PATH_VAR: &str = "TRADE2026_CONFIG";

/// Short names for settings people set often: (variable, key path). Applied before the generic
/// `SECTION__KEY` variables, so a generic variable for the same key wins.
pub const ALIASES: &[(&str, &str)] = &[
    (
        "TRADE2026_ONLINE_STORE",
        "feast.online_store.connection_string",
    ),
    ("TRADE2026_DATA_DIR", "platform.data_dir"),
    ("TRADE2026_LOG_LEVEL", "platform.log_level"),
    ("TRADE2026_LOG_FORMAT", "platform.log_format"),
    // The gateway's port lives in the `services` table with the other ports; this keeps the
    // natural spelling working too.
    ("TRADE2026_GATEWAY__PORT", "services.gateway"),
];

/// One applied variable.
#[derive(Debug, Clone)]
pub(crate) struct Override {
    pub var: String,
    /// Dotted key path (lower case).
    pub key: String,
    pub raw: String,
    /// Set once the value has been replaced by its raw text (see [`retry_as_string`]).
    pub as_string: bool,
}

/// The process environment's `TRADE2026_*` variables. Names that are not UTF-8 cannot be ours;
/// a value that is not UTF-8 in one of ours is an error naming the variable.
pub(crate) fn process_env() -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str().map(str::to_owned) else {
            continue;
        };
        if !has_prefix(&name) {
            continue;
        }
        let value = value.into_string().map_err(|_| ConfigError::Env {
            var: name.clone(),
            message: "value is not valid UTF-8".to_owned(),
        })?;
        out.push((name, value));
    }
    Ok(out)
}

fn has_prefix(name: &str) -> bool {
    name.get(..ENV_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(ENV_PREFIX))
}

/// Applies every `TRADE2026_*` entry of `env` to `root`, in a fixed order (aliases, then the
/// rest by name) so the result does not depend on the environment's iteration order.
pub(crate) fn apply(
    root: &mut Value,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<Override>, ConfigError> {
    let mut vars: Vec<(bool, String, String, String)> = Vec::new();
    for (name, raw) in env {
        if !has_prefix(&name) || name.eq_ignore_ascii_case(CONFIG_PATH_VAR) {
            continue;
        }
        let alias = ALIASES.iter().find(|(a, _)| a.eq_ignore_ascii_case(&name));
        let key = match alias {
            Some((_, key)) => (*key).to_owned(),
            None => generic_key(&name)?,
        };
        vars.push((alias.is_none(), name, key, raw));
    }
    vars.sort();

    let mut applied = Vec::with_capacity(vars.len());
    for (_, var, key, raw) in vars {
        set_path(root, &key, scalar(&raw)).map_err(|message| ConfigError::Env {
            var: var.clone(),
            message,
        })?;
        applied.push(Override {
            var,
            key,
            raw,
            as_string: false,
        });
    }
    Ok(applied)
}

/// `TRADE2026_MODULES__TAX__WASH_SALE_WINDOW_DAYS` -> `modules.tax.wash_sale_window_days`.
fn generic_key(name: &str) -> Result<String, ConfigError> {
    let rest = &name[ENV_PREFIX.len()..];
    let segments: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(ConfigError::Env {
            var: name.to_owned(),
            message: "expected TRADE2026_<SECTION>__<KEY>[__<SUBKEY>...] with no empty parts"
                .to_owned(),
        });
    }
    Ok(segments.join("."))
}

/// Reads a variable's value as a YAML scalar (or a flow list like `[a, b]`). Text that YAML
/// would read as a mapping, or cannot read at all, is kept as a plain string: env values are
/// never meant to be structured documents.
fn scalar(raw: &str) -> Value {
    if raw.trim().is_empty() {
        return Value::String(raw.to_owned());
    }
    match serde_yaml_ng::from_str::<Value>(raw) {
        Ok(v @ (Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_))) => v,
        Ok(v @ Value::Sequence(_)) => v,
        _ => Value::String(raw.to_owned()),
    }
}

/// Sets `key` (dotted) in `root`, creating mappings on the way and matching existing keys
/// case-insensitively.
fn set_path(root: &mut Value, key: &str, value: Value) -> Result<(), String> {
    let segments: Vec<&str> = key.split('.').collect();
    let mut cur = root;
    for (i, seg) in segments.iter().enumerate() {
        if cur.is_null() {
            *cur = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(map) = cur else {
            let parent = if i == 0 {
                "the top level".to_owned()
            } else {
                segments[..i].join(".")
            };
            return Err(format!(
                "cannot set {key}: {parent} is not a mapping in the config file"
            ));
        };
        let existing = map
            .keys()
            .find(|k| k.as_str().is_some_and(|s| s.eq_ignore_ascii_case(seg)))
            .cloned();
        let k = existing.unwrap_or_else(|| Value::String((*seg).to_owned()));
        if i + 1 == segments.len() {
            map.insert(k, value);
            return Ok(());
        }
        cur = map.entry(k).or_insert(Value::Null);
    }
    Ok(())
}

/// The override that set `key` or one of its parents.
pub(crate) fn override_for<'a>(overrides: &'a [Override], key: &str) -> Option<&'a Override> {
    // Later overrides win, so search from the end.
    overrides.iter().rev().find(|o| {
        key == o.key
            || key
                .strip_prefix(o.key.as_str())
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    })
}

/// When typing failed exactly at a key an override set to a non-string scalar, replace it by
/// the variable's raw text (string fields then accept `2026`). Returns whether to retry.
pub(crate) fn retry_as_string(root: &mut Value, overrides: &mut [Override], key: &str) -> bool {
    let Some(o) = overrides
        .iter_mut()
        .rev()
        .find(|o| o.key == key && !o.as_string)
    else {
        return false;
    };
    if matches!(scalar(&o.raw), Value::String(_)) {
        return false;
    }
    o.as_string = true;
    set_path(root, &o.key, Value::String(o.raw.clone())).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_names_split_on_double_underscore_and_lower_case() {
        assert_eq!(
            generic_key("TRADE2026_MODULES__TAX__WASH_SALE_WINDOW_DAYS").unwrap(),
            "modules.tax.wash_sale_window_days"
        );
        assert!(generic_key("TRADE2026_MODULES____TAX").is_err());
    }

    #[test]
    fn values_are_yaml_scalars() {
        assert_eq!(scalar("9000").as_u64(), Some(9000));
        assert_eq!(scalar("true").as_bool(), Some(true));
        assert_eq!(
            scalar("redis://127.0.0.1:6379").as_str(),
            Some("redis://127.0.0.1:6379")
        );
        assert_eq!(scalar("a: b").as_str(), Some("a: b"));
        assert_eq!(scalar("@x").as_str(), Some("@x"));
    }
}
