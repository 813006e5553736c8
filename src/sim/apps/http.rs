//! An HTTP/1.1 server with a generated body, and a client that times its GET requests.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;

use super::echo::MAX_CONNECTIONS;
use super::http1::{self, Chunked, Method, Parse};
use super::{closed_reason, endpoint_str, fill_pattern, min_wake, App, AppCx, Outcome, Rtts};
use crate::time::SimTime;
use crate::topology::HttpGet as HttpGetConfig;

/// Whether the peer has closed its side of an established connection and everything it sent
/// has been read. (Before the handshake is done, nothing can be read either.)
fn peer_done(s: &tcp::Socket<'_>) -> bool {
    !s.may_recv() && !matches!(s.state(), tcp::State::Listen | tcp::State::SynSent | tcp::State::SynReceived)
}

/// A connection that sends nothing for this long while the server waits for a request is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Work on one connection in one poll, at most: heads parsed and responses written.
const STEPS_PER_POLL: usize = 64;

#[derive(Debug)]
enum ServerState {
    /// Waiting for (the rest of) a request head.
    Reading,
    /// Writing a response: the head from `at`, then `body_left` bytes of the pattern from `body_at`.
    Writing { head: Vec<u8>, at: usize, body_at: u64, body_left: u64, close_after: bool },
    /// Closed on our side; the socket goes once the peer has closed too.
    Closing,
}

#[derive(Debug)]
struct ServerConn {
    handle: SocketHandle,
    counted: bool,
    /// Request bytes read and not parsed yet (at most a head's worth).
    buf: Vec<u8>,
    /// Body bytes of the last request still to be read and dropped.
    discard: u64,
    state: ServerState,
    last_active: SimTime,
}

/// Serves every request with `status` and `body` bytes of the stream pattern.
pub struct HttpServer {
    port: u16,
    status: u16,
    body: u64,
    keep_alive: bool,
    conns: Vec<ServerConn>,
    connections: u32,
    peak: u32,
    requests: u64,
    bad_requests: u64,
    responses: BTreeMap<u16, u64>,
    body_bytes: u64,
}

impl HttpServer {
    pub fn new(port: u16, status: u16, body: u64, keep_alive: bool) -> Self {
        HttpServer {
            port,
            status,
            body,
            keep_alive,
            conns: Vec::new(),
            connections: 0,
            peak: 0,
            requests: 0,
            bad_requests: 0,
            responses: BTreeMap::new(),
            body_bytes: 0,
        }
    }

    /// The head of a response, and its body's length.
    fn response(&self, status: u16, head_only: bool, close: bool) -> (Vec<u8>, u64) {
        let (body, kind, extra) = match status {
            s if s == self.status => (self.body, "application/octet-stream", ""),
            405 => (0, "text/plain", "Allow: GET, HEAD\r\n"),
            _ => (0, "text/plain", ""),
        };
        let mut h = format!(
            "HTTP/1.1 {status} {}\r\nServer: netlab\r\nContent-Type: {kind}\r\nContent-Length: {body}\r\n{extra}",
            http1::reason(status)
        );
        if close {
            h.push_str("Connection: close\r\n");
        }
        h.push_str("\r\n");
        (h.into_bytes(), if head_only || !http1::has_body(status) { 0 } else { body })
    }

