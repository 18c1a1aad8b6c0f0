//! A reader for EDN, Clojure's extensible data notation: the format Jepsen, Knossos and Elle
//! write their histories in (<https://github.com/edn-format/edn>).
//!
//! It reads every EDN element: `nil`, booleans, integers (with an optional `N`), floats (with an
//! optional `M`), strings, characters, keywords, symbols, lists, vectors, maps, sets, tagged
//! elements (`#inst "..."`, `#jepsen.history.Op{...}`) and the discard `#_`; commas are
//! whitespace and `;` starts a comment. [`read_ops`] reads a history: either one vector (or list)
//! of operations, as Knossos writes them, or a sequence of top-level operations, one per line, as
//! Elle's and Jepsen's `history.edn` are; each with the line it starts on.

use std::fmt;

/// An EDN value.
#[derive(Clone, Debug, PartialEq)]
pub enum Edn {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Char(char),
    /// A keyword, without its colon: `:type` is `Keyword("type")`.
    Keyword(String),
    Symbol(String),
    List(Vec<Edn>),
    Vector(Vec<Edn>),
    Set(Vec<Edn>),
    /// A map, its entries in the order written.
    Map(Vec<(Edn, Edn)>),
    /// A tagged element: `#inst "1985-04-12"` is `Tagged("inst", Str(..))`.
    Tagged(String, Box<Edn>),
}

impl Edn {
    /// The value of keyword `key` in a map (also in a tagged map, such as Jepsen's
    /// `#jepsen.history.Op{...}`); `None` for other values or a missing key.
    pub fn get(&self, key: &str) -> Option<&Edn> {
        match self {
            Edn::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Edn::Keyword(name) if name == key))
                .map(|(_, v)| v),
            Edn::Tagged(_, inner) => inner.get(key),
            _ => None,
        }
    }

    /// The elements of a vector or list.
    pub fn items(&self) -> Option<&[Edn]> {
        match self {
            Edn::Vector(v) | Edn::List(v) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for Edn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seq = |f: &mut fmt::Formatter<'_>, open: &str, items: &[Edn], close: &str| {
            f.write_str(open)?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{item}")?;
            }
            f.write_str(close)
        };
        match self {
            Edn::Nil => f.write_str("nil"),
            Edn::Bool(b) => write!(f, "{b}"),
            Edn::Int(i) => write!(f, "{i}"),
            Edn::Float(x) => write!(f, "{x:?}"),
            Edn::Str(s) => write!(f, "{s:?}"),
            Edn::Char(c) => write!(f, "\\{c}"),
            Edn::Keyword(k) => write!(f, ":{k}"),
            Edn::Symbol(s) => f.write_str(s),
            Edn::List(v) => seq(f, "(", v, ")"),
            Edn::Vector(v) => seq(f, "[", v, "]"),
            Edn::Set(v) => seq(f, "#{", v, "}"),
            Edn::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} {v}")?;
                }
                f.write_str("}")
            }
            Edn::Tagged(tag, v) => write!(f, "#{tag} {v}"),
        }
    }
}

/// Text that is not EDN, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct EdnError {
    pub line: usize,
    pub reason: String,
}

struct Reader<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
}

