//! HTTP/1.1 message heads (RFC 9112), read from untrusted bytes: a request head for the server, a
//! response head and a chunked body for the client. Every reader is bounded (head size, header
//! count, number lengths) and answers "need more", "here it is" or "this is not HTTP", never panics.

/// The largest request head the server reads; a longer one is answered 431.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// The largest response head the client reads.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Header fields in one head, at most.
pub const MAX_HEADERS: usize = 100;
/// Bytes of chunk extensions on one chunk-size line, and of trailer fields, at most.
const MAX_CHUNK_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;

/// What reading a head found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse<T> {
    /// The head is not complete yet.
    Partial,
    /// A head, and the bytes it took (the head and the empty line after it).
    Done(T, usize),
    /// Not a message this side accepts: the status to answer (400, 431, 501, 505) and why.
    Bad(u16, &'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    /// Another method (a token): answered 405.
    Other,
}

/// A request head, as far as the server cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The minor version: 0 or 1 (`HTTP/1.2` and later read as 1).
    pub minor: u8,
    /// The client keeps the connection for another request.
    pub keep_alive: bool,
    /// Bytes of body that follow the head (`Content-Length`).
    pub body: u64,
}

/// A response head, as far as the client cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub minor: u8,
    /// `Content-Length`, when there is one and no `Transfer-Encoding`.
    pub length: Option<u64>,
    /// The body is chunked (the last transfer coding is `chunked`).
    pub chunked: bool,
    /// Some other transfer coding: the body ends when the connection closes.
    pub other_coding: bool,
    /// The server closes the connection after this response.
    pub close: bool,
}

/// The end of the head in `buf`: the index just past the empty line that ends it. A line ends in
/// CRLF or in a bare LF (RFC 9112 §2.2). Leading empty lines are skipped by the caller.
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    for (i, &b) in buf.iter().enumerate() {
        if b == b'\n' {
            let line = &buf[line_start..i];
            if line.is_empty() || line == b"\r" {
                return Some(i + 1);
            }
            line_start = i + 1;
        }
    }
    None
}

/// The lines of a head (without their CR LF), the last (empty) one left out.
fn lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    head.split(|b| *b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).filter(|l| !l.is_empty())
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|b| is_tchar(*b))
}

/// `HTTP/1.x`: the minor version; another major version is `Err(505)`, anything else `Err(400)`.
fn version(v: &[u8]) -> Result<u8, u16> {
    match v {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor] if major.is_ascii_digit() && minor.is_ascii_digit() => {
            if *major == b'1' {
                Ok((minor - b'0').min(1))
            } else {
                Err(505)
            }
        }
        _ => Err(400),
    }
}

/// A header field value's bytes are allowed: tab, space, visible ASCII, or obs-text.
fn is_field_value(v: &[u8]) -> bool {
    v.iter().all(|&b| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80)
}

fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !matches!(b, b' ' | b'\t')).map_or(start, |e| e + 1);
    &v[start..end]
}

/// The header fields that decide how a message is framed and whether the connection stays.
#[derive(Default)]
struct Fields {
    length: Option<u64>,
    /// The transfer codings, in order, lower case.
    codings: Vec<Vec<u8>>,
    close: bool,
    keep_alive: bool,
    hosts: usize,
}

