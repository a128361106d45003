//! Examples that must be redacted and text that must come through untouched.

use super::redact::redact;

/// (input, expected text). Vietnamese and English, in the spellings people use.
const MUST_REDACT: &[(&str, &str)] = &[
    // Vietnamese mobiles, every usual spacing.
    ("Liên hệ 0903123456 để mua", "Liên hệ [phone] để mua"),
    ("sđt: 0903 123 456 (anh Tuấn)", "sđt: [phone] (anh Tuấn)"),
    ("Gọi mình 0903.123.456 nha", "Gọi mình [phone] nha"),
    ("ĐT 0903-123-456, zalo cùng số", "ĐT [phone], zalo cùng số"),
    ("số chị là 090 3123 456 nhé", "số chị là [phone] nhé"),
    ("Hotline cá nhân: 090.312.3456.", "Hotline cá nhân: [phone]."),
    ("Cần bán xe, lh 0987 65 43 21", "Cần bán xe, lh [phone]"),
    ("ib hoặc sdt0359123456 giao tận nơi", "ib hoặc sdt[phone] giao tận nơi"),
    (
        "Mất ví ở Q1, ai nhặt được gọi 0708 123 456 hoặc 0912 345 678",
        "Mất ví ở Q1, ai nhặt được gọi [phone] hoặc [phone]",
    ),
    ("Zalo 0563 999 888 / 0816 777 666", "Zalo [phone] / [phone]"),
    // Old 11-digit mobiles and landlines.
    ("số cũ 0168 123 4567 vẫn dùng", "số cũ [phone] vẫn dùng"),
    ("Tổng đài văn phòng 028 3823 4567", "Tổng đài văn phòng [phone]"),
    ("Phòng khám (028) 38234567, giờ làm việc 7h30", "Phòng khám [phone], giờ làm việc 7h30"),
    ("tel: 028.3823.4567", "tel: [phone]"),
    ("Đặt bàn 08 3823 4567", "Đặt bàn [phone]"),
    // With the country code.
    ("Call me at +84 903 123 456 after 6pm", "Call me at [phone] after 6pm"),
    ("WhatsApp +84903123456", "WhatsApp [phone]"),
    ("my number is 84 903 123 456", "my number is [phone]"),
    ("Office (+84) 28 3823 4567 ext", "Office [phone] ext"),
    ("gọi +84 (0) 903 123 456", "gọi [phone]"),
    ("or 0084 903 123 456 from abroad", "or [phone] from abroad"),
    ("US office +1 415 555 0100, London +44 20 7946 0958.", "US office [phone], London [phone]."),
    ("Singapore branch: +65 6123 4567", "Singapore branch: [phone]"),
    ("Năm 2024 0903 123 456 vẫn gọi được", "Năm 2024 [phone] vẫn gọi được"),
    // E-mail.
    ("Gửi CV về tuyendung.hcm@gmail.com nhé", "Gửi CV về [email] nhé"),
    ("contact: Nguyen.Van-A+news@company.com.vn.", "contact: [email]."),
    ("mail em: abc [at] gmail [dot] com", "mail em: [email]"),
    ("email: ngoc.anh(at)yahoo.com", "email: [email]"),
    // Citizen IDs.
    ("CCCD 079203001234 bị rơi ở chợ Bến Thành", "CCCD [id] bị rơi ở chợ Bến Thành"),
    ("Ai nhặt được căn cước số 079 203 001 234 xin liên hệ", "Ai nhặt được căn cước số [id] xin liên hệ"),
    ("số thẻ căn cước: 079.203.001.234", "số thẻ căn cước: [id]"),
    ("found an ID card 001099012345 near the bus stop", "found an ID card [id] near the bus stop"),
    ("mất CMND số 025123456 tên Nguyễn Văn B", "mất CMND số [id] tên Nguyễn Văn B"),
    ("CMT: 025 123 456", "CMT: [id]"),
    ("chứng minh nhân dân 312345678 đã hết hạn", "chứng minh nhân dân [id] đã hết hạn"),
    ("lost my passport C1234567 in District 1", "lost my passport [id] in District 1"),
    // Cards and accounts.
    ("Thẻ 4111 1111 1111 1111 bị khóa", "Thẻ [card] bị khóa"),
    ("card no 5500-0000-0000-0004 exp 12/26", "card no [card] exp 12/26"),
    ("paid with 4012888888881881 yesterday", "paid with [card] yesterday"),
    ("Amex 3782 822463 10005", "Amex [card]"),
    ("Chuyển khoản STK 0071001234567 Vietcombank", "Chuyển khoản STK [card] Vietcombank"),
    ("số tài khoản: 19036123456012 Techcombank", "số tài khoản: [card] Techcombank"),
    // Several kinds at once.
    (
        "Tên: Lan, sđt 0903123456, mail lan@gmail.com, CCCD 079203001234",
        "Tên: Lan, sđt [phone], mail [email], CCCD [id]",
    ),
];

