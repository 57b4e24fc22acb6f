use super::values::*;
use super::*;

fn parse_args(args: &[&str], env: &[(&str, &str)]) -> Result<Command, ConfigError> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    parse(args.iter().map(OsString::from), move |k| {
        env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    })
}

fn config(args: &[&str], env: &[(&str, &str)]) -> Config {
    let dir = env!("CARGO_MANIFEST_DIR");
    let mut all = vec!["--root", dir];
    all.extend_from_slice(args);
    match parse_args(&all, env).unwrap() {
        Command::Serve(c) => *c,
        other => panic!("expected serve, got {other:?}"),
    }
}

#[test]
fn durations_and_sizes() {
    assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
    assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
    assert_eq!(parse_duration("0"), Some(Duration::ZERO));
    assert_eq!(parse_duration("5"), None);
    assert_eq!(parse_duration("-5s"), None);
    assert_eq!(parse_duration("5 s"), None);
    assert_eq!(parse_size("16KiB"), Some(16384));
    assert_eq!(parse_size("2MiB"), Some(2 << 20));
    assert_eq!(parse_size("12"), Some(12));
    assert_eq!(parse_size("1.5M"), None);
}

#[test]
fn flag_beats_env_beats_default() {
    let c = config(&[], &[]);
    assert_eq!(c.listen, "[::]:8080".parse().unwrap());
    assert_eq!(c.drain_timeout, Duration::from_secs(10));
    let c = config(&[], &[("TINYSERVE_LISTEN", "127.0.0.1:9")]);
    assert_eq!(c.listen, "127.0.0.1:9".parse().unwrap());
    let c = config(
        &["--listen", "127.0.0.1:7"],
        &[("TINYSERVE_LISTEN", "127.0.0.1:9")],
    );
    assert_eq!(c.listen, "127.0.0.1:7".parse().unwrap());
}

#[test]
fn headers_from_flags_and_env_lines() {
    let c = config(&["--header", "X-A: 1", "--header", "X-B: two"], &[]);
    assert_eq!(c.headers.len(), 2);
    let c = config(
        &[],
        &[(
            "TINYSERVE_HEADERS",
            "X-A: 1\nStrict-Transport-Security: max-age=63072000\n",
        )],
    );
    assert_eq!(c.headers[1].0, "strict-transport-security");
}

#[test]
fn immutable_rule() {
    let c = config(&["--immutable", "fingerprint,/assets/"], &[]);
    assert!(c.immutable.fingerprinted);
    assert_eq!(c.immutable.prefixes, vec!["/assets/".to_string()]);
    let c = config(&["--immutable", ""], &[]);
    assert_eq!(c.immutable, ImmutableRule::default());
}

#[test]
fn errors_name_flag_env_and_value() {
    let e = parse_args(&["--root", ".", "--drain-timeout", "ten"], &[])
        .unwrap_err()
        .0;
    assert!(
        e.contains("--drain-timeout") && e.contains("\"ten\""),
        "{e}"
    );
    let e = parse_args(&["--root", "."], &[("TINYSERVE_SHUTDOWN_DELAY", "5x")])
        .unwrap_err()
        .0;
    assert!(
        e.contains("TINYSERVE_SHUTDOWN_DELAY")
            && e.contains("--shutdown-delay")
            && e.contains("\"5x\""),
        "{e}"
    );
    let e = parse_args(&["--root", "/nonexistent/site"], &[])
        .unwrap_err()
        .0;
    assert!(
        e.contains("TINYSERVE_ROOT") && e.contains("/nonexistent/site"),
        "{e}"
    );
    let e = parse_args(&["--bogus", "1"], &[]).unwrap_err().0;
    assert!(e.contains("--bogus"), "{e}");
}

#[test]
fn every_option_is_listed_once_with_its_own_variable() {
    let mut seen = std::collections::HashSet::new();
    for o in &flags::ALL {
        assert!(seen.insert(o.flag), "--{} twice", o.flag);
        // One naming rule, so a variable can be guessed from its flag (the one plural:
        // TINYSERVE_HEADERS holds one header per line).
        let env = super::derived_env(o.flag);
        assert!(
            o.env == env || (o.flag == "header" && o.env == "TINYSERVE_HEADERS"),
            "{}",
            o.env
        );
        assert!(!o.help.is_empty(), "--{} has no help", o.flag);
    }
    assert_eq!(seen.len(), 28);
}

#[test]
fn every_default_reads_as_its_own_flag_says() {
    // A default is parsed like a given value: one that its parser refuses would make
    // every start fail.
    let defaults = parse_args(&["--root", "."], &[]).expect("the defaults parse");
    assert!(matches!(defaults, Command::Serve(_)));
    assert_eq!(
        (flags::LISTEN.parse)("[::]:8080"),
        Some("[::]:8080".parse().unwrap())
    );
}

#[test]
fn healthcheck_reads_listen() {
    match parse_args(&["healthcheck"], &[("TINYSERVE_LISTEN", "0.0.0.0:9999")]).unwrap() {
        Command::Healthcheck(a) => assert_eq!(a.port(), 9999),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_connection_cap_fits_the_memory_limit() {
    let mib = 1u64 << 20;
    assert_eq!(default_max_connections(None, 64 * mib).0, 10_000);
    // The manifest's pod: 96 MiB, a 32 MiB cache: 56 MiB left, 2 867 connections.
    let (n, why) = default_max_connections(Some(96 * mib), 32 * mib);
    assert_eq!(n, 2867);
    assert!(why.contains("96 MiB") && why.contains("56 MiB"), "{why}");
    assert_eq!(default_max_connections(Some(96 * mib), 64 * mib).0, 1228);
    // Plenty of memory: the usual default; too little: a floor, not zero.
    assert_eq!(
        default_max_connections(Some(4096 * mib), 64 * mib).0,
        10_000
    );
    assert_eq!(default_max_connections(Some(32 * mib), 64 * mib).0, 16);
    // At the cap, cache and connections stay within the limit.
    for limit in [64, 96, 128, 256, 512] {
        let (n, _) = default_max_connections(Some(limit * mib), 32 * mib);
        assert!(32 * mib + BASE_MEMORY + n as u64 * CONNECTION_MEMORY <= limit * mib);
    }
}
