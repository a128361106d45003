//! The labelled TSV format (shared/data/README.md): UTF-8, a header row, a `text` column and any of
//! `sentiment` (negative | neutral | positive) and `topic`, and optionally `correction_id` (an
//! export of analysts' corrections). Read by `eval` and `train-head`; other columns are ignored.

use schema::SentimentLabel;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum LabelledError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}: the header has no `text` column (found: {found})")]
    NoText { path: String, found: String },
    #[error("{path}:{line}: {message}")]
    Row { path: String, line: usize, message: String },
}

/// One labelled row.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledRow {
    pub text: String,
    pub sentiment: Option<SentimentLabel>,
    pub topic: Option<String>,
    /// The `correction_id` column of `citypulse labels export`: an analyst's correction, which
    /// `train-head` names in the head's provenance.
    pub correction_id: Option<String>,
}

/// A whole file.
#[derive(Debug, Clone)]
pub struct LabelledSet {
    pub rows: Vec<LabelledRow>,
    pub has_sentiment: bool,
    pub has_topic: bool,
}

pub fn read_tsv(path: &Path) -> Result<LabelledSet, LabelledError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LabelledError::Read { path: path.display().to_string(), message: e.to_string() })?;
    parse_tsv(&text, &path.display().to_string())
}

pub fn parse_tsv(text: &str, path: &str) -> Result<LabelledSet, LabelledError> {
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> =
        lines.next().map(|(_, h)| h.trim_start_matches('\u{feff}').split('\t').collect()).unwrap_or_default();
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let text_col = col("text").ok_or_else(|| LabelledError::NoText { path: path.into(), found: header.join(", ") })?;
    let (sentiment_col, topic_col, correction_col) = (col("sentiment"), col("topic"), col("correction_id"));
    let mut rows = Vec::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let row_err = |message: String| LabelledError::Row { path: path.into(), line: i + 1, message };
        let field = |c: usize| fields.get(c).copied().ok_or_else(|| row_err(format!("missing column {}", header[c])));
        let sentiment = match sentiment_col {
            Some(c) => {
                let v = field(c)?;
                Some(
                    SentimentLabel::parse(v)
                        .ok_or_else(|| row_err(format!("sentiment {v:?} is not negative, neutral or positive")))?,
                )
            }
            None => None,
        };
        let topic = topic_col.map(field).transpose()?.map(|t| t.trim().to_owned());
        let correction_id = correction_col.map(field).transpose()?.map(|c| c.trim().to_owned());
        rows.push(LabelledRow { text: field(text_col)?.to_owned(), sentiment, topic, correction_id });
    }
    Ok(LabelledSet { rows, has_sentiment: sentiment_col.is_some(), has_topic: topic_col.is_some() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_columns_in_any_order() {
        let set = parse_tsv("topic\ttext\tsentiment\ntraffic\tkẹt xe\tnegative\n\n", "x.tsv").unwrap();
        assert!(set.has_sentiment && set.has_topic);
        assert_eq!(
            set.rows,
            vec![LabelledRow {
                text: "kẹt xe".into(),
                sentiment: Some(SentimentLabel::Negative),
                topic: Some("traffic".into()),
                correction_id: None,
            }]
        );
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse_tsv("sentiment\ttext\nbad\tx\n", "x.tsv").unwrap_err();
        assert_eq!(err.to_string(), "x.tsv:2: sentiment \"bad\" is not negative, neutral or positive");
        assert!(parse_tsv("label\tsentence\n", "y.tsv").is_err());
    }
}
