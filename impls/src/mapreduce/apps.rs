//! MapReduce applications (Dean & Ghemawat §2): a map function from a file to key/value pairs and
//! a reduce function from a key and its values to one value.

/// An application.
pub trait App: Send + Sync {
    /// Calls `emit` for every key/value pair of `contents`, the text of the file `name`.
    fn map(&self, name: &str, contents: &str, emit: &mut dyn FnMut(&str, &str));
    /// The value of `key`, from all its values.
    fn reduce(&self, key: &str, values: &[String]) -> String;
    /// The combiner (§4.3) a map task may apply to a key's values before writing them.
    fn combiner(&self) -> Combiner {
        Combiner::None
    }
}

/// A combiner: partial reduction inside a map task, for an associative reduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Combiner {
    None,
    /// Values are unsigned integers and reduce sums them: a map task keeps one running sum per key.
    Sum,
}

/// The application named on a command line: `wc`, `indexer` or `grep PATTERN`.
pub fn by_name(name: &str, pattern: Option<&str>) -> Result<Box<dyn App>, String> {
    match (name, pattern) {
        ("wc", _) => Ok(Box::new(WordCount)),
        ("indexer", _) => Ok(Box::new(Indexer)),
        ("grep", Some(p)) if !p.is_empty() => Ok(Box::new(Grep(p.to_string()))),
        ("grep", _) => Err("grep needs a non-empty --pattern".into()),
        (other, _) => Err(format!(
            "unknown app '{other}': expected wc, indexer or grep"
        )),
    }
}

/// The words of a text: maximal runs of letters.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
}

/// Word count: a word's value is how often it occurs.
pub struct WordCount;

impl App for WordCount {
    fn map(&self, _name: &str, contents: &str, emit: &mut dyn FnMut(&str, &str)) {
        for w in words(contents) {
            emit(w, "1");
        }
    }

    fn reduce(&self, _key: &str, values: &[String]) -> String {
        values
            .iter()
            .map(|v| v.parse::<u64>().expect("counts are numbers"))
            .sum::<u64>()
            .to_string()
    }

    fn combiner(&self) -> Combiner {
        Combiner::Sum
    }
}

/// Inverted index: a word's value is the number of documents that contain it, then their sorted
/// names, comma-joined.
pub struct Indexer;

impl App for Indexer {
    fn map(&self, name: &str, contents: &str, emit: &mut dyn FnMut(&str, &str)) {
        let mut seen = std::collections::HashSet::new();
        for w in words(contents) {
            if seen.insert(w) {
                emit(w, name);
            }
        }
    }

    fn reduce(&self, _key: &str, values: &[String]) -> String {
        let mut docs: Vec<&str> = values.iter().map(String::as_str).collect();
        docs.sort_unstable();
        docs.dedup();
        format!("{} {}", docs.len(), docs.join(","))
    }
}

/// Distributed grep (§2.3): the lines that contain the pattern, keyed by `file:line`.
pub struct Grep(pub String);

impl App for Grep {
    fn map(&self, name: &str, contents: &str, emit: &mut dyn FnMut(&str, &str)) {
        for (i, line) in contents.lines().enumerate() {
            if line.contains(&self.0) {
                emit(&format!("{name}:{}", i + 1), line);
            }
        }
    }

    fn reduce(&self, _key: &str, values: &[String]) -> String {
        values.first().cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(app: &dyn App, docs: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, text) in docs {
            app.map(name, text, &mut |k, v| {
                pairs.push((k.to_string(), v.to_string()))
            });
        }
        pairs.sort();
        let mut out = Vec::new();
        let mut i = 0;
        while i < pairs.len() {
            let j = (i..pairs.len())
                .find(|j| pairs[*j].0 != pairs[i].0)
                .unwrap_or(pairs.len());
            let values: Vec<String> = pairs[i..j].iter().map(|p| p.1.clone()).collect();
            out.push((pairs[i].0.clone(), app.reduce(&pairs[i].0, &values)));
            i = j;
        }
        out
    }

    #[test]
    fn apps_compute_what_the_lab_expects() {
        let docs = [("a.txt", "the cat, the hat!\nno-cat"), ("b.txt", "The hat")];
        let wc = run(&WordCount, &docs);
        assert!(wc.contains(&("the".into(), "2".into())));
        assert!(wc.contains(&("cat".into(), "2".into())));
        assert!(wc.contains(&("The".into(), "1".into())));
        let ix = run(&Indexer, &docs);
        assert!(ix.contains(&("hat".into(), "2 a.txt,b.txt".into())));
        assert!(ix.contains(&("no".into(), "1 a.txt".into())));
        let gr = run(&Grep("cat".into()), &docs);
        assert_eq!(
            gr,
            vec![
                ("a.txt:1".into(), "the cat, the hat!".into()),
                ("a.txt:2".into(), "no-cat".into())
            ]
        );
        assert!(by_name("grep", None).is_err());
        let text = "naïve café, São-Paulo 42x";
        assert_eq!(
            words(text).collect::<Vec<_>>(),
            ["naïve", "café", "São", "Paulo", "x"]
        );
        assert_eq!(words("").count(), 0);
        assert_eq!(words("...").count(), 0);
        assert!(by_name("sort", None).is_err());
    }
}
