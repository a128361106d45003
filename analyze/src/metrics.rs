//! Classification metrics for `eval` and `train-head`: accuracy, macro-F1, per-class precision /
//! recall / F1 and the confusion matrix.

use serde::Serialize;
use std::collections::BTreeMap;

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

/// Scores of one label column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub rows: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub per_class: BTreeMap<String, ClassScores>,
    /// `confusion[gold][predicted]` counts, over `classes`.
    pub classes: Vec<String>,
    pub confusion: Vec<Vec<usize>>,
}

/// Scores `(gold, predicted)` pairs. Classes are those in `classes` plus any label seen; macro-F1
/// averages over classes that occur in the gold labels.
pub fn report(pairs: &[(String, String)], classes: &[String]) -> Report {
    let mut classes: Vec<String> = classes.to_vec();
    for (g, p) in pairs {
        for l in [g, p] {
            if !classes.contains(l) {
                classes.push(l.clone());
            }
        }
    }
    let index = |l: &str| classes.iter().position(|c| c == l).unwrap_or(0);
    let mut confusion = vec![vec![0usize; classes.len()]; classes.len()];
    for (g, p) in pairs {
        confusion[index(g)][index(p)] += 1;
    }
    let correct: usize = (0..classes.len()).map(|i| confusion[i][i]).sum();
    let mut per_class = BTreeMap::new();
    let mut f1s = Vec::new();
    for (i, class) in classes.iter().enumerate() {
        let support: usize = confusion[i].iter().sum();
        let predicted: usize = confusion.iter().map(|row| row[i]).sum();
        let tp = confusion[i][i] as f64;
        let precision = if predicted == 0 { 0.0 } else { tp / predicted as f64 };
        let recall = if support == 0 { 0.0 } else { tp / support as f64 };
        let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
        if support > 0 {
            f1s.push(f1);
        }
        if support > 0 || predicted > 0 {
            per_class.insert(class.clone(), ClassScores { precision, recall, f1, support });
        }
    }
    Report {
        rows: pairs.len(),
        accuracy: if pairs.is_empty() { 0.0 } else { correct as f64 / pairs.len() as f64 },
        macro_f1: if f1s.is_empty() { 0.0 } else { f1s.iter().sum::<f64>() / f1s.len() as f64 },
        per_class,
        classes,
        confusion,
    }
}

/// Renders the report as aligned text (per-class table and confusion matrix).
pub fn render(title: &str, r: &Report) -> String {
    let mut out = format!("{title}: rows {}  accuracy {:.4}  macro-F1 {:.4}\n", r.rows, r.accuracy, r.macro_f1);
    let width = r.classes.iter().map(String::len).max().unwrap_or(5).max(9);
    out += &format!("  {:<width$} {:>9} {:>9} {:>9} {:>8}\n", "class", "precision", "recall", "f1", "support");
    for (class, s) in &r.per_class {
        out += &format!("  {class:<width$} {:>9.4} {:>9.4} {:>9.4} {:>8}\n", s.precision, s.recall, s.f1, s.support);
    }
    out += &format!("  confusion (rows gold, columns predicted)\n  {:<width$}", "");
    let short: Vec<String> = r.classes.iter().map(|c| c.chars().take(8).collect()).collect();
    for c in &short {
        out += &format!(" {c:>8}");
    }
    out.push('\n');
    for (class, row) in r.classes.iter().zip(&r.confusion) {
        out += &format!("  {class:<width$}");
        for n in row {
            out += &format!(" {n:>8}");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(g, p)| (g.to_string(), p.to_string())).collect()
    }

    #[test]
    fn hand_computed_scores() {
        let r =
            report(&pairs(&[("a", "a"), ("a", "b"), ("b", "b"), ("c", "b")]), &["a".into(), "b".into(), "c".into()]);
        assert_eq!(r.accuracy, 0.5);
        let b = &r.per_class["b"];
        assert!((b.precision - 1.0 / 3.0).abs() < 1e-12 && b.recall == 1.0);
        // F1: a = 2/3, b = 0.5, c = 0 → macro 7/18
        assert!((r.macro_f1 - 7.0 / 18.0).abs() < 1e-12);
        assert_eq!(r.confusion[2][1], 1);
        assert!(render("t", &r).contains("macro-F1 0.3889"));
    }
}
