//! A group's label: its most distinctive words. Terms are single words and pairs of adjacent words
//! (Vietnamese writes one syllable per word, so "đóng cửa" is a pair), compared without diacritics
//! so that "dong cua" and "đóng cửa" count as one term, and shown in their most common form with
//! diacritics. A term's weight is the share of the group's posts that use it times how rare it is
//! among all the day's posts (tf-idf over the group as one document, as in c-TF-IDF).

use schema::terms::fold_diacritics;
use std::collections::{BTreeMap, HashMap, HashSet};
use unicode_normalization::UnicodeNormalization;

/// Words that say nothing on their own (Vietnamese and English), never a term alone, written as
/// they are with diacritics: "của" (of) is one, "cửa" (door) is not. A word written without any
/// diacritics is compared with their folded forms ("cua" could be either; it is taken as "của").
const STOPWORDS: &[&str] = &[
    "và", "là", "của", "có", "không", "thì", "mà", "này", "đó", "cho", "với", "được", "bị", "ở", "một", "những", "các",
    "nhiều", "rất", "quá", "rồi", "còn", "đã", "đang", "sẽ", "ai", "gì", "sao", "nào", "vậy", "nhé", "à", "ơi", "hả",
    "nè", "đi", "lên", "ra", "vào", "từ", "đến", "trong", "ngoài", "trên", "dưới", "khi", "nếu", "vì", "nên", "cũng",
    "vẫn", "lại", "mới", "hay", "hoặc", "thôi", "tôi", "mình", "em", "anh", "chị", "bạn", "ko", "k", "dc", "j", "the",
    "an", "and", "or", "of", "to", "in", "on", "at", "for", "is", "are", "was", "it", "this", "that", "with", "my",
    "i", "we", "you", "they", "be", "so", "but", "not", "no", "from", "by", "a",
];

fn is_stopword(word: &str, folded: &str) -> bool {
    static FOLDED: std::sync::OnceLock<HashSet<String>> = std::sync::OnceLock::new();
    if word.is_ascii() {
        FOLDED.get_or_init(|| STOPWORDS.iter().map(|s| fold_diacritics(s)).collect()).contains(folded)
    } else {
        STOPWORDS.contains(&word)
    }
}

/// The words of `text`: lower case, NFC, letters and digits only; redaction placeholders
/// (`[phone]`, `[email]`, `[id]`) and bare numbers left out.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_placeholder = false;
    for raw in text.split(|c: char| !(c.is_alphanumeric() || c == '[' || c == ']')) {
        if raw.is_empty() {
            continue;
        }
        let placeholder = raw.starts_with('[') || in_placeholder;
        in_placeholder = raw.starts_with('[') && !raw.ends_with(']');
        let word: String = raw.trim_matches(|c| c == '[' || c == ']').nfc().flat_map(char::to_lowercase).collect();
        if placeholder || word.is_empty() || word.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        out.push(word);
    }
    out
}

/// The terms of one post (each once): words of two letters or more not in [`STOPWORDS`], and
/// adjacent pairs with no stopword ("chữ y" is a pair though "y" is no word alone). Keys are
/// folded; the value is the form as written.
fn terms(text: &str) -> HashMap<String, String> {
    let ws = words(text);
    let folded: Vec<String> = ws.iter().map(|w| fold_diacritics(w)).collect();
    let stop = |i: usize| is_stopword(&ws[i], &folded[i]);
    let mut out = HashMap::new();
    for i in 0..ws.len() {
        if !stop(i) && folded[i].chars().count() >= 2 {
            out.entry(folded[i].clone()).or_insert_with(|| ws[i].clone());
        }
        if i + 1 < ws.len() && !stop(i) && !stop(i + 1) {
            out.entry(format!("{} {}", folded[i], folded[i + 1])).or_insert_with(|| format!("{} {}", ws[i], ws[i + 1]));
        }
    }
    out
}

/// How many of the day's posts use each term: the background the groups are compared with.
#[derive(Debug, Default)]
pub struct Background {
    posts: usize,
    df: HashMap<String, u32>,
}

impl Background {
    pub fn add(&mut self, text: &str) {
        self.posts += 1;
        for key in terms(text).into_keys() {
            *self.df.entry(key).or_default() += 1;
        }
    }
}

/// A distinctive term of a group.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    /// As shown: the most common written form, with diacritics when any post wrote them.
    pub text: String,
    /// Share of the group's posts that use it.
    pub share: f32,
}

