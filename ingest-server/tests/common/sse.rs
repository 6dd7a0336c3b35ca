//! A minimal Server-Sent Events client over a plain TCP stream (HTTP/1.1, chunked), for the
//! live stream tests: a thread decodes the body and hands over messages.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One message.
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub event: String,
    pub id: Option<String>,
    pub retry: Option<u64>,
    pub data: String,
}

impl Message {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }
}

pub struct Stream {
    pub status: u16,
    pub head: String,
    messages: Receiver<Message>,
    tcp: TcpStream,
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.tcp.shutdown(std::net::Shutdown::Both);
    }
}

fn parse(block: &str) -> Option<Message> {
    let mut m = Message::default();
    let mut any = false;
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            m.event = v.trim().into();
            any = true;
        } else if let Some(v) = line.strip_prefix("data:") {
            if !m.data.is_empty() {
                m.data.push('\n');
            }
            m.data.push_str(v.strip_prefix(' ').unwrap_or(v));
            any = true;
        } else if let Some(v) = line.strip_prefix("id:") {
            m.id = Some(v.trim().into());
        } else if let Some(v) = line.strip_prefix("retry:") {
            m.retry = v.trim().parse().ok();
        }
    }
    any.then_some(m)
}

impl Stream {
    /// Opens `path` with these headers; returns once the response head is read.
    pub fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Stream {
        let mut tcp = TcpStream::connect(addr).unwrap();
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        tcp.write_all(req.as_bytes()).unwrap();
        let mut reader = BufReader::new(tcp.try_clone().unwrap());
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
        let (tx, messages) = channel();
        std::thread::spawn(move || {
            let mut pending = String::new();
            loop {
                let mut piece = Vec::new();
                if chunked {
                    let mut size = String::new();
                    if reader.read_line(&mut size).unwrap_or(0) == 0 {
                        return;
                    }
                    let Ok(n) = usize::from_str_radix(size.trim(), 16) else { return };
                    piece.resize(n + 2, 0);
                    if reader.read_exact(&mut piece).is_err() {
                        return;
                    }
                    piece.truncate(n);
                } else {
                    piece.resize(4096, 0);
                    match reader.read(&mut piece) {
                        Ok(0) | Err(_) => return,
                        Ok(k) => piece.truncate(k),
                    }
                }
                pending.push_str(&String::from_utf8_lossy(&piece));
                while let Some(end) = pending.find("\n\n") {
                    let block: String = pending.drain(..end + 2).collect();
                    if let Some(m) = parse(&block) {
                        if tx.send(m).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Stream { status, head, messages, tcp }
    }

    /// The next message (comments skipped) within `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Option<Message> {
        self.messages.recv_timeout(timeout).ok()
    }

    /// The first message whose JSON satisfies `done`, within `timeout`.
    pub fn until(&mut self, timeout: Duration, done: impl Fn(&Value) -> bool) -> Option<Message> {
        let deadline = Instant::now() + timeout;
        while let Some(m) = self.next(deadline.saturating_duration_since(Instant::now())) {
            if done(&m.json()) {
                return Some(m);
            }
        }
        None
    }
}
