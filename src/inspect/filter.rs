//! Display filters in Wireshark's language (a subset of it): `tcp.port == 80 && !arp`,
//! `ip.addr == 10.0.0.0/24`, plus netlab's `link` and `node`. The grammar and the fields are in
//! `docs/filters.md`.
//!
//! A filter is parsed once against the table of field names and kinds (`fields`), so that a
//! misspelt field or a value of the wrong kind is reported with its offset before any packet is
//! looked at, then evaluated on decoded frames.
//!
//! Filter text comes from a person and is untrusted: parsing never panics, nesting is bounded
//! (`MAX_DEPTH`), so neither parsing nor evaluation can exhaust the stack.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::decode::{Decoded, Value};
use super::fields::{self, Kind};

/// How deep parentheses and `!` may nest.
pub const MAX_DEPTH: usize = 64;

/// A frame as a filter sees it.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    pub frame: &'a [u8],
    pub decoded: &'a Decoded,
    /// The name of the link it was seen on.
    pub link: &'a str,
    /// The nodes at the two ends of that link.
    pub nodes: [&'a str; 2],
}

/// A parsed display filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    expr: Expr,
}

/// Why a filter did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// Byte offset in the filter text where it goes wrong.
    pub at: usize,
    /// What was expected: "unknown field `tcp.prot` — did you mean `tcp.port`?"
    pub message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at offset {})", self.message, self.at)
    }
}

impl std::error::Error for FilterError {}

impl Filter {
    /// Parses a filter; an empty (or blank) one matches everything.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        let toks = lex(text)?;
        let mut p = Parser { toks, pos: 0, depth: 0, text };
        if p.peek().tok == Tok::End {
            return Ok(Filter { expr: Expr::All });
        }
        let expr = p.or()?;
        let t = p.peek();
        match &t.tok {
            Tok::End => Ok(Filter { expr }),
            Tok::RParen => Err(p.error(t.at, "unexpected `)`: no `(` to close".to_owned())),
            other => {
                Err(p.error(t.at, format!("expected `&&`, `||` or the end of the filter, found {}", other.describe())))
            }
        }
    }

    /// Whether it matches everything.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.expr == Expr::All
    }

    #[must_use]
    pub fn matches(&self, pkt: &Packet<'_>) -> bool {
        self.expr.eval(pkt)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    All,
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Has(Target),
    Cmp(Target, Op, Lit),
}

/// What a test looks at.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    /// A layer, by its filter name.
    Protocol(&'static str),
    /// Fields by name; two names for `ip.addr` and the like, which match either end.
    Fields(&'static [&'static str]),
    FrameLen,
    Link,
    Node,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }

    fn holds(self, o: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            Op::Eq => o == Equal,
            Op::Ne => o != Equal,
            Op::Lt => o == Less,
            Op::Le => o != Greater,
            Op::Gt => o == Greater,
            Op::Ge => o != Less,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Lit {
    Int(u64),
    Bool(bool),
    Addr(IpAddr),
    /// An address prefix: `==` tests membership.
    Net(IpAddr, u8),
    Mac([u8; 6]),
    Text(String),
}

/// Names that match either end, and the kind of their values.
static ALIASES: &[(&str, &[&str], Kind)] = &[
    ("eth.addr", &["eth.src", "eth.dst"], Kind::Mac),
    ("ip.addr", &["ip.src", "ip.dst"], Kind::Ipv4),
    ("ipv6.addr", &["ipv6.src", "ipv6.dst"], Kind::Ipv6),
    ("tcp.port", &["tcp.srcport", "tcp.dstport"], Kind::Int),
    ("udp.port", &["udp.srcport", "udp.dstport"], Kind::Int),
];

/// netlab's own names, and `frame.len`.
static VIRTUAL: &[(&str, Kind)] = &[("frame.len", Kind::Int), ("link", Kind::Text), ("node", Kind::Text)];

/// Every name a filter may use, for suggestions.
fn all_names() -> impl Iterator<Item = &'static str> {
    fields::PROTOCOLS
        .iter()
        .chain(fields::FIELDS)
        .map(|f| f.name)
        .chain(ALIASES.iter().map(|a| a.0))
        .chain(VIRTUAL.iter().map(|v| v.0))
}

/// The known name closest to `name`, if it is close enough to be a slip: an edit (a transposition
/// counts as one) per three characters.
fn suggest(name: &str) -> Option<&'static str> {
    // Every known name is in lower case; `TCP` is as close to `tcp` as can be.
    let lower = name.to_lowercase();
    let (best, d) = all_names().map(|n| (n, strsim::damerau_levenshtein(&lower, n))).min_by_key(|&(_, d)| d)?;
    let len = lower.chars().count();
    (d <= (len / 3).max(1) && d < len).then_some(best)
}