    /// Reads, parses and answers on one connection, as far as its socket buffers allow.
    fn serve(&mut self, cx: &mut AppCx<'_>, i: usize) {
        let now = cx.now;
        for _ in 0..STEPS_PER_POLL {
            let c = &mut self.conns[i];
            let s = cx.sockets.get_mut::<tcp::Socket>(c.handle);
            match &mut c.state {
                ServerState::Closing => return,
                ServerState::Writing { head, at, body_at, body_left, close_after } => {
                    if *at < head.len() {
                        *at += s.send_slice(&head[*at..]).unwrap_or(0);
                    }
                    while *at == head.len() && *body_left > 0 && s.can_send() {
                        let (off, left) = (*body_at, *body_left);
                        let n = s
                            .send(|buf| {
                                let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                                fill_pattern(&mut buf[..n], off);
                                (n, n)
                            })
                            .unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        *body_at += n as u64;
                        *body_left -= n as u64;
                        self.body_bytes += n as u64;
                    }
                    if *at < head.len() || *body_left > 0 {
                        return;
                    }
                    c.last_active = now;
                    if *close_after {
                        s.close();
                        c.state = ServerState::Closing;
                        return;
                    }
                    c.state = ServerState::Reading;
                }
                ServerState::Reading => {
                    // Drop the body of the last request, then read up to a head's worth.
                    while c.discard > 0 && s.can_recv() {
                        let d = c.discard;
                        let n = s
                            .recv(|b| {
                                let n = b.len().min(usize::try_from(d).unwrap_or(usize::MAX));
                                (n, n)
                            })
                            .unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        c.discard -= n as u64;
                        c.last_active = now;
                    }
                    if c.discard > 0 {
                        if peer_done(s) {
                            s.close();
                            c.state = ServerState::Closing;
                        }
                        return;
                    }
                    let mut parsed = http1::parse_request(&c.buf);
                    while parsed == Parse::Partial && c.buf.len() < http1::MAX_REQUEST_HEAD && s.can_recv() {
                        let room = http1::MAX_REQUEST_HEAD - c.buf.len();
                        let buf = &mut c.buf;
                        let _ = s.recv(|b| {
                            let n = b.len().min(room);
                            buf.extend_from_slice(&b[..n]);
                            (n, ())
                        });
                        c.last_active = now;
                        parsed = http1::parse_request(&c.buf);
                    }
                    let (status, head_only, close) = match parsed {
                        Parse::Partial if c.buf.len() >= http1::MAX_REQUEST_HEAD => {
                            // Only empty lines so far, a head's worth of them.
                            self.bad_requests += 1;
                            (400, false, true)
                        }
                        Parse::Partial => {
                            if peer_done(s) {
                                // The client closed without a whole request.
                                s.close();
                                c.state = ServerState::Closing;
                            }
                            return;
                        }
                        Parse::Bad(status, _) => {
                            self.bad_requests += 1;
                            (status, false, true)
                        }
                        Parse::Done(req, used) => {
                            c.buf.drain(..used);
                            c.discard = req.body;
                            self.requests += 1;
                            let close = !req.keep_alive || !self.keep_alive;
                            match req.method {
                                Method::Get => (self.status, false, close),
                                Method::Head => (self.status, true, close),
                                Method::Other => (405, false, close),
                            }
                        }
                    };
                    if close {
                        c.buf.clear();
                    }
                    *self.responses.entry(status).or_default() += 1;
                    let (head, body_left) = self.response(status, head_only, close);
                    self.conns[i].state =
                        ServerState::Writing { head, at: 0, body_at: 0, body_left, close_after: close };
                }
            }
        }
    }
}

impl App for HttpServer {
    fn poll(&mut self, cx: &mut AppCx<'_>) -> Option<SimTime> {
        // A listening socket for each connection request waiting (a backlog), as the TCP servers do.
        let want = cx.wire.syns.get(&self.port).map_or(1, |n| (*n as usize).max(1));
        let is_listening =
            |cx: &AppCx<'_>, c: &ServerConn| cx.sockets.get::<tcp::Socket>(c.handle).state() == tcp::State::Listen;
        let mut listening = self.conns.iter().filter(|c| is_listening(cx, c)).count();
        while listening < want && self.conns.len() < MAX_CONNECTIONS {
            let h = cx.new_tcp_socket();
            if cx.sockets.get_mut::<tcp::Socket>(h).listen(self.port).is_err() {
                cx.sockets.remove(h);
                break;
            }
            self.conns.push(ServerConn {
                handle: h,
                counted: false,
                buf: Vec::new(),
                discard: 0,
                state: ServerState::Reading,
                last_active: cx.now,
            });
            listening += 1;
        }
        while listening > want {
            let Some(i) = self.conns.iter().rposition(|c| is_listening(cx, c)) else { break };
            cx.sockets.remove(self.conns.remove(i).handle);
            listening -= 1;
        }
        let mut wake = None;
        for i in 0..self.conns.len() {
            let c = &mut self.conns[i];
            let s = cx.sockets.get_mut::<tcp::Socket>(c.handle);
            if !c.counted && s.is_active() {
                c.counted = true;
                c.last_active = cx.now;
                self.connections += 1;
            } else if c.counted && s.state() == tcp::State::Listen {
                // An RST during the handshake puts the socket back to listening.
                c.counted = false;
                c.buf.clear();
                c.discard = 0;
                c.state = ServerState::Reading;
            }
            if !c.counted {
                continue;
            }
            self.serve(cx, i);
            let c = &mut self.conns[i];
            if matches!(c.state, ServerState::Reading) {
                let s = cx.sockets.get_mut::<tcp::Socket>(c.handle);
                if cx.now - c.last_active >= IDLE_TIMEOUT {
                    s.close();
                    c.state = ServerState::Closing;
                } else if s.state() == tcp::State::Established {
                    wake = min_wake(wake, Some(c.last_active + IDLE_TIMEOUT));
                }
            }
        }
        let open = self.conns.iter().filter(|c| c.counted).count();
        self.peak = self.peak.max(u32::try_from(open).unwrap_or(u32::MAX));
        self.conns.retain(|c| {
            let closed = c.counted
                && matches!(cx.sockets.get::<tcp::Socket>(c.handle).state(), tcp::State::Closed | tcp::State::TimeWait);
            if closed {
                cx.sockets.remove(c.handle);
            }
            !closed
        });
        wake
    }

