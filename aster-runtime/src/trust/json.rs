//! The JSON text forms the reference writes byte for byte: canonical attribute JSON (signed),
//! and Python `json.dumps` string escaping.

use super::Attributes;
use crate::admission::{push_python_u_escape, python_ascii_escapes};

/// Appends `s` as a JSON string literal, escaped exactly as Python's `json.dumps`:
/// `"` `\` and `\b \f \n \r \t` by their short escapes, other C0 controls as `\u00xx`
/// (lowercase hex). With `ensure_ascii` (Python's default) DEL (U+007F) and every non-ASCII
/// character are written as `\uxxxx` (UTF-16 surrogate pairs beyond the BMP); without it
/// (canonical JSON) as they are (UTF-8).
pub(crate) fn push_str_literal(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => push_python_u_escape(out, c),
            c if ensure_ascii && python_ascii_escapes(c) => push_python_u_escape(out, c),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `attrs` as a compact JSON object in key order (the map's order: code-point order,
/// which is what Python's `sort_keys=True` produces).
pub(crate) fn push_object(out: &mut String, attrs: &Attributes, ensure_ascii: bool) {
    out.push('{');
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str_literal(out, k, ensure_ascii);
        out.push(':');
        push_str_literal(out, v, ensure_ascii);
    }
    out.push('}');
}

/// A JSON value of the flat documents the reference writes (credentials, envelopes).
pub(crate) enum JVal<'a> {
    Str(&'a str),
    U64(u64),
    Null,
    Obj(&'a Attributes),
    StrList(&'a [String]),
    Bool(bool),
    /// Already-formatted JSON (numbers).
    Raw(&'a str),
}

impl JVal<'_> {
    fn push(&self, out: &mut String, indent: Option<usize>) {
        match self {
            JVal::Str(s) => push_str_literal(out, s, true),
            JVal::U64(n) => out.push_str(&n.to_string()),
            JVal::Null => out.push_str("null"),
            JVal::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            JVal::Raw(r) => out.push_str(r),
            JVal::Obj(m) => match indent {
                Some(level) if !m.is_empty() => {
                    out.push('{');
                    for (i, (k, v)) in m.iter().enumerate() {
                        out.push_str(if i > 0 { ",\n" } else { "\n" });
                        push_indent(out, level + 1);
                        push_str_literal(out, k, true);
                        out.push_str(": ");
                        push_str_literal(out, v, true);
                    }
                    out.push('\n');
                    push_indent(out, level);
                    out.push('}');
                }
                _ => push_object(out, m, true),
            },
            JVal::StrList(items) => match indent {
                Some(level) if !items.is_empty() => {
                    out.push('[');
                    for (i, s) in items.iter().enumerate() {
                        out.push_str(if i > 0 { ",\n" } else { "\n" });
                        push_indent(out, level + 1);
                        push_str_literal(out, s, true);
                    }
                    out.push('\n');
                    push_indent(out, level);
                    out.push(']');
                }
                _ => {
                    out.push('[');
                    for (i, s) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        push_str_literal(out, s, true);
                    }
                    out.push(']');
                }
            },
        }
    }
}

fn push_indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

/// Python `json.dumps(obj, separators=(",", ":"))` (ASCII-only) of an object with the given
/// fields in order.
pub(crate) fn compact(fields: &[(&str, JVal<'_>)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str_literal(&mut out, k, true);
        out.push(':');
        v.push(&mut out, None);
    }
    out.push('}');
    out
}

/// Python `json.dump(obj, f, indent=2); f.write("\n")` (ASCII-only) of an object with the
/// given fields in order: the CLI's file form.
pub(crate) fn pretty(fields: &[(&str, JVal<'_>)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in fields.iter().enumerate() {
        out.push_str(if i > 0 { ",\n  " } else { "\n  " });
        push_str_literal(&mut out, k, true);
        out.push_str(": ");
        v.push(&mut out, Some(1));
    }
    out.push_str("\n}\n");
    out
}

/// `canonical_json(attributes)` of §7.2: compact JSON, keys sorted by code point, no spaces,
/// non-ASCII as UTF-8. Equals Python's
/// `json.dumps(attrs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` for
/// string-to-string maps (a `BTreeMap<String, _>` iterates in UTF-8 byte order, which is
/// code-point order).
pub fn canonical_json(attributes: &Attributes) -> String {
    let mut out = String::new();
    push_object(&mut out, attributes, false);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str, ascii: bool) -> String {
        let mut o = String::new();
        push_str_literal(&mut o, s, ascii);
        o
    }

    #[test]
    fn escapes_like_python() {
        assert_eq!(lit("a\"b\\c", false), r#""a\"b\\c""#);
        assert_eq!(lit("\u{8}\u{c}\n\r\t\u{1}\u{1f}\u{7f}", false), "\"\\b\\f\\n\\r\\t\\u0001\\u001f\u{7f}\"");
        assert_eq!(lit("é😀", false), "\"é😀\"");
        assert_eq!(lit("é😀", true), "\"\\u00e9\\ud83d\\ude00\"");
        // Python: json.dumps("\x7f") == '"\\u007f"', json.dumps("\x7f", ensure_ascii=False) keeps it.
        assert_eq!(lit("~\u{7f}", true), "\"~\\u007f\"");
        assert_eq!(lit("\u{1}", true), "\"\\u0001\"");
        assert_eq!(lit("\u{2028}/", false), "\"\u{2028}/\"");
    }

    #[test]
    fn canonical_sorted_compact() {
        let mut a = Attributes::new();
        a.insert("b".into(), "2".into());
        a.insert("a".into(), "1".into());
        a.insert("é".into(), "ü".into());
        a.insert("Z".into(), "".into());
        assert_eq!(canonical_json(&a), r#"{"Z":"","a":"1","b":"2","é":"ü"}"#);
        assert_eq!(canonical_json(&Attributes::new()), "{}");
    }

    #[test]
    fn compact_and_pretty_like_python() {
        let mut a = Attributes::new();
        a.insert("k".into(), "é".into());
        let empty = Attributes::new();
        let list = vec!["x".to_string()];
        let f = [("a", JVal::U64(5)), ("b", JVal::Obj(&a)), ("c", JVal::Null), ("d", JVal::StrList(&list))];
        assert_eq!(compact(&f), r#"{"a":5,"b":{"k":"\u00e9"},"c":null,"d":["x"]}"#);
        assert_eq!(
            pretty(&f),
            "{\n  \"a\": 5,\n  \"b\": {\n    \"k\": \"\\u00e9\"\n  },\n  \"c\": null,\n  \"d\": [\n    \"x\"\n  ]\n}\n"
        );
        assert_eq!(pretty(&[("e", JVal::Obj(&empty)), ("t", JVal::Bool(true))]), "{\n  \"e\": {},\n  \"t\": true\n}\n");
    }
}
