//! Templates: any text compiled; what compiles is rendered twice against a request, an inbound
//! message and per-stream state (as scripts and stub outputs render), alone and inside JSON.
//! Errors carry an offset inside the source; rendering is bounded and never panics.
#![no_main]

use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Map, Value as Json, json};
use streamstorm::template::{JsonTemplate, Scope, Template};

static REQUEST: LazyLock<Json> = LazyLock::new(|| {
    json!({
        "user_id": "u-1", "topics": ["user", "payment", ""], "interval": 2000, "limit": -3.5,
        "type": "REALTIME", "profile": {"name": "Ada", "tags": {"a": "1"}, "scores": [1, 2.5, null]},
        "big": "9007199254740993", "flag": true, "empty": {}, "none": null
    })
});
static MESSAGE: LazyLock<Json> = LazyLock::new(
    || json!({"content": "AUTH token", "sequence": 3, "data": "aGVsbG8=", "nested": [{"x": []}]}),
);
static STATE: LazyLock<Map<String, Json>> = LazyLock::new(|| {
    let mut state = Map::new();
    state.insert("chunks".into(), json!(4));
    state.insert("authenticated".into(), json!(true));
    state.insert("name".into(), json!("zed"));
    state.insert("list".into(), json!([1, "two", {"three": 3}]));
    state
});

fuzz_target!(|source: &str| {
    let template = match Template::compile(source) {
        Ok(template) => template,
        Err(error) => {
            assert!(error.offset <= source.len(), "offset {} past the end of {source:?}", error.offset);
            return;
        }
    };
    let _ = template.paths();
    let mut rng = StdRng::seed_from_u64(42);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for message in [Some(&*MESSAGE), None] {
        let mut scope = Scope {
            request: &REQUEST,
            message,
            state: &STATE,
            connection_id: "conn-1",
            stream_id: 17,
            rng: &mut rng,
            now,
        };
        let _ = template.render(&mut scope);
    }
    let wrapped = json!({"text": source, "list": [source, 1]});
    if let Ok(json_template) = JsonTemplate::compile(&wrapped) {
        let _ = json_template.paths();
        let mut scope = Scope {
            request: &REQUEST,
            message: Some(&MESSAGE),
            state: &STATE,
            connection_id: "conn-1",
            stream_id: 17,
            rng: &mut rng,
            now,
        };
        let _ = json_template.render(&mut scope);
    }
});
