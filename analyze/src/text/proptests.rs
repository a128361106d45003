//! Property tests: no panics, idempotence, NFC/NFD agreement, embedded phones always removed.

use super::{detect_language, normalize, prepare_for_model, redact};
use proptest::prelude::*;
use unicode_normalization::UnicodeNormalization;

/// Text made of the pieces that trip redaction up: digit groups, separators, keywords,
/// placeholders, units, and a little Vietnamese.
fn numeric_soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[0-9]{1,12}",
        "0[35789][0-9]{8}",
        "0[0-9]{11}",
        Just("4111 1111 1111 1111".to_owned()),
        prop::sample::select(vec![
            " ",
            ".",
            "-",
            "(",
            ")",
            "+",
            "+84 ",
            "84",
            "0084",
            "/",
            ":",
            ",",
            "$",
            "%",
            "đ",
            "k ",
            "CMND ",
            "CCCD: ",
            "chứng minh ",
            "sđt ",
            "STK ",
            "thẻ ",
            "passport ",
            "C1234567",
            "[phone]",
            "[id]",
            "@",
            "a@b.vn",
            " [at] ",
            " [dot] ",
            "ngày ",
            "năm ",
            "xe ",
            "\u{200B}",
        ])
        .prop_map(str::to_owned),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

/// A Vietnamese mobile in one of the ways people write it, and its ten digits.
fn formatted_mobile() -> impl Strategy<Value = (String, String)> {
    ("[35789][0-9]{8}", 0..9usize, prop::sample::select(vec![" ", ".", "-"])).prop_map(|(rest, style, sep)| {
        let d = format!("0{rest}");
        let s = sep;
        let text = match style {
            0 => d.clone(),
            1 => format!("{}{s}{}{s}{}", &d[..4], &d[4..7], &d[7..]),
            2 => format!("{}{s}{}{s}{}", &d[..3], &d[3..6], &d[6..]),
            3 => format!("{}{s}{}{s}{}", &d[..3], &d[3..7], &d[7..]),
            4 => format!("{}{s}{}{s}{}{s}{}", &d[..4], &d[4..6], &d[6..8], &d[8..]),
            5 => format!("+84 {}{s}{}{s}{}", &d[1..4], &d[4..7], &d[7..]),
            6 => format!("+84{}", &d[1..]),
            7 => format!("84 {}{s}{}{s}{}", &d[1..4], &d[4..7], &d[7..]),
            _ => format!("(+84) {}{s}{}", &d[1..4], &d[4..]),
        };
        (text, d)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn nothing_panics(s in any::<String>()) {
        let _ = redact(&s);
        let _ = normalize(&s);
        let _ = prepare_for_model(&s);
        let _ = detect_language(&s);
    }

    #[test]
    fn embedded_mobile_is_removed(
        prefix in "\\PC{0,20}",
        suffix in "\\PC{0,20}",
        (phone, digits) in formatted_mobile(),
    ) {
        let text = format!("{prefix} {phone} {suffix}");
        let out = redact(&text).text;
        prop_assert!(!out.contains(&phone), "{text:?} → {out:?}");
        prop_assert!(!out.contains(&digits), "{text:?} → {out:?}");
        prop_assert!(!out.contains(&digits[1..]), "{text:?} → {out:?}");
    }

    #[test]
    fn redact_is_idempotent(s in any::<String>()) {
        let once = redact(&s).text;
        prop_assert_eq!(redact(&once).text, once);
    }

    #[test]
    fn redact_is_idempotent_on_numeric_text(s in numeric_soup()) {
        let once = redact(&s);
        let twice = redact(&once.text);
        prop_assert_eq!(&twice.text, &once.text, "input {:?}", s);
        prop_assert_eq!(twice.phones + twice.emails + twice.id_numbers + twice.cards, 0);
    }

    #[test]
    fn normalize_is_idempotent(s in any::<String>()) {
        let once = normalize(&s);
        prop_assert_eq!(normalize(&once), once);
    }

    #[test]
    fn normalize_is_idempotent_on_emoji_and_marks(
        s in "[a-zẹậ😀👩🏽\u{1F3F4}\u{E0067}\u{E007F}\u{200D}\u{200B}\u{FE0F}\u{0301}\u{0323} \t\n]{0,24}"
    ) {
        let once = normalize(&s);
        prop_assert_eq!(normalize(&once), once);
    }

    #[test]
    fn nfd_and_nfc_normalize_alike(s in any::<String>()) {
        let nfd: String = s.nfd().collect();
        let nfc: String = s.nfc().collect();
        prop_assert_eq!(normalize(&nfd), normalize(&nfc));
    }

    #[test]
    fn vietnamese_nfd_and_nfc_normalize_alike(s in "[a-zA-Zàáảãạăắằẳẵặâấầẩẫậđèéẻẽẹêếềểễệìíỉĩịòóỏõọôốồổỗộơớờởỡợùúủũụưứừửữựỳýỷỹỵ \u{200B}]{0,40}") {
        let nfd: String = s.nfd().collect();
        prop_assert_eq!(normalize(&nfd), normalize(&s));
        prop_assert_eq!(detect_language(&nfd), detect_language(&s));
    }
}
