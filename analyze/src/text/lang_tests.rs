//! Language detection on posts of the kinds the city sees.

use super::lang::{detect_language, Lang};

const VI_DIACRITICS: &[&str] = &[
    "Đường Nguyễn Hữu Cảnh lại ngập sau cơn mưa chiều nay",
    "Kẹt xe kinh khủng ở vòng xoay Lăng Cha Cả, đi 1km mất 30 phút",
    "Metro số 1 chạy êm, sạch sẽ, rất đáng tiền vé",
    "Cảm ơn các anh công an phường đã hỗ trợ người dân kịp thời",
    "Rác thải chất đống ở đầu hẻm mấy ngày không ai dọn",
    "Giá điện tháng này tăng gấp đôi, không hiểu sao luôn",
    "Bệnh viện Chợ Rẫy đông quá, chờ từ sáng tới trưa",
    "Hôm nay trời Sài Gòn mát mẻ dễ chịu ghê",
    "Làm căn cước ở phường nhanh gọn, cán bộ nhiệt tình",
    "Cây xanh bị đốn hạ hàng loạt trên đường Tôn Đức Thắng",
    "Mình thấy xe buýt số 19 đến trễ gần 40 phút",
    "Khói bụi ở Thủ Đức ô nhiễm nặng, ra đường phải đeo khẩu trang",
    "Nước máy nhà tôi có mùi lạ, ai biết báo ở đâu không?",
    "Phố đi bộ Nguyễn Huệ tối cuối tuần đông vui quá",
    "Ủa sao cúp điện hoài vậy trời 😤",
    "Dịch vụ công trực tuyến lỗi suốt, nộp hồ sơ không được",
    "Cầu Thủ Thiêm 2 thông xe rồi, đi qua quận 1 nhanh hẳn",
    "Tội nghiệp mấy cô chú bán vé số ngoài mưa",
    "Chung cư bên Bình Thạnh bị cắt nước ba ngày liền",
    "Trường học gần nhà mới sửa xong, các bé vui lắm",
    "ngập tới đầu gối luôn mọi người ơi",
    "Ổ gà to đùng giữa đường Phạm Văn Đồng, nguy hiểm lắm",
];

const VI_PLAIN: &[&str] = &[
    "duong nay ket xe qua troi",
    "ko bik j lun",
    "mn oi cho e hoi",
    "hom nay mua to qua, duong Nguyen Huu Canh ngap het roi",
    "sao cup dien hoai vay troi",
    "ai biet cho nao lam can cuoc nhanh ko chi e voi",
    "ket xe tu sang toi gio chua nhuc nhich dc",
    "bus so 19 tre qua troi luon a",
    "tphcm nong qua mn oi",
    "k bjk ai nhat dc vi o Q1 k z",
    "dg pham van dong o ga nhieu qua, di cham thoi",
    "nuoc may co mui la, ko dam uong",
    "cam on cac chu cong an da giup do",
    "rac o dau hem boc mui kinh khung",
    "thui mik ve truoc nha, mai gap lai",
    "metro chay em lam, nen di thu",
    "tr oi gia xang tang nua r",
    "e moi chuyen vo sg, mn cho e hoi nen o quan nao",
    "vl that su, cho nao cung ket",
    "ok de mik check lai roi bao",
    "hnay dc nghi le vui qua",
    "toi nay co phao hoa ko mn",
    // Brand names and borrowed words inside unaccented Vietnamese.
    "hom nay di Landmark 81 check in",
    "Shopee giao tre 3 ngay roi",
    "app VNeID bi loi hoai",
    "deadline doi qua, overtime hoai",
    "wifi o quan cafe nay yeu xiu",
];

const EN: &[&str] = &[
    "Traffic on Nguyen Van Linh is terrible again this morning",
    "The new metro line is clean and fast, really impressed",
    "Flooded again on Huynh Tan Phat street after an hour of rain",
    "Does anyone know where to renew a visa in District 1?",
    "Air quality in Saigon today is awful, wear a mask",
    "Power outage in Binh Thanh since 8am, any updates?",
    "Thanks to the police officers who helped us find our lost dog",
    "Bus 152 to the airport was late by 40 minutes",
    "Garbage has been piling up on our street for days",
    "Just moved to Ho Chi Minh City, loving the food scene",
    "The heat this week is unbearable",
    "Why is the water bill so high this month?",
    "Great job by the city on the new park in Thu Duc",
    "I can't believe how crowded Ben Thanh market gets on weekends",
    "Hospital wait times are way too long",
    "Phở at the corner shop is the best in town",
    "hello",
];

const OTHER: &[&str] = &[
    "Le trafic à Saigon est vraiment incroyable aujourd'hui",
    "Je ne sais pas où acheter des billets de bus",
    "El tráfico en la ciudad es horrible esta mañana",
    "Me encanta la comida vietnamita, es deliciosa",
    "胡志明市今天交通很堵",
    "ホーチミンの交通渋滞はひどいです",
    "호치민 교통 체증이 너무 심해요",
    "Der Verkehr in Saigon ist heute schrecklich",
    "Пробки в Хошимине сегодня ужасные",
    "การจราจรในโฮจิมินห์แย่มาก",
    "O trânsito em Saigon está horrível hoje",
    "Il traffico a Saigon è terribile oggi",
    "😂😂😂",
    "",
    "12345 !!!",
    "https://example.com/a/b",
];

