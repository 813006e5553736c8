//! Lab-file diagnostics: a JSON path, a sentence and a hint, placed at `file:line:col`.
//!
//! Places come from a second, span-keeping parse of the same text (jsonc-parser's AST), so that any
//! check, however late, can point at the exact key or value it is about.
//!
//! Text taken from a lab file is shown through [`shown`]: control and other invisible characters
//! are escaped (`\u{1b}`, as a JSON path escapes them) so that a name cannot drive the terminal
//! that prints a diagnostic, and a long value is cut to its first [`SHOWN_CHARS`] characters.

use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};

use jsonc_parser::ast::{ObjectPropName, Value as Ast};
use jsonc_parser::common::Ranged;

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path from the document root, such as `nodes.laptop.interfaces.eth0.addresses[1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonPath(pub Vec<Seg>);

impl JsonPath {
    #[must_use]
    pub fn root() -> Self {
        JsonPath(Vec::new())
    }
    #[must_use]
    pub fn key(&self, k: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }
    #[must_use]
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }
    /// Appends a path reported by `serde_path_to_error`, relative to this one.
    #[must_use]
    pub fn join_serde(&self, rel: &serde_path_to_error::Path) -> Self {
        let mut p = self.clone();
        for s in rel.iter() {
            match s {
                serde_path_to_error::Segment::Seq { index } => p.0.push(Seg::Index(*index)),
                serde_path_to_error::Segment::Map { key } => p.0.push(Seg::Key(key.clone())),
                serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => {}
            }
        }
        p
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k)
                    if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
                {
                    if i > 0 {
                        f.write_char('.')?;
                    }
                    write!(f, "{}", shown(k))?;
                }
                Seg::Key(k) => write!(f, "[\"{}\"]", Shown { text: k, in_quotes: true })?,
            }
        }
        Ok(())
    }
}

/// Whether a problem is about a key (an unknown field) or the value under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Key,
    Value,
}

/// A problem found before it has a place in the text.
#[derive(Debug, Clone)]
pub struct Problem {
    pub path: JsonPath,
    pub target: Target,
    pub message: String,
    pub hint: Option<String>,
}

/// Whether a diagnostic stops the lab (an error) or only points at something that is likely a
/// mistake (a warning: the lab loads and runs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// A problem with its place: what `netlab check` prints, as `file:line:col: error: …` or
/// `file:line:col: warning: …`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub path: String,
    pub severity: Severity,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Diagnostic { file, line, col, path, severity, message, .. } = self;
        write!(f, "{file}:{line}:{col}: {severity}: {message}\n    at {path}")?;
        if let Some(h) = &self.hint {
            write!(f, "\n    hint: {h}")?;
        }
        Ok(())
    }
}

/// Every problem in one lab file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        let n = self.0.len();
        write!(f, "{n} problem{} found", if n == 1 { "" } else { "s" })
    }
}

/// Finds where a JSON path sits in the source text.
pub struct Locator<'a> {
    text: &'a str,
    tree: Option<Span>,
    line_starts: Vec<usize>,
}

/// Where a JSON value starts, with the places of what it contains.
struct Span {
    start: usize,
    kind: SpanKind,
}

enum SpanKind {
    /// Members in text order (name, where the name starts, value), and for an object of many
    /// members, where the last member of each name is: a lab's `nodes` may hold 100000.
    Object(Vec<(String, usize, Span)>, Option<HashMap<String, usize>>),
    Array(Vec<Span>),
    Scalar,
}

impl<'a> Locator<'a> {
    #[must_use]
    pub fn new(text: &'a str) -> Self {
        let parse = |t: &str, original: Option<&str>| {
            let ast = jsonc_parser::parse_to_ast(t, &Default::default(), &Default::default()).ok()?.value?;
            Some(span(&ast, original))
        };
        // jsonc-parser rejects `\ud83d\udcbb`-style escapes, which JSON allows; the same text with each
        // one replaced by `\ufffd` (the same length) has the same places, and names are read from `text`.
        let tree = parse(text, None).or_else(|| parse(&without_surrogates(text)?, Some(text)));
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Locator { text, tree, line_starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    #[must_use]
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let col = self.text.get(start..offset).map_or(offset - start, |s| s.chars().count()) + 1;
        (line, col)
    }

    /// The byte offset of the deepest node on `path` that exists; a key's name for [`Target::Key`].
    #[must_use]
    pub fn offset(&self, path: &JsonPath, target: Target) -> usize {
        let Some(mut node) = self.tree.as_ref() else { return 0 };
        let last = path.0.len().saturating_sub(1);
        for (i, seg) in path.0.iter().enumerate() {
            match (seg, &node.kind) {
                (Seg::Key(k), SpanKind::Object(members, index)) => {
                    // The last of equal keys is the one a JSON parser keeps.
                    let member = match index {
                        Some(index) => index.get(k).map(|&i| &members[i]),
                        None => members.iter().rev().find(|m| m.0 == *k),
                    };
                    let Some((_, name_start, value)) = member else {
                        return node.start;
                    };
                    if i == last && target == Target::Key {
                        return *name_start;
                    }
                    node = value;
                }
                (Seg::Index(n), SpanKind::Array(elements)) => {
                    let Some(el) = elements.get(*n) else { return node.start };
                    node = el;
                }
                _ => return node.start,
            }
        }
        node.start
    }

    #[must_use]
    pub fn place(&self, file: &str, p: Problem, severity: Severity) -> Diagnostic {
        let (line, col) = self.line_col(self.offset(&p.path, p.target));
        diagnostic(file, line, col, p, severity)
    }

    /// Every problem placed, in file order (problems at one place in the order given), without
    /// repeats. Columns are counted once along each line, however many problems it holds: a lab
    /// written on one line may have thousands.
    #[must_use]
    pub fn place_all(&self, file: &str, problems: Vec<Problem>, severity: Severity) -> Vec<Diagnostic> {
        let mut placed: Vec<(usize, Problem)> =
            problems.into_iter().map(|p| (self.offset(&p.path, p.target).min(self.text.len()), p)).collect();
        placed.sort_by_key(|(offset, _)| *offset);
        // Where the last place counted is, and its line and column.
        let (mut at, mut line, mut col) = (0, 1, 1);
        let mut out: Vec<Diagnostic> = Vec::with_capacity(placed.len());
        for (offset, p) in placed {
            let l = self.line_starts.partition_point(|&s| s <= offset).max(1);
            if l != line || offset < at {
                (at, line, col) = (self.line_starts[l - 1], l, 1);
            }
            col += self.text.get(at..offset).map_or(offset - at, |s| s.chars().count());
            at = offset;
            let d = diagnostic(file, line, col, p, severity);
            if out.last() != Some(&d) {
                out.push(d);
            }
        }
        out
    }

    /// Keys that appear twice in one object: JSON parsers keep only the last, silently.
    #[must_use]
    pub fn duplicate_keys(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if let Some(tree) = &self.tree {
            walk_duplicates(tree, &JsonPath::root(), &mut out);
        }
        out
    }
}

fn diagnostic(file: &str, line: usize, col: usize, p: Problem, severity: Severity) -> Diagnostic {
    Diagnostic {
        file: file.to_string(),
        line,
        col,
        path: p.path.to_string(),
        severity,
        message: printable(&p.message),
        hint: p.hint.as_deref().map(printable),
    }
}

/// Objects with more members than this get an index of their members by name.
const INDEXED_MEMBERS: usize = 16;

/// The places of `v`; with `original`, member names are decoded from that text at the same places.
fn span(v: &Ast<'_>, original: Option<&str>) -> Span {
    let kind = match v {
        Ast::Object(o) => {
            let members: Vec<(String, usize, Span)> = o
                .properties
                .iter()
                .map(|p| {
                    let r = p.name.range();
                    let name = original
                        .and_then(|t| t.get(r.start..r.end))
                        .and_then(|raw| serde_json::from_str::<String>(raw).ok())
                        .unwrap_or_else(|| prop_name(&p.name).to_string());
                    (name, r.start, span(&p.value, original))
                })
                .collect();
            let index = (members.len() > INDEXED_MEMBERS)
                .then(|| members.iter().enumerate().map(|(i, m)| (m.0.clone(), i)).collect());
            SpanKind::Object(members, index)
        }
        Ast::Array(a) => SpanKind::Array(a.elements.iter().map(|e| span(e, original)).collect()),
        _ => SpanKind::Scalar,
    };
    Span { start: v.range().start, kind }
}

/// `text` with every `\uD800`–`\uDFFF` escape replaced by `\uFFFD`, or `None` if it has none.
fn without_surrogates(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        if b.get(i + 1) == Some(&b'u') {
            let hex = b.get(i + 2..i + 6).and_then(|h| std::str::from_utf8(h).ok());
            if hex.and_then(|h| u16::from_str_radix(h, 16).ok()).is_some_and(|u| (0xD800..=0xDFFF).contains(&u)) {
                out.get_or_insert_with(|| b.to_vec())[i + 2..i + 6].copy_from_slice(b"FFFD");
            }
            i += 6;
        } else {
            // `\\`, `\"` and the like: skip the escaped character.
            i += 2;
        }
    }
    out.and_then(|v| String::from_utf8(v).ok())
}

