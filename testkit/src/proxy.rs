//! [`FaultProxy`]: a TCP proxy on 127.0.0.1 in front of an HTTP/1.1 service (ClickHouse's HTTP port)
//! that injects the failures a client must survive, on demand and counted:
//!
//! - drop the next N requests before they reach the server (the client sees the connection close
//!   with no answer: a transient network failure, nothing written);
//! - drop the next N `INSERT` requests only (the lookups before them still work);
//! - "commit then break": forward the next N `INSERT` requests, let the server execute and answer
//!   them, and close the client's connection instead of forwarding the answer (the insert is
//!   committed, but the client cannot know);
//! - down: drop every request until told otherwise.
//!
//! It reads HTTP just enough to see request boundaries. HTTP/1.1 clients such as hyper do not
//! pipeline, so on one connection a request is followed by its response before the next request:
//! client bytes after server bytes start a new request, and the first server bytes after a request
//! are its response. Requests are recognised as `INSERT` by their head (ClickHouse clients put the
//! statement into the URL's `query=` when the body carries the rows).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Most bytes of a request head read before the request is classified; a longer head is classified
/// on what was read (the request line, which names the statement, comes first).
const HEAD_MAX: usize = 64 * 1024;

/// Faults still to inject. Counters count down as faults fire.
#[derive(Debug, Default, Clone, Copy)]
struct Plan {
    down: bool,
    drop_requests: u32,
    drop_inserts: u32,
    break_insert_responses: u32,
}

struct State {
    upstream: String,
    plan: Mutex<Plan>,
    /// Faults injected so far; a watch so tests wait on it instead of sleeping.
    faults: watch::Sender<u64>,
    requests: AtomicU64,
    inserts_forwarded: AtomicU64,
}

impl State {
    fn plan(&self) -> std::sync::MutexGuard<'_, Plan> {
        // A panicking holder cannot leave the counters inconsistent: keep going with them.
        self.plan.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn fired(&self) {
        self.faults.send_modify(|n| *n += 1);
    }

    /// Whether to drop a request with this head before it reaches the server (consumes the fault).
    fn take_drop(&self, insert: bool) -> bool {
        let mut p = self.plan();
        if p.down {
            return true;
        }
        if insert && p.drop_inserts > 0 {
            p.drop_inserts -= 1;
            return true;
        }
        if p.drop_requests > 0 {
            p.drop_requests -= 1;
            return true;
        }
        false
    }

    fn take_break(&self) -> bool {
        let mut p = self.plan();
        if p.break_insert_responses > 0 {
            p.break_insert_responses -= 1;
            return true;
        }
        false
    }
}

