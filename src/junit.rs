//! The expectations of a run as JUnit XML (`netlab run --junit FILE`), for CI: one test suite,
//! named after the lab, with a test case per expectation and a `<failure>` for each that does
//! not hold, saying what was measured against what was expected.

use std::fmt::Write as _;

use crate::runtime::Report;

/// The report's expectations as a JUnit XML document.
#[must_use]
pub fn junit(r: &Report) -> String {
    let tests = r.expectations.len();
    let failures = r.expectations.iter().filter(|e| !e.ok).count();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"netlab\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{:.3}\">",
        r.wall_seconds
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{:.3}\">",
        escape(&r.lab),
        r.wall_seconds
    );
    let _ = writeln!(x, "    <properties>");
    for (name, value) in [
        ("seed", r.seed.to_string()),
        ("mode", r.mode.to_string()),
        ("sim_seconds", format!("{:.6}", r.sim_seconds)),
        ("description", r.description.clone()),
    ] {
        let _ = writeln!(x, "      <property name=\"{name}\" value=\"{}\"/>", escape(&value));
    }
    let _ = writeln!(x, "    </properties>");
    for e in &r.expectations {
        let name = escape(&format!("{}: {}", e.what, e.bound));
        let class = escape(&r.lab);
        if e.ok {
            let _ = writeln!(x, "    <testcase name=\"{name}\" classname=\"{class}\" time=\"0\"/>");
        } else {
            let message = format!("measured {}, expected {}", e.measured, e.bound);
            let _ = writeln!(x, "    <testcase name=\"{name}\" classname=\"{class}\" time=\"0\">");
            let _ = writeln!(
                x,
                "      <failure message=\"{}\" type=\"expectation\">{}</failure>",
                escape(&message),
                escape(&format!("{}\nmeasured: {}\nexpected: {}", e.what, e.measured, e.bound))
            );
            let _ = writeln!(x, "    </testcase>");
        }
    }
    let _ = writeln!(x, "  </testsuite>");
    x.push_str("</testsuites>\n");
    x
}

/// Text fit for XML character data and attribute values: markup characters as entities, line
/// breaks and tabs as character references (so that an attribute keeps them), and characters
/// that XML 1.0 does not allow at all (other control characters, U+FFFE, U+FFFF) written out as
/// `\u{…}`.
#[must_use]
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_and_control_characters_are_escaped() {
        assert_eq!(escape(r#"a<&">'b"#), "a&lt;&amp;&quot;&gt;&apos;b");
        assert_eq!(escape("x\ny\tz\u{1b}[31m"), "x&#10;y&#9;z\\u{1b}[31m");
        assert_eq!(escape("\u{0}\u{fffe}é"), "\\u{0}\\u{fffe}é");
    }
}
