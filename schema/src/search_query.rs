//! The query language of saved searches: words and "phrases" combined with `AND`, `OR`, `NOT` and
//! parentheses, each word or phrase matched as alert `watch_terms` are ([`crate::terms`]: whole
//! words, with or without diacritics, composed or decomposed).
//!
//! ```text
//! query   = or
//! or      = and { "OR" and }
//! and     = unary { ["AND"] unary }        two terms side by side mean AND
//! unary   = "NOT" unary | primary
//! primary = "(" or ")" | phrase | word
//! phrase  = '"' { any character but '"' } '"'
//! word    = { any character but space, '(', ')', '"' }   (not AND, OR or NOT)
//! ```
//! `AND`, `OR` and `NOT` are operators only in capitals; in lower case they are words ("and" in an
//! English post). `NOT` binds tightest, then `AND`, then `OR`: `a OR b c` is `a OR (b AND c)`.
//! A query must name at least one word or phrase that is not under `NOT` (a search for everything
//! but a word is no search). Errors name the 1-based column of the mistake.

use crate::terms::{term_sql, TermError, TermMatcher};
use std::collections::BTreeSet;
use std::fmt;

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// A word or a phrase, as written (without the quotes).
    Term(String),
    Not(Box<Query>),
    And(Vec<Query>),
    Or(Vec<Query>),
}

/// A mistake in a query, with the 1-based column (in characters) where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct QueryError {
    pub column: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Phrase(String),
    And,
    Or,
    Not,
    Open,
    Close,
}

