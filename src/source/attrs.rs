//! Block attribute lists in both syntaxes, turned into [`Attr`]s.
//!
//! asciidork has no iterator over an attribute list's named entries, and
//! pulldown-cmark hands over a fence's info string whole, so both are parsed
//! here from their raw text, keeping a span for every attribute.

use crate::diag::{Diagnostic, FileId, Span};
use crate::document::Attr;

/// A parsed attribute list: the block's language (if the list names one) and
/// its attributes in the format's vocabulary.
#[derive(Debug, Default, PartialEq)]
pub struct ParsedAttrs {
    /// The language, lower-cased.
    pub language: Option<String>,
    /// The AsciiDoc block style (`source`, `listing`, ...), if any.
    pub style: Option<String>,
    /// The attributes.
    pub attrs: Vec<Attr>,
}

/// AsciiDoc attributes that style a block and mean nothing to the runbook.
const ASCIIDOC_NATIVE: &[&str] = &[
    "subs",
    "role",
    "title",
    "caption",
    "reftext",
    "indent",
    "linenums",
    "start",
    "callout",
    "filename",
    "source-language",
    "cols",
    "format",
];

/// Splits `s` at `sep` outside double- or single-quoted runs; returns byte ranges.
fn split_outside_quotes(s: &str, is_sep: impl Fn(char) -> bool) -> Vec<(usize, usize)> {
    let mut parts = Vec::new();
    let mut quote: Option<char> = None;
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '"' || c == '\'' => {
                let at_value_start = i == start || s[..i].ends_with('=');
                if at_value_start {
                    quote = Some(c);
                }
            }
            None if is_sep(c) => {
                parts.push((start, i));
                start = i + c.len_utf8();
            }
            None => {}
        }
    }
    parts.push((start, s.len()));
    parts
}

/// Removes surrounding quotes and backslash escapes of the quote character.
fn unquote(v: &str) -> String {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            let inner = &v[1..v.len() - 1];
            return inner.replace(&format!("\\{q}"), &q.to_string());
        }
    }
    v.to_string()
}

fn attr(key: &str, value: Option<String>, file: FileId, base: usize, lo: usize, hi: usize) -> Attr {
    Attr {
        key: key.to_string(),
        value,
        span: Span::new(file, base + lo, base + hi),
    }
}

/// Parses one AsciiDoc block attribute line, brackets included: `[[x]]`,
/// `[source#x%confirm,sql,db=live,expect=~792]`. `base` is the file offset of
/// the opening bracket.
pub fn parse_asciidoc(
    raw: &str,
    file: FileId,
    base: usize,
) -> Result<ParsedAttrs, Box<Diagnostic>> {
    let mut out = ParsedAttrs::default();
    let whole = Span::new(file, base, base + raw.len());
    if let Some(inner) = raw.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
        let id_len = inner.find(',').unwrap_or(inner.len());
        out.attrs.push(attr(
            "id",
            Some(inner[..id_len].trim().to_string()),
            file,
            base,
            2,
            2 + id_len,
        ));
        return Ok(out);
    }
    let Some(inner) = raw.strip_prefix('[').and_then(|r| r.strip_suffix(']')) else {
        return Err(Box::new(Diagnostic::error(
            "bad-attribute-list",
            "attribute list is not closed with `]`",
            whole,
        )));
    };
    let mut positional = 0;
    for (lo, hi) in split_outside_quotes(inner, |c| c == ',') {
        let part = &inner[lo..hi];
        let trimmed = part.trim();
        let lo = lo + 1 + (part.len() - part.trim_start().len());
        let hi = lo + trimmed.len();
        let named = trimmed.split_once('=').filter(|(k, _)| {
            !k.is_empty()
                && k.trim()
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        });
        if let Some((key, value)) = named {
            let key = key.trim().to_ascii_lowercase();
            let value = unquote(value.trim());
            match key.as_str() {
                "opts" | "options" => {
                    for flag in value.split([',', ' ']).filter(|f| !f.is_empty()) {
                        out.attrs.push(attr(flag, None, file, base, lo, hi));
                    }
                }
                "language" | "lang" => out.language = Some(value.to_ascii_lowercase()),
                k if ASCIIDOC_NATIVE.contains(&k) => {}
                _ => out.attrs.push(attr(&key, Some(value), file, base, lo, hi)),
            }
            continue;
        }
        match positional {
            0 => parse_style(trimmed, &mut out, file, base + lo),
            1 if !trimmed.is_empty() => {
                let is_source = matches!(out.style.as_deref(), None | Some("source"));
                if is_source {
                    out.language = Some(trimmed.to_ascii_lowercase());
                }
            }
            _ if !trimmed.is_empty() && trimmed != "linenums" => {
                out.attrs.push(attr(trimmed, None, file, base, lo, hi));
            }
            _ => {}
        }
        positional += 1;
    }
    Ok(out)
}