// ---------------------------------------------------------------------------------------------
// Lexing

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A field name, a bare value or a word operator (`and`, `eq`).
    Word(String),
    /// A quoted string, unescaped.
    Str(String),
    Op(Op),
    And,
    Or,
    Not,
    LParen,
    RParen,
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("`{w}`"),
            Tok::Str(_) => "a string".to_owned(),
            Tok::Op(op) => format!("`{}`", op.as_str()),
            Tok::And => "`&&`".to_owned(),
            Tok::Or => "`||`".to_owned(),
            Tok::Not => "`!`".to_owned(),
            Tok::LParen => "`(`".to_owned(),
            Tok::RParen => "`)`".to_owned(),
            Tok::End => "the end of the filter".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    tok: Tok,
    /// Byte offsets of the token in the text.
    at: usize,
    end: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '-')
}

fn lex(text: &str) -> Result<Vec<Token>, FilterError> {
    let mut toks = Vec::new();
    let mut chars = text.char_indices().peekable();
    let err = |at: usize, message: String| FilterError { at, message };
    while let Some(&(at, c)) = chars.peek() {
        chars.next();
        let next = chars.peek().map(|&(_, c)| c);
        let two = |tok: Tok| Token { tok, at, end: at + 2 };
        let one = |tok: Tok| Token { tok, at, end: at + 1 };
        let token = match (c, next) {
            (c, _) if c.is_whitespace() => continue,
            ('(', _) => one(Tok::LParen),
            (')', _) => one(Tok::RParen),
            ('&', Some('&')) => {
                chars.next();
                two(Tok::And)
            }
            ('|', Some('|')) => {
                chars.next();
                two(Tok::Or)
            }
            ('&', _) => return Err(err(at, "`&` is not an operator: did you mean `&&`?".to_owned())),
            ('|', _) => return Err(err(at, "`|` is not an operator: did you mean `||`?".to_owned())),
            ('=', Some('=')) => {
                chars.next();
                two(Tok::Op(Op::Eq))
            }
            ('=', _) => return Err(err(at, "`=` is not an operator: did you mean `==`?".to_owned())),
            ('!', Some('=')) => {
                chars.next();
                two(Tok::Op(Op::Ne))
            }
            ('!', _) => one(Tok::Not),
            ('<', Some('=')) => {
                chars.next();
                two(Tok::Op(Op::Le))
            }
            ('<', _) => one(Tok::Op(Op::Lt)),
            ('>', Some('=')) => {
                chars.next();
                two(Tok::Op(Op::Ge))
            }
            ('>', _) => one(Tok::Op(Op::Gt)),
            ('"', _) => {
                let mut s = String::new();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '"' => {
                            end = Some(i + 1);
                            break;
                        }
                        '\\' => match chars.next() {
                            Some((_, e)) => s.push(e),
                            None => break,
                        },
                        c => s.push(c),
                    }
                }
                let Some(end) = end else { return Err(err(at, "unterminated string: a `\"` is missing".to_owned())) };
                Token { tok: Tok::Str(s), at, end }
            }
            (c, _) if is_word_char(c) => {
                let mut end = at + c.len_utf8();
                while let Some(&(i, c)) = chars.peek() {
                    if !is_word_char(c) {
                        break;
                    }
                    end = i + c.len_utf8();
                    chars.next();
                }
                Token { tok: Tok::Word(text[at..end].to_owned()), at, end }
            }
            (c, _) => return Err(err(at, format!("unexpected character `{c}`"))),
        };
        toks.push(token);
    }
    toks.push(Token { tok: Tok::End, at: text.len(), end: text.len() });
    Ok(toks)
}

// ---------------------------------------------------------------------------------------------
// Parsing

struct Parser<'t> {
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
    text: &'t str,
}

fn word_op(w: &str) -> Option<Op> {
    Some(match w {
        "eq" | "EQ" => Op::Eq,
        "ne" | "NE" => Op::Ne,
        "lt" | "LT" => Op::Lt,
        "le" | "LE" => Op::Le,
        "gt" | "GT" => Op::Gt,
        "ge" | "GE" => Op::Ge,
        _ => return None,
    })
}

fn is_word(t: &Tok, words: [&str; 2]) -> bool {
    matches!(t, Tok::Word(w) if words.contains(&w.as_str()))
}