/// Reads the header lines after the first line: `Err((status, why))` for a malformed one.
fn fields<'a>(mut lines: impl Iterator<Item = &'a [u8]>) -> Result<Fields, (u16, &'static str)> {
    let mut f = Fields::default();
    let mut n = 0;
    for line in lines.by_ref() {
        n += 1;
        if n > MAX_HEADERS {
            return Err((431, "too many header fields"));
        }
        if line.contains(&b'\r') {
            return Err((400, "a bare CR in a header line"));
        }
        if matches!(line[0], b' ' | b'\t') {
            return Err((400, "a folded header line (obs-fold)"));
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            return Err((400, "a header line without a colon"));
        };
        let (name, value) = (&line[..colon], trim_ows(&line[colon + 1..]));
        if !is_token(name) {
            return Err((400, "a header name that is not a token"));
        }
        if !is_field_value(value) {
            return Err((400, "a control character in a header value"));
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            // A list of equal values is allowed (RFC 9110 §8.6); anything else is not.
            for part in value.split(|b| *b == b',').map(trim_ows) {
                if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
                    return Err((400, "a Content-Length that is not a number"));
                }
                let v = part.iter().fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
                if f.length.is_some_and(|l| l != v) {
                    return Err((400, "two different Content-Lengths"));
                }
                f.length = Some(v);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            for part in value.split(|b| *b == b',').map(trim_ows).filter(|p| !p.is_empty()) {
                if f.codings.len() >= 8 {
                    return Err((400, "too many transfer codings"));
                }
                // A coding may carry parameters (`;q=…`); its name is what counts.
                let name = part.split(|b| *b == b';').next().map_or(part, trim_ows);
                f.codings.push(name.to_ascii_lowercase());
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            for part in value.split(|b| *b == b',').map(trim_ows) {
                f.close |= part.eq_ignore_ascii_case(b"close");
                f.keep_alive |= part.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"host") {
            f.hosts += 1;
        }
    }
    Ok(f)
}

/// The request line: method and minor version, or the status to refuse it with.
fn request_line(line: &[u8]) -> Result<(Method, u8), (u16, &'static str)> {
    let mut parts = line.split(|b| *b == b' ');
    let (Some(method), Some(target), Some(ver), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err((400, "a request line that is not `METHOD target HTTP/1.1`"));
    };
    if !is_token(method) {
        return Err((400, "a method that is not a token"));
    }
    if target.is_empty() || !target.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err((400, "a request target with control characters or none at all"));
    }
    let minor = match version(ver) {
        Ok(m) => m,
        Err(505) => return Err((505, "an HTTP version other than 1.x")),
        Err(_) => return Err((400, "a request line without an HTTP version")),
    };
    let method = match method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        _ => Method::Other,
    };
    Ok((method, minor))
}

/// Reads a request head from the start of `buf` (empty lines before it are skipped and counted in
/// what it took). A request line that cannot be one is refused as soon as it is seen, before the
/// rest of the head comes (a TLS hello, a stray binary protocol).
#[must_use]
pub fn parse_request(buf: &[u8]) -> Parse<Request> {
    let skip = buf.iter().position(|b| !matches!(b, b'\r' | b'\n')).unwrap_or(buf.len());
    let rest = &buf[skip..];
    let Some(end) = head_end(rest) else {
        let first = match rest.iter().position(|b| *b == b'\n') {
            Some(nl) => request_line(rest[..nl].strip_suffix(b"\r").unwrap_or(&rest[..nl])).err(),
            // Not a whole line yet: at least what is there of the method must be a token.
            None => {
                let m = rest.split(|b| *b == b' ').next().unwrap_or_default();
                (!m.iter().all(|b| is_tchar(*b))).then_some((400, "a method that is not a token"))
            }
        };
        return match first {
            Some((status, why)) => Parse::Bad(status, why),
            None if rest.len() >= MAX_REQUEST_HEAD => Parse::Bad(431, "the request head is too long"),
            None => Parse::Partial,
        };
    };
    if end > MAX_REQUEST_HEAD {
        return Parse::Bad(431, "the request head is too long");
    }
    let mut ls = lines(&rest[..end]);
    let Some(first) = ls.next() else { return Parse::Bad(400, "an empty request") };
    let (method, minor) = match request_line(first) {
        Ok(m) => m,
        Err((status, why)) => return Parse::Bad(status, why),
    };
    let f = match fields(ls) {
        Ok(f) => f,
        Err((status, why)) => return Parse::Bad(status, why),
    };
    if minor == 1 && f.hosts != 1 {
        return Parse::Bad(400, "an HTTP/1.1 request needs exactly one Host field");
    }
    if !f.codings.is_empty() {
        if f.length.is_some() {
            return Parse::Bad(400, "both Transfer-Encoding and Content-Length");
        }
        // The server does not read request bodies in codings; it cannot find the next request.
        return Parse::Bad(501, "a request body in a transfer coding");
    }
    let keep_alive = !f.close && (minor == 1 || f.keep_alive);
    Parse::Done(Request { method, minor, keep_alive, body: f.length.unwrap_or(0) }, skip + end)
}