/// Written after the rules above were settled, to check they were not fitted to the sets.
const HELD_OUT_VI: &[&str] = &[
    "Chiều nay mưa lớn, đường Võ Văn Ngân ngập nặng",
    "Bà con khu phố 3 phản ánh đèn đường hư cả tháng nay",
    "Thủ tục đăng ký xe máy giờ làm online được chưa mọi người?",
    "Cảm ơn bệnh viện Nhi Đồng 2, bác sĩ rất tận tâm",
    "Tắc đường trên cầu Sài Gòn từ 5 giờ chiều",
    "Khu này an ninh kém, mất xe hoài",
    "Có ai đi xe buýt điện VinBus chưa, review giúp mình với",
    "Nhà mình ở Gò Vấp, mấy hôm nay nước yếu lắm",
    "Công viên Gia Định cuối tuần đông nghẹt người",
    "Tuyệt vời, cuối cùng hẻm nhà mình cũng được trải nhựa",
    "hom qua di ngang cau sai gon ket cung luon",
    "co ai biet lich cup dien quan 7 ko",
    "troi oi nong chiu ko noi",
    "cho e hoi lam ho chieu o dau nhanh nhat a",
    "xe rac chay gio nao vay mn",
    "nay di metro thu thay on ap",
    "mat dien tu sang toi gio, chan qua",
    "dc r, cam on ban nhiu nha",
    "kco j dau, binh thuong thoi",
    "bao gio moi het ngap day troi",
    "Ủa alo, sao hôm nay đường vắng vậy",
    "Hnay đi làm trễ vì kẹt xe ở Cộng Hòa",
];

const HELD_OUT_EN: &[&str] = &[
    "Anyone else stuck in traffic near Tan Son Nhat airport?",
    "The new bus lanes seem to help a bit",
    "Loving the street food in District 4",
    "Electricity has been out for three hours in our building",
    "Is it safe to swim in the Saigon river?",
    "Drivers here never stop at red lights",
    "Great weekend at the book street, very relaxing",
    "Our alley flooded again, water up to my knees",
    "Where can I pay the water bill online?",
    "Shout out to the volunteers cleaning up Nhieu Loc canal",
    "Rent in Thao Dien keeps going up every year",
    "so hot today",
    "Nice view from Landmark 81",
    "Why are there so many motorbikes on the sidewalk",
    "Pho Hoa Pasteur still the best after all these years",
];

const HELD_OUT_OTHER: &[&str] = &[
    "La ville est magnifique la nuit",
    "Nous avons visité le marché Ben Thanh hier",
    "¿Dónde está la estación de autobuses?",
    "Hoy hace mucho calor en la ciudad",
    "Die Stadt ist sehr laut in der Nacht",
    "西贡的咖啡真好喝",
    "サイゴンのバインミーは最高",
    "사이공 날씨가 너무 더워요",
    "Город очень шумный ночью",
    "Kota ini sangat ramai setiap malam",
    "A cidade é muito barulhenta à noite",
    "👍👍",
    "#",
];

fn accuracy(name: &str, texts: &[&str], want: Lang) -> Vec<String> {
    let wrong: Vec<String> = texts
        .iter()
        .map(|t| (t, detect_language(t)))
        .filter(|(_, got)| *got != want)
        .map(|(t, got)| format!("{name}: {t:?} → {got:?}, want {want:?}"))
        .collect();
    println!("{name}: {}/{} correct", texts.len() - wrong.len(), texts.len());
    wrong
}

#[test]
fn detects_each_test_set() {
    let mut wrong = accuracy("vi with diacritics", VI_DIACRITICS, Lang::Vi);
    wrong.extend(accuracy("vi without diacritics / teen-code", VI_PLAIN, Lang::Vi));
    wrong.extend(accuracy("en", EN, Lang::En));
    wrong.extend(accuracy("other", OTHER, Lang::Other));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(VI_DIACRITICS.len() >= 20 && VI_PLAIN.len() >= 20 && EN.len() >= 15 && OTHER.len() >= 10);
}

#[test]
fn detects_held_out_set() {
    let mut wrong = accuracy("held-out vi", HELD_OUT_VI, Lang::Vi);
    wrong.extend(accuracy("held-out en", HELD_OUT_EN, Lang::En));
    wrong.extend(accuracy("held-out other", HELD_OUT_OTHER, Lang::Other));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn short_and_special_texts() {
    for (text, want) in [
        ("", Lang::Other),
        ("   ", Lang::Other),
        ("😂😂", Lang::Other),
        ("0903 123 456", Lang::Other),
        ("https://vnexpress.net/abc @someone", Lang::Other),
        ("ok", Lang::Vi),
        ("hi", Lang::Vi),
        ("thanks", Lang::En),
        ("merci", Lang::Other),
        ("#ketxe #ngapnuoc", Lang::Vi),
        ("#KẹtXe", Lang::Vi),
        ("DUONG NAY KET XE QUA TROI", Lang::Vi),
        ("The bánh mì at Huỳnh Hoa is overpriced but good", Lang::En),
        ("Chúc mừng năm mới 新年快乐", Lang::Vi),
    ] {
        assert_eq!(detect_language(text), want, "{text:?}");
    }
}

#[test]
fn nfd_input_is_detected_like_nfc() {
    use unicode_normalization::UnicodeNormalization;
    for t in VI_DIACRITICS {
        let nfd: String = t.nfd().collect();
        assert_eq!(detect_language(&nfd), Lang::Vi, "{t}");
    }
}

#[test]
fn lang_codes_and_serde() {
    assert_eq!(Lang::Vi.as_str(), "vi");
    assert_eq!(Lang::En.as_str(), "en");
    assert_eq!(Lang::Other.as_str(), "other");
    assert_eq!(Lang::Other.to_string(), "other");
}