/// Tokens with the 0-based character index each starts at.
fn tokens(input: &str) -> Result<Vec<(usize, Token)>, QueryError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' || c == ')' {
            out.push((i, if c == '(' { Token::Open } else { Token::Close }));
            i += 1;
        } else if c == '"' {
            let end = chars[i + 1..]
                .iter()
                .position(|&c| c == '"')
                .ok_or_else(|| QueryError { column: i + 1, message: "this quote is never closed".into() })?;
            let phrase: String = chars[i + 1..i + 1 + end].iter().collect();
            if phrase.trim().is_empty() {
                return Err(QueryError { column: i + 1, message: "an empty phrase".into() });
            }
            out.push((i, Token::Phrase(phrase.trim().to_owned())));
            i += end + 2;
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && !"()\"".contains(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            out.push((
                start,
                match word.as_str() {
                    "AND" => Token::And,
                    "OR" => Token::Or,
                    "NOT" => Token::Not,
                    _ => Token::Word(word),
                },
            ));
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    at: usize,
    /// Column just past the input, for "expected … at the end".
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(_, t)| t)
    }

    fn column(&self) -> usize {
        self.tokens.get(self.at).map_or(self.end, |(at, _)| at + 1)
    }

    fn or(&mut self) -> Result<Query, QueryError> {
        let mut parts = vec![self.and()?];
        while self.peek() == Some(&Token::Or) {
            self.at += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Query::Or(parts) })
    }

    fn and(&mut self) -> Result<Query, QueryError> {
        let mut parts = vec![self.unary()?];
        loop {
            match self.peek() {
                Some(Token::And) => {
                    self.at += 1;
                    parts.push(self.unary()?);
                }
                Some(Token::Word(_) | Token::Phrase(_) | Token::Not | Token::Open) => parts.push(self.unary()?),
                _ => break,
            }
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Query::And(parts) })
    }

    fn unary(&mut self) -> Result<Query, QueryError> {
        if self.peek() == Some(&Token::Not) {
            self.at += 1;
            return Ok(Query::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Query, QueryError> {
        let column = self.column();
        let expected =
            |what: &str| QueryError { column, message: format!("expected a word, a \"phrase\" or ( {what}") };
        match self.tokens.get(self.at).map(|(_, t)| t.clone()) {
            Some(Token::Word(w)) | Some(Token::Phrase(w)) => {
                self.at += 1;
                Ok(Query::Term(w))
            }
            Some(Token::Open) => {
                self.at += 1;
                let inner = self.or()?;
                if self.peek() != Some(&Token::Close) {
                    return Err(QueryError { column, message: "this parenthesis is never closed".into() });
                }
                self.at += 1;
                Ok(inner)
            }
            Some(Token::Close) => Err(expected("here, not )")),
            Some(Token::And) => Err(expected("here, not AND")),
            Some(Token::Or) => Err(expected("here, not OR")),
            Some(Token::Not) => Err(expected("here")),
            None => Err(expected("at the end")),
        }
    }
}

impl Query {
    /// Parses `input` (see the [module documentation](self)).
    pub fn parse(input: &str) -> Result<Query, QueryError> {
        let tokens = tokens(input)?;
        if tokens.is_empty() {
            return Err(QueryError { column: 1, message: "the query is empty".into() });
        }
        let mut parser = Parser { tokens, at: 0, end: input.chars().count() + 1 };
        let query = parser.or()?;
        if let Some((at, token)) = parser.tokens.get(parser.at) {
            let message = match token {
                Token::Close => "a ) with no ( before it".to_owned(),
                _ => "unexpected text after the query".to_owned(),
            };
            return Err(QueryError { column: at + 1, message });
        }
        if !query.has_positive_term() {
            return Err(QueryError {
                column: 1,
                message: "name at least one word or phrase that is not under NOT".into(),
            });
        }
        Ok(query)
    }

    fn has_positive_term(&self) -> bool {
        match self {
            Query::Term(_) => true,
            Query::Not(_) => false,
            Query::And(parts) => parts.iter().any(Query::has_positive_term),
            Query::Or(parts) => parts.iter().all(Query::has_positive_term),
        }
    }

    /// Every word and phrase, each once.
    pub fn terms(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut BTreeSet<&'a str>) {
        match self {
            Query::Term(t) => {
                out.insert(t.as_str());
            }
            Query::Not(q) => q.collect(out),
            Query::And(parts) | Query::Or(parts) => parts.iter().for_each(|p| p.collect(out)),
        }
    }

    /// The ClickHouse condition on `posts`' search columns that holds exactly where
    /// [`QueryMatcher::is_match`] does on `text_redacted` (see [`crate::terms::term_sql`]).
    /// Fails on a word without letters or digits, which could never match.
    pub fn to_sql(&self) -> Result<String, TermError> {
        Ok(match self {
            Query::Term(t) => term_sql(t).ok_or_else(|| TermError::NoWords { index: 0, term: t.clone() })?,
            Query::Not(q) => format!("NOT ({})", q.to_sql()?),
            Query::And(parts) | Query::Or(parts) => {
                let op = if matches!(self, Query::And(_)) { " AND " } else { " OR " };
                let parts: Vec<String> = parts.iter().map(Query::to_sql).collect::<Result<_, _>>()?;
                format!("({})", parts.join(op))
            }
        })
    }

    /// Whether the query holds when exactly the terms in `present` are in the text.
    pub fn eval(&self, present: &dyn Fn(&str) -> bool) -> bool {
        match self {
            Query::Term(t) => present(t),
            Query::Not(q) => !q.eval(present),
            Query::And(parts) => parts.iter().all(|p| p.eval(present)),
            Query::Or(parts) => parts.iter().any(|p| p.eval(present)),
        }
    }
}

impl fmt::Display for Query {
    /// The canonical form: phrases (anything with a space or an operator's spelling) quoted,
    /// explicit `AND`, parentheses only where needed. It parses back to the same query.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = |q: &Query, f: &mut fmt::Formatter<'_>, parent: u8| -> fmt::Result {
            let rank = match q {
                Query::Or(_) => 0,
                Query::And(_) => 1,
                _ => 2,
            };
            if rank < parent {
                write!(f, "({q})")
            } else {
                write!(f, "{q}")
            }
        };
        match self {
            Query::Term(t) => {
                let bare = !t.is_empty()
                    && !t.chars().any(|c| c.is_whitespace() || "()\"".contains(c))
                    && !["AND", "OR", "NOT"].contains(&t.as_str());
                if bare {
                    write!(f, "{t}")
                } else {
                    write!(f, "\"{t}\"")
                }
            }
            Query::Not(q) => {
                f.write_str("NOT ")?;
                inner(q, f, 2)
            }
            Query::And(parts) | Query::Or(parts) => {
                let (sep, rank) = if matches!(self, Query::And(_)) { (" AND ", 2) } else { (" OR ", 1) };
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    inner(p, f, rank)?;
                }
                Ok(())
            }
        }
    }
}

/// A query ready to match many texts: its terms prepared once.
#[derive(Debug, Clone)]
pub struct QueryMatcher {
    query: Query,
    terms: TermMatcher,
}

impl QueryMatcher {
    pub fn new(query: Query) -> Result<Self, TermError> {
        let terms: Vec<String> = query.terms().into_iter().map(str::to_owned).collect();
        Ok(QueryMatcher { terms: TermMatcher::new(&terms)?, query })
    }

    pub fn query(&self) -> &Query {
        &self.query
    }