impl Parser<'_> {
    fn peek(&self) -> Token {
        // The last token is End, and the parser never moves past it.
        self.toks[self.pos.min(self.toks.len() - 1)].clone()
    }

    fn bump(&mut self) -> Token {
        let t = self.peek();
        if t.tok != Tok::End {
            self.pos += 1;
        }
        t
    }

    fn error(&self, at: usize, message: String) -> FilterError {
        FilterError { at: at.min(self.text.len()), message }
    }

    fn deeper(&mut self, at: usize) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(at, format!("nested too deeply (more than {MAX_DEPTH} levels of `(` and `!`)")));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, FilterError> {
        let mut terms = vec![self.and()?];
        while matches!(self.peek().tok, Tok::Or) || is_word(&self.peek().tok, ["or", "OR"]) {
            let op = self.bump();
            self.expect_test_after(&op)?;
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 { terms.swap_remove(0) } else { Expr::Or(terms) })
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut terms = vec![self.unary()?];
        while matches!(self.peek().tok, Tok::And) || is_word(&self.peek().tok, ["and", "AND"]) {
            let op = self.bump();
            self.expect_test_after(&op)?;
            terms.push(self.unary()?);
        }
        Ok(if terms.len() == 1 { terms.swap_remove(0) } else { Expr::And(terms) })
    }

    /// After `&&`, `||` or `!`, something to test must follow.
    fn expect_test_after(&self, op: &Token) -> Result<(), FilterError> {
        let t = self.peek();
        match t.tok {
            Tok::End | Tok::RParen | Tok::And | Tok::Or | Tok::Op(_) => {
                let what = &self.text[op.at..op.end];
                Err(self
                    .error(t.at, format!("expected a field, `!` or `(` after `{what}`, found {}", t.tok.describe())))
            }
            _ => Ok(()),
        }
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        let t = self.peek();
        if t.tok == Tok::Not || is_word(&t.tok, ["not", "NOT"]) {
            self.bump();
            self.deeper(t.at)?;
            self.expect_test_after(&t)?;
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, FilterError> {
        let t = self.bump();
        match t.tok {
            Tok::LParen => {
                self.deeper(t.at)?;
                self.expect_test_after(&t)?;
                let e = self.or()?;
                let close = self.peek();
                if close.tok != Tok::RParen {
                    return Err(self.error(
                        close.at,
                        format!("expected `)` to close the `(` at offset {}, found {}", t.at, close.tok.describe()),
                    ));
                }
                self.bump();
                self.depth -= 1;
                Ok(e)
            }
            Tok::Word(ref w) => self.test(w, &t),
            ref other => Err(self.error(t.at, format!("expected a field, `!` or `(`, found {}", other.describe()))),
        }
    }

    /// `field` or `field OP value`.
    fn test(&mut self, name: &str, tok: &Token) -> Result<Expr, FilterError> {
        let (target, kind) = self.target(name, tok)?;
        let next = self.peek();
        let op = match &next.tok {
            Tok::Op(op) => Some(*op),
            Tok::Word(w) => word_op(w),
            _ => None,
        };
        let Some(op) = op else {
            if matches!(target, Target::Link | Target::Node) {
                return Err(self.error(tok.at, format!("`{name}` needs a value: `{name} == NAME`")));
            }
            return Ok(Expr::Has(target));
        };
        self.bump();
        if kind == Kind::Protocol {
            return Err(self.error(
                next.at,
                format!("`{name}` is a protocol: it can only be tested for presence, as `{name}` or `!{name}`"),
            ));
        }
        let value = self.bump();
        let (text, quoted) = match &value.tok {
            Tok::Word(w) => (w.clone(), false),
            Tok::Str(s) => (s.clone(), true),
            other => {
                let op_text = &self.text[next.at..next.end];
                return Err(
                    self.error(value.at, format!("expected a value after `{op_text}`, found {}", other.describe()))
                );
            }
        };
        let lit = literal(name, kind, &text, quoted).map_err(|m| self.error(value.at, m))?;
        if !matches!(op, Op::Eq | Op::Ne) {
            let why = match (&lit, kind) {
                (_, Kind::Bool) => Some("a flag has no order; compare it with `==` or `!=`"),
                (Lit::Net(..), _) => Some("a prefix has no order; use `==` to test membership"),
                _ => None,
            };
            if let Some(why) = why {
                return Err(self.error(next.at, format!("`{}` does not apply to `{name}`: {why}", op.as_str())));
            }
        }
        Ok(Expr::Cmp(target, op, lit))
    }

    fn target(&self, name: &str, tok: &Token) -> Result<(Target, Kind), FilterError> {
        if let Some(&(_, names, kind)) = ALIASES.iter().find(|a| a.0 == name) {
            return Ok((Target::Fields(names), kind));
        }
        match name {
            "frame.len" => return Ok((Target::FrameLen, Kind::Int)),
            "link" => return Ok((Target::Link, Kind::Text)),
            "node" => return Ok((Target::Node, Kind::Text)),
            _ => {}
        }
        if let Some(info) = fields::lookup(name) {
            let target = if info.kind == Kind::Protocol {
                Target::Protocol(info.name)
            } else {
                Target::Fields(std::slice::from_ref(&info.name))
            };
            return Ok((target, info.kind));
        }
        // A value where a field should be: say which field it might be compared with.
        let hint = if name.parse::<Ipv4Addr>().is_ok() || parse_net::<Ipv4Addr>(name, 32).is_some() {
            Some("ip.addr")
        } else if name.parse::<Ipv6Addr>().is_ok() || parse_net::<Ipv6Addr>(name, 128).is_some() {
            Some("ipv6.addr")
        } else if parse_mac(name).is_some() {
            Some("eth.addr")
        } else {
            None
        };
        let message = if let Some(field) = hint {
            format!("expected a field, found the value `{name}` — did you mean `{field} == {name}`?")
        } else if name.starts_with(|c: char| c.is_ascii_digit()) {
            format!("expected a field, found the value `{name}`")
        } else if let Some(s) = suggest(name) {
            format!("unknown field `{name}` — did you mean `{s}`?")
        } else {
            format!("unknown field `{name}`")
        };
        Err(self.error(tok.at, message))
    }
}

fn parse_int(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None if s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        None => None,
    }
}

