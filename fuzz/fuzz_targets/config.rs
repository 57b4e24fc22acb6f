//! Flags and environment: parsing never panics, and what it accepts is a configuration the
//! server can use (the rules `Config` promises).
#![no_main]

use std::ffi::OsString;

use libfuzzer_sys::fuzz_target;
use tinyserve::ops::config::{parse, Command};

fuzz_target!(|input: (Vec<String>, Vec<(String, String)>)| {
    let (args, env) = input;
    // The root is the one flag that touches the file system: keep it on a real folder,
    // unless the input names another.
    let mut argv: Vec<OsString> = vec!["--root".into(), "/tmp".into()];
    argv.extend(args.into_iter().map(OsString::from));
    let lookup = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if let Ok(Command::Serve(c)) = parse(argv, lookup) {
        assert!(c.root.is_absolute() && c.root.is_dir());
        assert!(c.max_header_size >= 8192);
        assert!(c.max_connections >= 1 && c.cache_entries >= 1);
        assert!(!c.header_timeout.is_zero() && !c.idle_timeout.is_zero());
        for (name, _) in &c.headers {
            assert!(!tinyserve::ops::config::REFUSED_HEADERS.contains(&name.as_str()));
        }
    }
});