/// Text that looks numeric but carries no personal data.
const MUST_SURVIVE: &[&str] = &[
    // Hotlines and service numbers.
    "Gọi 113 báo cướp, 114 cứu hỏa, 115 cấp cứu",
    "Đường dây nóng 111 bảo vệ trẻ em",
    "Tổng đài 1022 của thành phố hỗ trợ người dân",
    "Hotline 1900 1234 hoạt động 24/7",
    "CSKH: 1900.545.454 hoặc 19001234",
    "Gọi miễn phí 1800 1091",
    "Call 18001091 for help",
    "EVN hotline 1900 545454",
    // Dates and times.
    "Ngày 12/03/2024 đường Nguyễn Huệ cấm xe",
    "Lịch họp 12-3-2024 lúc 9 giờ",
    "Deadline 2024-03-12 at 17:00",
    "ngày 5/6 trời mưa to",
    "Kẹt xe từ 7h30 tới 9h",
    "Tàu chạy lúc 19:45 tối nay",
    "Họp lúc 8 giờ sáng",
    "Sự kiện 03.12.2024 10:30 tại Nhà hát",
    "Đợt 2024-03-12 2024-03-15 cắt điện",
    // Prices, percentages, measures.
    "Bánh mì 50.000đ một ổ, đắt quá",
    "Trà sữa 50k mà dở",
    "Vé 1.200.000 VND khứ hồi",
    "Lương 2,5 triệu sao sống nổi",
    "Coffee is $15 here, crazy",
    "A taxi costs 15 USD to the airport",
    "Giá nhà tăng 12,5% so với năm ngoái",
    "Nước ngập 30cm ở Thảo Điền",
    "Còn 2 km nữa là tới",
    "Trời nóng 45 độ",
    "Dự án 100.000.000.000 đồng làm cầu",
    "Ngân sách 1.500.000.000.000đ",
    // Addresses, codes, plates, routes, counts, years.
    "Mã bưu chính 700000",
    "Xe 51F-123.45 vượt đèn đỏ",
    "Biển số 59-X1 234.56 bỏ chạy",
    "xe 51A 12345 đậu trên vỉa hè",
    "Năm 2024 ngập nhiều hơn",
    "năm 2025 sẽ có metro",
    "Nhà số 12/3 Nguyễn Trãi bị cháy",
    "Đi xe buýt số 19 ra Bến Thành",
    "Có 1.500 người tham gia",
    "Population 9,000,000 and growing",
    "Tuyến Metro số 1 dài 19,7 km với 14 ga",
    "Quận 7 và Quận 12, phường 25",
    "Room 302, floor 3, building 2",
    "Kết quả 2-1 cho Sài Gòn FC",
    "Bạn sinh năm 1990 hay 1995?",
    "Mã đơn hàng 123456 chưa giao",
    "Trận đấu 3 - 0 đẹp mắt",
    "Giảm giá 50% từ 1/5 đến 31/5",
    "Coordinates 10.7769, 106.7009",
    "Version 1.2.3 released",
    "email me (no address yet) @nguyenvana",
];

