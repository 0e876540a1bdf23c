//! A minimal HTTP/1.0 client for the telemetry listener (`/metrics`, `/streams`, `/admin/`), and
//! a parser for the Prometheus text format good enough to read back our own samples.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `METHOD path` and returns the status code and body.
pub async fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    request_with_body(addr, method, path, "").await
}

/// Sends `METHOD path` with `body` and returns the status code and body.
pub async fn request_with_body(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("the telemetry listener accepts");
    let length = body.len();
    let head = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {length}\r\n\r\n{body}");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    (status, body.to_owned())
}

/// `GET path`, which must answer 200.
pub async fn get(addr: SocketAddr, path: &str) -> String {
    let (status, body) = request(addr, "GET", path).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// One sample: its metric name and labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Series {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// Every sample of a `/metrics` page.
pub fn parse_samples(text: &str) -> Vec<(Series, f64)> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample is `series value`");
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').expect("label=value");
                    (key.to_owned(), value.trim_matches('"').to_owned())
                })
                .collect();
            (Series { name: name.to_owned(), labels }, value.parse().expect("a numeric value"))
        })
        .collect()
}

/// The sum of `name`'s samples whose labels include every pair in `labels`.
pub fn sum(samples: &[(Series, f64)], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(series, _)| {
            series.name == name
                && labels
                    .iter()
                    .all(|(key, value)| series.labels.get(*key).map(String::as_str) == Some(*value))
        })
        .map(|(_, value)| value)
        .sum()
}
