//! Collecting every configuration problem before reporting, each with its file and key path.

use std::fmt;

/// One problem: which file, which key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// Dotted key path (`mastodon[0].base_url`), or empty for the whole file.
    pub path: String,
    /// 1-based line in the file, where known.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// All problems found in a configuration; its Display lists them one per line.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} configuration problem(s):", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl Problems {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A scoped collector for one file.
    pub fn file<'a>(&'a mut self, file: &str) -> FileProblems<'a> {
        FileProblems { file: file.to_owned(), out: self }
    }
}

/// Adds problems for one file; `check` is the common "push unless ok" form.
pub struct FileProblems<'a> {
    file: String,
    out: &'a mut Problems,
}

impl FileProblems<'_> {
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.out.0.push(Problem { file: self.file.clone(), path: path.into(), line: None, message: message.into() });
    }

    pub fn push_at_line(&mut self, path: impl Into<String>, line: Option<usize>, message: impl Into<String>) {
        self.out.0.push(Problem { file: self.file.clone(), path: path.into(), line, message: message.into() });
    }

    /// Records `message` at `path` when `ok` is false.
    pub fn check(&mut self, ok: bool, path: impl Into<String>, message: impl Into<String>) {
        if !ok {
            self.push(path, message);
        }
    }

    /// Common check for a URL with one of the allowed schemes.
    pub fn url(&mut self, url: &url::Url, schemes: &[&str], path: impl Into<String>) {
        if !schemes.contains(&url.scheme()) || url.host_str().is_none() {
            self.push(path, format!("URL {url} must be {} with a host", schemes.join(" or ")));
        }
    }

    /// Checks that ids in a list are unique.
    pub fn unique<'i>(&mut self, ids: impl IntoIterator<Item = &'i str>, what: &str) {
        let mut seen = std::collections::HashSet::new();
        for id in ids {
            if !seen.insert(id) {
                self.push(what, format!("duplicate {what} {id:?}"));
            }
        }
    }
}