/// `addr/len` with `len` at most `max`.
fn parse_net<A: std::str::FromStr + Into<IpAddr>>(s: &str, max: u8) -> Option<(IpAddr, u8)> {
    let (addr, len) = s.split_once('/')?;
    let len: u8 = len.parse().ok().filter(|&l| l <= max)?;
    Some((addr.parse::<A>().ok()?.into(), len))
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let sep = if s.contains(':') { ':' } else { '-' };
    let mut mac = [0; 6];
    let mut parts = s.split(sep);
    for byte in &mut mac {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// The value `text` for a field of `kind`.
fn literal(name: &str, kind: Kind, text: &str, quoted: bool) -> Result<Lit, String> {
    let found = if quoted { format!("\"{text}\"") } else { format!("`{text}`") };
    match kind {
        Kind::Text => Ok(Lit::Text(text.to_owned())),
        Kind::Int => {
            if let Some(n) = parse_int(text) {
                return Ok(Lit::Int(n));
            }
            let numeric = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
                Some(hex) => !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()),
                None => !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()),
            };
            if numeric {
                Err(format!("{found} is too large for `{name}`"))
            } else {
                Err(format!("expected a number (decimal, or hex as 0x1f) for `{name}`, found {found}"))
            }
        }
        Kind::Bool => match text.to_ascii_lowercase().as_str() {
            "1" | "true" => Ok(Lit::Bool(true)),
            "0" | "false" => Ok(Lit::Bool(false)),
            _ => Err(format!("expected 1, 0, true or false for `{name}`, found {found}")),
        },
        Kind::Ipv4 => {
            if let Ok(a) = text.parse::<Ipv4Addr>() {
                return Ok(Lit::Addr(a.into()));
            }
            if let Some((a, len)) = parse_net::<Ipv4Addr>(text, 32) {
                return Ok(Lit::Net(a, len));
            }
            let hint = if text.split('/').next().is_some_and(|a| a.parse::<Ipv6Addr>().is_ok()) {
                " (an IPv6 address: use the ipv6 fields, such as `ipv6.addr`)"
            } else if text.contains('/') {
                " (a prefix length is at most 32)"
            } else {
                ""
            };
            Err(format!("expected an IPv4 address or prefix for `{name}`, found {found}{hint}"))
        }
        Kind::Ipv6 => {
            if let Ok(a) = text.parse::<Ipv6Addr>() {
                return Ok(Lit::Addr(a.into()));
            }
            if let Some((a, len)) = parse_net::<Ipv6Addr>(text, 128) {
                return Ok(Lit::Net(a, len));
            }
            let hint = if text.split('/').next().is_some_and(|a| a.parse::<Ipv4Addr>().is_ok()) {
                " (an IPv4 address: use the ip fields, such as `ip.addr`)"
            } else if text.contains('/') {
                " (a prefix length is at most 128)"
            } else {
                ""
            };
            Err(format!("expected an IPv6 address or prefix for `{name}`, found {found}{hint}"))
        }
        Kind::Mac => parse_mac(text)
            .map(Lit::Mac)
            .ok_or_else(|| format!("expected a MAC address (02:00:00:00:00:01) for `{name}`, found {found}")),
        Kind::Protocol => Err(format!("`{name}` is a protocol: it has no value")),
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

impl Expr {
    fn eval(&self, pkt: &Packet<'_>) -> bool {
        match self {
            Expr::All => true,
            Expr::Or(terms) => terms.iter().any(|e| e.eval(pkt)),
            Expr::And(terms) => terms.iter().all(|e| e.eval(pkt)),
            Expr::Not(e) => !e.eval(pkt),
            Expr::Has(t) => match t {
                Target::Protocol(p) => pkt.decoded.layers.iter().any(|l| l.abbrev == *p),
                Target::Fields(names) => fields_of(pkt.decoded, names).next().is_some(),
                Target::FrameLen | Target::Link | Target::Node => true,
            },
            Expr::Cmp(t, op, lit) => match t {
                Target::Protocol(_) => false,
                Target::Fields(names) => check(fields_of(pkt.decoded, names).map(Cmp::Value), *op, lit),
                Target::FrameLen => check(std::iter::once(Cmp::Int(pkt.frame.len() as u64)), *op, lit),
                Target::Link => check(std::iter::once(Cmp::Str(pkt.link)), *op, lit),
                Target::Node => check(pkt.nodes.iter().map(|n| Cmp::Str(n)), *op, lit),
            },
        }
    }
}

/// `!=` holds when the field is there and no occurrence equals the value (`tcp.port != 80`: TCP,
/// and neither port is 80), as in Wireshark; the other operators when some occurrence compares so
/// (`ip.addr == 10.0.0.1`: either address).
fn check<'v>(mut values: impl Iterator<Item = Cmp<'v>>, op: Op, lit: &Lit) -> bool {
    if op == Op::Ne {
        let mut seen = false;
        let none_equal = values.inspect(|_| seen = true).all(|v| !v.compare(Op::Eq, lit));
        seen && none_equal
    } else {
        values.any(|v| v.compare(op, lit))
    }
}

