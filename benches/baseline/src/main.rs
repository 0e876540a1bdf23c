//! `streamstorm-baseline [--listen ADDR] [--stream-messages N] [--idle-delay SECONDS]
//! [--per-message-delay DURATION]`: serves until killed; prints `streamstorm-baseline serving on
//! ADDR` once listening. `--per-message-delay 100ms` makes it the latency-fidelity benchmark's
//! reference server.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use streamstorm_baseline::{Behaviour, serve};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut listen: SocketAddr = "127.0.0.1:0".parse()?;
    let mut behaviour =
        Behaviour { stream_messages: 1000, idle_delay: Duration::from_secs(3600), per_message_delay: None };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = value.parse()?,
            "--stream-messages" => behaviour.stream_messages = value.parse()?,
            "--idle-delay" => behaviour.idle_delay = Duration::from_secs(value.parse()?),
            "--per-message-delay" => behaviour.per_message_delay = Some(humantime::parse_duration(&value)?),
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    streamstorm::server::runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "streamstorm-baseline serving on {}", listener.local_addr()?)?;
        stdout.flush()?;
        drop(stdout);
        serve(listener, behaviour).await?;
        Ok(())
    })
}