/// Reads a response head from the start of `buf`.
#[must_use]
pub fn parse_response(buf: &[u8]) -> Parse<Response> {
    let Some(end) = head_end(buf) else {
        return if buf.len() >= MAX_RESPONSE_HEAD {
            Parse::Bad(400, "the response head is longer than 64 KiB")
        } else if buf.len() >= 5 && !buf.starts_with(b"HTTP/") {
            Parse::Bad(400, "the response does not start with `HTTP/`")
        } else {
            Parse::Partial
        };
    };
    if end > MAX_RESPONSE_HEAD {
        return Parse::Bad(400, "the response head is longer than 64 KiB");
    }
    let mut ls = lines(&buf[..end]);
    let Some(first) = ls.next() else { return Parse::Bad(400, "an empty line where the status line was due") };
    // `HTTP/1.1 200 OK`; the reason phrase may be empty, and even its space missing.
    let (ver, rest) = first.split_at(first.iter().position(|b| *b == b' ').unwrap_or(first.len()));
    let Ok(minor) = version(ver) else { return Parse::Bad(400, "a status line without `HTTP/1.x`") };
    let code = rest.get(1..4).unwrap_or_default();
    if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) || rest.get(4).is_some_and(|b| *b != b' ') {
        return Parse::Bad(400, "a status line without a three-digit status");
    }
    let status = code.iter().fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    if status < 100 {
        return Parse::Bad(400, "a status below 100");
    }
    let f = match fields(ls) {
        Ok(f) => f,
        Err((_, why)) => return Parse::Bad(400, why),
    };
    let chunked = f.codings.last().is_some_and(|c| c == b"chunked");
    let other_coding = !f.codings.is_empty() && !chunked;
    let close = f.close || (minor == 0 && !f.keep_alive) || other_coding;
    let length = if f.codings.is_empty() { f.length } else { None };
    Parse::Done(Response { status, minor, length, chunked, other_coding, close }, end)
}

/// Whether a response to a GET has a body at all (RFC 9112 §6.3): not a 1xx, 204 or 304.
#[must_use]
pub fn has_body(status: u16) -> bool {
    !(status < 200 || status == 204 || status == 304)
}

/// A chunked body, read as it comes (RFC 9112 §7.1): counts its data, skips extensions and
/// trailers, and says when it is whole.
#[derive(Debug, Clone, Default)]
pub struct Chunked {
    state: Chunk,
    /// Bytes of the current chunk-size line past its digits, or of the trailers.
    skipped: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Chunk {
    /// The size's hex digits: the value so far and how many.
    #[default]
    Start,
    Size(u64, u8),
    /// Past the size: an extension (or spaces before it), up to the line's end.
    Ext(u64),
    /// Chunk data left.
    Data(u64),
    /// The CR LF after a chunk's data.
    DataCr,
    DataLf,
    /// The trailer section: at the start of a line or inside one.
    Trailer {
        line_start: bool,
    },
    Done,
}

impl Chunked {
    /// Whether the last chunk and the trailers have been read.
    #[must_use]
    pub fn done(&self) -> bool {
        self.state == Chunk::Done
    }