fn prop_name<'b>(n: &'b ObjectPropName<'_>) -> &'b str {
    match n {
        ObjectPropName::String(s) => &s.value,
        ObjectPropName::Word(w) => w.value,
    }
}

fn walk_duplicates(v: &Span, path: &JsonPath, out: &mut Vec<Problem>) {
    match &v.kind {
        SpanKind::Object(members, _) => {
            let mut seen: HashSet<&str> = HashSet::with_capacity(members.len());
            for (name, _, value) in members {
                if !seen.insert(name) {
                    out.push(Problem {
                        path: path.key(name),
                        target: Target::Key,
                        message: format!("duplicate key `{}`", shown(name)),
                        hint: Some("a JSON object keeps only the last of two equal keys; rename or merge them".into()),
                    });
                }
                walk_duplicates(value, &path.key(name), out);
            }
        }
        SpanKind::Array(elements) => {
            for (i, e) in elements.iter().enumerate() {
                walk_duplicates(e, &path.index(i), out);
            }
        }
        SpanKind::Scalar => {}
    }
}

/// "did you mean `x`?" for the closest of `candidates`, if any is close enough.
#[must_use]
pub fn did_you_mean<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<String> {
    closest(word, candidates).map(|c| format!("did you mean `{}`?", shown(c)))
}