    /// Whether `text` matches the query.
    pub fn is_match(&self, text: &str) -> bool {
        let found: BTreeSet<&str> = self.terms.matched(text).into_iter().collect();
        self.query.eval(&|t| found.contains(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn term(t: &str) -> Query {
        Query::Term(t.into())
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        assert_eq!(
            Query::parse("ngập OR kẹt xe NOT mưa").unwrap(),
            Query::Or(vec![term("ngập"), Query::And(vec![term("kẹt"), term("xe"), Query::Not(Box::new(term("mưa")))])])
        );
        assert_eq!(
            Query::parse("(ngập OR \"kẹt xe\") AND \"Thủ Đức\"").unwrap(),
            Query::And(vec![Query::Or(vec![term("ngập"), term("kẹt xe")]), term("Thủ Đức")])
        );
        assert_eq!(Query::parse("flood and rain").unwrap(), Query::And(vec![term("flood"), term("and"), term("rain")]));
    }

    #[test]
    fn mistakes_name_their_column() {
        let err = |q: &str| Query::parse(q).unwrap_err();
        assert_eq!(err("(ngập OR kẹt"), QueryError { column: 1, message: "this parenthesis is never closed".into() });
        assert_eq!(err("ngập )").column, 6);
        assert_eq!(err("ngập OR").column, 8, "{}", err("ngập OR"));
        assert!(err("ngập OR").message.contains("at the end"));
        assert_eq!(err("ngập AND OR mưa").column, 10);
        assert_eq!(err("\"kẹt xe").column, 1);
        assert!(err("\"kẹt xe").message.contains("never closed"));
        assert_eq!(err("a \"  \" b").column, 3);
        assert!(err("   ").message.contains("empty"));
        assert!(err("NOT mưa").message.contains("not under NOT"));
        assert!(err("ngập OR NOT mưa").message.contains("not under NOT"), "the OR's right side matches nearly all");
        assert!(Query::parse("ngập NOT mưa").is_ok());
    }

    #[test]
    fn matching_follows_the_term_rules() {
        let q = QueryMatcher::new(Query::parse("(ngập OR \"kẹt xe\") NOT \"tin giả\"").unwrap()).unwrap();
        assert!(q.is_match("Đường Nguyễn Hữu Cảnh NGẬP sâu"));
        assert!(q.is_match("duong ngap qua troi"), "unaccented text, term with diacritics");
        assert!(q.is_match("Kẹt-xe ở vòng xoay"), "a phrase across a hyphen");
        assert!(!q.is_match("ngáp ngủ cả ngày"), "ngáp is not ngập");
        assert!(!q.is_match("ngập là tin giả"), "NOT");
        assert!(!q.is_match("kẹt. Xe cứu thương"), "a phrase does not cross a full stop");
    }

    fn arb_query() -> impl Strategy<Value = Query> {
        let leaf = prop_oneof![
            prop::sample::select(vec!["ngập", "ngap", "kẹt", "xe", "mưa", "and", "flood", "cầu"]).prop_map(term),
            prop::sample::select(vec!["kẹt xe", "Thủ Đức", "tin giả"]).prop_map(term),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                inner.clone().prop_map(|q| Query::Not(Box::new(q))),
                prop::collection::vec(inner.clone(), 2..4).prop_map(Query::And),
                prop::collection::vec(inner, 2..4).prop_map(Query::Or),
            ]
        })
    }

    /// Flattens nested ANDs in ANDs and ORs in ORs, as the parser reads them.
    fn flat(q: Query) -> Query {
        match q {
            Query::Not(q) => Query::Not(Box::new(flat(*q))),
            Query::And(parts) => Query::And(
                parts.into_iter().map(flat).flat_map(|p| if let Query::And(v) = p { v } else { vec![p] }).collect(),
            ),
            Query::Or(parts) => Query::Or(
                parts.into_iter().map(flat).flat_map(|p| if let Query::Or(v) = p { v } else { vec![p] }).collect(),
            ),
            t => t,
        }
    }

    proptest! {
        #[test]
        fn the_canonical_form_parses_back(q in arb_query()) {
            let q = flat(q);
            prop_assume!(q.has_positive_term());
            let text = q.to_string();
            prop_assert_eq!(Query::parse(&text).unwrap(), q, "{}", text);
        }

        #[test]
        fn any_input_parses_or_names_a_column_inside_it(s in "[a-zđ() \"ANDORT]{0,24}") {
            match Query::parse(&s) {
                Ok(q) => prop_assert!(Query::parse(&q.to_string()).is_ok()),
                Err(e) => prop_assert!(e.column >= 1 && e.column <= s.chars().count() + 1, "{e} in {s:?}"),
            }
        }

        #[test]
        fn a_text_matches_as_the_query_says_of_its_words(
            q in arb_query(),
            words in prop::collection::btree_set(prop::sample::select(vec!["ngập", "kẹt", "xe", "mưa", "cầu", "flood", "and"]), 0..6),
        ) {
            let q = flat(q);
            prop_assume!(q.has_positive_term());
            // Words one per clause, so no phrase can form by accident; phrases added whole.
            let mut text: Vec<String> = words.iter().map(|w| w.to_string()).collect();
            let phrases = ["kẹt xe", "Thủ Đức", "tin giả"];
            text.extend(phrases.iter().filter(|p| words.contains(&p.split(' ').next().unwrap())).map(|p| p.to_string()));
            let text = text.join(". ");
            let present = |t: &str| crate::terms::matches(t, &text);
            let matcher = QueryMatcher::new(q.clone()).unwrap();
            prop_assert_eq!(matcher.is_match(&text), q.eval(&present), "{} on {:?}", q, text);
        }
    }
}