/// The group's `n` most distinctive terms. A term must appear in at least a fifth of the group's
/// posts (and two); a word already inside a chosen pair is not repeated.
pub fn distinctive(texts: &[&str], background: &Background, n: usize) -> Vec<Term> {
    let mut df: HashMap<String, u32> = HashMap::new();
    let mut forms: HashMap<String, BTreeMap<String, u32>> = HashMap::new();
    for text in texts {
        for (key, form) in terms(text) {
            *df.entry(key.clone()).or_default() += 1;
            *forms.entry(key).or_default().entry(form).or_default() += 1;
        }
    }
    let size = texts.len().max(1) as f32;
    let min_df = ((texts.len() as f32 / 5.0).ceil() as u32).max(2);
    let total = background.posts.max(texts.len()) as f32;
    let mut scored: Vec<(String, f32, f32)> = df
        .iter()
        .filter(|(_, &d)| d >= min_df)
        .map(|(key, &d)| {
            let everywhere = background.df.get(key).copied().unwrap_or(0).max(d) as f32;
            let share = d as f32 / size;
            // Pairs are more telling than their words: a small bonus breaks near-ties their way.
            let pair_bonus = if key.contains(' ') { 1.15 } else { 1.0 };
            (key.clone(), share, share * ((total + 1.0) / everywhere).ln() * pair_bonus)
        })
        .collect();
    scored.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
    let mut chosen: Vec<(String, Term)> = Vec::new();
    let mut used: HashSet<String> = HashSet::new();
    for (key, share, _) in scored {
        if chosen.len() == n {
            break;
        }
        let parts: Vec<&str> = key.split(' ').collect();
        if let [first, second] = parts[..] {
            // A pair that continues a chosen phrase about as often as the phrase occurs extends it
            // ("cầu chữ" + "chữ y" = "cầu chữ y", up to three words); one that only shares a word
            // with it would repeat it.
            let form = shown_form(&forms[&key]);
            if let Some((k, t)) = chosen.iter_mut().find(|(k, _)| k.ends_with(&format!(" {first}"))) {
                let phrase = share >= 0.9 * t.share && k.matches(' ').count() < 2;
                if phrase && !used.contains(second) {
                    k.push_str(&format!(" {second}"));
                    t.text = format!("{} {}", t.text, form.rsplit(' ').next().unwrap_or(second));
                    used.insert(second.to_owned());
                }
                continue;
            }
            if let Some((k, t)) = chosen.iter_mut().find(|(k, _)| k.starts_with(&format!("{second} "))) {
                let phrase = share >= 0.9 * t.share && k.matches(' ').count() < 2;
                if phrase && !used.contains(first) {
                    *k = format!("{first} {k}");
                    t.text = format!("{} {}", form.split(' ').next().unwrap_or(first), t.text);
                    used.insert(first.to_owned());
                }
                continue;
            }
            if parts.iter().any(|p| used.contains(*p)) {
                continue;
            }
        } else if used.contains(&key) {
            continue;
        }
        parts.iter().for_each(|p| {
            used.insert((*p).to_owned());
        });
        chosen.push((key.clone(), Term { text: shown_form(&forms[&key]), share }));
    }
    chosen.into_iter().map(|(_, t)| t).collect()
}

/// The most common form that carries diacritics, else the most common form.
fn shown_form(forms: &BTreeMap<String, u32>) -> String {
    let best = |accented: bool| {
        forms.iter().filter(|(f, _)| !accented || !f.is_ascii()).max_by_key(|(_, &c)| c).map(|(f, _)| f.clone())
    };
    best(true).or_else(|| best(false)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_drop_placeholders_numbers_and_punctuation() {
        assert_eq!(
            words("Gọi [phone] ngay!! Cầu Chữ Y đóng 3 tháng, email [email]"),
            vec!["gọi", "ngay", "cầu", "chữ", "y", "đóng", "tháng", "email"]
        );
    }

    #[test]
    fn a_group_is_labelled_by_its_own_words_with_diacritics() {
        let group = [
            "Cầu Chữ Y đóng cửa sửa chữa từ sáng nay",
            "cau chu y dong cua sua chua, di vong qua troi",
            "Sao đóng cửa cầu Chữ Y mà không báo trước",
            "Cầu Chữ Y đóng cửa 3 tháng để sửa chữa",
            "ủa cầu chữ y đóng cửa hả",
        ];
        let mut bg = Background::default();
        for t in group.iter().chain(&[
            "Phở ở quán này ngon quá",
            "Trận bóng tối qua hay thật",
            "Sáng nay trời mát, đi bộ công viên",
            "Quán cà phê mới mở ở quận 3",
            "Ai biết chỗ sửa điện thoại uy tín không",
        ]) {
            bg.add(t);
        }
        // A day has many more posts than one group; the background is what makes words rare.
        for i in 0..40 {
            let t = format!("chuyện thứ {i}: hôm nay đi chợ mua rau, trời nắng");
            bg.add(&t);
        }
        let label: Vec<String> = distinctive(&group, &bg, 3).into_iter().map(|t| t.text).collect();
        assert!(label.iter().any(|t| t == "đóng cửa"), "{label:?}");
        assert!(label.iter().any(|t| t == "cầu chữ y"), "pairs that always go together make a phrase: {label:?}");
        assert!(label.iter().all(|t| !t.contains("cau chu")), "shown with diacritics: {label:?}");
    }

    #[test]
    fn a_word_used_by_one_post_is_not_a_label() {
        let group = ["đường ngập nước", "ngập nước quá", "mưa to ngập nước", "ngập nước lại rồi kìa"];
        let mut bg = Background::default();
        group.iter().for_each(|t| bg.add(t));
        let label = distinctive(&group, &bg, 5);
        assert!(label.iter().all(|t| t.text != "kìa" && t.text != "mưa to"), "{label:?}");
    }
}