/// Candidates for "did you mean …?" among a list that may be long, such as every node of a lab.
///
/// A short list is searched whole, as [`closest`] does. Searching a long one whole for every
/// misspelt name would cost the product of the two counts, so a long list is indexed by each
/// candidate and each of its one-character deletions, and a word is compared only with the
/// candidates that share such a key with it: those one or two edits away (a letter left out,
/// added, changed, or two swapped). Past [`FULL_SEARCH`] candidates, then, a suggestion further
/// away than that is not made. The index is made when the first word is looked up: a lab without
/// mistakes needs none.
pub struct Suggestions<'c> {
    candidates: Vec<&'c str>,
    index: std::cell::OnceCell<HashMap<String, Vec<u32>>>,
}

/// Lists up to this long are searched whole.
pub const FULL_SEARCH: usize = 100;

/// At most this many candidates are compared with one word.
const MAX_COMPARED: usize = 1000;

impl<'c> Suggestions<'c> {
    pub fn new(candidates: impl IntoIterator<Item = &'c str>) -> Self {
        Suggestions { candidates: candidates.into_iter().collect(), index: std::cell::OnceCell::new() }
    }

    fn index(&self) -> &HashMap<String, Vec<u32>> {
        self.index.get_or_init(|| {
            let mut index: HashMap<String, Vec<u32>> = HashMap::new();
            for (i, c) in self.candidates.iter().enumerate() {
                if c.len() > MAX_SUGGESTED_LEN {
                    continue;
                }
                let id = u32::try_from(i).unwrap_or(u32::MAX);
                for key in deletions(c) {
                    let ids = index.entry(key).or_default();
                    if ids.last() != Some(&id) {
                        ids.push(id);
                    }
                }
            }
            index
        })
    }

    /// The candidates, in the order given.
    #[must_use]
    pub fn candidates(&self) -> &[&'c str] {
        &self.candidates
    }

    /// The candidate closest to `word`, if one is close enough to be a likely typo.
    #[must_use]
    pub fn closest(&self, word: &str) -> Option<&'c str> {
        if self.candidates.len() <= FULL_SEARCH {
            return closest(word, self.candidates.iter().copied());
        }
        if word.len() > MAX_SUGGESTED_LEN {
            return None;
        }
        let index = self.index();
        let mut ids: Vec<u32> = Vec::new();
        for key in deletions(word) {
            if let Some(found) = index.get(&key) {
                ids.extend(found.iter().take(MAX_COMPARED.saturating_sub(ids.len())));
            }
        }
        // In list order, as a whole search compares them.
        ids.sort_unstable();
        ids.dedup();
        closest(word, ids.into_iter().map(|i| self.candidates[i as usize]))
    }

    /// "did you mean `x`?" for the closest candidate, if any is close enough.
    #[must_use]
    pub fn did_you_mean(&self, word: &str) -> Option<String> {
        self.closest(word).map(|c| format!("did you mean `{}`?", shown(c)))
    }
}

/// `word` and each way of leaving one of its characters out.
fn deletions(word: &str) -> impl Iterator<Item = String> + '_ {
    std::iter::once(word.to_string()).chain(word.char_indices().map(|(i, c)| {
        let mut s = String::with_capacity(word.len());
        s.push_str(&word[..i]);
        s.push_str(&word[i + c.len_utf8()..]);
        s
    }))
}

