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

/// A connection that sends nothing for this long while the server waits for a request is closed;
/// one that makes no progress for this long while the server writes or closes it is reset.
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
    /// The interface whose socket set holds it.
    iface: usize,
    handle: SocketHandle,
    counted: bool,
    /// Request bytes read and not parsed yet (at most a head's worth).
    buf: Vec<u8>,
    /// Body bytes of the last request still to be read and dropped.
    discard: u64,
    state: ServerState,
    last_active: SimTime,
}

/// Serves every request with `status` and `body` bytes of the stream pattern. It is polled once
/// for each interface of its host, and keeps listening sockets in each interface's set.
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
        let mut h = format!("HTTP/1.1 {status} {}\r\nServer: netlab\r\n", http1::reason(status));
        // A 204 or 304 has neither a body nor a length (RFC 9110 §8.6).
        if http1::has_body(status) {
            h.push_str(&format!("Content-Type: {kind}\r\nContent-Length: {body}\r\n"));
        }
        h.push_str(extra);
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
                ServerState::Closing => {
                    // A lingering close: what the client still sends is read and dropped, so that it
                    // is not stuck behind a full window before it reads our answer and closes.
                    while s.can_recv() {
                        let _ = s.recv(|b| (b.len(), ()));
                    }
                    return;
                }
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
                        c.last_active = now;
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
                            c.last_active = now;
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
                                c.last_active = now;
                            }
                            return;
                        }
                        Parse::Bad(status, _) => {
                            self.bad_requests += 1;
                            (status, false, true)
                        }
                        Parse::Done(req, used) => {
                            c.buf.drain(..used);
                            // The body may have come with the head: what is read is dropped now.
                            let read = c.buf.len().min(usize::try_from(req.body).unwrap_or(usize::MAX));
                            c.buf.drain(..read);
                            c.discard = req.body - read as u64;
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
        // Only the connections of this interface are in `cx.sockets`.
        let me = cx.interface;
        // A listening socket for each connection request waiting (a backlog), as the TCP servers do.
        let want = cx.wire.syns.get(&self.port).map_or(1, |n| (*n as usize).max(1));
        let is_listening = |cx: &AppCx<'_>, c: &ServerConn| {
            c.iface == me && cx.sockets.get::<tcp::Socket>(c.handle).state() == tcp::State::Listen
        };
        let mut listening = self.conns.iter().filter(|c| is_listening(cx, c)).count();
        while listening < want && self.conns.len() < MAX_CONNECTIONS {
            let h = cx.new_tcp_socket();
            if cx.sockets.get_mut::<tcp::Socket>(h).listen(self.port).is_err() {
                cx.sockets.remove(h);
                break;
            }
            self.conns.push(ServerConn {
                iface: me,
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
            if c.iface != me {
                continue;
            }
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
            // A connection that does nothing for IDLE_TIMEOUT: one waiting for a request is
            // closed, one stuck writing (the client reads nothing) or closing (it does not close)
            // is reset.
            let s = cx.sockets.get_mut::<tcp::Socket>(c.handle);
            if matches!(s.state(), tcp::State::Closed | tcp::State::TimeWait | tcp::State::Listen) {
                continue;
            }
            if cx.now - c.last_active < IDLE_TIMEOUT {
                wake = min_wake(wake, Some(c.last_active + IDLE_TIMEOUT));
            } else if matches!(c.state, ServerState::Reading) {
                s.close();
                c.state = ServerState::Closing;
                c.last_active = cx.now;
                wake = min_wake(wake, Some(cx.now + IDLE_TIMEOUT));
            } else {
                s.abort();
            }
        }
        let open = self.conns.iter().filter(|c| c.counted).count();
        self.peak = self.peak.max(u32::try_from(open).unwrap_or(u32::MAX));
        self.conns.retain(|c| {
            let closed = c.iface == me
                && c.counted
                && matches!(cx.sockets.get::<tcp::Socket>(c.handle).state(), tcp::State::Closed | tcp::State::TimeWait);
            if closed {
                cx.sockets.remove(c.handle);
            }
            !closed
        });
        wake
    }

    fn stop(&mut self, cx: &mut AppCx<'_>) {
        let me = cx.interface;
        self.conns.retain(|c| {
            if c.iface == me {
                cx.close_socket(c.handle);
            }
            c.iface != me
        });
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
    fn a_204_has_no_length() {
        let s = HttpServer::new(80, 204, 0, true);
        let (head, body) = s.response(204, false, false);
        assert_eq!(String::from_utf8(head).unwrap(), "HTTP/1.1 204 No Content\r\nServer: netlab\r\n\r\n");
        assert_eq!(body, 0);
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

/// HTTP against peers of other shapes: a scripted server answering with canned bytes (HTTP/1.0,
/// chunked, interim responses, cut or garbage responses), and a scripted client sending hostile
/// requests to the server. Both run in a lab of two hosts, in place of an app of the lab.
#[cfg(test)]
mod peers {
    use std::sync::{Arc, Mutex};

    use proptest::prelude::*;
    use smoltcp::iface::SocketHandle;
    use smoltcp::socket::tcp;

    use super::super::{App, AppCx, Outcome};
    use super::http1::{self, Parse};
    use crate::sim::{NodeState, Sim};
    use crate::time::SimTime;

    /// Client `c` (10.0.0.1) and server `s` (10.0.0.2), 1 ms apart.
    fn lab(c_apps: &str, s_apps: &str) -> crate::topology::Lab {
        let text = format!(
            r#"{{ "name": "t", "nodes": {{
                "c": {{ "kind": "host", "interfaces": {{ "eth0": {{ "addresses": ["10.0.0.1/24"] }} }}, "apps": [{c_apps}] }},
                "s": {{ "kind": "host", "interfaces": {{ "eth0": {{ "addresses": ["10.0.0.2/24"] }} }}, "apps": [{s_apps}] }} }},
              "links": [ {{ "a": "c:eth0", "b": "s:eth0", "impair": {{ "latency": "1ms" }} }} ] }}"#
        );
        crate::topology::load_str(&text, "t.json").unwrap_or_else(|e| panic!("{e}"))
    }

    fn replace(sim: &mut Sim, node: usize, slot: usize, app: Box<dyn App>) {
        match &mut sim.nodes[node] {
            NodeState::Host(h) => h.apps[slot].app = app,
            _ => panic!("node {node} is not a host"),
        }
    }

    /// Runs until the clients are done or `secs` of simulated time have passed.
    fn run(sim: &mut Sim, secs: u64) {
        run_from(sim, 0, secs);
    }

    fn run_from(sim: &mut Sim, from: u64, secs: u64) {
        let limit = SimTime::from_millis(secs * 1000);
        let mut now = SimTime::from_millis(from * 1000).max(sim.next_deadline().unwrap_or(SimTime::ZERO));
        for _ in 0..10_000_000 {
            sim.step(now, &mut ());
            if sim.clients_done() && sim.app_reports().iter().any(|a| a.label == "c/http-get") {
                return;
            }
            match sim.next_deadline() {
                Some(t) if t <= limit => now = t,
                _ => return,
            }
        }
        panic!("the lab did not settle");
    }

    fn outcome(sim: &Sim, label: &str) -> Outcome {
        sim.app_reports().into_iter().find(|a| a.label == label).map(|a| a.outcome).expect("app")
    }

    /// A server that answers each request head (up to its empty line) with `response`, and then
    /// closes the connection if `close`; `None` never answers.
    struct ScriptServer {
        response: Option<Vec<u8>>,
        close: bool,
        conns: Vec<(SocketHandle, Vec<u8>, usize)>,
    }

    impl App for ScriptServer {
        fn poll(&mut self, cx: &mut AppCx<'_>) -> Option<SimTime> {
            let listening = self.conns.iter().any(|c| cx.sockets.get::<tcp::Socket>(c.0).state() == tcp::State::Listen);
            if !listening {
                let h = cx.new_tcp_socket();
                cx.sockets.get_mut::<tcp::Socket>(h).listen(80).expect("listen");
                self.conns.push((h, Vec::new(), 0));
            }
            for (h, got, written) in &mut self.conns {
                let s = cx.sockets.get_mut::<tcp::Socket>(*h);
                while s.can_recv() {
                    let _ = s.recv(|b| {
                        got.extend_from_slice(b);
                        (b.len(), ())
                    });
                }
                let Some(resp) = &self.response else { continue };
                // One answer per request head.
                let heads = got.windows(4).filter(|w| *w == b"\r\n\r\n").count();
                let due = heads * resp.len();
                while *written < due && s.may_send() {
                    let at = *written % resp.len();
                    let n = s.send_slice(&resp[at..]).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    *written += n;
                }
                if self.close && heads > 0 && *written == due && s.state() == tcp::State::Established {
                    s.close();
                }
            }
            None
        }
        fn stop(&mut self, _: &mut AppCx<'_>) {}
        fn done(&self) -> bool {
            false
        }
        fn outcome(&self) -> Outcome {
            Outcome::TcpSink { port: 80, connections: 0, peak_connections: 0, bytes: 0, corrupt_bytes: 0 }
        }
    }

    /// What the `http-get` of `get` (fields after `"to": "s:80"`) made of `response`.
    fn get_from(response: Option<&[u8]>, close: bool, get: &str) -> Outcome {
        let l = lab(
            &format!(r#"{{ "kind": "http-get", "to": "s:80", "timeout": "1s" {get} }}"#),
            r#"{ "kind": "tcp-sink", "port": 80 }"#,
        );
        let mut sim = Sim::new(&l, None);
        replace(
            &mut sim,
            1,
            0,
            Box::new(ScriptServer { response: response.map(<[u8]>::to_vec), close, conns: Vec::new() }),
        );
        run(&mut sim, 30);
        outcome(&sim, "c/http-get")
    }

    fn got(o: &Outcome) -> (u32, u32, Option<u16>, u64, u32, Option<String>) {
        let Outcome::HttpGet { completed, failed, status, body_bytes, connections, error, .. } = o else { panic!() };
        (*completed, *failed, *status, *body_bytes, *connections, error.clone())
    }

    #[test]
    fn an_http_1_0_server_that_ends_the_body_by_closing() {
        let resp = [&b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\n"[..], &[b'x'; 5000]].concat();
        let o = get_from(Some(&resp), true, r#", "count": 2"#);
        assert_eq!(got(&o), (2, 0, Some(200), 10_000, 2, None), "{o:?}");
    }

    #[test]
    fn a_chunked_body_with_extensions_and_trailers_on_one_connection() {
        let mut resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n".to_vec();
        for n in [1usize, 100, 4096, 5803] {
            resp.extend_from_slice(format!("{n:x};name=value\r\n").as_bytes());
            resp.extend(std::iter::repeat_n(b'y', n));
            resp.extend_from_slice(b"\r\n");
        }
        resp.extend_from_slice(b"0\r\nX-Checksum: 1\r\n\r\n");
        let o = get_from(Some(&resp), false, r#", "count": 3"#);
        assert_eq!(got(&o), (3, 0, Some(200), 30_000, 1, None), "{o:?}");
    }

    #[test]
    fn interim_responses_are_skipped_and_a_204_has_no_body() {
        let resp = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(got(&get_from(Some(resp), false, "")), (1, 0, Some(200), 5, 1, None));
        let resp = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(got(&get_from(Some(resp), false, r#", "count": 2"#)), (2, 0, Some(204), 0, 1, None));
    }

    #[test]
    fn cut_garbage_and_silent_servers_are_errors() {
        let cut = [&b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"[..], &[b'z'; 50]].concat();
        let (done, failed, _, _, _, err) = got(&get_from(Some(&cut), true, ""));
        assert_eq!((done, failed), (0, 1));
        assert!(err.as_deref().unwrap_or("").contains("50 bytes short"), "{err:?}");

        let (done, failed, _, _, _, err) = got(&get_from(Some(b"SSH-2.0-OpenSSH_9.6\r\n"), false, ""));
        assert_eq!((done, failed), (0, 1));
        assert!(err.as_deref().unwrap_or("").starts_with("malformed response"), "{err:?}");

        let (done, failed, _, _, _, err) = got(&get_from(None, false, ""));
        assert_eq!((done, failed), (0, 1));
        assert_eq!(err.as_deref(), Some("no whole response within 1s (waiting for the response head)"));
    }

    /// What a client that sends `request` receives from an `http-server`, and whether the
    /// server closed the connection.
    #[derive(Default)]
    struct Received {
        bytes: Vec<u8>,
        closed: bool,
    }

    struct ScriptClient {
        request: Vec<u8>,
        sent: usize,
        handle: Option<SocketHandle>,
        out: Arc<Mutex<Received>>,
    }

    impl App for ScriptClient {
        fn poll(&mut self, cx: &mut AppCx<'_>) -> Option<SimTime> {
            let h = match self.handle {
                Some(h) => h,
                None => {
                    let (h, _) = cx.connect_tcp(("10.0.0.2".parse().unwrap(), 80)).expect("connect");
                    self.handle = Some(h);
                    h
                }
            };
            let s = cx.sockets.get_mut::<tcp::Socket>(h);
            if self.sent < self.request.len() && s.may_send() {
                self.sent += s.send_slice(&self.request[self.sent..]).unwrap_or(0);
            }
            let mut out = self.out.lock().unwrap();
            while s.can_recv() {
                let _ = s.recv(|b| {
                    out.bytes.extend_from_slice(b);
                    (b.len(), ())
                });
            }
            out.closed |= s.state() != tcp::State::SynSent && !s.may_recv();
            None
        }
        fn stop(&mut self, _: &mut AppCx<'_>) {}
        fn done(&self) -> bool {
            false
        }
        fn outcome(&self) -> Outcome {
            Outcome::TcpSink { port: 0, connections: 0, peak_connections: 0, bytes: 0, corrupt_bytes: 0 }
        }
    }

    /// Sends `request` to an `http-server` with a body of 10 bytes; returns what came back, split
    /// into responses (status, body length), whether the server closed, and its outcome.
    fn send(request: &[u8]) -> (Vec<(u16, usize)>, bool, Outcome) {
        let l = lab(r#"{ "kind": "tcp-sink", "port": 9 }"#, r#"{ "kind": "http-server", "port": 80, "body": 10 }"#);
        let mut sim = Sim::new(&l, None);
        let out = Arc::new(Mutex::new(Received::default()));
        replace(
            &mut sim,
            0,
            0,
            Box::new(ScriptClient { request: request.to_vec(), sent: 0, handle: None, out: out.clone() }),
        );
        run(&mut sim, 3);
        let r = out.lock().unwrap();
        let mut responses = Vec::new();
        let mut rest = &r.bytes[..];
        while !rest.is_empty() {
            let Parse::Done(resp, used) = http1::parse_response(rest) else { panic!("not a response: {rest:?}") };
            let len = usize::try_from(resp.length.expect("a length")).unwrap();
            // A HEAD's response says the length of a body it does not carry.
            let body = if rest[used..].starts_with(b"HTTP/") { 0 } else { len };
            responses.push((resp.status, body));
            rest = &rest[used + body..];
        }
        (responses, r.closed, outcome(&sim, "s/http-server"))
    }

    fn server_counts(o: &Outcome) -> (u64, u64) {
        let Outcome::HttpServer { requests, bad_requests, .. } = o else { panic!() };
        (*requests, *bad_requests)
    }

    #[test]
    fn pipelined_requests_bodies_and_heads_are_answered_in_order() {
        let req = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloHEAD /c HTTP/1.1\r\nHost: x\r\n\r\nGET /d HTTP/1.0\r\n\r\n";
        let (responses, closed, o) = send(req);
        assert_eq!(responses, [(200, 10), (405, 0), (200, 0), (200, 10)]);
        assert!(closed, "HTTP/1.0 without keep-alive: the server closes");
        assert_eq!(server_counts(&o), (4, 0));
    }

    #[test]
    fn hostile_requests_get_an_error_status_and_a_close() {
        let long_header = [&b"GET / HTTP/1.1\r\nHost: x\r\nX: "[..], &[b'a'; 9000], b"\r\n\r\n"].concat();
        let cases: Vec<(Vec<u8>, u16)> = vec![
            (vec![0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00], 400),
            (b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400),
            (b"GET / HTTP/3.0\r\nHost: x\r\n\r\n".to_vec(), 505),
            (b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(), 501),
            (long_header, 431),
            (vec![b'A'; 20_000], 431),
            (b"\r\n".repeat(5000), 400),
        ];
        for (req, status) in cases {
            let (responses, closed, o) = send(&req);
            assert_eq!(responses, [(status, 0)], "{:?}", String::from_utf8_lossy(&req[..20.min(req.len())]));
            assert!(closed);
            assert_eq!(server_counts(&o), (0, 1));
        }
    }

    /// The TCP states of the server's sockets.
    fn server_sockets(sim: &Sim) -> Vec<String> {
        let snap = sim.snapshot();
        let s = snap.hosts.iter().find(|h| h.name == "s").expect("s");
        s.sockets.iter().filter(|k| k.kind == "tcp").map(|k| k.state.clone().unwrap_or_default()).collect()
    }

    #[test]
    fn idle_and_stuck_connections_are_closed_then_reset() {
        // Nothing sent: closed after 30 s. Garbage, and a client that never closes: answered 400,
        // and reset 30 s later. Either way only the listening socket is left.
        for request in [&b""[..], b"\x00\x01 garbage"] {
            let l = lab(r#"{ "kind": "tcp-sink", "port": 9 }"#, r#"{ "kind": "http-server", "port": 80, "body": 10 }"#);
            let mut sim = Sim::new(&l, None);
            let out = Arc::new(Mutex::new(Received::default()));
            replace(
                &mut sim,
                0,
                0,
                Box::new(ScriptClient { request: request.to_vec(), sent: 0, handle: None, out: out.clone() }),
            );
            run(&mut sim, 20);
            assert_eq!(server_sockets(&sim).len(), 2, "{:?}", server_sockets(&sim));
            run_from(&mut sim, 20, 70);
            assert_eq!(server_sockets(&sim), ["LISTEN"]);
            assert!(out.lock().unwrap().closed);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]

        /// Whatever a client sends, the server answers with HTTP responses or nothing, and does
        /// not panic.
        #[test]
        fn any_bytes_sent_to_the_server(
            req in proptest::collection::vec(prop_oneof![
                Just(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
                Just(b"\r\n".to_vec()),
                Just(b"Content-Length: 3\r\n".to_vec()),
                proptest::collection::vec(any::<u8>(), 0..64),
            ], 0..6)
        ) {
            let l = lab(r#"{ "kind": "tcp-sink", "port": 9 }"#, r#"{ "kind": "http-server", "port": 80, "body": 10 }"#);
            let mut sim = Sim::new(&l, None);
            let out = Arc::new(Mutex::new(Received::default()));
            let request = req.concat();
            replace(&mut sim, 0, 0, Box::new(ScriptClient { request, sent: 0, handle: None, out: out.clone() }));
            run(&mut sim, 2);
            let r = out.lock().unwrap();
            prop_assert!(r.bytes.is_empty() || r.bytes.starts_with(b"HTTP/1.1 "), "{:?}", String::from_utf8_lossy(&r.bytes));
        }
    }
}
