//! Template evaluation cost. `templates/render` renders four representative templates (a path
//! lookup, arithmetic on stream state, a mixed text message, `randSentence`) next to a
//! hand-written `format!` that builds the same string from the same data in the same run: the
//! baseline the engine is read against. `templates/compile_vs_render` compiles the mixed
//! message, renders it precompiled, and does both, showing that rendering does not parse.

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fake::Fake;
use fake::faker::lorem::en::Sentence;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Map, Value as Json, json};
use streamstorm::template::{Scope, Template};

const MIXED: &str = r#"{"user_id":"{{request.ws.message.user_id}}","content":"{{request.ws.message.content}}","type":"TEXT","at":"{{now}}"}"#;

/// The data every template reads, borrowed by each run's [`Scope`].
struct Data {
    request: Json,
    message: Json,
    state: Map<String, Json>,
    now: SystemTime,
}

impl Data {
    fn new() -> Data {
        Data {
            request: json!({"topics": ["user", "payment", "system"], "type": "REALTIME"}),
            message: json!({"user_id": "user123", "content": "Hello from client", "type": "TEXT"}),
            state: json!({"messageCount": 41}).as_object().cloned().unwrap_or_default(),
            now: UNIX_EPOCH + Duration::from_millis(1_704_110_400_250),
        }
    }

    fn scope<'a>(&'a self, rng: &'a mut StdRng) -> Scope<'a> {
        Scope {
            request: &self.request,
            message: Some(&self.message),
            state: &self.state,
            connection_id: "conn-1",
            stream_id: 1,
            rng,
            now: self.now,
        }
    }
}

/// A template and the `format!` that produces the same output from the same data.
type Case = (&'static str, &'static str, fn(&Data, &mut StdRng) -> Json);

fn path_lookup(data: &Data, _: &mut StdRng) -> Json {
    Json::String(format!("topic={}", data.request["topics"][0].as_str().unwrap_or_default()))
}

fn state_arithmetic(data: &Data, _: &mut StdRng) -> Json {
    let count = data.state.get("messageCount").and_then(Json::as_f64).unwrap_or(0.0);
    Json::String(format!("count={}", count + 1.0))
}

fn mixed_text(data: &Data, _: &mut StdRng) -> Json {
    let field = |name: &str| data.message[name].as_str().unwrap_or_default().to_string();
    Json::String(format!(
        r#"{{"user_id":"{}","content":"{}","type":"TEXT","at":"{}"}}"#,
        field("user_id"),
        field("content"),
        humantime::format_rfc3339_millis(data.now)
    ))
}

fn sentence(_: &Data, rng: &mut StdRng) -> Json {
    let text: String = Sentence(4..10).fake_with_rng(rng);
    let mut chars = text.chars();
    let first = chars.next().map(|c| c.to_ascii_uppercase()).unwrap_or_default();
    Json::String(format!("{first}{}", chars.as_str()))
}

const CASES: &[Case] = &[
    ("path_lookup", "topic={{request.topics[0]}}", path_lookup),
    ("state_arithmetic", "count={{(request.ws.state.messageCount || 0) + 1}}", state_arithmetic),
    ("mixed_text", MIXED, mixed_text),
    ("rand_sentence", "{{randSentence}}", sentence),
];

fn render(c: &mut Criterion) {
    let data = Data::new();
    let mut group = c.benchmark_group("templates/render");
    group.throughput(Throughput::Elements(1));
    for &(name, source, baseline) in CASES {
        let template = Template::compile(source).expect("template compiles");
        // The comparison only means something if both produce the same output.
        let rendered = template.render(&mut data.scope(&mut StdRng::seed_from_u64(1))).expect("renders");
        assert_eq!(rendered, baseline(&data, &mut StdRng::seed_from_u64(1)), "{name}");

        let mut rng = StdRng::seed_from_u64(1);
        let mut scope = data.scope(&mut rng);
        group.bench_function(BenchmarkId::new("template", name), |b| {
            b.iter(|| template.render(black_box(&mut scope)).expect("renders"))
        });
        let mut rng = StdRng::seed_from_u64(1);
        group.bench_function(BenchmarkId::new("format", name), |b| {
            b.iter(|| baseline(black_box(&data), &mut rng))
        });
    }
    group.finish();
}

fn compile_vs_render(c: &mut Criterion) {
    let data = Data::new();
    let mut rng = StdRng::seed_from_u64(1);
    let mut group = c.benchmark_group("templates/compile_vs_render");
    group.throughput(Throughput::Elements(1));
    group.bench_function("compile", |b| b.iter(|| Template::compile(black_box(MIXED)).expect("compiles")));
    let template = Template::compile(MIXED).expect("compiles");
    let mut scope = data.scope(&mut rng);
    group.bench_function("render", |b| b.iter(|| template.render(black_box(&mut scope)).expect("renders")));
    group.bench_function("compile_and_render", |b| {
        b.iter(|| Template::compile(black_box(MIXED)).expect("compiles").render(&mut scope).expect("renders"))
    });
    group.finish();
}

criterion_group!(benches, render, compile_vs_render);
criterion_main!(benches);