#[test]
fn must_redact() {
    let mut failures = Vec::new();
    for &(input, expected) in MUST_REDACT {
        let got = redact(input).text;
        if got != expected {
            failures.push(format!("{input:?}\n   got {got:?}\n  want {expected:?}"));
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    assert!(MUST_REDACT.len() >= 25);
}

#[test]
fn must_survive() {
    let mut failures = Vec::new();
    for &input in MUST_SURVIVE {
        let got = redact(input);
        if got.text != input || got.phones + got.emails + got.id_numbers + got.cards != 0 {
            failures.push(format!("{input:?}\n   got {:?}", got.text));
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    assert!(MUST_SURVIVE.len() >= 35);
}

#[test]
fn counts_each_kind() {
    let r = redact("0903123456, +84 28 3823 4567, a@b.vn, x [at] y [dot] com, CCCD 079203001234, 4111111111111111");
    assert_eq!((r.phones, r.emails, r.id_numbers, r.cards), (2, 2, 1, 1), "{}", r.text);
    assert_eq!(r.text, "[phone], [phone], [email], [email], CCCD [id], [card]");
}

#[test]
fn empty_and_plain_text() {
    assert_eq!(redact(""), Default::default());
    assert_eq!(redact("Kẹt xe quá trời").text, "Kẹt xe quá trời");
}

#[test]
fn luhn_invalid_long_numbers_without_keyword_survive() {
    // 16 digits that fail the checksum: an order or tracking number, not a card.
    assert_eq!(redact("Mã vận đơn 4111 1111 1111 1112").text, "Mã vận đơn 4111 1111 1111 1112");
}

#[test]
fn unusual_groupings_are_not_ids() {
    // Twelve digits that pass the CCCD digit check (0, then province 01), but in pairs: a CCCD is
    // never written so.
    assert_eq!(redact("00 11 22 33 44 55").text, "00 11 22 33 44 55");
}

#[test]
fn usual_cccd_groupings_are_ids() {
    assert_eq!(redact("0792 0300 1234 và 079203 001234").text, "[id] và [id]");
}

/// Inputs proptest once found where a second pass changed the text.
#[test]
fn second_pass_regressions() {
    for input in ["0500000000STK 00700000000", "2005919706926+4111 1111 1111 11110"] {
        let once = redact(input).text;
        assert_eq!(redact(&once).text, once, "{input:?}");
    }
}

#[test]
fn long_digit_runs_stay_linear() {
    // Each chain position looks at most 19 digits ahead, so the work grows with the input, not
    // with its square. Counted in steps (groups examined, context bytes built), not timed: a
    // count does not depend on the machine. Doubling the input must about double the steps.
    let steps = |text: &str| {
        super::redact::STEPS.with(|s| s.set(0));
        let r = redact(text);
        (r, super::redact::STEPS.with(std::cell::Cell::get))
    };
    for (unit, n) in [("1", 5_000), ("0903 123 456", 1_000)] {
        let (small, small_steps) = steps(&vec![unit; n].join(" "));
        let (large, large_steps) = steps(&vec![unit; 2 * n].join(" "));
        assert!(small_steps > 0, "steps are counted");
        assert!(
            large_steps * 10 <= small_steps * 22,
            "{unit:?}: {small_steps} steps for {n}, {large_steps} for {}",
            2 * n
        );
        assert_eq!(large.phones, 2 * small.phones);
    }
    let ones = vec!["1"; 10_000].join(" ");
    assert!(redact(&ones).text == ones, "a run of single digits changed");
    let phones = vec!["0903 123 456"; 2_000].join(" ");
    let r = redact(&phones);
    assert_eq!(r.phones, 2_000);
    assert!(!r.text.contains("0903"));
}

#[test]
fn invisible_or_unusual_spacing_does_not_hide_numbers() {
    for input in [
        "gọi 0903\u{00A0}123\u{00A0}456 nhé",
        "gọi 0903\u{200B}123456 nhé",
        "gọi 0903\u{202F}123\u{2009}456 nhé",
        "gọi\n0903  123   456\tnhé",
    ] {
        assert_eq!(redact(input).text, "gọi [phone] nhé", "{input:?}");
    }
}
