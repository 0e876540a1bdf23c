//! The processes a benchmark run starts — a server (streamstorm or the baseline) and the
//! built-in load client — and what `/proc` says about them: CPU time (user + system) and
//! resident memory.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Which server a measurement is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    Streamstorm,
    Baseline,
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Streamstorm => "streamstorm",
            Self::Baseline => "baseline",
        }
    }
}

/// A server process on loopback, killed when dropped.
pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
    /// Where `streamstorm serve` serves `/metrics` (from its banner's second line).
    pub metrics: Option<SocketAddr>,
}

/// The address a banner line ends with.
fn address_at_end(line: &str) -> Result<SocketAddr> {
    line.split_whitespace()
        .last()
        .and_then(|word| word.trim_start_matches("http://").trim_end_matches("/metrics").parse().ok())
        .with_context(|| format!("no address in the server's banner {line:?}"))
}

impl ServerProcess {
    /// Starts `command` and waits for its banner, whose first line ends with the address.
    pub fn start(command: Command) -> Result<Self> {
        Self::start_reading(command, false)
    }

    /// Starts `streamstorm serve` as `command`, and reads its metrics address too.
    pub fn start_with_metrics(command: Command) -> Result<Self> {
        Self::start_reading(command, true)
    }

    fn start_reading(mut command: Command, metrics: bool) -> Result<Self> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {command:?}"))?;
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let addr = address_at_end(&line)?;
        let metrics = if metrics {
            line.clear();
            stdout.read_line(&mut line)?;
            Some(address_at_end(&line)?)
        } else {
            None
        };
        Ok(Self { child, addr, metrics })
    }

    /// The sum of every sample of `name` (all label sets) on the server's `/metrics`.
    pub fn metric(&self, name: &str) -> Result<f64> {
        let addr = self.metrics.context("this server was started without its metrics address")?;
        let mut stream = std::net::TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(stream, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        Ok(text
            .lines()
            .filter(|line| {
                line.strip_prefix(name).is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time and state of a process from `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    /// User + system time, in seconds.
    pub seconds: f64,
    /// True once the process has exited and waits to be reaped: its times are final.
    pub exited: bool,
}

pub fn cpu(pid: u32, ticks_per_second: f64) -> Result<CpuSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')').context("malformed stat")?.1.split_whitespace().collect();
    let ticks = |index: usize| -> Result<f64> { Ok(fields.get(index).context("short stat")?.parse()?) };
    Ok(CpuSample { seconds: (ticks(11)? + ticks(12)?) / ticks_per_second, exited: fields[0] == "Z" })
}

/// Resident memory in bytes (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).context("no VmRSS")?;
    let kib: u64 = line.split_whitespace().nth(1).context("malformed VmRSS")?.parse()?;
    Ok(kib * 1024)
}

/// Clock ticks per second of `/proc` CPU times.
pub fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Runs a load client to its end and returns its total CPU seconds, read from `/proc` after it
/// exits but before it is reaped.
pub fn run_to_end(mut client: Child, ticks_per_second: f64, limit: Duration) -> Result<f64> {
    let started = Instant::now();
    loop {
        let sample = cpu(client.id(), ticks_per_second)?;
        if sample.exited {
            let status = client.wait()?;
            if !status.success() && status.code() != Some(1) {
                bail!("the load client failed: {status}");
            }
            return Ok(sample.seconds);
        }
        if started.elapsed() > limit {
            let _ = client.kill();
            let _ = client.wait();
            bail!("the load client did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
