//! JSONL stream scripts: parsed and validated (JSON, fields, templates, the request paths they
//! read, the call pattern) against every method of `protos/myapp`, one of each call pattern.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use streamstorm::script::parse_script;
use streamstorm_fuzz::DESCRIPTORS;

fuzz_target!(|text: &str| {
    let path = Path::new("fuzz.jsonl");
    for method in &DESCRIPTORS.sets[0].methods {
        if let Err(problems) = parse_script(path, text, method.clone()) {
            assert!(!problems.is_empty(), "a failed parse must report a problem");
            let _ = problems.to_string();
        }
    }
});