/// The characters that end a symbol, keyword or number.
fn delimiter(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | '(' | ')' | '[' | ']' | '{' | '}' | '"' | ';')
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Self {
        Reader {
            chars: text.chars().peekable(),
            line: 1,
        }
    }

    fn error(&self, reason: impl Into<String>) -> EdnError {
        EdnError {
            line: self.line,
            reason: reason.into(),
        }
    }

    fn next(&mut self) -> Option<char> {
        let c = self.chars.next();
        if c == Some('\n') {
            self.line += 1;
        }
        c
    }

    /// Skips whitespace, commas and comments; the next character, not taken.
    fn skip(&mut self) -> Option<char> {
        loop {
            match self.chars.peek().copied() {
                Some(c) if c.is_whitespace() || c == ',' => {
                    self.next();
                }
                Some(';') => while self.next().is_some_and(|c| c != '\n') {},
                other => return other,
            }
        }
    }

    fn token(&mut self) -> String {
        let mut t = String::new();
        while let Some(&c) = self.chars.peek() {
            if delimiter(c) {
                break;
            }
            t.push(c);
            self.next();
        }
        t
    }

    /// The elements up to `close`, which is taken.
    fn seq(&mut self, close: char) -> Result<Vec<Edn>, EdnError> {
        let mut items = Vec::new();
        loop {
            match self.skip() {
                None => return Err(self.error(format!("unclosed collection: '{close}' expected"))),
                Some(c) if c == close => {
                    self.next();
                    return Ok(items);
                }
                Some(_) => {
                    if let Some(item) = self.element()? {
                        items.push(item);
                    }
                }
            }
        }
    }

    /// The next element; `None` for a discarded one (`#_`). The caller has skipped whitespace.
    fn element(&mut self) -> Result<Option<Edn>, EdnError> {
        let Some(c) = self.next() else {
            return Err(self.error("unexpected end of input"));
        };
        let value = match c {
            '(' => Edn::List(self.seq(')')?),
            '[' => Edn::Vector(self.seq(']')?),
            '{' => {
                let items = self.seq('}')?;
                if items.len() % 2 != 0 {
                    return Err(self.error("a map with an odd number of forms"));
                }
                let mut it = items.into_iter();
                let mut entries = Vec::new();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    entries.push((k, v));
                }
                Edn::Map(entries)
            }
            ')' | ']' | '}' => return Err(self.error(format!("unexpected '{c}'"))),
            '"' => Edn::Str(self.string()?),
            '\\' => {
                let name = self.token();
                let mut chars = name.chars();
                match (chars.next(), chars.next(), name.as_str()) {
                    (_, _, "newline") => Edn::Char('\n'),
                    (_, _, "space") => Edn::Char(' '),
                    (_, _, "tab") => Edn::Char('\t'),
                    (_, _, "return") => Edn::Char('\r'),
                    (Some(c), None, _) => Edn::Char(c),
                    _ => return Err(self.error(format!("unknown character \\{name}"))),
                }
            }
            '#' => match self.chars.peek().copied() {
                Some('{') => {
                    self.next();
                    Edn::Set(self.seq('}')?)
                }
                Some('_') => {
                    self.next();
                    if self.skip().is_none() {
                        return Err(self.error("#_ discards nothing"));
                    }
                    self.element()?;
                    return Ok(None);
                }
                _ => {
                    let tag = self.token();
                    if tag.is_empty() {
                        return Err(self.error("a '#' without a tag"));
                    }
                    if self.skip().is_none() {
                        return Err(self.error(format!("#{tag} tags nothing")));
                    }
                    let inner = loop {
                        if let Some(v) = self.element()? {
                            break v;
                        }
                        if self.skip().is_none() {
                            return Err(self.error(format!("#{tag} tags nothing")));
                        }
                    };
                    Edn::Tagged(tag, Box::new(inner))
                }
            },
            ':' => {
                let name = self.token();
                if name.is_empty() {
                    return Err(self.error("a ':' without a keyword"));
                }
                Edn::Keyword(name)
            }
            c => {
                let mut t = c.to_string();
                t.push_str(&self.token());
                atom(&t).map_err(|reason| self.error(reason))?
            }
        };
        Ok(Some(value))
    }

    fn string(&mut self) -> Result<String, EdnError> {
        let mut s = String::new();
        loop {
            match self.next() {
                None => return Err(self.error("unterminated string")),
                Some('"') => return Ok(s),
                Some('\\') => match self.next() {
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('r') => s.push('\r'),
                    Some('u') => {
                        let hex: String = (0..4).filter_map(|_| self.next()).collect();
                        let c = u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(|| self.error(format!("bad escape \\u{hex}")))?;
                        s.push(c);
                    }
                    Some(c @ ('"' | '\\')) => s.push(c),
                    Some(c) => return Err(self.error(format!("unknown escape \\{c}"))),
                    None => return Err(self.error("unterminated string")),
                },
                Some(c) => s.push(c),
            }
        }
    }
}

/// A symbol, number, `nil`, `true` or `false`.
fn atom(t: &str) -> Result<Edn, String> {
    match t {
        "nil" => return Ok(Edn::Nil),
        "true" => return Ok(Edn::Bool(true)),
        "false" => return Ok(Edn::Bool(false)),
        _ => {}
    }
    let first = t.chars().next().unwrap_or(' ');
    let second = t.chars().nth(1);
    let numeric = first.is_ascii_digit()
        || (matches!(first, '+' | '-') && second.is_some_and(|c| c.is_ascii_digit()));
    if !numeric {
        return Ok(Edn::Symbol(t.to_string()));
    }
    if let Some(int) = t.strip_suffix('N') {
        return int
            .parse()
            .map(Edn::Int)
            .map_err(|_| format!("'{t}' is not an integer that fits 64 bits"));
    }
    if let Ok(i) = t.parse::<i64>() {
        return Ok(Edn::Int(i));
    }
    t.strip_suffix('M')
        .unwrap_or(t)
        .parse::<f64>()
        .map(Edn::Float)
        .map_err(|_| format!("'{t}' is not a number"))
}

