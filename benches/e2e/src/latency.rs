//! Figure 7: what a hop adds to one unary call. `GetUser` calls made one at a time on one
//! connection (so nothing queues), alternating in batches between two targets, each call timed
//! from send to reply with the driver's static tonic client.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Result;
use streamstorm_baseline::myapp::GetUserRequest;
use streamstorm_baseline::myapp::user_service_client::UserServiceClient;
use streamstorm_driver::connect::connect;
use tokio::runtime::Runtime;

/// Calls per batch; the targets take turns batch by batch, so drift in the machine's load
/// falls on both alike.
const BATCH: usize = 250;

/// Median round trips of sequential unary calls, `[first, second]` target, over `batches`
/// alternating batches each (after one warm-up batch each).
pub fn median_round_trips(
    runtime: &Runtime,
    targets: [SocketAddr; 2],
    batches: usize,
) -> Result<[Duration; 2]> {
    runtime.block_on(async {
        let mut clients = Vec::new();
        for target in targets {
            let channel = connect(target, 1).await?.remove(0);
            clients.push(UserServiceClient::new(channel));
        }
        let mut samples = [Vec::new(), Vec::new()];
        for batch in 0..=batches {
            for (index, client) in clients.iter_mut().enumerate() {
                let times = time_calls(client, BATCH).await?;
                // Batch 0 warms the connections up.
                if batch > 0 {
                    samples[index].extend(times);
                }
            }
        }
        Ok(samples.map(median))
    })
}

async fn time_calls(
    client: &mut UserServiceClient<tonic::transport::Channel>,
    calls: usize,
) -> Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        client.get_user(GetUserRequest { user_id: "alice".into() }).await?;
        times.push(started.elapsed());
    }
    Ok(times)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}
