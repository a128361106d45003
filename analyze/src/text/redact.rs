//! PII redaction: phone numbers, e-mail addresses, ID numbers and payment card numbers.
//!
//! E-mail addresses and passport numbers are plain regexes. Numbers are harder: a phone is
//! written "0903 123 456", "090.312.3456", "(+84) 28 3823 4567"…, while prices, dates, plates
//! and hotlines use the same digits and separators and must survive. So numbers are read as
//! *chains*: digit groups joined by one space, dot or dash ("0903 123 456" is the chain
//! [0903, 123, 456]). Each chain is cut, left to right, into the longest runs of whole
//! groups that form a phone, card or ID number; groups that form none are left as they are.
//! Cutting only between groups means "năm 2024 0903 123 456" loses the phone but keeps
//! the year, and two phones in a row are both found.

use regex::{Captures, Regex};
use std::sync::LazyLock;

/// Text with PII replaced by placeholders, and how many of each kind were replaced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redacted {
    pub text: String,
    pub phones: u32,
    pub emails: u32,
    pub id_numbers: u32,
    pub cards: u32,
}

const PHONE: &str = "[phone]";
const EMAIL: &str = "[email]";
const ID: &str = "[id]";
const CARD: &str = "[card]";

/// PII redaction. Replace with placeholders "[phone]", "[email]", "[id]", "[card]".
///
/// Removed: e-mail addresses (also "abc [at] gmail [dot] com"); Vietnamese mobiles and
/// landlines in any usual spacing, with or without +84/84/0084; other numbers written with a
/// "+" country code; 12-digit citizen IDs (CCCD); 9–12 digit numbers after an ID keyword
/// (CMND, CMT, chứng minh, căn cước, passport…) and passport numbers ("C1234567") after
/// one; Luhn-valid card numbers (13–19 digits); 8–19 digit numbers after a bank-account or
/// card keyword (STK, tài khoản, thẻ…) become "[card]".
/// Kept: hotlines and service numbers (113, 1900 1234, 1800 1091), dates, times, prices,
/// percentages, measures, post codes, plates, years, house numbers, counts.
/// The text is `normalize()`d first, so that no-break or zero-width spaces inside a number
/// ("0903\u{00A0}123\u{200B}456") cannot hide it; the result is normalized text.
/// Idempotent: placeholders contain no digits and break chains and keyword contexts.
pub fn redact(text: &str) -> Redacted {
    let mut out = Redacted::default();
    let text = super::normalize(text);
    let text = replace_counted(&EMAIL_ADDRESS, &text, EMAIL, &mut out.emails);
    let text = replace_counted(&EMAIL_OBFUSCATED, &text, EMAIL, &mut out.emails);
    let text = PASSPORT.replace_all(&text, |c: &Captures| {
        out.id_numbers += 1;
        format!("{}{ID}", &c[1])
    });
    out.text = redact_numbers(&text, &mut out);
    out
}

fn replace_counted(re: &Regex, text: &str, placeholder: &str, count: &mut u32) -> String {
    re.replace_all(text, |_: &Captures| {
        *count += 1;
        placeholder
    })
    .into_owned()
}

fn constant(re: &str) -> Regex {
    Regex::new(re).expect("redaction regexes are valid constants")
}

static EMAIL_ADDRESS: LazyLock<Regex> =
    LazyLock::new(|| constant(r"[\p{L}\p{N}._%+\-]+@(?:[\p{L}\p{N}\-]+\.)+[\p{L}]{2,}"));
/// "abc [at] gmail [dot] com", "abc(at)gmail.com", "abc [a còng] gmail.com". Without brackets
/// ("abc at gmail dot com") the words are too ambiguous to act on.
static EMAIL_OBFUSCATED: LazyLock<Regex> = LazyLock::new(|| {
    constant(
        r"(?i)[\p{L}\p{N}._%+\-]+\s?[\[({]\s?(?:at|@|a còng)\s?[\])}]\s?(?:[\p{L}\p{N}\-]+\s?(?:\.|[\[({]\s?(?:dot|chấm)\s?[\])}])\s?)+\p{L}{2,}",
    )
});
static PASSPORT: LazyLock<Regex> = LazyLock::new(|| {
    constant(
        r"(?i)((?:passport|hộ chiếu|ho chieu)[^\p{L}\p{N}\[\]]{0,12}(?:(?:số|so|no\.?|number)\s*:?\s*)?)[A-Z]\d{7,8}\b",
    )
});

