//! Hex dump lines, as under Wireshark's packet details: offset, 16 bytes in hex, the same bytes in
//! ASCII. Each line knows the columns of its bytes, so that a UI can highlight the bytes of a
//! field (a [`super::Field`]'s range) in both halves.

use std::fmt;
use std::ops::Range;

/// Bytes per line.
pub const BYTES_PER_LINE: usize = 16;

/// One line of a hex dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HexLine<'a> {
    /// Offset of the first byte in the frame.
    pub offset: usize,
    /// Up to [`BYTES_PER_LINE`] bytes.
    pub bytes: &'a [u8],
}

/// The lines of a frame.
pub fn hex_dump(frame: &[u8]) -> impl Iterator<Item = HexLine<'_>> {
    frame.chunks(BYTES_PER_LINE).enumerate().map(|(i, bytes)| HexLine { offset: i * BYTES_PER_LINE, bytes })
}

/// Width of the hex part: 16 bytes of two digits, a space between them and one more after the 8th.
pub const HEX_WIDTH: usize = BYTES_PER_LINE * 3;

impl HexLine<'_> {
    /// `0000`: the offset, in hex.
    #[must_use]
    pub fn offset_text(&self) -> String {
        format!("{:04x}", self.offset)
    }

    /// The bytes in hex, padded to [`HEX_WIDTH`] so that the ASCII column lines up on the last line.
    #[must_use]
    pub fn hex(&self) -> String {
        let mut s = String::with_capacity(HEX_WIDTH);
        for (i, b) in self.bytes.iter().enumerate() {
            s.push_str(&format!("{b:02x}"));
            if i + 1 < BYTES_PER_LINE {
                s.push(' ');
            }
            if i == 7 {
                s.push(' ');
            }
        }
        while s.len() < HEX_WIDTH {
            s.push(' ');
        }
        s
    }

    /// The bytes as ASCII, `.` for what does not print.
    #[must_use]
    pub fn ascii(&self) -> String {
        self.bytes.iter().map(|&b| if b.is_ascii_graphic() || b == b' ' { char::from(b) } else { '.' }).collect()
    }

    /// Columns of byte `i` of this line within [`HexLine::hex`].
    #[must_use]
    pub fn hex_columns(i: usize) -> Range<usize> {
        let start = i * 3 + usize::from(i >= 8);
        start..start + 2
    }

    /// Which of this line's bytes (indices into `bytes`, which are also columns of
    /// [`HexLine::ascii`]) lie in `range`, a range of the frame.
    #[must_use]
    pub fn overlap(&self, range: &Range<usize>) -> Option<Range<usize>> {
        let start = range.start.max(self.offset);
        let end = range.end.min(self.offset + self.bytes.len());
        (start < end).then(|| start - self.offset..end - self.offset)
    }

    /// Columns of the bytes of `range` within [`HexLine::hex`] (one span, with the spaces between).
    #[must_use]
    pub fn hex_span(&self, range: &Range<usize>) -> Option<Range<usize>> {
        let o = self.overlap(range)?;
        Some(Self::hex_columns(o.start).start..Self::hex_columns(o.end - 1).end)
    }
}

/// `0000  02 00 00 00 00 02 02 00  00 00 00 01 08 00 45 00  ..............E.`
impl fmt::Display for HexLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}  {}  {}", self.offset_text(), self.hex(), self.ascii())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::fixtures::UDP_DATAGRAM;

    #[test]
    fn lines_of_a_frame() {
        let lines: Vec<String> = hex_dump(&UDP_DATAGRAM).map(|l| l.to_string()).collect();
        assert_eq!(
            lines,
            [
                "0000  02 00 00 00 00 02 02 00  00 00 00 01 08 00 45 00  ..............E.",
                "0010  00 21 1c 46 40 00 40 11  0a 84 0a 00 00 01 0a 00  .!.F@.@.........",
                "0020  00 02 c0 00 00 09 00 0d  e7 f5 68 65 6c 6c 6f     ..........hello",
            ]
        );
        assert_eq!(hex_dump(&[]).count(), 0);
    }

    #[test]
    fn a_field_range_maps_to_bytes_and_columns() {
        let lines: Vec<HexLine<'_>> = hex_dump(&UDP_DATAGRAM).collect();
        // ip.src is bytes 26..30: the end of line 1 only.
        let src = 26..30;
        assert_eq!(lines[0].overlap(&src), None);
        assert_eq!(lines[1].overlap(&src), Some(10..14));
        let cols = lines[1].hex_span(&src).unwrap();
        assert_eq!(&lines[1].hex()[cols], "0a 00 00 01");
        // A range across the middle gap and onto the next line.
        assert_eq!(&lines[0].hex()[lines[0].hex_span(&(6..20)).unwrap()], "02 00  00 00 00 01 08 00 45 00");
        assert_eq!(lines[1].overlap(&(6..20)), Some(0..4));
        assert_eq!(lines[2].overlap(&(40..100)), Some(8..15));
    }
}