/// The longest word (in bytes) for which a close candidate is looked for: names have at most 64
/// characters, and comparing long texts costs the product of their lengths.
const MAX_SUGGESTED_LEN: usize = 200;

/// How many characters of a value from the lab file a diagnostic shows.
pub const SHOWN_CHARS: usize = 60;

/// How many items a list in a hint names.
pub const LISTED_ITEMS: usize = 10;

/// A value from the lab file as a diagnostic shows it: see [`shown`].
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a> {
    text: &'a str,
    /// Inside double quotes (a JSON path's `["key"]`), where `"` is escaped too.
    in_quotes: bool,
}

/// `text` fit for a terminal: every control or invisible character escaped as Rust escapes it in
/// a string (`\u{1b}`, `\n`, `\u{202e}`; a backslash is `\\`), and a value longer than
/// [`SHOWN_CHARS`] characters cut there, followed by `…` and its whole length.
#[must_use]
pub fn shown(text: &str) -> Shown<'_> {
    Shown { text, in_quotes: false }
}

/// [`shown`] for a place inside double quotes, where `"` is escaped too (`\"`): a string in a
/// message as Rust's `{:?}` writes it, cut as [`shown`] cuts.
#[must_use]
pub fn shown_quoted(text: &str) -> Shown<'_> {
    Shown { text, in_quotes: true }
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, c) in self.text.chars().enumerate() {
            if n == SHOWN_CHARS {
                return write!(f, "… ({} characters)", self.text.chars().count());
            }
            match c {
                '\'' => f.write_char(c)?,
                '"' if !self.in_quotes => f.write_char(c)?,
                _ => write!(f, "{}", c.escape_debug())?,
            }
        }
        Ok(())
    }
}

/// At most this many characters of a message or hint are printed, whatever it holds.
const MAX_MESSAGE_CHARS: usize = 2000;

/// A message or hint with any control or invisible character left in it escaped (as [`shown`]
/// does; backslashes are left alone, since they may start an escape already made), and cut at
/// [`MAX_MESSAGE_CHARS`]. Every message passes here before it is printed.
#[must_use]
pub fn printable(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE_CHARS));
    for (n, c) in message.chars().enumerate() {
        if n == MAX_MESSAGE_CHARS {
            out.push('…');
            break;
        }
        if matches!(c, '\\' | '"' | '\'') || c.escape_debug().next() != Some('\\') {
            out.push(c);
        } else {
            let _ = write!(out, "{}", c.escape_debug());
        }
    }
    out
}

/// `a, b, c` for a hint, each item [`shown`], and at most [`LISTED_ITEMS`] of them: past that,
/// `…` and how many more there are.
#[must_use]
pub fn listing<'i, I>(items: I) -> String
where
    I: IntoIterator<Item = &'i str>,
    I::IntoIter: ExactSizeIterator,
{
    let items = items.into_iter();
    let more = items.len().saturating_sub(LISTED_ITEMS);
    let mut out = String::new();
    for (n, item) in items.take(LISTED_ITEMS).enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{}", shown(item));
    }
    if more > 0 {
        let _ = write!(out, ", … ({more} more)");
    }
    out
}