/// Keywords that make a 9–12 digit number an ID ("CMND: 025 123 456"). The gap after the
/// keyword may not hold digits or a placeholder, so the context is the same on a second pass.
static ID_KEYWORD: LazyLock<Regex> = LazyLock::new(|| {
    constant(
        r"(?i)(?:\bcmnd|\bcmt\b|\bcccd|căn cước|\bcan cuoc|chứng minh|\bchung minh|\bcm\b|\bid\b|identity|passport|hộ chiếu)[^\d\[\]]{0,20}$",
    )
});
/// Keywords that make a 9-digit number starting 3/5/7/8/9 a mobile without its 0.
static PHONE_KEYWORD: LazyLock<Regex> = LazyLock::new(|| {
    constant(
        r"(?i)(?:\bs[đd]t|\b[đd]t\b|điện thoại|\bdien thoai|\bphone|\btel\b|\bzalo|\bmobile|\bcall|\bgọi|\blh\b|liên hệ)[^\d\[\]]{0,15}$",
    )
});
/// Keywords that make an 8–19 digit number a bank account or card number.
static ACCOUNT_KEYWORD: LazyLock<Regex> = LazyLock::new(|| {
    constant(
        r"(?i)(?:\bstk\b|\bs[ốo] tk\b|tài khoản|\btai khoan|\baccount|\bacct?\b|\bthẻ|\bcard|\bvisa|mastercard)[^\d\[\]]{0,20}$",
    )
});
/// A unit right after a number makes it an amount, never an ID or a card.
static AMOUNT_UNIT: LazyLock<Regex> = LazyLock::new(|| {
    constant(r"(?i)^\s?(?:(?:đ|vn[dđ]|đồng|dong|k|tr|triệu|trieu|tỷ|tỉ|ty|nghìn|ngàn|usd|người|nguoi)\b|₫|\$|%)")
});

/// One digit group of a chain: "0903", "(028)", "+84", "(+84)".
#[derive(Debug, Clone, Copy)]
struct Group {
    start: usize,
    end: usize,
    /// Byte range of the digits inside the group.
    digits: (usize, usize),
    plus: bool,
    paren: bool,
    /// The separator before this group (b' ' or b'.' or b'-'; 0 for none/first).
    sep: u8,
    /// Part of a date ("12.03.2024"): never part of PII.
    date: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Phone,
    Id,
    Card,
}

