use std::path::{Path, PathBuf};

use config::{Config, ConfigError, FeedMode, LogFormat, LogLevel, PnlMethod, load, load_from_str};
use rust_decimal_macros::dec;

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn invalid(err: ConfigError) -> (String, String, String) {
    match err {
        ConfigError::Invalid {
            origin,
            key,
            message,
        } => (origin, key, message),
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

#[test]
fn no_file_gives_the_documented_defaults() {
    let loaded = load_from_str("", "defaults", no_env()).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.source, "defaults");
    let c = &loaded.config;
    assert_eq!(c, &Config::default());
    assert_eq!(c.platform.data_dir, PathBuf::from("./data"));
    assert_eq!(c.platform.log_format, LogFormat::Text);
    assert_eq!(c.platform.log_level, LogLevel::Info);
    assert_eq!(c.services.host, "127.0.0.1");
    let ports: Vec<(&str, u16)> = c.services.ports().to_vec();
    assert_eq!(
        ports,
        vec![
            ("gateway", 8099),
            ("ptrc", 8109),
            ("execution_quality", 8110),
            ("compliance_scanner", 8111),
            ("logger", 8112),
            ("monitoring", 8113),
            ("feature_pipeline", 6566),
        ]
    );
    assert_eq!(c.feed.mode, FeedMode::Synthetic);
    let symbols: Vec<&str> = c
        .feed
        .synthetic
        .symbols
        .iter()
        .map(|s| s.symbol.as_str())
        .collect();
    assert_eq!(
        symbols,
        ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT"]
    );
    assert_eq!(c.feed.synthetic.symbols[4].start_price.get(), dec!(0.6));
    assert_eq!(c.journal_path(), PathBuf::from("./data/journal"));
    assert_eq!(c.marketdata_path(), PathBuf::from("./data/marketdata.db"));
    assert_eq!(c.modules.risk.var_confidence, dec!(0.99));
    assert_eq!(c.feast.online_store.connection_string, None);
}

#[test]
fn a_comments_only_file_and_a_missing_file_also_give_defaults() {
    let loaded = load_from_str("# nothing here\n", "config.yaml", no_env()).unwrap();
    assert_eq!(loaded.config, Config::default());

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("config.yaml");
    let loaded = load(Some(&missing)).unwrap();
    assert_eq!(loaded.config.services, Config::default().services);
    assert!(
        loaded.warnings[0].ends_with("config.yaml: file not found, using defaults"),
        "{:?}",
        loaded.warnings
    );
    assert!(loaded.source.starts_with("defaults ("), "{}", loaded.source);
}

#[test]
fn the_plans_ptrc_file_loads_as_written() {
    let path = data("ptrc.yaml");
    let loaded = load(Some(&path)).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    assert_eq!(c.service.name.as_deref(), Some("ptrc"));
    assert_eq!(c.service.port, Some(8109));
    assert_eq!(c.service.log_level, Some(LogLevel::Info));
    assert_eq!(c.service_port("ptrc"), Some(8109));
    assert_eq!(c.log_level_for("ptrc"), LogLevel::Info);
    assert_eq!(c.clickhouse.http_url, "http://clickhouse:8123");
    assert_eq!(c.clickhouse.database, "trade2026");
    assert_eq!(c.questdb.http_url, "http://questdb:9000");
    assert_eq!(
        c.questdb.pg_url,
        "postgresql://admin:quest@questdb:8812/qdb"
    );
    assert_eq!(
        c.seaweedfs.s3_endpoint.as_deref(),
        Some("http://seaweedfs:8333")
    );
    assert_eq!(c.seaweedfs.bucket, "trader2026");
    assert_eq!(c.seaweedfs.prefix, "reports/");
    assert!(c.modules.pnl.enabled);
    assert_eq!(c.modules.pnl.default_method, PnlMethod::Fifo);
    assert!(c.modules.tax.enabled);
    assert_eq!(c.modules.tax.wash_sale_window_days, 30);
    assert!(c.modules.risk.enabled);
    // Exact, not 0.9899999999999999911182158029987...
    assert_eq!(c.modules.risk.var_confidence, dec!(0.99));
    assert!(c.modules.compliance.enabled);
    assert!(c.modules.compliance.surveillance_enabled);
    // Sections the file does not mention keep their defaults.
    assert_eq!(c.services.gateway, 8099);
}

#[test]
fn the_plans_feast_pipeline_file_loads_as_written() {
    let path = data("feast_pipeline.yaml");
    let loaded = load(Some(&path)).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let f = &loaded.config.feast;
    assert_eq!(f.repo_path, PathBuf::from("/app/feast"));
    assert_eq!(f.online_store.kind, "redis");
    assert_eq!(
        f.online_store.connection_string.as_deref(),
        Some("valkey:6379")
    );
    assert_eq!(f.offline_store.kind, "clickhouse");
    assert_eq!(f.offline_store.host, "clickhouse");
    assert_eq!(f.offline_store.port, 8123);
    assert_eq!(f.offline_store.database, "trade2026");
    let m = &loaded.config.materialization;
    assert_eq!(m.interval_minutes, 5);
    assert_eq!(
        m.features,
        ["market_features", "order_features", "position_features"]
    );
}

#[test]
fn unknown_keys_are_warnings_naming_file_and_full_path() {
    let yaml = "modules:\n  tax:\n    wash_sale_windw_days: 31\nfeed:\n  synthetic:\n    symbols:\n      - {symbol: BTCUSDT, start_price: 1, colour: red}\nnonsense: 1\n";
    let loaded = load_from_str(yaml, "config.yaml", no_env()).unwrap();
    assert_eq!(
        loaded.warnings,
        vec![
            "config.yaml: unknown key modules.tax.wash_sale_windw_days (ignored)",
            "config.yaml: unknown key feed.synthetic.symbols[0].colour (ignored)",
            "config.yaml: unknown key nonsense (ignored)",
        ]
    );
    // The misspelt key did not change anything.
    assert_eq!(loaded.config.modules.tax.wash_sale_window_days, 30);
}

#[test]
fn a_wrong_type_names_file_key_and_expected_type() {
    let yaml = "modules:\n  risk:\n    var_confidence: \"high\"\n";
    let err = load_from_str(yaml, "config.yaml", no_env()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "config.yaml: modules.risk.var_confidence: expected a number between 0 and 1, got \"high\""
    );

    let err = load_from_str("services:\n  ptrc: eighty\n", "ptrc.yaml", no_env()).unwrap_err();
    assert_eq!(
        invalid(err),
        (
            "ptrc.yaml".to_owned(),
            "services.ptrc".to_owned(),
            "expected u16, got \"eighty\"".to_owned()
        )
    );

    let err = load_from_str(
        "modules:\n  pnl:\n    default_method: FILO\n",
        "config.yaml",
        no_env(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "config.yaml: modules.pnl.default_method: expected one of FIFO, LIFO, AVG, HIFO, got \"FILO\""
    );

    let err = load_from_str(
        "feed:\n  synthetic:\n    symbols:\n      - {symbol: BTCUSDT, start_price: -5}\n",
        "config.yaml",
        no_env(),
    )
    .unwrap_err();
    let (_, key, message) = invalid(err);
    assert_eq!(key, "feed.synthetic.symbols[0].start_price");
    assert!(message.contains("must be greater than zero"), "{message}");
}

#[test]
fn out_of_range_values_fail_after_parsing_with_the_same_shape() {
    let cases = [
        (
            "modules:\n  risk:\n    var_confidence: 1.5\n",
            "config.yaml: modules.risk.var_confidence: expected a number between 0 and 1 (exclusive), got 1.5",
        ),
        (
            "modules:\n  risk:\n    var_confidence: 1\n",
            "config.yaml: modules.risk.var_confidence: expected a number between 0 and 1 (exclusive), got 1",
        ),
        (
            "feast:\n  offline_store:\n    port: 0\n",
            "config.yaml: feast.offline_store.port: expected a port number between 1 and 65535, got 0",
        ),
        (
            "materialization:\n  interval_minutes: 0\n",
            "config.yaml: materialization.interval_minutes: expected a positive number of minutes, got 0",
        ),
        (
            "logger:\n  retention_days: 0\n",
            "config.yaml: logger.retention_days: expected a positive number of days, got 0",
        ),
        (
            "logger:\n  max_bytes: 1000\n",
            "config.yaml: logger.max_bytes: expected at least 1048576 (1 MiB), got 1000",
        ),
        (
            "feed:\n  mode: live\n",
            "config.yaml: feed.live.instruments: expected at least one exchange:SYMBOL spec when feed.mode is live, got none",
        ),
    ];
    for (yaml, want) in cases {
        let err = load_from_str(yaml, "config.yaml", no_env()).unwrap_err();
        assert_eq!(err.to_string(), want);
    }
}

#[test]
fn invalid_yaml_names_the_file() {
    let err = load_from_str("services: [unclosed\n", "config.yaml", no_env()).unwrap_err();
    assert!(
        matches!(&err, ConfigError::Syntax { origin, .. } if origin == "config.yaml"),
        "{err:?}"
    );
}

#[test]
fn live_feed_specs_parse_exchange_and_symbols() {
    let yaml = "feed:\n  mode: live\n  live:\n    instruments: [\"binance:BTCUSDT,ETHUSDT\", \"coinbase:BTC-USD\"]\n    ws_urls:\n      binance: ws://127.0.0.1:9001\n";
    let c = load_from_str(yaml, "config.yaml", no_env()).unwrap().config;
    let specs: Vec<String> = c
        .feed
        .live
        .instruments
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(specs, ["binance:BTCUSDT,ETHUSDT", "coinbase:BTC-USD"]);
    assert_eq!(c.feed.live.instruments[0].symbols[1].as_str(), "ETHUSDT");
    let binance = model::Venue::new("binance").unwrap();
    assert_eq!(c.feed.live.ws_urls[&binance], "ws://127.0.0.1:9001");

    let err = load_from_str(
        "feed:\n  live:\n    instruments: [binance]\n",
        "config.yaml",
        no_env(),
    )
    .unwrap_err();
    let (_, key, message) = invalid(err);
    assert_eq!(key, "feed.live.instruments[0]");
    assert!(
        message.starts_with("expected \"exchange:SYMBOL"),
        "{message}"
    );
}

#[test]
fn env_overrides_nest_parse_numbers_and_honour_aliases() {
    let path = data("ptrc.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let loaded = load_from_str(
        &text,
        "ptrc.yaml",
        env(&[
            ("TRADE2026_GATEWAY__PORT", "9000"),
            ("TRADE2026_MODULES__TAX__WASH_SALE_WINDOW_DAYS", "61"),
            ("trade2026_modules__risk__Var_Confidence", "0.95"),
            ("TRADE2026_ONLINE_STORE", "redis://127.0.0.1:6379"),
            ("TRADE2026_SEAWEEDFS__BUCKET", "2026"),
            ("TRADE2026_CONFIG", "ignored.yaml"),
            ("PATH", "/usr/bin"),
        ]),
    )
    .unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    assert_eq!(c.services.gateway, 9000);
    assert_eq!(c.modules.tax.wash_sale_window_days, 61);
    assert_eq!(c.modules.risk.var_confidence, dec!(0.95));
    assert_eq!(
        c.feast.online_store.connection_string.as_deref(),
        Some("redis://127.0.0.1:6379")
    );
    // A numeric-looking value still fills a string field.
    assert_eq!(c.seaweedfs.bucket, "2026");
    // Untouched keys keep the file's values.
    assert_eq!(c.modules.pnl.default_method, PnlMethod::Fifo);
    assert!(loaded.source.starts_with("ptrc.yaml + environment ("));
    assert!(loaded.source.contains("TRADE2026_GATEWAY__PORT"));
    assert!(!loaded.source.contains("TRADE2026_CONFIG"));
}

#[test]
fn the_logger_section_has_documented_defaults_and_takes_overrides() {
    let c = load_from_str("", "defaults", no_env()).unwrap().config;
    assert_eq!(
        (c.logger.retention_days, c.logger.max_bytes, c.logger.level),
        (7, 1 << 30, LogLevel::Info)
    );
    let loaded = load_from_str(
        "logger:\n  retention_days: 30\n  level: WARN\n",
        "logger.yaml",
        env(&[("TRADE2026_LOGGER__MAX_BYTES", "2097152")]),
    )
    .unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let l = loaded.config.logger;
    assert_eq!(
        (l.retention_days, l.max_bytes, l.level),
        (30, 2_097_152, LogLevel::Warn)
    );
}

#[test]
fn a_generic_variable_beats_an_alias_for_the_same_key() {
    let c = load_from_str(
        "",
        "defaults",
        env(&[
            ("TRADE2026_SERVICES__GATEWAY", "9100"),
            ("TRADE2026_GATEWAY__PORT", "9000"),
        ]),
    )
    .unwrap()
    .config;
    assert_eq!(c.services.gateway, 9100);
}

#[test]
fn bad_env_values_name_the_variable() {
    let err = load_from_str(
        "",
        "config.yaml",
        env(&[("TRADE2026_SERVICES__PTRC", "high")]),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable TRADE2026_SERVICES__PTRC: services.ptrc: expected u16, got \"high\""
    );

    let err = load_from_str(
        "",
        "config.yaml",
        env(&[("TRADE2026_MODULES__RISK__VAR_CONFIDENCE", "2")]),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable TRADE2026_MODULES__RISK__VAR_CONFIDENCE: modules.risk.var_confidence: expected a number between 0 and 1 (exclusive), got 2"
    );

    // Nesting under a scalar the file set.
    let err = load_from_str(
        "journal: x\n",
        "config.yaml",
        env(&[("TRADE2026_JOURNAL__PATH", "j")]),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable TRADE2026_JOURNAL__PATH: cannot set journal.path: journal is not a mapping in the config file"
    );

    // Unknown keys from the environment are warnings naming the variable.
    let loaded =
        load_from_str("", "config.yaml", env(&[("TRADE2026_GATEWAY__PROT", "1")])).unwrap();
    assert_eq!(
        loaded.warnings,
        ["environment variable TRADE2026_GATEWAY__PROT: unknown key gateway.prot (ignored)"]
    );
}

#[test]
fn effective_config_round_trips_through_yaml() {
    // `config print` style: what we serialize must load back to the same value.
    let mut c = Config::default();
    c.feed.live.instruments = vec!["binance:BTCUSDT,ETHUSDT".parse().unwrap()];
    c.modules.pnl.default_method = PnlMethod::Hifo;
    let text = config::to_yaml(&c).unwrap();
    let back = load_from_str(&text, "printed.yaml", no_env()).unwrap();
    assert!(back.warnings.is_empty(), "{:?}", back.warnings);
    assert_eq!(back.config, c);
}

#[test]
fn risk_venue_and_engine_sections_load_and_are_validated() {
    let yaml = "risk:\n  defaults:\n    price_collar_pct: 2\n    max_position: ~\n  accounts:\n    test_account:\n      daily_loss_limit: 2500\n      max_open_orderz: 3\nvenue:\n  fees:\n    maker_bps: -1\n    taker_bps: 4.5\nengine:\n  day_session_end_utc: \"21:00\"\n";
    let loaded = load_from_str(yaml, "config.yaml", no_env()).unwrap();
    let c = &loaded.config;
    assert_eq!(
        c.risk.defaults.price_collar_pct,
        risk::Setting::Set("2".parse().unwrap())
    );
    assert_eq!(c.risk.defaults.max_position, risk::Setting::Off);
    let acct = model::AccountId::new("test_account").unwrap();
    assert_eq!(
        c.risk.accounts[&acct].daily_loss_limit,
        risk::Setting::Set("2500".parse().unwrap())
    );
    assert_eq!(c.venue.fees.taker_bps, "4.5".parse().unwrap());
    assert_eq!(c.venue.fees.maker_bps, "-1".parse().unwrap());
    assert_eq!(c.engine.day_session_end_utc.as_deref(), Some("21:00"));
    assert_eq!(
        loaded.warnings,
        vec!["config.yaml: unknown key risk.accounts.test_account.max_open_orderz (ignored)"]
    );

    // A symbol-scope account-wide limit, an out-of-range fee and a bad time are errors.
    for (yaml, key) in [
        (
            "risk:\n  symbols:\n    BTCUSDT:\n      max_open_orders: 3\n",
            "risk",
        ),
        ("venue:\n  fees:\n    taker_bps: 20000\n", "venue"),
        (
            "engine:\n  day_session_end_utc: \"25:00\"\n",
            "engine.day_session_end_utc",
        ),
    ] {
        let err = load_from_str(yaml, "config.yaml", no_env()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("config.yaml: {key}: ")),
            "{yaml}: {err}"
        );
    }
}

#[test]
fn the_monitoring_section_has_documented_defaults_takes_overrides_and_checks_ranges() {
    let c = load_from_str("", "defaults", no_env()).unwrap().config;
    let m = &c.monitoring;
    assert_eq!(
        (
            m.scrape_interval_secs,
            m.scrape_timeout_secs,
            m.history_minutes
        ),
        (5, 2, 60)
    );
    assert!(m.rules_file.is_none() && m.webhook_url.is_none() && m.targets.is_empty());
    let loaded = load_from_str(
        "monitoring:\n  rules_file: rules.yml\n  webhook_url: http://127.0.0.1:9093/hook\n  \
         targets:\n    - {service: gateway, url: 'http://10.0.0.5:8099/metrics'}\n",
        "monitoring.yaml",
        env(&[("TRADE2026_MONITORING__SCRAPE_INTERVAL_SECS", "15")]),
    )
    .unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let m = loaded.config.monitoring;
    assert_eq!(m.scrape_interval_secs, 15);
    assert_eq!(
        m.rules_file.as_deref(),
        Some(std::path::Path::new("rules.yml"))
    );
    assert_eq!(m.targets[0].service, "gateway");
    for (yaml, want) in [
        (
            "monitoring:\n  scrape_interval_secs: 0\n",
            "config.yaml: monitoring.scrape_interval_secs: expected a positive number, got 0",
        ),
        (
            "monitoring:\n  history_minutes: 5000\n",
            "config.yaml: monitoring.history_minutes: expected 1 to 1440 minutes, got 5000",
        ),
        (
            "monitoring:\n  webhook_url: hooks.example\n",
            "config.yaml: monitoring.webhook_url: expected an http:// or https:// URL, got \"hooks.example\"",
        ),
        (
            "monitoring:\n  targets:\n    - {service: x, url: 'x:1'}\n",
            "config.yaml: monitoring.targets[0].url: expected an http:// or https:// URL, got \"x:1\"",
        ),
    ] {
        let err = load_from_str(yaml, "config.yaml", no_env()).unwrap_err();
        assert_eq!(err.to_string(), want);
    }
}
