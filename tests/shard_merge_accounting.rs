//! Four shard processes (`simulate --shard 0/4` … `3/4`) drive one `serve` process with the
//! shipped `profiles/fleet.yaml`, then `report merge` joins their reports. The merged calls,
//! messages, errors by code and the faults behind them equal the server's own counts exactly;
//! the merged percentiles are those of one histogram fed every shard's samples; the shards'
//! slots add up to the profile's; shard and merged reports match the committed schema.

mod common;

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde_json::Value;
use streamstorm::client::stats::new_histogram;
use streamstorm::report::histograms::decode;

use common::schema::{problems, report_schema};
use common::scrape::sum;
use common::shards::{ServeProcess, merge, read_json, run_shards};

const SHARDS: u32 = 4;

fn count(value: &Value) -> u64 {
    value.as_u64().unwrap_or_else(|| panic!("not a count: {value}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_shards_merge_to_the_servers_own_counts() {
    let profile = common::repo_root().join("profiles/fleet.yaml");
    let server = ServeProcess::start(&profile).await;
    let dir = tempfile::tempdir().unwrap();
    let target = server.grpc.to_string();
    let shards = run_shards(&profile, &target, "3s", SHARDS, dir.path(), 0).await;
    let (code, stderr, merged) = merge(&shards, &[], &dir.path().join("merged.json")).await;
    assert_eq!(code, Some(0), "{stderr}");
    let merged = merged.expect("the merged report");
    let samples = server.samples().await;

    let schema = report_schema();
    assert_eq!(problems(&schema, &merged), Vec::<String>::new(), "merged report");
    let reports: Vec<Value> = shards.iter().map(|path| read_json(path)).collect();
    for report in &reports {
        assert_eq!(problems(&schema, report), Vec::<String>::new(), "shard report");
    }
    assert_eq!(merged["merged_from"]["shards"], SHARDS);
    assert_eq!(merged["shard"], Value::Null);

    let mut mismatches = Vec::new();
    let mut same = |what: String, client: u64, server: u64| {
        if client != server {
            mismatches.push(format!("{what}: merged {client} != server {server}"));
        }
    };
    for (index, scenario) in merged["scenarios"].as_array().unwrap().iter().enumerate() {
        let name = scenario["method"].as_str().unwrap();
        let (service, method) = name.split_once('/').unwrap();
        let labels = [("service", service), ("method", method)];
        let server_count = |metric: &str| sum(&samples, metric, &labels) as u64;
        let slots: u64 = reports.iter().map(|report| count(&report["scenarios"][index]["slots"])).sum();
        assert_eq!(count(&scenario["slots"]), slots);
        same(
            format!("{name} calls"),
            count(&scenario["streams"]["opened"]),
            server_count("streamstorm_streams_started_total"),
        );
        same(
            format!("{name} received"),
            count(&scenario["messages"]["received"]),
            server_count("streamstorm_messages_sent_total"),
        );
        let sent = count(&scenario["messages"]["sent"]) - count(&scenario["messages"]["unread_by_server"]);
        same(format!("{name} sent and read"), sent, server_count("streamstorm_messages_received_total"));
        for (code, failed) in scenario["errors"].as_object().unwrap() {
            let ended = [("service", service), ("method", method), ("code", code.as_str())];
            same(
                format!("{name} {code}"),
                count(failed),
                sum(&samples, "streamstorm_streams_ended_total", &ended) as u64,
            );
        }
    }
    let faults_by_code = |kind: &str| -> BTreeMap<String, u64> {
        samples
            .iter()
            .filter(|(series, _)| {
                series.name == "streamstorm_faults_injected_total" && series.labels["kind"] == kind
            })
            .map(|(series, value)| (series.labels["code"].clone(), *value as u64))
            .collect()
    };
    let mut injected = faults_by_code("abort");
    for (code, count) in faults_by_code("fail") {
        *injected.entry(code).or_insert(0) += count;
    }
    let errors: BTreeMap<String, u64> = merged["errors"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(code, failed)| (code.clone(), count(failed)))
        .collect();
    assert!(errors.len() >= 3, "the profile's three codes all showed up: {errors:?}");
    assert_eq!(errors, injected, "errors by code vs the server's injected status faults");
    assert_eq!(mismatches, Vec::<String>::new());

    // Percentiles: those of one histogram fed every shard's samples.
    for (index, scenario) in merged["scenarios"].as_array().unwrap().iter().enumerate() {
        let mut all: Histogram<u64> = new_histogram();
        for report in &reports {
            let text = report["scenarios"][index]["histograms"]["latency"].as_str().unwrap();
            all.add(decode(text).unwrap()).unwrap();
        }
        let latency = &scenario["latency_ms"];
        assert_eq!(count(&latency["count"]), all.len());
        for (key, quantile) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)] {
            assert_eq!(
                latency[key].as_f64().unwrap(),
                all.value_at_quantile(quantile) as f64 / 1000.0,
                "{key}"
            );
        }
        assert_eq!(latency["max"].as_f64().unwrap(), all.max() as f64 / 1000.0);
    }
    // The timeline is aligned on wall-clock intervals: about one point per second of load.
    let timeline = merged["timeline"].as_array().unwrap();
    assert!((3..=5).contains(&timeline.len()), "{} points", timeline.len());
    let received: u64 = timeline.iter().map(|point| count(&point["messages"])).sum();
    // (A shard's last interval is left out when it is a sliver of one.)
    let total = count(&merged["messages"]["received"]);
    assert!(received <= total && received * 10 >= total * 9, "{received} of {total} in the timeline");
    eprintln!(
        "merged: {} calls, {} received, errors {errors:?}; server injected {injected:?}",
        merged["streams"]["opened"], merged["messages"]["received"]
    );
}