fn redact_numbers(text: &str, counts: &mut Redacted) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for chain in chains(text) {
        let mut i = 0;
        while i < chain.len() {
            // The words before the number as a second pass would see them: with the
            // placeholders already written ("0903123456STK" is "[phone]STK" then).
            // Only its end matters (the keyword rules are anchored there), so only the end is
            // copied: the whole stretch since the last redaction made a long chain quadratic.
            let before = || format!("{}{}", tail(&out, 40), tail(&text[copied..chain[i].start], CONTEXT_CHARS));
            let Some((j, kind)) = classify(text, before, &chain, i) else {
                i += 1;
                continue;
            };
            out.push_str(&text[copied..chain[i].start]);
            let (placeholder, count) = match kind {
                Kind::Phone => (PHONE, &mut counts.phones),
                Kind::Id => (ID, &mut counts.id_numbers),
                Kind::Card => (CARD, &mut counts.cards),
            };
            out.push_str(placeholder);
            *count += 1;
            copied = chain[j].end;
            i = j + 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Characters of context before a number that the keyword rules can see: the longest keyword
/// (10 characters) plus the longest gap they allow (20) and the character that `\b` looks at,
/// with room to spare. A match ends at the number, so nothing further back can change one.
const CONTEXT_CHARS: usize = 48;

/// The last `n` characters of `s`.
fn tail(s: &str, n: usize) -> &str {
    s.char_indices().rev().nth(n - 1).map_or(s, |(k, _)| &s[k..])
}

/// Splits the text into chains of digit groups (all positions are ASCII, so byte offsets
/// are char boundaries).
fn chains(text: &str) -> Vec<Vec<Group>> {
    let b = text.as_bytes();
    let mut chains = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        // A chain never starts inside digits: every digit run is consumed by a chain. A "+"
        // right after digits ("…926+4111") starts a new number, as it would after a placeholder.
        let Some(first) = group_at(b, pos, 0) else {
            pos += 1;
            continue;
        };
        let mut chain = vec![first];
        let mut end = first.end;
        loop {
            let prev = chain[chain.len() - 1];
            // One separator between groups; none needed after ")": "(028)38234567".
            let (sep, next_pos) = match b.get(end) {
                Some(&s @ (b' ' | b'.' | b'-')) => (s, end + 1),
                _ if prev.paren => (0, end),
                _ => break,
            };
            match group_at(b, next_pos, sep) {
                // A "+" starts a new number, it never continues one.
                Some(g) if !g.plus => {
                    chain.push(g);
                    end = g.end;
                }
                _ => break,
            }
        }
        mark_dates(text, &mut chain);
        pos = end;
        chains.push(chain);
    }
    chains
}

/// A group at `pos`: digits, "+digits", "(digits)" or "(+digits)".
fn group_at(b: &[u8], pos: usize, sep: u8) -> Option<Group> {
    let mut i = pos;
    let paren = b.get(i) == Some(&b'(');
    i += usize::from(paren);
    if paren && b.get(i) == Some(&b' ') {
        i += 1; // "( +84 )" is rare but costs nothing.
    }
    let plus = b.get(i) == Some(&b'+');
    i += usize::from(plus);
    let digits_start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    if i == digits_start {
        return None;
    }
    let digits = (digits_start, i);
    if paren {
        if b.get(i) == Some(&b' ') {
            i += 1;
        }
        if b.get(i) != Some(&b')') {
            return None;
        }
        i += 1;
    }
    Some(Group {
        start: pos,
        end: i,
        digits,
        plus,
        paren,
        sep,
        date: false, // set by mark_dates once the whole chain is known
    })
}

/// Marks day.month.year and year-month-day triples (four-digit years only: "09.03.12" may be
/// a phone's groups) so that "03.12.2024 10" is not read as the phone "0312202410".
fn mark_dates(text: &str, chain: &mut [Group]) {
    let value = |g: Group| text[g.digits.0..g.digits.1].parse::<u32>().unwrap_or(u32::MAX);
    let len = |g: Group| g.digits.1 - g.digits.0;
    let year = |g: Group| len(g) == 4 && (1900..=2099).contains(&value(g));
    let day = |g: Group| len(g) <= 2 && (1..=31).contains(&value(g));
    let month = |g: Group| len(g) <= 2 && (1..=12).contains(&value(g));
    for k in 0..chain.len().saturating_sub(2) {
        let [a, b, c] = [chain[k], chain[k + 1], chain[k + 2]];
        let same_sep = b.sep == c.sep && matches!(b.sep, b'.' | b'-');
        let dmy = day(a) && month(b) && year(c);
        let ymd = year(a) && month(b) && day(c);
        if same_sep && !a.plus && !a.paren && (dmy || ymd) {
            for g in &mut chain[k..k + 3] {
                g.date = true;
            }
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Work done by [`classify`] on this thread (groups examined, context bytes built): the
    /// tests bound its growth, which a timer could not do independently of the machine.
    pub(super) static STEPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Counts `n` steps of work (tests only; nothing in a release build).
fn step(n: usize) {
    #[cfg(test)]
    STEPS.with(|s| s.set(s.get() + n as u64));
    #[cfg(not(test))]
    let _ = n;
}

/// The longest run of groups from `i` that is PII, and its kind. Phones are tried first:
/// they are the most common and their shapes are the most specific.
fn classify(text: &str, before: impl FnOnce() -> String, chain: &[Group], i: usize) -> Option<(usize, Kind)> {
    // Candidate runs i..=j, longest first. They stop at a date and at 19 digits (no PII is
    // longer), which also keeps a hostile "1 1 1 1 …" linear.
    let mut runs: Vec<(usize, String)> = Vec::new();
    let mut digits = String::new();
    for (j, g) in chain.iter().enumerate().skip(i) {
        step(1);
        digits.push_str(&text[g.digits.0..g.digits.1]);
        if g.date || digits.len() > 19 {
            break;
        }
        runs.push((j, digits.clone()));
    }
    runs.reverse();
    // Nothing below 8 digits is PII here: years, prices, plates and hotlines end now.
    if runs.first().is_none_or(|(_, d)| d.len() < 8) {
        return None;
    }
    let after = |j: usize| &text[chain[j].end..];
    let dollar = text[..chain[i].start].ends_with('$');
    let amount = |j: usize| dollar || AMOUNT_UNIT.is_match(after(j));
    let same_sep = |j: usize| chain[i + 1..=j].windows(2).all(|w| w[0].sep == w[1].sep);
    let plain = !chain[i].plus && !chain[i].paren;
    let first = |accept: &dyn Fn(usize, &str) -> bool| runs.iter().find(|(j, d)| accept(*j, d)).map(|(j, _)| *j);

    if let Some(j) = first(&|_, d| is_phone(d, chain[i].plus)) {
        return Some((j, Kind::Phone));
    }
    if !plain {
        return None;
    }
    let card = |j, d: &str| (13..=19).contains(&d.len()) && luhn(d) && card_shape(&chain[i..=j]) && !amount(j);
    if let Some(j) = first(&card) {
        return Some((j, Kind::Card));
    }
    let cccd = |j, d: &str| is_cccd(d) && cccd_shape(&chain[i..=j]) && same_sep(j) && !amount(j);
    if let Some(j) = first(&cccd) {
        return Some((j, Kind::Id));
    }
    // Keyword rules: the number's shape alone is too common, the word before it decides.
    let before = before();
    step(before.len());
    let keyword = |re: &Regex, lens: std::ops::RangeInclusive<usize>, extra: fn(&str) -> bool| {
        if !re.is_match(&before) {
            return None;
        }
        first(&|j, d| lens.contains(&d.len()) && extra(d) && same_sep(j) && !amount(j))
    };
    if let Some(j) = keyword(&ID_KEYWORD, 9..=12, |_| true) {
        return Some((j, Kind::Id));
    }
    let mobile_without_0 = |d: &str| d.starts_with(['3', '5', '7', '8', '9']);
    if let Some(j) = keyword(&PHONE_KEYWORD, 9..=9, mobile_without_0) {
        return Some((j, Kind::Phone));
    }
    keyword(&ACCOUNT_KEYWORD, 8..=19, |_| true).map(|j| (j, Kind::Card))
}

/// Phone numbers by their digits: Vietnamese national forms, 84/+84/0084 forms, and any
/// other number written with a "+" country code.
fn is_phone(d: &str, plus: bool) -> bool {
    let b = d.as_bytes();
    // "0084 …" dialled from abroad. Other "00" prefixes are left alone: "0071…" is more often
    // a bank account than a call to country 71.
    if let Some(national) = d.strip_prefix("0084") {
        return is_vietnamese_subscriber(national);
    }
    if plus {
        return is_international(d);
    }
    match (b.len(), b.first(), b.get(1)) {
        // 10 digits: mobiles 03/05/07/08/09 and the pre-2017 landline forms (08 3823 4567).
        (10, Some(b'0'), Some(b'2'..=b'9')) => true,
        // 11 digits: landlines 02x(x) and the pre-2018 mobiles 01xx.
        (11, Some(b'0'), Some(b'1' | b'2')) => true,
        // "84 903 123 456": the country code without "+".
        _ => d.strip_prefix("84").is_some_and(is_vietnamese_subscriber),
    }
}

fn is_international(d: &str) -> bool {
    if let Some(national) = d.strip_prefix("84") {
        return is_vietnamese_subscriber(national) || (national.len() == 10 && national.starts_with('0'));
    }
    match d.strip_prefix('1') {
        Some(_) => d.len() == 11, // North America: +1 and ten digits.
        None => (8..=14).contains(&d.len()),
    }
}

/// A Vietnamese number after "84": mobile 9 digits, landline 10 digits starting 2, each
/// possibly with the trunk 0 written too ("+84 (0) 903 …").
fn is_vietnamese_subscriber(n: &str) -> bool {
    let n = n.strip_prefix('0').unwrap_or(n);
    let b = n.as_bytes();
    matches!((b.len(), b.first()), (9, Some(b'3' | b'5' | b'7' | b'8' | b'9')) | (10, Some(b'2')))
}

/// CCCD: 12 digits, the first three a province code 001–096.
fn is_cccd(d: &str) -> bool {
    d.len() == 12 && d.starts_with('0') && d[1..3].parse::<u8>().is_ok_and(|p| (1..=96).contains(&p))
}

/// CCCD numbers are printed as one block and read out in threes, fours or halves.
fn cccd_shape(groups: &[Group]) -> bool {
    let lens: Vec<usize> = groups.iter().map(|g| g.digits.1 - g.digits.0).collect();
    matches!(lens.as_slice(), [12] | [3, 3, 3, 3] | [4, 4, 4] | [6, 6])
}

/// Cards are written as one block, in fours ("4111 1111 1111 1111", last group shorter), or
/// 4-6-5 / 4-6-4 (Amex, Diners), separated by spaces or dashes, never dots (dots are amounts).
fn card_shape(groups: &[Group]) -> bool {
    let lens: Vec<usize> = groups.iter().map(|g| g.digits.1 - g.digits.0).collect();
    let seps_ok = groups[1..].iter().all(|g| g.sep == groups[1].sep && g.sep != b'.');
    let fours = lens[..lens.len() - 1].iter().all(|&l| l == 4) && (1..=4).contains(&lens[lens.len() - 1]);
    seps_ok && (lens.len() == 1 || fours || lens == [4, 6, 5] || lens == [4, 6, 4])
}

/// Luhn checksum, which every payment card number satisfies (and 1 in 10 random numbers).
fn luhn(d: &str) -> bool {
    let sum: u32 = d
        .bytes()
        .rev()
        .enumerate()
        .map(|(k, c)| {
            let v = u32::from(c - b'0');
            if k % 2 == 1 {
                if v * 2 > 9 {
                    v * 2 - 9
                } else {
                    v * 2
                }
            } else {
                v
            }
        })
        .sum();
    // rem_euclid, not is_multiple_of: the workspace promises Rust 1.85.
    sum.rem_euclid(10) == 0
}