/// The first positional entry: `style#id%option.role`.
fn parse_style(first: &str, out: &mut ParsedAttrs, file: FileId, base: usize) {
    let mut marks: Vec<usize> = first
        .char_indices()
        .filter(|(_, c)| matches!(c, '#' | '%' | '.'))
        .map(|(i, _)| i)
        .collect();
    let style_end = marks.first().copied().unwrap_or(first.len());
    let style = first[..style_end].trim();
    if !style.is_empty() {
        out.style = Some(style.to_ascii_lowercase());
    }
    marks.push(first.len());
    for pair in marks.windows(2) {
        let (lo, hi) = (pair[0], pair[1]);
        let value = &first[lo + 1..hi];
        if value.is_empty() {
            continue;
        }
        match &first[lo..lo + 1] {
            "#" => out
                .attrs
                .push(attr("id", Some(value.to_string()), file, base, lo, hi)),
            "%" => out.attrs.push(attr(value, None, file, base, lo, hi)),
            _ => {}
        }
    }
}

/// Parses a Markdown fence info string: `sql {#x db=live expect=~792 confirm}`.
/// `base` is the file offset of the info string's first byte.
pub fn parse_markdown(
    info: &str,
    file: FileId,
    base: usize,
) -> Result<ParsedAttrs, Box<Diagnostic>> {
    let mut out = ParsedAttrs::default();
    let brace = info.find('{');
    let head = &info[..brace.unwrap_or(info.len())];
    if let Some(lang) = head.split_whitespace().next() {
        out.language = Some(lang.to_ascii_lowercase());
    }
    let Some(open) = brace else {
        return Ok(out);
    };
    let rest = &info[open + 1..];
    let Some(close) = rest.rfind('}') else {
        return Err(Box::new(
            Diagnostic::error(
                "bad-attribute-list",
                "attribute list is not closed with `}`",
                Span::new(file, base + open, base + info.len()),
            )
            .with_hint("write the attributes as `{#step-id key=value flag}`"),
        ));
    };
    let inner = &rest[..close];
    let inner_base = open + 1;
    for (lo, hi) in split_outside_quotes(inner, char::is_whitespace) {
        let token = &inner[lo..hi];
        if token.is_empty() {
            continue;
        }
        let (lo, hi) = (inner_base + lo, inner_base + hi);
        if let Some(id) = token.strip_prefix('#') {
            out.attrs
                .push(attr("id", Some(id.to_string()), file, base, lo, hi));
        } else if let Some(class) = token.strip_prefix('.') {
            if out.language.is_none() {
                out.language = Some(class.to_ascii_lowercase());
            }
        } else if let Some((key, value)) = token.split_once('=') {
            out.attrs.push(attr(
                &key.to_ascii_lowercase(),
                Some(unquote(value)),
                file,
                base,
                lo,
                hi,
            ));
        } else {
            out.attrs
                .push(attr(&token.to_ascii_lowercase(), None, file, base, lo, hi));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(p: &ParsedAttrs) -> Vec<(String, Option<String>)> {
        p.attrs
            .iter()
            .map(|a| (a.key.clone(), a.value.clone()))
            .collect()
    }

    #[test]
    fn asciidoc_named_quoted_and_shorthand() {
        let raw = r#"[source#gate%confirm,SQL,db=live,expect=~792,assert="live == snap, really"]"#;
        let p = parse_asciidoc(raw, FileId(0), 100).unwrap();
        assert_eq!(p.language.as_deref(), Some("sql"));
        assert_eq!(
            kv(&p),
            vec![
                ("id".into(), Some("gate".into())),
                ("confirm".into(), None),
                ("db".into(), Some("live".into())),
                ("expect".into(), Some("~792".into())),
                ("assert".into(), Some("live == snap, really".into())),
            ]
        );
        let expect = &p.attrs[3];
        assert_eq!(
            &raw[expect.span.start - 100..expect.span.end - 100],
            "expect=~792"
        );
    }

    #[test]
    fn asciidoc_anchor_options_and_native_attrs() {
        let p = parse_asciidoc("[[pre-check,Pre-check]]", FileId(0), 0).unwrap();
        assert_eq!(kv(&p), vec![("id".into(), Some("pre-check".into()))]);
        let p = parse_asciidoc(
            r#"[source,sql,subs="+attributes",opts="confirm,skip"]"#,
            FileId(0),
            0,
        )
        .unwrap();
        assert_eq!(
            kv(&p),
            vec![("confirm".into(), None), ("skip".into(), None)]
        );
        let p = parse_asciidoc("[listing]", FileId(0), 0).unwrap();
        assert_eq!(p.language, None);
        assert_eq!(p.style.as_deref(), Some("listing"));
        let p = parse_asciidoc("[,sql]", FileId(0), 0).unwrap();
        assert_eq!(p.language.as_deref(), Some("sql"));
    }

    #[test]
    fn markdown_info_string() {
        let info = r#"SQL {#purge-ep db=live expect=~792 confirm assert="live == snap"}"#;
        let p = parse_markdown(info, FileId(0), 10).unwrap();
        assert_eq!(p.language.as_deref(), Some("sql"));
        assert_eq!(
            kv(&p),
            vec![
                ("id".into(), Some("purge-ep".into())),
                ("db".into(), Some("live".into())),
                ("expect".into(), Some("~792".into())),
                ("confirm".into(), None),
                ("assert".into(), Some("live == snap".into())),
            ]
        );
        let a = &p.attrs[4];
        assert_eq!(
            &info[a.span.start - 10..a.span.end - 10],
            r#"assert="live == snap""#
        );
    }

    #[test]
    fn markdown_unclosed_brace_is_an_error() {
        let err = parse_markdown("sql {#x db=live", FileId(0), 0).unwrap_err();
        assert_eq!(err.code, "bad-attribute-list");
    }
}