    /// Reads `input`: returns the bytes it took and how many of them were body data. It stops at
    /// the end of the body; what follows is not taken.
    pub fn feed(&mut self, input: &[u8]) -> Result<(usize, u64), &'static str> {
        let mut i = 0;
        let mut data = 0u64;
        while i < input.len() {
            let b = input[i];
            match self.state {
                Chunk::Done => break,
                Chunk::Data(left) => {
                    let n = (input.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                    i += n;
                    data += n as u64;
                    let left = left - n as u64;
                    self.state = if left == 0 { Chunk::DataCr } else { Chunk::Data(left) };
                    continue;
                }
                Chunk::Start | Chunk::Size(..) => {
                    let (v, n) = match self.state {
                        Chunk::Size(v, n) => (v, n),
                        _ => (0, 0),
                    };
                    if let Some(d) = (b as char).to_digit(16) {
                        if n >= 16 {
                            return Err("a chunk size of more than 16 hex digits");
                        }
                        self.state = Chunk::Size(v * 16 + u64::from(d), n + 1);
                    } else if n == 0 {
                        return Err("a chunk without a size");
                    } else if matches!(b, b';' | b' ' | b'\t' | b'\r') {
                        self.skipped = 0;
                        self.state = Chunk::Ext(v);
                    } else if b == b'\n' {
                        self.end_size_line(v);
                    } else {
                        return Err("a chunk size that is not hex");
                    }
                }
                Chunk::Ext(v) => {
                    if b == b'\n' {
                        self.end_size_line(v);
                    } else {
                        self.skipped += 1;
                        if self.skipped > MAX_CHUNK_LINE {
                            return Err("a chunk extension longer than 4 KiB");
                        }
                    }
                }
                Chunk::DataCr => match b {
                    b'\r' => self.state = Chunk::DataLf,
                    b'\n' => self.state = Chunk::Start,
                    _ => return Err("chunk data longer than its size"),
                },
                Chunk::DataLf => {
                    if b != b'\n' {
                        return Err("chunk data not followed by CR LF");
                    }
                    self.state = Chunk::Start;
                }
                Chunk::Trailer { line_start } => {
                    self.skipped += 1;
                    if self.skipped > MAX_TRAILERS {
                        return Err("trailer fields longer than 16 KiB");
                    }
                    self.state = match b {
                        b'\n' if line_start => Chunk::Done,
                        b'\n' => Chunk::Trailer { line_start: true },
                        b'\r' => Chunk::Trailer { line_start },
                        _ => Chunk::Trailer { line_start: false },
                    };
                }
            }
            i += 1;
        }
        Ok((i, data))
    }

    fn end_size_line(&mut self, size: u64) {
        self.skipped = 0;
        self.state = if size == 0 { Chunk::Trailer { line_start: true } } else { Chunk::Data(size) };
    }
}

/// The reason phrase of a status.
#[must_use]
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done<T: std::fmt::Debug>(p: Parse<T>) -> (T, usize) {
        match p {
            Parse::Done(t, n) => (t, n),
            other => panic!("{other:?}"),
        }
    }