    fn stop(&mut self, cx: &mut AppCx<'_>) {
        for c in self.conns.drain(..) {
            cx.close_socket(c.handle);
        }
    }

    fn done(&self) -> bool {
        false
    }

    fn outcome(&self) -> Outcome {
        Outcome::HttpServer {
            port: self.port,
            connections: self.connections,
            peak_connections: self.peak,
            requests: self.requests,
            bad_requests: self.bad_requests,
            responses: self.responses.clone(),
            body_bytes: self.body_bytes,
        }
    }
}

/// One request of an `http-get`, as the report lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpRequestResult {
    /// The status of the response; `None` when none came whole.
    pub status: Option<u16>,
    /// Bytes of body received (the data of a chunked body).
    pub body_bytes: u64,
    /// Time to open the connection, when this request opened one.
    pub connect_ms: Option<f64>,
    /// From the request's start (its connection's, when it opened one) to the first byte of the response.
    pub ttfb_ms: Option<f64>,
    /// From the request's start to the last byte of the body.
    pub ttlb_ms: Option<f64>,
    pub error: Option<String>,
}

/// Requests an `http-get` lists one by one; the summary covers all.
pub const REQUESTS_LISTED: usize = 100;

#[derive(Debug)]
enum Body {
    /// `Content-Length` bytes left.
    Length(u64),
    Chunked(Chunked),
    /// Up to the server's FIN.
    UntilClose,
}

#[derive(Debug)]
enum Step {
    /// Waiting for the connection to be established.
    Connecting,
    /// Writing the request.
    Sending(usize),
    /// Reading the response head into `head`.
    Head,
    Body(Body),
}

#[derive(Debug)]
struct Current {
    started: SimTime,
    opened: bool,
    connect: Option<Duration>,
    first_byte: Option<SimTime>,
    head: Vec<u8>,
    status: Option<u16>,
    body: u64,
    close_after: bool,
    step: Step,
    /// Interim (1xx) responses skipped.
    interim: u32,
}

struct ClientConn {
    handle: SocketHandle,
    local_port: u16,
    established: bool,
    opened_at: SimTime,
}

/// GETs `path` from a server `count` times, one request at a time, reusing the connection while
/// the server keeps it open.
pub struct HttpGet {
    cfg: HttpGetConfig,
    request: Vec<u8>,
    conn: Option<ClientConn>,
    cur: Option<Current>,
    next_start: SimTime,
    started: u32,
    completed: u32,
    failed: u32,
    connections: u32,
    statuses: BTreeMap<u16, u32>,
    last_status: Option<u16>,
    body_bytes: u64,
    ttfb: Rtts,
    ttlb: Rtts,
    listed: Vec<HttpRequestResult>,
    last_error: Option<String>,
    /// Sockets of connections closed or aborted, removed once closed.
    retired: Vec<SocketHandle>,
}

impl HttpGet {
    pub fn new(start: SimTime, cfg: HttpGetConfig) -> Self {
        let host = endpoint_str(cfg.to);
        let close = if cfg.keep_alive { "" } else { "Connection: close\r\n" };
        let request =
            format!("GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: netlab\r\nAccept: */*\r\n{close}\r\n", cfg.path)
                .into_bytes();
        HttpGet {
            cfg,
            request,
            conn: None,
            cur: None,
            next_start: start,
            started: 0,
            completed: 0,
            failed: 0,
            connections: 0,
            statuses: BTreeMap::new(),
            last_status: None,
            body_bytes: 0,
            ttfb: Rtts::default(),
            ttlb: Rtts::default(),
            listed: Vec::new(),
            last_error: None,
            retired: Vec::new(),
        }
    }

