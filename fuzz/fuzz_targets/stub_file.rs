//! Stub files (GripMock YAML or JSON): parsed and compiled against the example protos, the
//! path `serve --stubs` and `validate` take. Any text must give stubs or located problems.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use streamstorm::stub::compile::compile_file;
use streamstorm_fuzz::DESCRIPTORS;

fuzz_target!(|text: &str| {
    // The extension only names the file in problems; YAML and JSON share one reader.
    let path = Path::new("fuzz.yaml");
    for set in &DESCRIPTORS.sets {
        if let Err(problems) = compile_file(path, text, &set.catalog, &set.pool, 0) {
            assert!(!problems.is_empty(), "a failed compile must report a problem");
            let _ = problems.to_string();
        }
    }
});
