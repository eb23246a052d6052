//! Text safe to print to an operator's terminal: control characters (an
//! escape sequence in a value, a server message or a registry row could
//! move the cursor or recolour the screen) and bidi overrides (which could
//! reorder what is read) are escaped.

/// `text` with control and bidi characters escaped; line breaks and tabs
/// kept, for messages of several lines.
pub fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c => push(&mut out, c),
        }
    }
    out
}

/// [`visible`] on one line: line breaks and tabs escaped too, so that a
/// value cannot forge another line (a table row, a message).
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push(&mut out, c);
    }
    out
}

fn push(out: &mut String, c: char) {
    match c {
        c if c.is_control() && (c as u32) < 0x100 => {
            out.push_str(&format!("\\x{:02x}", c as u32));
        }
        '\u{061c}'
        | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}'
        | '\u{feff}' => {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped_and_lines_kept_or_not() {
        let s = "a\nb\x1b[31m\u{202e}c";
        assert_eq!(visible(s), "a\nb\\x1b[31m\\u{202e}c");
        assert_eq!(one_line(s), "a\\x0ab\\x1b[31m\\u{202e}c");
    }
}