    /// Ends the current request: a whole response (`error` `None`) or a failure. A failed request's
    /// connection is aborted.
    fn finish(&mut self, cx: &mut AppCx<'_>, error: Option<String>) {
        let Some(c) = self.cur.take() else { return };
        let failed = error.is_some();
        let ms = |d: Duration| d.as_nanos() as f64 / 1e6;
        let ttfb = c.first_byte.map(|t| t - c.started);
        let ttlb = error.is_none().then(|| cx.now - c.started);
        if let Some(t) = ttfb {
            self.ttfb.add(t);
        }
        if let Some(t) = ttlb {
            self.ttlb.add(t);
        }
        self.body_bytes += c.body;
        let status = if error.is_none() { c.status } else { None };
        if let Some(s) = status {
            self.completed += 1;
            *self.statuses.entry(s).or_default() += 1;
            self.last_status = Some(s);
        } else {
            self.failed += 1;
            self.last_error.clone_from(&error);
        }
        if self.listed.len() < REQUESTS_LISTED {
            self.listed.push(HttpRequestResult {
                status,
                body_bytes: c.body,
                connect_ms: c.connect.map(ms),
                ttfb_ms: ttfb.map(ms),
                ttlb_ms: ttlb.map(ms),
                error,
            });
        }
        if let Some(conn) = &self.conn {
            let s = cx.sockets.get_mut::<tcp::Socket>(conn.handle);
            if failed {
                s.abort();
            } else if c.close_after || !self.cfg.keep_alive {
                s.close();
            }
            if failed || c.close_after || !self.cfg.keep_alive {
                self.retire(conn.handle);
                self.conn = None;
            }
        }
        self.next_start = (c.started + self.cfg.interval).max(cx.now);
    }

    /// A closed connection's socket, to remove once the stack is done with it.
    fn retire(&mut self, h: SocketHandle) {
        self.retired.push(h);
    }

    /// Removes the sockets of connections that have finished closing.
    fn sweep(&mut self, cx: &mut AppCx<'_>) {
        self.retired.retain(|h| {
            let gone = matches!(cx.sockets.get::<tcp::Socket>(*h).state(), tcp::State::Closed | tcp::State::TimeWait);
            if gone {
                cx.sockets.remove(*h);
            }
            !gone
        });
    }

    /// A connection for the next request: the open one if it can take it, else a new one.
    fn connection(&mut self, cx: &mut AppCx<'_>) -> Result<bool, String> {
        if let Some(c) = &self.conn {
            let s = cx.sockets.get::<tcp::Socket>(c.handle);
            if s.state() == tcp::State::Established && s.may_send() && s.may_recv() && s.recv_queue() == 0 {
                return Ok(false);
            }
            // The server closed it (or is closing it): let it go.
            cx.sockets.get_mut::<tcp::Socket>(c.handle).close();
            let h = c.handle;
            self.retire(h);
            self.conn = None;
        }
        let (handle, local_port) = cx.connect_tcp(self.cfg.to)?;
        self.connections += 1;
        self.conn = Some(ClientConn { handle, local_port, established: false, opened_at: cx.now });
        Ok(true)
    }

