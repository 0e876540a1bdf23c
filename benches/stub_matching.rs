//! Stub lookup must stay flat as stubs grow: the same request matched against 10, 1,000 and
//! 100,000 stubs of one method (each an `equals` on `user_id`, plus a few unindexable regex
//! stubs that every lookup evaluates). The 10-stub case is the baseline the others are read
//! against.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use prost_reflect::DynamicMessage;
use serde_json::json;
use streamstorm::proto::json::message_from_json;
use streamstorm::proto::{MethodCatalog, load_pool};
use streamstorm::stub::StubSet;
use streamstorm::stub::compile::compile_file;
use tonic::metadata::MetadataMap;

fn stub_yaml(count: usize) -> String {
    let mut yaml = String::with_capacity(count * 120);
    for index in 0..count {
        yaml.push_str(&format!(
            "- service: myapp.UserService\n  method: GetUser\n  input: {{ equals: {{ user_id: \"user-{index}\" }} }}\n  output: {{ data: {{ name: \"User {index}\" }} }}\n"
        ));
    }
    for pattern in ["^admin-", "^ops-", "^bot-"] {
        yaml.push_str(&format!(
            "- service: myapp.UserService\n  method: GetUser\n  input: {{ matches: {{ user_id: \"{pattern}\" }} }}\n  output: {{ data: {{ name: \"pattern\" }} }}\n"
        ));
    }
    yaml
}

fn matching(c: &mut Criterion) {
    let pool = load_pool(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("protos/myapp")], &[])
        .expect("protos load");
    let catalog = MethodCatalog::new(&pool, &[]);
    let request_type = pool.get_message_by_name("myapp.GetUserRequest").expect("request type");
    let metadata = MetadataMap::new();
    let mut group = c.benchmark_group("stub_matching/equals_user_id");
    for count in [10usize, 1_000, 100_000] {
        let stubs = compile_file(Path::new("bench.yaml"), &stub_yaml(count), &catalog, &pool, 0)
            .expect("stubs compile");
        let set = StubSet::new(stubs);
        let method = set.for_method("/myapp.UserService/GetUser").expect("stubs for GetUser");
        let request: DynamicMessage =
            message_from_json(&request_type, &json!({"user_id": format!("user-{}", count / 2)}))
                .expect("request");
        group.bench_with_input(BenchmarkId::from_parameter(count), &request, |b, request| {
            b.iter(|| {
                let ranked = method.rank(&metadata, 0, black_box(request));
                assert_eq!(ranked.len(), 1);
                ranked
            })
        });
    }
    group.finish();
}

criterion_group!(benches, matching);
criterion_main!(benches);