/// Every top-level element of `text`, with the line each starts on.
pub fn read_all(text: &str) -> Result<Vec<(usize, Edn)>, EdnError> {
    let mut r = Reader::new(text);
    let mut out = Vec::new();
    while r.skip().is_some() {
        let line = r.line;
        if let Some(v) = r.element()? {
            out.push((line, v));
        }
    }
    Ok(out)
}

/// The operations of a history, with the line each starts on: the elements of a single
/// top-level vector or list (Knossos), or the top-level elements themselves (one map a line).
pub fn read_ops(text: &str) -> Result<Vec<(usize, Edn)>, EdnError> {
    let mut out = Vec::new();
    for_each_op(text, |line, v| {
        out.push((line, v));
        Ok::<(), EdnError>(())
    })?;
    Ok(out)
}

/// [`read_ops`] one operation at a time, without holding them all: `f` gets each operation and
/// the line it starts on, and its first error stops the reading.
pub fn for_each_op<E: From<EdnError>>(
    text: &str,
    mut f: impl FnMut(usize, Edn) -> Result<(), E>,
) -> Result<(), E> {
    let mut r = Reader::new(text);
    let open = match r.skip() {
        Some('[') => Some(']'),
        Some('(') => Some(')'),
        _ => None,
    };
    let Some(open) = open else {
        while r.skip().is_some() {
            let line = r.line;
            if let Some(v) = r.element()? {
                f(line, v)?;
            }
        }
        return Ok(());
    };
    r.next();
    loop {
        match r.skip() {
            None => {
                return Err(r
                    .error(format!("unclosed history: '{open}' expected"))
                    .into())
            }
            Some(c) if c == open => {
                r.next();
                break;
            }
            Some(_) => {
                let line = r.line;
                if let Some(v) = r.element()? {
                    f(line, v)?;
                }
            }
        }
    }
    if r.skip().is_some() {
        return Err(r.error("more after the history's closing bracket").into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(s: &str) -> Edn {
        Edn::Keyword(s.into())
    }

    #[test]
    fn reads_every_element() {
        let text = r#"{:a 1, :b -2.5 :c "x\"y\n" :d [nil true false] :e #{:k} :f (sym 3N 1.5M)
                       :g \x :h #inst "2020-01-01" :i #_ ignored :j} ; a comment"#;
        let all = read_all(text).unwrap();
        assert_eq!(all.len(), 1);
        let m = &all[0].1;
        assert_eq!(m.get("a"), Some(&Edn::Int(1)));
        assert_eq!(m.get("b"), Some(&Edn::Float(-2.5)));
        assert_eq!(m.get("c"), Some(&Edn::Str("x\"y\n".into())));
        assert_eq!(
            m.get("d"),
            Some(&Edn::Vector(vec![
                Edn::Nil,
                Edn::Bool(true),
                Edn::Bool(false)
            ]))
        );
        assert_eq!(m.get("e"), Some(&Edn::Set(vec![kw("k")])));
        assert_eq!(
            m.get("f"),
            Some(&Edn::List(vec![
                Edn::Symbol("sym".into()),
                Edn::Int(3),
                Edn::Float(1.5)
            ]))
        );
        assert_eq!(m.get("g"), Some(&Edn::Char('x')));
        assert_eq!(
            m.get("h"),
            Some(&Edn::Tagged(
                "inst".into(),
                Box::new(Edn::Str("2020-01-01".into()))
            ))
        );
        // `#_` discards `ignored`, so `:i` maps to `:j`.
        assert_eq!(m.get("i"), Some(&kw("j")));
    }

    #[test]
    fn reads_a_vector_of_ops_or_ops_one_a_line_with_their_lines() {
        let knossos = "[{:process 0, :type :invoke}\n {:process 0, :type :ok}]\n";
        let ops = read_ops(knossos).unwrap();
        assert_eq!(ops.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(ops[1].1.get("type"), Some(&kw("ok")));
        let elle = "; a comment\n{:index 0 :type :invoke}\n\n{:index 1 :type :ok}\n";
        let ops = read_ops(elle).unwrap();
        assert_eq!(ops.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [2, 4]);
        // Jepsen 0.3's records are tagged maps.
        let op = &read_ops("#jepsen.history.Op{:index 3, :f :read}").unwrap()[0].1;
        assert_eq!(op.get("f"), Some(&kw("read")));
    }

    #[test]
    fn errors_name_the_line() {
        let bad = |text: &str| read_ops(text).unwrap_err();
        assert_eq!(bad("[{:a 1}\n {:b}]").line, 2);
        assert!(bad("[{:a 1}").reason.contains("unclosed"));
        assert!(bad("{:a \"x}").reason.contains("unterminated"));
        assert!(bad("[1] 2").reason.contains("after"));
        assert!(bad("{:a 99999999999999999999N}").reason.contains("64 bits"));
        assert!(bad(")").reason.contains("unexpected"));
    }
}
