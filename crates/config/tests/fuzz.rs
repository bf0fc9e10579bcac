//! Fuzz target: the config loader over mutants of the plan's YAML files and the defaults. Any
//! text gives a config or an error naming the problem, never a panic; a config it accepts
//! prints (as `config check` does) and loads back to the same config.

use config::{load_from_str, to_yaml};

#[test]
fn fuzz_config_yaml() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let mut seeds: Vec<Vec<u8>> = ["ptrc.yaml", "feast_pipeline.yaml"]
        .iter()
        .map(|f| std::fs::read(format!("{dir}/{f}")).expect("seed file"))
        .collect();
    let defaults = load_from_str("", "defaults", []).expect("empty config loads");
    seeds.push(to_yaml(&defaults.config).unwrap().into_bytes());
    fuzzing::run("config-yaml", &seeds, |input| {
        let Ok(text) = std::str::from_utf8(input) else {
            return;
        };
        let Ok(loaded) = load_from_str(text, "fuzz.yaml", []) else {
            return;
        };
        let printed = to_yaml(&loaded.config).expect("a loaded config prints");
        let again = load_from_str(&printed, "printed.yaml", [])
            .unwrap_or_else(|e| panic!("a printed config loads again: {e}\n{printed}"));
        assert_eq!(again.config, loaded.config, "{printed}");
    });
}