    fn bad<T: std::fmt::Debug>(p: Parse<T>) -> u16 {
        match p {
            Parse::Bad(s, _) => s,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn a_request_head_and_what_it_took() {
        let text = b"GET /x HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\n\r\nGET /y";
        let (r, n) = done(parse_request(text));
        assert_eq!(r, Request { method: Method::Get, minor: 1, keep_alive: true, body: 0 });
        assert_eq!(&text[n..], b"GET /y");
        // Bare LF line ends, empty lines first, HTTP/1.0 closes unless asked to keep alive.
        let (r, n) = done(parse_request(b"\r\n\nHEAD / HTTP/1.0\nConnection: keep-alive\n\n"));
        assert_eq!((r.method, r.minor, r.keep_alive, n), (Method::Head, 0, true, 43));
        let (r, _) = done(parse_request(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(!r.keep_alive);
        let (r, _) = done(parse_request(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n"));
        assert!(!r.keep_alive);
        let (r, _) = done(parse_request(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12, 12\r\n\r\n"));
        assert_eq!((r.method, r.body), (Method::Other, 12));
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\nHost: a\r\n"), Parse::Partial);
        assert_eq!(parse_request(b""), Parse::Partial);
    }

    #[test]
    fn hostile_requests_are_refused_with_a_status() {
        let cases: &[(&[u8], u16)] = &[
            (b"GET / HTTP/1.1\r\n\r\n", 400),                       // no Host
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400), // two
            (b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400),           // two spaces
            (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
            (b"GET / HTTQ/1.1\r\nHost: a\r\n\r\n", 400),
            (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (b"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400), // space before colon
            (b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nNo colon\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
            (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400),
            (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n", 400), // a TLS hello
        ];
        for (text, status) in cases {
            assert_eq!(bad(parse_request(text)), *status, "{:?}", String::from_utf8_lossy(text));
        }
        let many: Vec<u8> = [&b"GET / HTTP/1.1\r\nHost: a\r\n"[..], &b"X: y\r\n".repeat(MAX_HEADERS), b"\r\n"].concat();
        assert_eq!(bad(parse_request(&many)), 431);
        // A head that never ends is refused once it is too long, not buffered for ever.
        assert_eq!(bad(parse_request(&vec![b'a'; MAX_REQUEST_HEAD])), 431);
        assert_eq!(parse_request(&vec![b'a'; MAX_REQUEST_HEAD - 1]), Parse::Partial);
        // A first line that cannot be a request line is refused at once.
        assert_eq!(bad(parse_request(b"\x16\x03\x01")), 400);
        assert_eq!(bad(parse_request(b"GET / HTTP/1.1 extra\r\nHost: a")), 400);
        assert_eq!(bad(parse_request(b"GET / HTTP/9.9\r\n")), 505);
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\nHo"), Parse::Partial);
        assert_eq!(parse_request(b"GE"), Parse::Partial);
    }

    #[test]
    fn response_heads() {
        let (r, n) = done(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"));
        assert_eq!((r.status, r.length, r.chunked, r.close, n), (200, Some(5), false, false, 38));
        let (r, _) = done(parse_response(b"HTTP/1.0 404 Not Found\r\n\r\n"));
        assert_eq!((r.status, r.length, r.close), (404, None, true));
        let (r, _) =
            done(parse_response(b"HTTP/1.1 200\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 9\r\n\r\n"));
        assert_eq!((r.chunked, r.length), (true, None));
        let (r, _) = done(parse_response(b"HTTP/1.1 200 \r\nTransfer-Encoding: gzip\r\n\r\n"));
        assert!(r.other_coding && r.close);
        assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\n"), Parse::Partial);
        for text in [
            &b"SSH-2.0-OpenSSH\r\n"[..],
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 099 X\r\n\r\n",
            b"HTTP/3.0 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        ] {
            bad(parse_response(text));
        }
        assert!(!has_body(204) && !has_body(304) && !has_body(101) && has_body(200) && has_body(404));
    }

    #[test]
    fn chunked_bodies_in_any_pieces() {
        let body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: y\r\n\r\nNEXT";
        // Up to the end of the message: what follows (`NEXT`) is not the body's.
        for split in 0..=body.len() - 4 {
            let mut c = Chunked::default();
            let (a, da) = c.feed(&body[..split]).expect("valid");
            assert_eq!(a, split);
            let (b, db) = c.feed(&body[split..]).expect("valid");
            assert!(c.done());
            assert_eq!(da + db, 23, "split at {split}");
            assert_eq!(&body[split + b..], b"NEXT");
        }
        for bad in [&b"x\r\n"[..], b"\r\n", b"11111111111111111\r\n", b"2\r\nabc\r\n", b"2\r\nab\rx"] {
            assert!(Chunked::default().feed(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let mut c = Chunked::default();
        assert!(c.feed(&[&b"1;"[..], &vec![b'a'; 5000]].concat()).is_err());
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// Any bytes: a request, more wanted, or a status to refuse with; what a request took is
        /// within what was given.
        #[test]
        fn any_bytes_are_a_request_or_refused(buf in proptest::collection::vec(any::<u8>(), 0..600)) {
            match parse_request(&buf) {
                Parse::Done(_, n) => prop_assert!(n <= buf.len()),
                Parse::Partial => prop_assert!(buf.len() < MAX_REQUEST_HEAD),
                Parse::Bad(s, why) => prop_assert!([400, 431, 501, 505].contains(&s) && !why.is_empty()),
            }
            if let Parse::Done(_, n) = parse_response(&buf) {
                prop_assert!(n <= buf.len());
            }
            let mut c = Chunked::default();
            if let Ok((n, data)) = c.feed(&buf) {
                prop_assert!(n <= buf.len() && data <= n as u64);
            }
        }

        /// Requests built from pieces that look like HTTP, mutated: never a panic.
        #[test]
        fn near_http_requests(
            parts in proptest::collection::vec(prop_oneof![
                Just(b"GET ".to_vec()), Just(b"/ ".to_vec()), Just(b"HTTP/1.1".to_vec()), Just(b"\r\n".to_vec()),
                Just(b"\n".to_vec()), Just(b"Host: a".to_vec()), Just(b"Content-Length: 5".to_vec()),
                Just(b"Transfer-Encoding: chunked".to_vec()), Just(b": ".to_vec()), Just(b" ".to_vec()),
                proptest::collection::vec(any::<u8>(), 0..8),
            ], 0..24)
        ) {
            let buf = parts.concat();
            let _ = parse_request(&buf);
            let _ = parse_response(&buf);
        }
    }
}
