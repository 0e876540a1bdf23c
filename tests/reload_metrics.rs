//! Hot reloads are counted once per edit: once the profile and a stub have been edited and
//! reloaded, the reload counts on `/metrics` stay where they are — reading the files to reload
//! them is not itself a change.

mod common;

use std::time::Duration;

use common::chaos_traffic::ChaosServer;

#[tokio::test]
async fn reloads_stop_when_the_edits_stop() {
    let server = ChaosServer::start().await;
    let edits = server.reload_inputs().await;
    let settled = server.reloads().await;
    assert!(
        settled.0 <= edits as f64 && settled.1 <= edits as f64,
        "{settled:?} reloads after {edits} edits"
    );
    // Without further edits, several settle periods (200 ms each) pass without a reload.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(server.reloads().await, settled, "reloads went on without edits");
}
