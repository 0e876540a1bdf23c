//! `POST /admin/disconnect` cuts live traffic on cue and answers what it cut: streams of one
//! method reset by fraction, then every connection sent GOAWAY with the streams left on them;
//! a bad body is refused with the problem located, and a read-only admin endpoint refuses it.

mod common;

use std::time::Duration;

use common::scrape::request_with_body;
use tokio::task::JoinHandle;
use tonic::Code;

const PHASES: &str = "chaos:\n  phases:\n    - { name: steady, duration: 1h }\n";

/// Two subscriptions on each of `connections` connections, each read to its end in a task;
/// the channels too, which keep a connection open after its streams end.
async fn subscriptions(
    server: std::net::SocketAddr,
    connections: usize,
) -> (Vec<JoinHandle<(usize, Code)>>, Vec<tonic::transport::Channel>) {
    let pool = common::example_pool();
    let (mut readers, mut channels) = (Vec::new(), Vec::new());
    for _ in 0..connections {
        let channel = common::connect(server).await;
        for _ in 0..2 {
            readers.push(common::subscribe(channel.clone(), &pool).await);
        }
        channels.push(channel);
    }
    (readers, channels)
}

async fn ended(readers: &[JoinHandle<(usize, Code)>], count: usize) -> bool {
    common::eventually(Duration::from_secs(5), || {
        readers.iter().filter(|reader| reader.is_finished()).count() == count
    })
    .await
}

#[tokio::test]
async fn cuts_on_cue_and_answers_what_it_cut() {
    let dir = tempfile::tempdir().unwrap();
    let profile = common::write_profile(dir.path(), &format!("{PHASES}metrics:\n  admin: read_write\n"));
    let server = common::spawn_serve_process(
        &["--profile", common::path_str(&profile), "--default-stream-interval", "50ms"],
        &[],
    )
    .await;
    let (readers, _channels) = subscriptions(server.addr, 3).await;
    let reset =
        r#"{"mode": "reset_stream", "method": "myapp.NotificationService/Subscribe", "fraction": "50%"}"#;
    let (status, body) = request_with_body(server.metrics, "POST", "/admin/disconnect", reset).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"streams": 3, "connections": 0})
    );
    assert!(ended(&readers, 3).await, "three of the six subscriptions were reset");

    let other = r#"{"mode": "reset_stream", "method": "myapp.UserService/GetUser"}"#;
    let (_, body) = request_with_body(server.metrics, "POST", "/admin/disconnect", other).await;
    assert_eq!(body, r#"{"connections":0,"streams":0}"#, "no live stream of that method");

    let (status, body) =
        request_with_body(server.metrics, "POST", "/admin/disconnect", r#"{"mode": "goaway"}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"streams": 3, "connections": 3})
    );
    assert!(ended(&readers, 6).await, "the rest ended with their connections");
    let mut codes = Vec::new();
    for reader in readers {
        codes.push(reader.await.unwrap().1);
    }
    assert!(codes.iter().all(|code| *code != Code::Ok), "{codes:?}");

    let fail = r#"{"fail": {"code": "UNAVAILABLE", "message": "maintenance"}}"#;
    let (status, body) = request_with_body(server.metrics, "POST", "/admin/disconnect", fail).await;
    assert_eq!((status, body.as_str()), (200, r#"{"connections":0,"streams":0}"#));
    let (status, body) =
        request_with_body(server.metrics, "POST", "/admin/disconnect", r#"{"mode": "stall", "fraction": 2}"#)
            .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("mode: not a live cut mode") && body.contains("fraction: "), "{body}");
    let (status, body) = request_with_body(server.metrics, "POST", "/admin/disconnect", "{}").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("set 'mode' or 'fail'"), "{body}");
}

#[tokio::test]
async fn a_read_only_admin_endpoint_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let profile = common::write_profile(dir.path(), PHASES);
    let server = common::spawn_serve_process(&["--profile", common::path_str(&profile)], &[]).await;
    let (readers, _channels) = subscriptions(server.addr, 1).await;
    let (status, body) =
        request_with_body(server.metrics, "POST", "/admin/disconnect", r#"{"mode": "tcp_reset"}"#).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("metrics.admin: read_write"), "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(readers.iter().all(|reader| !reader.is_finished()), "nothing was cut");
}
