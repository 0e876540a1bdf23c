//! `deploy/kubernetes/`: every manifest validates against the Kubernetes API schemas with
//! `kubernetes-validate` (installed by the test setup) in strict mode, and a broken one is
//! refused; the parts the schemas cannot see hang together — the Service and PodMonitor
//! select the pods, the metrics port they name exists, the Indexed Job's shard count matches
//! its completions and the merge Job reads every shard's report, and the ConfigMap's
//! profile compiles with its target a `dns:///` name of the headless Service.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use streamstorm::config::load::{LoadTarget, compile_load};
use streamstorm::config::parse_profile;

fn deploy_dir() -> PathBuf {
    common::repo_root().join("deploy/kubernetes")
}

fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

fn kubernetes_validate(files: &[PathBuf]) -> Output {
    let tool = common::interop::require(common::interop::interop_dir().join("venv/bin/kubernetes-validate"));
    Command::new(tool).arg("--strict").args(files).output().expect("kubernetes-validate runs")
}

/// Every document of every manifest, as JSON.
fn resources() -> Vec<Value> {
    let mut all = Vec::new();
    for path in manifests() {
        let text = std::fs::read_to_string(&path).unwrap();
        for document in text.split("\n---\n") {
            let value: Value =
                serde_saphyr::from_str(document).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            all.push(value);
        }
    }
    all
}

fn find<'a>(resources: &'a [Value], kind: &str, name: &str) -> &'a Value {
    resources
        .iter()
        .find(|resource| resource["kind"] == kind && resource["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn selects(selector: &Value, labels: &Value) -> bool {
    selector.as_object().unwrap().iter().all(|(key, value)| labels[key] == *value)
}

fn args(pod: &Value) -> Vec<String> {
    let args = pod["spec"]["containers"][0]["args"].as_array().unwrap();
    args.iter().map(|arg| arg.as_str().unwrap().to_owned()).collect()
}

#[test]
fn the_manifests_validate_against_the_kubernetes_schemas() {
    let files = manifests();
    assert_eq!(files.len(), 6, "{files:?}");
    let output = kubernetes_validate(&files);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    let passed =
        stdout.lines().chain(stderr.lines()).filter(|line| line.contains(" passed for resource ")).count();
    // Every resource but the PodMonitor (a CRD, checked below) has a schema and passed it.
    assert_eq!(passed, resources().len() - 1, "{stdout}{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    let serve = std::fs::read_to_string(deploy_dir().join("serve.yaml")).unwrap();
    std::fs::write(&broken, serve.replace("containerPort: 50051", "containerPort: \"grpc\"")).unwrap();
    let output = kubernetes_validate(&[broken]);
    assert!(!output.status.success(), "a string containerPort is refused");
}

#[test]
fn the_resources_fit_together() {
    let resources = resources();
    let deployment = find(&resources, "Deployment", "streamstorm-serve");
    let pod = &deployment["spec"]["template"];
    let service = find(&resources, "Service", "streamstorm-serve");
    assert_eq!(service["spec"]["clusterIP"], "None", "headless, so DNS lists every pod");
    assert!(selects(&service["spec"]["selector"], &pod["metadata"]["labels"]));
    let job = find(&resources, "Job", "streamstorm-simulate");
    let shard_pod = &job["spec"]["template"];
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    let shards = job["spec"]["completions"].as_u64().unwrap();
    assert_eq!(job["spec"]["parallelism"].as_u64(), Some(shards));
    assert!(args(shard_pod).contains(&format!("--shards={shards}")));
    let monitor = find(&resources, "PodMonitor", "streamstorm");
    for pod in [pod, shard_pod] {
        assert!(selects(&monitor["spec"]["selector"]["matchLabels"], &pod["metadata"]["labels"]));
        assert_eq!(pod["metadata"]["annotations"]["prometheus.io/scrape"], "true");
        let ports = pod["spec"]["containers"][0]["ports"].as_array().unwrap();
        let metrics = ports.iter().find(|port| port["name"] == "metrics").expect("a metrics port");
        assert_eq!(
            pod["metadata"]["annotations"]["prometheus.io/port"],
            metrics["containerPort"].to_string()
        );
        assert!(args(pod).contains(&format!("--metrics-listen=0.0.0.0:{}", metrics["containerPort"])));
    }
    let merge = find(&resources, "Job", "streamstorm-merge");
    let reports: Vec<String> = (0..shards).map(|index| format!("/reports/shard-{index}.json")).collect();
    let merge_args = args(&merge["spec"]["template"]);
    assert_eq!(merge_args[..2], ["report", "merge"]);
    assert_eq!(merge_args[2..2 + reports.len()], reports[..]);

    let config = find(&resources, "ConfigMap", "streamstorm-profile");
    let profile =
        parse_profile(Path::new("profile.yaml"), config["data"]["profile.yaml"].as_str().unwrap()).unwrap();
    let plan = compile_load(&profile).unwrap();
    let service_port = service["spec"]["ports"][0]["port"].as_u64().unwrap();
    assert_eq!(plan.target, LoadTarget::Address(format!("dns:///streamstorm-serve:{service_port}")));
    let start_at = config["data"]["start-at"].as_str().unwrap();
    assert!(humantime::parse_rfc3339(start_at).is_ok(), "{start_at}");
}