/// The candidate closest to `word`, if one is close enough to be a likely typo. A word of
/// more than [`MAX_SUGGESTED_LEN`] bytes is no typo of a name, and gets none.
pub fn closest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    if word.len() > MAX_SUGGESTED_LEN {
        return None;
    }
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "{\n  \"nodes\": {\n    \"a\": { \"kind\": \"host\" },\n    \"b\": [1, 2]\n  }\n}\n";

    #[test]
    fn locates_values_keys_and_indices() {
        let l = Locator::new(SRC);
        let p = JsonPath::root().key("nodes").key("a").key("kind");
        assert_eq!(l.line_col(l.offset(&p, Target::Value)), (3, 20));
        assert_eq!(l.line_col(l.offset(&p, Target::Key)), (3, 12));
        let p = JsonPath::root().key("nodes").key("b").index(1);
        assert_eq!(l.line_col(l.offset(&p, Target::Value)), (4, 14));
        // A missing key points at the deepest node that exists.
        let p = JsonPath::root().key("nodes").key("zz").key("kind");
        assert_eq!(l.line_col(l.offset(&p, Target::Value)), (2, 12));
    }

    #[test]
    fn path_display() {
        let p = JsonPath::root().key("nodes").key("my host").key("apps").index(2);
        assert_eq!(p.to_string(), "nodes[\"my host\"].apps[2]");
        assert_eq!(JsonPath::root().to_string(), "(top level)");
    }

    #[test]
    fn finds_duplicate_keys() {
        let l = Locator::new("{\"a\": 1, \"b\": {\"x\": 1, \"x\": 2}}");
        let d = l.duplicate_keys();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path.to_string(), "b.x");
    }

    #[test]
    fn locates_past_escaped_surrogate_pairs() {
        // JSON allows a character outside the BMP as an escaped surrogate pair.
        let src = "{\"nodes\": {\"\\ud83d\\udcbb\": {\"kind\": 1}, \"b\": {\"kind\": 2}}}";
        let l = Locator::new(src);
        let p = JsonPath::root().key("nodes").key("b").key("kind");
        assert_eq!(l.line_col(l.offset(&p, Target::Value)), (1, 55));
        let p = JsonPath::root().key("nodes").key("\u{1F4BB}").key("kind");
        assert_eq!(l.line_col(l.offset(&p, Target::Value)), (1, 37));
        assert_eq!(without_surrogates("\"\\\\ud83d\""), None);
        let l = Locator::new("{\"\\ud83d\\udcbb\": 1, \"\\ud83d\\udcbb\": 2}");
        assert_eq!(l.duplicate_keys()[0].path.to_string(), "[\"\u{1F4BB}\"]");
    }

    #[test]
    fn shown_values_are_escaped_and_cut() {
        assert_eq!(shown("\u{1b}]0;pwned\u{7}").to_string(), "\\u{1b}]0;pwned\\u{7}");
        assert_eq!(shown("wan\nfake: error").to_string(), "wan\\nfake: error");
        // Invisible characters too: a right-to-left override would reorder what follows it.
        assert_eq!(shown("a\u{202e}b\u{200b}").to_string(), "a\\u{202e}b\\u{200b}");
        assert_eq!(shown("it's \"x\" \\ 💻").to_string(), "it's \"x\" \\\\ 💻");
        assert_eq!(shown_quoted("\"x\"").to_string(), "\\\"x\\\"");
        let long = "é".repeat(SHOWN_CHARS + 1);
        assert_eq!(shown(&long).to_string(), format!("{}… (61 characters)", "é".repeat(SHOWN_CHARS)));
        assert_eq!(shown(&long[..SHOWN_CHARS * 2]).to_string(), "é".repeat(SHOWN_CHARS));
        // A JSON path shows its keys the same way.
        let p = JsonPath::root().key("nodes").key("\u{1b}[2J").key(&"a".repeat(100));
        assert_eq!(p.to_string(), format!("nodes[\"\\u{{1b}}[2J\"].{}… (100 characters)", "a".repeat(SHOWN_CHARS)));
    }

    #[test]
    fn printable_escapes_what_is_left_and_keeps_escapes_made() {
        assert_eq!(printable("a \u{1b}[2J b"), "a \\u{1b}[2J b");
        assert_eq!(printable("already \\u{1b} escaped, \"quoted\""), "already \\u{1b} escaped, \"quoted\"");
        assert_eq!(printable(&"x".repeat(3000)).chars().count(), MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn listings_are_cut() {
        assert_eq!(listing(["a", "b\u{7}"]), "a, b\\u{7}");
        let names: Vec<String> = (0..25).map(|i| format!("h{i}")).collect();
        assert_eq!(listing(names.iter().map(String::as_str)), "h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, … (15 more)");
    }

    #[test]
    fn suggestions_from_a_long_list_are_those_of_a_whole_search_one_or_two_edits_away() {
        let names: Vec<String> = (0..5000).map(|i| format!("host-{i}")).chain(["server".to_string()]).collect();
        let long = Suggestions::new(names.iter().map(String::as_str));
        for (word, meant) in [
            ("sever", "server"),
            ("servr", "server"),
            ("srever", "server"),
            ("servers", "server"),
            ("host-4999", "host-4999"),
        ] {
            assert_eq!(long.closest(word), Some(meant), "{word}");
            assert_eq!(closest(word, names.iter().map(String::as_str)), Some(meant), "{word}");
        }
        assert_eq!(long.closest("zzzzzz"), None);
        assert_eq!(long.closest(&"x".repeat(10_000)), None);
        let short = Suggestions::new(["eth0", "eth1"]);
        assert_eq!(short.did_you_mean("eht0").as_deref(), Some("did you mean `eth0`?"));
    }

    #[test]
    fn hints() {
        assert_eq!(did_you_mean("eht0", ["eth0", "eth1"]).as_deref(), Some("did you mean `eth0`?"));
        assert_eq!(did_you_mean("zzzz", ["eth0"]), None);
    }
}