/// See the module doc. Stops serving when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on an ephemeral port of 127.0.0.1 and forwards to `upstream`, a `host:port` or an
    /// `http://host:port[/...]` URL. Call inside a tokio runtime.
    pub async fn start(upstream: &str) -> io::Result<FaultProxy> {
        let upstream = upstream.trim_start_matches("http://");
        let upstream = upstream.split('/').next().unwrap_or(upstream).to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            upstream,
            plan: Mutex::default(),
            faults: watch::channel(0).0,
            requests: AtomicU64::new(0),
            inserts_forwarded: AtomicU64::new(0),
        });
        let task = tokio::spawn(serve(listener, state.clone()));
        Ok(FaultProxy { addr, state, task })
    }

    /// `http://127.0.0.1:<port>`: give this to the client instead of the server's URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Drops the next `n` requests of any kind before they reach the server.
    pub fn drop_next_requests(&self, n: u32) {
        self.state.plan().drop_requests = n;
    }

    /// Drops the next `n` `INSERT` requests before they reach the server; other requests pass.
    pub fn drop_next_inserts(&self, n: u32) {
        self.state.plan().drop_inserts = n;
    }

    /// Lets the next `n` `INSERT` requests reach the server and run, then closes the client's
    /// connection instead of forwarding the server's answer.
    pub fn break_next_insert_responses(&self, n: u32) {
        self.state.plan().break_insert_responses = n;
    }

    /// While down, every request is dropped before it reaches the server.
    pub fn set_down(&self, down: bool) {
        self.state.plan().down = down;
    }

    /// Cancels every planned fault and brings the proxy up.
    pub fn heal(&self) {
        *self.state.plan() = Plan::default();
    }

    /// Planned faults that have not fired yet (not counting `down`).
    pub fn armed(&self) -> u32 {
        let p = *self.state.plan();
        p.drop_requests + p.drop_inserts + p.break_insert_responses
    }

    /// Faults injected so far (dropped requests plus broken answers).
    pub fn faults(&self) -> u64 {
        *self.state.faults.borrow()
    }

    /// Requests seen so far, dropped or not.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    /// `INSERT` requests forwarded to the server so far.
    pub fn inserts_forwarded(&self) -> u64 {
        self.state.inserts_forwarded.load(Ordering::Relaxed)
    }

    /// Waits until at least `n` faults have fired; false if `limit` passed first.
    pub async fn wait_for_faults(&self, n: u64, limit: Duration) -> bool {
        let mut rx = self.state.faults.subscribe();
        let reached = matches!(tokio::time::timeout(limit, rx.wait_for(|f| *f >= n)).await, Ok(Ok(_)));
        reached
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of descriptors or the like: let the other tasks run (and close theirs) first.
            tokio::task::yield_now().await;
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            // An error ends this connection only; the client sees it closed, as with a real failure.
            let _ = connection(client, &state).await;
        });
    }
}

/// Where a connection is in its request/response exchange.
enum Turn {
    /// Between exchanges (or the server is answering): the next client bytes start a request.
    Idle,
    /// Reading a request head; nothing forwarded yet.
    Head(Vec<u8>),
    /// The request was forwarded; the first server bytes will be its answer.
    Forwarded { insert: bool },
}

async fn connection(client: TcpStream, state: &State) -> io::Result<()> {
    let upstream = TcpStream::connect(&state.upstream).await?;
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = upstream.into_split();
    let mut cbuf = vec![0u8; 64 * 1024];
    let mut ubuf = vec![0u8; 64 * 1024];
    let mut turn = Turn::Idle;
    loop {
        tokio::select! {
            n = cr.read(&mut cbuf) => {
                let n = n?;
                if n == 0 {
                    return Ok(());
                }
                let data = &cbuf[..n];
                let mut head = match std::mem::replace(&mut turn, Turn::Idle) {
                    Turn::Forwarded { insert } => {
                        // The rest of a forwarded request (its body).
                        turn = Turn::Forwarded { insert };
                        uw.write_all(data).await?;
                        continue;
                    }
                    Turn::Idle => data.to_vec(),
                    Turn::Head(mut head) => {
                        head.extend_from_slice(data);
                        head
                    }
                };
                if !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < HEAD_MAX {
                    turn = Turn::Head(head);
                    continue;
                }
                state.requests.fetch_add(1, Ordering::Relaxed);
                let insert = contains(&head, b"INSERT");
                if state.take_drop(insert) {
                    state.fired();
                    return Ok(());
                }
                if insert {
                    state.inserts_forwarded.fetch_add(1, Ordering::Relaxed);
                }
                uw.write_all(&head).await?;
                head.clear();
                turn = Turn::Forwarded { insert };
            }
            n = ur.read(&mut ubuf) => {
                let n = n?;
                if n == 0 {
                    return Ok(());
                }
                if let Turn::Forwarded { insert } = turn {
                    // The server has answered, so the INSERT ran to its end: drop the answer.
                    if insert && state.take_break() {
                        state.fired();
                        return Ok(());
                    }
                    turn = Turn::Idle;
                }
                cw.write_all(&ubuf[..n]).await?;
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