fn fields_of<'d>(d: &'d Decoded, names: &'static [&'static str]) -> impl Iterator<Item = &'d Value> + 'd {
    d.layers.iter().flat_map(|l| l.fields.iter()).filter(move |f| names.contains(&f.name)).map(|f| &f.value)
}

/// A value to compare, without copying it.
#[derive(Clone, Copy)]
enum Cmp<'v> {
    Value(&'v Value),
    Int(u64),
    Str(&'v str),
}

impl Cmp<'_> {
    fn compare(self, op: Op, lit: &Lit) -> bool {
        let order = match (self, lit) {
            (Cmp::Value(Value::Int(v)), Lit::Int(l)) => v.cmp(l),
            (Cmp::Int(v), Lit::Int(l)) => v.cmp(l),
            (Cmp::Value(Value::Bool(v)), Lit::Bool(l)) => v.cmp(l),
            (Cmp::Value(Value::Addr(v)), Lit::Addr(l)) if v.is_ipv4() == l.is_ipv4() => v.cmp(l),
            (Cmp::Value(Value::Addr(v)), Lit::Net(net, len)) => {
                let inside = in_prefix(*v, *net, *len);
                return match op {
                    Op::Eq => inside,
                    Op::Ne => !inside,
                    _ => false,
                };
            }
            (Cmp::Value(Value::Mac(v)), Lit::Mac(l)) => v.cmp(l),
            (Cmp::Value(Value::Text(v)), Lit::Text(l)) => v.as_str().cmp(l.as_str()),
            (Cmp::Str(v), Lit::Text(l)) => v.cmp(l.as_str()),
            _ => return false,
        };
        op.holds(order)
    }
}

