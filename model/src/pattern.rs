//! String patterns of the pipeline config: exact names, globs and regexes.
//!
//! One syntax everywhere a config matches a metric name or an attribute value:
//! - `/…/` is a regular expression (Rust `regex` syntax) that must match the **whole** value;
//! - a string containing `*`, `?` or `[` is a glob: `*` any run of characters (dots included),
//!   `?` one character, `[abc]` / `[a-z]` / `[!abc]` a character class;
//! - anything else matches exactly.
//!
//! Patterns compile once, when a processor is built; matching allocates nothing.

use regex::Regex;

/// A compiled pattern.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Matches every value.
    Any,
    /// Matches one value exactly.
    Exact(String),
    /// Matches values starting with the prefix (a glob `prefix*`).
    Prefix(String),
    /// Matches values the anchored regex matches.
    Regex(Regex),
}

impl Matcher {
    /// Compiles a pattern (see the module doc for the syntax).
    ///
    /// # Errors
    /// A reason naming the pattern, for an invalid regex or glob.
    pub fn parse(pattern: &str) -> Result<Matcher, String> {
        if let Some(re) = pattern
            .strip_prefix('/')
            .and_then(|rest| rest.strip_suffix('/'))
            .filter(|_| pattern.len() >= 2)
        {
            return anchored(re)
                .map(Matcher::Regex)
                .map_err(|e| format!("`{pattern}` is not a valid regex: {e}"));
        }
        if !pattern.contains(['*', '?', '[']) {
            return Ok(Matcher::Exact(pattern.to_string()));
        }
        if pattern.chars().all(|c| c == '*') {
            return Ok(Matcher::Any);
        }
        if let Some(prefix) = pattern.strip_suffix('*') {
            if !prefix.contains(['*', '?', '[']) {
                return Ok(Matcher::Prefix(prefix.to_string()));
            }
        }
        let re = glob_to_regex(pattern)?;
        anchored(&re)
            .map(Matcher::Regex)
            .map_err(|e| format!("`{pattern}` is not a valid glob: {e}"))
    }

    /// Whether `value` matches.
    #[inline]
    pub fn is_match(&self, value: &str) -> bool {
        match self {
            Matcher::Any => true,
            Matcher::Exact(s) => s == value,
            Matcher::Prefix(p) => value.starts_with(p.as_str()),
            Matcher::Regex(re) => re.is_match(value),
        }
    }
}

/// A list of patterns that matches when any of them does.
#[derive(Debug, Clone, Default)]
pub struct AnyOf {
    matchers: Vec<Matcher>,
}

impl AnyOf {
    /// Compiles every pattern.
    ///
    /// # Errors
    /// `(index, reason)` of the first pattern that does not compile.
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<AnyOf, (usize, String)> {
        let matchers = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| Matcher::parse(p.as_ref()).map_err(|e| (i, e)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AnyOf { matchers })
    }

    /// Whether no pattern was given.
    pub fn is_empty(&self) -> bool {
        self.matchers.is_empty()
    }

    /// Whether any pattern matches `value`.
    #[inline]
    pub fn is_match(&self, value: &str) -> bool {
        self.matchers.iter().any(|m| m.is_match(value))
    }
}

fn anchored(re: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{re})$"))
}

/// Translates a glob into regex syntax (unanchored; the caller anchors it).
fn glob_to_regex(glob: &str) -> Result<String, String> {
    let mut out = String::with_capacity(glob.len() * 2);
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => {
                while chars.peek() == Some(&'*') {
                    chars.next();
                }
                out.push_str(".*");
            }
            '?' => out.push('.'),
            '[' => {
                out.push('[');
                if matches!(chars.peek(), Some('!' | '^')) {
                    chars.next();
                    out.push('^');
                }
                let mut closed = false;
                let mut first = true;
                for c in chars.by_ref() {
                    if c == ']' && !first {
                        closed = true;
                        break;
                    }
                    first = false;
                    match c {
                        '\\' | '[' | ']' | '&' | '~' => {
                            out.push('\\');
                            out.push(c);
                        }
                        '-' => out.push('-'),
                        _ => out.push(c),
                    }
                }
                if !closed {
                    return Err(format!("`{glob}` has an unclosed `[`"));
                }
                out.push(']');
            }
            _ => {
                let mut buf = [0u8; 4];
                out.push_str(&regex::escape(c.encode_utf8(&mut buf)));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str) -> Matcher {
        Matcher::parse(p).expect("valid pattern")
    }

    /// Exact names, globs and regexes match as documented (whole value, dots under `*`).
    #[test]
    fn syntax() {
        assert!(m("http.requests").is_match("http.requests"));
        assert!(!m("http.requests").is_match("http.requests.total"));
        assert!(m("debug.*").is_match("debug.a.b"));
        assert!(!m("debug.*").is_match("xdebug.a"));
        assert!(matches!(m("debug.*"), Matcher::Prefix(_)));
        assert!(m("*.count").is_match("a.b.count"));
        assert!(!m("*.count").is_match("a.b.counts"));
        assert!(m("a?c").is_match("abc") && !m("a?c").is_match("abbc"));
        assert!(m("v[0-9]").is_match("v7") && !m("v[0-9]").is_match("vx"));
        assert!(m("v[!0-9]").is_match("vx") && !m("v[!0-9]").is_match("v1"));
        assert!(m("a+b").is_match("a+b") && !m("a+b").is_match("aab"));
        assert!(m("*").is_match(""));
        assert!(m("/http\\.(get|post)/").is_match("http.get"));
        assert!(
            !m("/http/").is_match("http.get"),
            "regexes match the whole value"
        );
        assert!(m("/").is_match("/"), "a lone slash is an exact name");
    }

    /// Invalid regexes and globs are errors that quote the pattern.
    #[test]
    fn errors_quote_pattern() {
        let e = Matcher::parse("/(/").expect_err("bad regex");
        assert!(e.contains("`/(/`"), "{e}");
        let e = Matcher::parse("a[bc").expect_err("bad glob");
        assert!(e.contains("`a[bc`"), "{e}");
        assert_eq!(
            AnyOf::parse(&["a", "/(/"]).map(|_| ()).map_err(|e| e.0),
            Err(1)
        );
    }
}