    /// Moves the current request on as far as the socket allows: whether its response is whole,
    /// or an error that ends it.
    fn advance(&mut self, cx: &mut AppCx<'_>) -> Result<bool, String> {
        let (Some(c), Some(conn)) = (self.cur.as_mut(), self.conn.as_mut()) else { return Ok(false) };
        let s = cx.sockets.get_mut::<tcp::Socket>(conn.handle);
        if s.state() == tcp::State::Established {
            conn.established = true;
        }
        if let Step::Connecting = c.step {
            match s.state() {
                tcp::State::SynSent | tcp::State::SynReceived => return Ok(false),
                tcp::State::Established => {
                    c.connect = Some(cx.now - conn.opened_at);
                    c.step = Step::Sending(0);
                }
                _ => {}
            }
        }
        if let Step::Sending(at) = &mut c.step {
            if s.may_send() {
                *at += s.send_slice(&self.request[*at..]).unwrap_or(0);
            }
            if *at == self.request.len() {
                c.step = Step::Head;
            }
        }
        if let Step::Head = c.step {
            while s.can_recv() && c.head.len() < http1::MAX_RESPONSE_HEAD {
                let room = http1::MAX_RESPONSE_HEAD - c.head.len();
                let head = &mut c.head;
                let _ = s.recv(|b| {
                    let n = b.len().min(room);
                    head.extend_from_slice(&b[..n]);
                    (n, ())
                });
                c.first_byte.get_or_insert(cx.now);
                // A head is rarely more than one read; stop as soon as it is whole.
                if !matches!(http1::parse_response(&c.head), Parse::Partial) {
                    break;
                }
            }
            // Interim responses (1xx) come before the final one; a few are skipped.
            loop {
                match http1::parse_response(&c.head) {
                    Parse::Partial if !s.may_recv() => {
                        return Err("the server closed the connection before a whole response head".into());
                    }
                    Parse::Partial if c.head.len() >= http1::MAX_RESPONSE_HEAD => {
                        return Err("malformed response: the head is longer than 64 KiB".into());
                    }
                    Parse::Partial => break,
                    Parse::Bad(_, why) => return Err(format!("malformed response: {why}")),
                    Parse::Done(r, used) if r.status < 200 => {
                        c.head.drain(..used);
                        c.interim += 1;
                        if c.interim > 8 {
                            return Err("more than 8 interim (1xx) responses".into());
                        }
                    }
                    Parse::Done(r, used) => {
                        c.status = Some(r.status);
                        c.close_after = r.close;
                        let body = if !http1::has_body(r.status) {
                            Body::Length(0)
                        } else if r.chunked {
                            Body::Chunked(Chunked::default())
                        } else if let Some(n) = r.length {
                            Body::Length(n)
                        } else {
                            c.close_after = true;
                            Body::UntilClose
                        };
                        // What came after the head is the body's start.
                        let rest = c.head.split_off(used);
                        c.head = rest;
                        c.step = Step::Body(body);
                        break;
                    }
                }
            }
        }
        if let Step::Body(body) = &mut c.step {
            // The bytes read with the head first, then the socket's.
            let take = |bytes: &[u8], body: &mut Body| -> Result<(usize, u64), String> {
                Ok(match body {
                    Body::Length(left) => {
                        let n = bytes.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                        *left -= n as u64;
                        (n, n as u64)
                    }
                    Body::Chunked(ch) => ch.feed(bytes).map_err(|e| format!("malformed chunked body: {e}"))?,
                    Body::UntilClose => (bytes.len(), bytes.len() as u64),
                })
            };
            if !c.head.is_empty() {
                let head = std::mem::take(&mut c.head);
                let (_, data) = take(&head, body)?;
                c.body += data;
            }
            let body_done = |b: &Body| match b {
                Body::Length(left) => *left == 0,
                Body::Chunked(ch) => ch.done(),
                Body::UntilClose => false,
            };
            while !body_done(body) && s.can_recv() {
                let mut failed = None;
                let (used, data) = s
                    .recv(|b| match take(b, body) {
                        Ok((used, data)) => (used, (used, data)),
                        Err(e) => {
                            failed = Some(e);
                            (0, (0, 0))
                        }
                    })
                    .unwrap_or((0, 0));
                if let Some(e) = failed {
                    return Err(e);
                }
                c.body += data;
                if used == 0 {
                    break;
                }
            }
            if body_done(body) {
                return Ok(true);
            }
            if !s.may_recv() {
                if s.state() == tcp::State::Closed {
                    // Reset, or aborted: the caller says why.
                    return Ok(false);
                }
                // The server closed its side: the end of a close-delimited body, or a cut one.
                return match body {
                    Body::UntilClose => Ok(true),
                    Body::Length(left) => {
                        Err(format!("the server closed the connection {left} bytes short of the body's Content-Length"))
                    }
                    Body::Chunked(_) => Err("the server closed the connection inside a chunked body".into()),
                };
            }
        }
        Ok(false)
    }
}

