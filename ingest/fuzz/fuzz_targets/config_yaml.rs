//! Config YAML (and `--set` overrides after NUL bytes) → `Config::from_yaml`, which must return
//! a config or an error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phoenix_model::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.split('\0');
    let yaml = parts.next().unwrap_or("");
    let overrides: Vec<String> = parts.map(str::to_string).collect();
    let _ = Config::from_yaml("fuzz.yaml", yaml, &overrides);
});