fn in_prefix(a: IpAddr, net: IpAddr, len: u8) -> bool {
    match (a, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::inspect::decode::decode;
    use crate::inspect::fixtures::*;

    const NAMES: [&str; 5] = ["arp", "icmp", "tcp", "udp", "ns"];

    /// Which fixtures (by short name) a filter selects, each seen on link "wan" between
    /// "laptop" and "fileserver".
    fn selects(text: &str) -> Vec<&'static str> {
        let f = Filter::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        ALL.iter()
            .zip(NAMES)
            .filter(|(frame, _)| {
                let d = decode(frame);
                f.matches(&Packet { frame, decoded: &d, link: "wan", nodes: ["laptop", "fileserver"] })
            })
            .map(|(_, n)| n)
            .collect()
    }

    fn error(text: &str) -> (usize, String) {
        let e = Filter::parse(text).expect_err(text);
        (e.at, e.message)
    }

    #[test]
    fn empty_filters_match_everything() {
        assert_eq!(selects(""), NAMES);
        assert_eq!(selects("  \t"), NAMES);
        assert!(Filter::parse(" ").unwrap().is_empty());
        assert!(!Filter::parse("tcp").unwrap().is_empty());
    }

    #[test]
    fn protocols_are_tested_for_presence() {
        assert_eq!(selects("tcp"), ["tcp"]);
        assert_eq!(selects("arp"), ["arp"]);
        assert_eq!(selects("icmp"), ["icmp"]);
        assert_eq!(selects("icmpv6"), ["ns"]);
        assert_eq!(selects("udp"), ["udp"]);
        assert_eq!(selects("ip"), ["icmp", "tcp", "udp"]);
        assert_eq!(selects("ipv6"), ["ns"]);
        assert_eq!(selects("eth"), NAMES);
        assert_eq!(selects("data"), ["icmp", "udp"]);
        assert_eq!(selects("_ws.malformed"), Vec::<&str>::new());
        // A flag field is present in every TCP segment, set or not, as in Wireshark.
        assert_eq!(selects("tcp.flags.syn"), ["tcp"]);
        assert_eq!(selects("tcp.options.mss_val"), ["tcp"]);
    }

    #[test]
    fn comparisons() {
        assert_eq!(selects("tcp.flags.syn == 1"), ["tcp"]);
        assert_eq!(selects("tcp.flags.syn == true"), ["tcp"]);
        assert_eq!(selects("tcp.flags.ack == 0"), ["tcp"]);
        assert_eq!(selects("tcp.flags.ack"), ["tcp"]);
        assert_eq!(selects("tcp.flags.reset == 1 || tcp.flags.fin == 1"), Vec::<&str>::new());
        assert_eq!(selects("tcp.srcport == 49152 && tcp.dstport == 9"), ["tcp"]);
        assert_eq!(selects("tcp.seq == 1000 and tcp.ack == 0 and tcp.len == 0"), ["tcp"]);
        assert_eq!(selects("tcp.window_size >= 0xfaf0"), ["tcp"]);
        assert_eq!(selects("tcp.window_size > 0xfaf0"), Vec::<&str>::new());
        assert_eq!(selects("udp.port == 9 && udp.length gt 10"), ["udp"]);
        assert_eq!(selects("udp.srcport == 9"), Vec::<&str>::new());
        assert_eq!(selects("ip.ttl == 64"), ["icmp", "tcp", "udp"]);
        assert_eq!(selects("ip.proto == 17"), ["udp"]);
        assert_eq!(selects("icmp.type eq 8 && icmp.code == 0"), ["icmp"]);
        assert_eq!(selects("icmpv6.type == 135"), ["ns"]);
        assert_eq!(selects("eth.type == 0x0806"), ["arp"]);
        assert_eq!(selects("arp.opcode == 1 && arp.dst.proto_ipv4 == 10.0.0.2"), ["arp"]);
        assert_eq!(selects("arp.src.proto_ipv4 == 10.0.0.1"), ["arp"]);
        assert_eq!(selects("frame.len > 60"), ["tcp", "ns"]);
        assert_eq!(selects("frame.len <= 47"), ["arp", "udp"]);
        assert_eq!(selects("frame.len lt 47"), ["arp"]);
        assert_eq!(selects("frame.len ge 86"), ["ns"]);
        assert_eq!(selects("frame.len ne 86 && frame.len le 50 && frame.len != 42"), ["icmp", "udp"]);
    }

    #[test]
    fn addresses_and_prefixes_match_either_end() {
        assert_eq!(selects("ip.addr == 10.0.0.1"), ["icmp", "tcp", "udp"]);
        assert_eq!(selects("ip.addr == 10.0.0.0/24"), ["icmp", "tcp", "udp"]);
        assert_eq!(selects("ip.addr == 10.0.1.0/24"), Vec::<&str>::new());
        assert_eq!(selects("ip.src == 10.0.0.2"), Vec::<&str>::new());
        assert_eq!(selects("ip.dst == 10.0.0.2"), ["icmp", "tcp", "udp"]);
        assert_eq!(selects("ip.dst >= 10.0.0.2 && ip.src < 10.0.0.2"), ["icmp", "tcp", "udp"]);
        assert_eq!(selects("ipv6.addr == fe80::/10"), ["ns"]);
        assert_eq!(selects("ipv6.dst == ff02::1:ff00:2"), ["ns"]);
        assert_eq!(selects("ipv6.src == fe80::2"), Vec::<&str>::new());
        assert_eq!(selects("icmpv6.nd.ns.target_address == fe80::2"), ["ns"]);
        assert_eq!(selects("eth.addr == ff:ff:ff:ff:ff:ff"), ["arp"]);
        assert_eq!(selects("eth.src == 02-00-00-00-00-01"), NAMES);
        assert_eq!(
            selects("eth.dst == 33:33:ff:00:00:02 || eth.dst == 02:00:00:00:00:02"),
            ["icmp", "tcp", "udp", "ns"]
        );
    }

    #[test]
    fn not_equal_needs_the_field_and_no_occurrence_equal() {
        assert_eq!(selects("tcp.port != 22"), ["tcp"]);
        assert_eq!(selects("tcp.port != 9"), Vec::<&str>::new());
        assert_eq!(selects("ip.addr != 10.0.0.2"), Vec::<&str>::new());
        assert_eq!(selects("ip.addr != 10.0.1.0/24"), ["icmp", "tcp", "udp"]);
        assert_eq!(selects("!(tcp.port == 22)"), NAMES);
    }

    #[test]
    fn links_and_nodes() {
        assert_eq!(selects("link == \"wan\""), NAMES);
        assert_eq!(selects("link == wan"), NAMES);
        assert_eq!(selects("link == lan"), Vec::<&str>::new());
        assert_eq!(selects("link != wan"), Vec::<&str>::new());
        assert_eq!(selects("node == laptop"), NAMES);
        assert_eq!(selects("node == \"fileserver\" && tcp"), ["tcp"]);
        assert_eq!(selects("node != laptop"), Vec::<&str>::new());
        assert_eq!(selects("node != pc"), NAMES);
        assert_eq!(selects("node == \"lap\\\"top\""), Vec::<&str>::new());
    }

    #[test]
    fn logic_and_precedence() {
        assert_eq!(selects("!arp && (icmp || udp)"), ["icmp", "udp"]);
        assert_eq!(selects("not tcp and not udp"), ["arp", "icmp", "ns"]);
        assert_eq!(selects("tcp or udp"), ["tcp", "udp"]);
        assert_eq!(error("TCP"), (0, "unknown field `TCP` — did you mean `tcp`?".into()));
        // && binds tighter than ||.
        assert_eq!(selects("arp || tcp && udp"), ["arp"]);
        assert_eq!(selects("(arp || tcp) && udp"), Vec::<&str>::new());
        assert_eq!(selects("!!tcp"), ["tcp"]);
        assert_eq!(selects("((((tcp))))"), ["tcp"]);
        assert_eq!(selects("ip&&tcp.port==9&&!udp"), ["tcp"]);
    }

    #[test]
    fn errors_say_where_and_what() {
        assert_eq!(error("tcp.prot == 80"), (0, "unknown field `tcp.prot` — did you mean `tcp.port`?".into()));
        assert_eq!(error("tcp && ip.sorc == 10.0.0.1"), (7, "unknown field `ip.sorc` — did you mean `ip.src`?".into()));
        assert_eq!(error("frobnicate"), (0, "unknown field `frobnicate`".into()));
        assert_eq!(error("tpc").1, "unknown field `tpc` — did you mean `tcp`?");
        assert_eq!(error("ip.source").1, "unknown field `ip.source` — did you mean `ip.src`?");
        assert_eq!(error("xy").1, "unknown field `xy`");
        assert_eq!(error("ip.addr == "), (11, "expected a value after `==`, found the end of the filter".into()));
        assert_eq!(error("ip.addr = 10.0.0.1"), (8, "`=` is not an operator: did you mean `==`?".into()));
        assert_eq!(error("tcp & udp"), (4, "`&` is not an operator: did you mean `&&`?".into()));
        assert_eq!(error("(tcp"), (4, "expected `)` to close the `(` at offset 0, found the end of the filter".into()));
        assert_eq!(error("tcp)"), (3, "unexpected `)`: no `(` to close".into()));
        assert_eq!(error("tcp udp"), (4, "expected `&&`, `||` or the end of the filter, found `udp`".into()));
        assert_eq!(error("tcp &&"), (6, "expected a field, `!` or `(` after `&&`, found the end of the filter".into()));
        assert_eq!(error("tcp or || udp"), (7, "expected a field, `!` or `(` after `or`, found `||`".into()));
        assert_eq!(error("()"), (1, "expected a field, `!` or `(` after `(`, found `)`".into()));
        assert_eq!(error("== 3"), (0, "expected a field, `!` or `(`, found `==`".into()));
        assert_eq!(
            error("tcp.port == abc"),
            (12, "expected a number (decimal, or hex as 0x1f) for `tcp.port`, found `abc`".into())
        );
        assert_eq!(
            error("tcp.port == 99999999999999999999"),
            (12, "`99999999999999999999` is too large for `tcp.port`".into())
        );
        assert_eq!(
            error("ip.addr == fe80::1"),
            (11, "expected an IPv4 address or prefix for `ip.addr`, found `fe80::1` (an IPv6 address: use the ipv6 fields, such as `ipv6.addr`)".into())
        );
        assert_eq!(
            error("ip.addr == 10.0.0.0/33"),
            (
                11,
                "expected an IPv4 address or prefix for `ip.addr`, found `10.0.0.0/33` (a prefix length is at most 32)"
                    .into()
            )
        );
        assert_eq!(error("ipv6.addr == 10.0.0.1").1, "expected an IPv6 address or prefix for `ipv6.addr`, found `10.0.0.1` (an IPv4 address: use the ip fields, such as `ip.addr`)");
        assert_eq!(
            error("eth.src == 02:00"),
            (11, "expected a MAC address (02:00:00:00:00:01) for `eth.src`, found `02:00`".into())
        );
        assert_eq!(
            error("tcp.flags.syn == 2"),
            (17, "expected 1, 0, true or false for `tcp.flags.syn`, found `2`".into())
        );
        assert_eq!(
            error("tcp.flags.syn < 1"),
            (14, "`<` does not apply to `tcp.flags.syn`: a flag has no order; compare it with `==` or `!=`".into())
        );
        assert_eq!(
            error("ip.addr > 10.0.0.0/8"),
            (8, "`>` does not apply to `ip.addr`: a prefix has no order; use `==` to test membership".into())
        );
        assert_eq!(
            error("tcp == 1"),
            (4, "`tcp` is a protocol: it can only be tested for presence, as `tcp` or `!tcp`".into())
        );
        assert_eq!(error("link"), (0, "`link` needs a value: `link == NAME`".into()));
        assert_eq!(error("node == \"laptop"), (8, "unterminated string: a `\"` is missing".into()));
        assert_eq!(
            error("10.0.0.1"),
            (0, "expected a field, found the value `10.0.0.1` — did you mean `ip.addr == 10.0.0.1`?".into())
        );
        assert_eq!(
            error("tcp && fe80::1").1,
            "expected a field, found the value `fe80::1` — did you mean `ipv6.addr == fe80::1`?"
        );
        assert_eq!(error("80").1, "expected a field, found the value `80`");
        assert_eq!(error("tcp # x"), (4, "unexpected character `#`".into()));
        assert_eq!(error("tcp ∧ udp"), (4, "unexpected character `∧`".into()));
        let deep = format!("{}tcp{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
        assert_eq!(
            error(&deep),
            (MAX_DEPTH, format!("nested too deeply (more than {MAX_DEPTH} levels of `(` and `!`)"))
        );
        assert_eq!(error(&format!("{}tcp", "!".repeat(100_000))).0, MAX_DEPTH);
        let ok = format!("{}tcp{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(Filter::parse(&ok).is_ok());
        // Long flat chains are not nesting.
        let long = vec!["tcp"; 10_000].join(" && ");
        assert_eq!(selects(&long), ["tcp"]);
        let e = Filter::parse("tcp.prot").unwrap_err();
        assert_eq!(e.to_string(), "unknown field `tcp.prot` — did you mean `tcp.port`? (at offset 0)");
    }

    #[test]
    fn the_fields_a_ui_relies_on_parse() {
        let names = "eth.src eth.dst eth.addr eth.type arp.opcode arp.src.proto_ipv4 arp.dst.proto_ipv4 ip.src \
                     ip.dst ip.addr ip.ttl ip.proto ipv6.src ipv6.dst ipv6.addr icmp.type icmp.code icmpv6.type \
                     tcp.srcport tcp.dstport tcp.port tcp.flags.syn tcp.flags.ack tcp.flags.fin tcp.flags.reset \
                     tcp.seq tcp.ack tcp.window_size tcp.len udp.srcport udp.dstport udp.port frame.len";
        for name in names.split_whitespace() {
            Filter::parse(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        for proto in ["tcp", "arp", "icmp", "icmpv6", "udp", "ip", "ipv6"] {
            Filter::parse(&format!("!{proto}")).unwrap_or_else(|e| panic!("{proto}: {e}"));
        }
        Filter::parse("link == \"wan\" && node == laptop && node == \"fileserver\"").unwrap();
    }

    #[test]
    fn quoted_values_are_read_as_the_field_s_kind() {
        assert_eq!(selects("ip.src == \"10.0.0.1\" && tcp.port == \"0x9\""), ["tcp"]);
        assert_eq!(error("ip.src == \"x\"").1, "expected an IPv4 address or prefix for `ip.src`, found \"x\"");
    }

    #[test]
    fn the_documentation_names_every_field() {
        let doc = include_str!("../../docs/filters.md");
        for name in all_names() {
            assert!(doc.contains(&format!("| `{name}` |")), "docs/filters.md does not list `{name}`");
        }
    }

    fn token() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "tcp",
            "udp",
            "ip.addr",
            "tcp.port",
            "eth.src",
            "link",
            "node",
            "frame.len",
            "tcp.flags.syn",
            "ipv6.addr",
            "==",
            "!=",
            "<",
            ">=",
            "eq",
            "&&",
            "||",
            "and",
            "or",
            "!",
            "not",
            "(",
            ")",
            "10.0.0.1",
            "10.0.0.0/8",
            "fe80::1",
            "02:00:00:00:00:01",
            "0x10",
            "80",
            "1",
            "\"wan\"",
            "laptop",
            "\"",
            "=",
            "&",
            " ",
        ])
    }

    proptest! {
        #[test]
        fn any_text_parses_or_fails_without_panic(text in ".{0,64}") {
            match Filter::parse(&text) {
                Ok(f) => {
                    for frame in ALL {
                        let d = decode(frame);
                        let _ = f.matches(&Packet { frame, decoded: &d, link: "wan", nodes: ["a", "b"] });
                    }
                }
                Err(e) => {
                    prop_assert!(e.at <= text.len() && text.is_char_boundary(e.at), "{e:?}");
                    prop_assert!(!e.message.is_empty());
                }
            }
        }

        #[test]
        fn token_soup_parses_or_fails_without_panic(toks in prop::collection::vec(token(), 0..24)) {
            let text = toks.join(" ");
            match Filter::parse(&text) {
                Ok(f) => {
                    for frame in ALL {
                        let d = decode(frame);
                        let _ = f.matches(&Packet { frame, decoded: &d, link: "wan", nodes: ["laptop", "b"] });
                    }
                }
                Err(e) => prop_assert!(e.at <= text.len() && text.is_char_boundary(e.at), "{e:?}"),
            }
        }
    }
}