impl App for HttpGet {
    fn poll(&mut self, cx: &mut AppCx<'_>) -> Option<SimTime> {
        self.sweep(cx);
        if self.done() {
            return None;
        }
        for _ in 0..STEPS_PER_POLL {
            if self.cur.is_none() {
                if self.started == self.cfg.count {
                    break;
                }
                if cx.now < self.next_start {
                    return Some(self.next_start);
                }
                self.started += 1;
                let mut cur = Current {
                    started: cx.now,
                    opened: false,
                    connect: None,
                    first_byte: None,
                    head: Vec::new(),
                    status: None,
                    body: 0,
                    close_after: false,
                    step: Step::Sending(0),
                    interim: 0,
                };
                match self.connection(cx) {
                    Ok(opened) => {
                        cur.opened = opened;
                        if opened {
                            cur.step = Step::Connecting;
                        }
                        self.cur = Some(cur);
                    }
                    Err(e) => {
                        self.cur = Some(cur);
                        self.finish(cx, Some(e));
                        continue;
                    }
                }
            }
            match self.advance(cx) {
                Err(e) => {
                    self.finish(cx, Some(e));
                    continue;
                }
                Ok(true) => {
                    self.finish(cx, None);
                    continue;
                }
                Ok(false) => {}
            }
            // Still going: a closed connection or the timeout ends it.
            let (Some(c), Some(conn)) = (&self.cur, &self.conn) else { break };
            let state = cx.sockets.get::<tcp::Socket>(conn.handle).state();
            if matches!(state, tcp::State::Closed | tcp::State::TimeWait) {
                let why = if c.opened || conn.established {
                    closed_reason(cx, conn.local_port, conn.established, conn.opened_at)
                } else {
                    "the connection closed before the request was sent".into()
                };
                self.finish(cx, Some(why));
                continue;
            }
            if cx.now - c.started >= self.cfg.timeout {
                let why = format!(
                    "no whole response within {}s ({})",
                    self.cfg.timeout.as_secs_f64(),
                    match c.step {
                        Step::Connecting => "connecting",
                        Step::Sending(_) => "sending the request",
                        Step::Head => "waiting for the response head",
                        Step::Body(_) => "reading the body",
                    }
                );
                self.finish(cx, Some(why));
                continue;
            }
            return Some(c.started + self.cfg.timeout);
        }
        if self.done() {
            if let Some(conn) = self.conn.take() {
                cx.sockets.get_mut::<tcp::Socket>(conn.handle).close();
                self.retire(conn.handle);
            }
            return None;
        }
        // Bounded work done: come back at once.
        Some(cx.now)
    }

    fn stop(&mut self, cx: &mut AppCx<'_>) {
        if let Some(c) = self.conn.take() {
            cx.close_socket(c.handle);
        }
    }

    fn done(&self) -> bool {
        self.started == self.cfg.count && self.cur.is_none()
    }

    fn outcome(&self) -> Outcome {
        Outcome::HttpGet {
            to: endpoint_str(self.cfg.to),
            path: self.cfg.path.clone(),
            sent: self.started,
            completed: self.completed,
            failed: self.failed,
            connections: self.connections,
            status: self.last_status,
            statuses: self.statuses.clone(),
            body_bytes: self.body_bytes,
            ttfb: self.ttfb.stats(),
            ttlb: self.ttlb.stats(),
            requests: self.listed.clone(),
            error: self.last_error.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_http_1_1_with_a_host() {
        let g = HttpGet::new(
            SimTime::ZERO,
            HttpGetConfig {
                to: ("fd00::2".parse().unwrap(), 8080),
                path: "/a?b".into(),
                count: 1,
                interval: Duration::ZERO,
                timeout: Duration::from_secs(1),
                keep_alive: false,
            },
        );
        assert_eq!(
            String::from_utf8(g.request.clone()).unwrap(),
            "GET /a?b HTTP/1.1\r\nHost: [fd00::2]:8080\r\nUser-Agent: netlab\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        // The server reads it back.
        let Parse::Done(r, n) = http1::parse_request(&g.request) else { panic!() };
        assert_eq!((r.method, r.keep_alive, n), (Method::Get, false, g.request.len()));
    }

    #[test]
    fn responses_have_the_status_and_length() {
        let s = HttpServer::new(80, 404, 5000, true);
        let (head, body) = s.response(404, false, false);
        let Parse::Done(r, _) = http1::parse_response(&head) else { panic!() };
        assert_eq!((r.status, r.length, r.close, body), (404, Some(5000), false, 5000));
        // A HEAD gets the length without the body; an error closes.
        assert_eq!(s.response(404, true, false).1, 0);
        let (head, body) = s.response(400, false, true);
        let Parse::Done(r, _) = http1::parse_response(&head) else { panic!() };
        assert_eq!((r.status, r.length, r.close, body), (400, Some(0), true, 0));
    }
}
