//! The scripted stream of the emerging-issues test: five days of posts in Ho Chi Minh City.
//!
//! - Chatter: 40 posts a day, written here, over everyday subjects (food, football, pets, films,
//!   the gym...): 15 subjects on days 1–2 and 15 others from day 3, two or three posts each a day.
//!   Chatter new on day 3 has no baseline to hide in: only its thinness keeps it out of the report.
//! - Reviews: 100 posts a day drawn from AIVIVN's informal product reviews
//!   (`../shared/data/aivivn/train.tsv`): real people's writing, steady from day to day.
//! - The problem nobody configured: from day 3, the Chữ Y bridge is closed for repairs. 15 posts on
//!   day 3, 40 on days 4 and 5 (as many as the chatter), in many phrasings, with and without
//!   diacritics, some in English.
//!
//! Ids say what a post is (`bridge-`, `chatter-`, `review-`), so the test can score each group.

use schema::{Engagement, Post, SourceId};

/// What a post is, by its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Bridge,
    Chatter,
    Review,
}

impl Kind {
    pub fn of_key(key: &str) -> Kind {
        let id = key.split_once(':').map_or(key, |(_, id)| id);
        if id.starts_with("bridge-") {
            Kind::Bridge
        } else if id.starts_with("chatter-") {
            Kind::Chatter
        } else {
            Kind::Review
        }
    }
}

/// Bridge posts on each day (1-based).
pub fn bridge_posts(day: usize) -> usize {
    match day {
        3 => 15,
        4 | 5 => 40,
        _ => 0,
    }
}
pub const CHATTER_PER_DAY: usize = 40;
pub const REVIEWS_PER_DAY: usize = 100;

const BRIDGE: &[&str] = &[
    "Cầu Chữ Y đóng cửa để sửa chữa từ {time}, xe phải vòng qua {road}",
    "cau chu y dong cua sua chua roi, di vong qua {road} ket cung",
    "Sao đóng cầu Chữ Y sửa chữa mà không báo trước vậy, sáng nay đứng chờ ở đầu cầu {mins} phút",
    "Cầu Chữ Y rào chắn hết rồi, nghe nói sửa chữa mấy tháng lận",
    "Chu Y bridge closed for repairs, the detour via {road} adds {mins} minutes",
    "đóng cầu Chữ Y sửa chữa mà không có phương án phân luồng, dân quận 8 khổ quá",
    "Mới biết cầu Chữ Y tạm đóng để gia cố, ai đi từ quận 8 qua quận 5 chú ý nha",
    "ủa cầu chữ y đóng hả, {time} chạy tới mới thấy rào",
    "cầu Chữ Y sửa chữa thì đóng một làn thôi chứ đóng cả cầu sao đi",
    "Con đi học bên quận 5 mà cầu Chữ Y đóng sửa chữa, giờ phải đi vòng {road} xa gấp đôi",
    "Is the Chu Y bridge really closed for repair works until next month?",
    "cau chu y dong cua thi dan q8 di lam bang cach nao day troi",
    "Xe buýt cũng không qua cầu Chữ Y được vì đóng sửa chữa, chờ mãi không thấy xe",
    "Đóng cầu Chữ Y để sửa mà không thấy công nhân làm gì cả, {time} vẫn im re",
    "cầu chữ Y đóng cửa sửa chữa, hàng quán hai đầu cầu vắng hoe",
    "Chữ Y closed again for repairs?? Had to go around by {road}, what a mess",
];
const PREFIX: &[&str] = &["", "", "Mọi người ơi, ", "Trời ơi ", "Hic ", "Thông báo: ", ""];
const SUFFIX: &[&str] = &["", "", " 😤", " !!!", " mệt ghê", " ai biết khi nào mở lại không?", ""];
const ROADS: &[&str] =
    &["cầu Nguyễn Văn Cừ", "cầu Chà Và", "đường Phạm Thế Hiển", "cầu Nhị Thiên Đường", "Võ Văn Kiệt"];
const TIMES: &[&str] = &["sáng nay", "tối qua", "hôm qua", "6 giờ sáng", "chiều nay"];

/// (subject, templates): everyday life, nothing the city's topics or the bridge are about.
const CHATTER: &[&[&str]] = &[
    &["Quán phở đầu hẻm nước dùng ngon, ăn xong no tới chiều", "pho bo o quan quen hom nay hoi man"],
    &["Sáng nào cũng ghé xe bánh mì đầu hẻm, {price} một ổ mà đầy đặn", "Bánh mì chả cá nóng giòn, ăn sáng là hết sảy"],
    &["Quán cà phê mới mở view đẹp, ngồi làm việc cả buổi", "cafe muối uống thử thấy lạ miệng mà ngon"],
    &["Tối qua xem trận bóng thức khuya mà đội nhà thắng {score}", "Watching the derby tonight, hope we win {score}"],
    &[
        "Phim mới ra rạp cuối tuần rủ bạn đi coi, cười đau bụng",
        "Bộ phim hoạt hình này con nít coi mà người lớn cũng khóc",
    ],
    &["Nghe bài mới của ca sĩ yêu thích nghiện luôn, replay cả ngày", "playlist nhac lofi nay nghe hoc bai chill that"],
    &["Con mèo nhà mình leo lên tủ lạnh ngủ, dễ thương xỉu", "Bé cún nhà hàng xóm sủa suốt đêm vì sợ sấm"],
    &["Cuối tuần đi đám cưới bạn thân, vui quá trời", "Đám cưới ở quê đông vui, ăn cỗ từ trưa tới tối"],
    &["Tập gym được {n} tháng rồi, lên được mấy ký cơ", "leg day hom nay di khong noi luon"],
    &[
        "Lên Đà Lạt chơi {n} ngày, trời se lạnh, ăn lẩu gà lá é ngon",
        "Trip to Vung Tau this weekend, the seafood was amazing",
    ],
    &["Mới đổi điện thoại, chụp hình đẹp hơn hẳn", "Pin điện thoại cũ chai quá, sạc hoài không đầy"],
    &["Tối nào cũng leo rank với tụi bạn, thua hoài", "Game mới ra đồ họa đẹp mà máy yếu chơi giật"],
    &["Hôm nay thử nấu canh chua cá lóc theo công thức của mẹ", "Làm bánh flan lần đầu mà thành công ngoài mong đợi"],
    &["Chậu hoa giấy ngoài ban công nở rộ rồi", "Trồng rau thơm trong thùng xốp, giờ hái ăn không hết"],
    &["Đang đọc một cuốn tiểu thuyết trinh thám, cuốn hết sức", "Hội sách cuối tuần mua được mấy cuốn cũ giá rẻ"],
    &["Mua đôi giày mới đi làm, êm chân lắm", "Áo dài mới may mặc đi chụp hình Tết đẹp ghê"],
    &["Săn vé concert idol không kịp, buồn cả ngày", "fan meeting tuan sau ai di chung khong"],
    &["Sinh nhật mẹ, cả nhà đi ăn lẩu", "Tổ chức sinh nhật bất ngờ cho bạn thân, nó khóc luôn"],
    &["Cuối tuần đi câu cá được mấy con rô", "Câu cả buổi chỉ được con cá nhỏ xíu, vui là chính"],
    &["Chụp ảnh hoàng hôn bên sông đẹp mê", "Mới tập chụp film, tráng ra cuộn đầu hư gần hết"],
    &["Sáng nay chạy bộ {n} km quanh công viên", "Morning run done, {n} km before work"],
    &["Trà sữa vị mới uống thử thấy ổn, hơi ngọt", "tra sua tran chau duong den la chan ai"],
    &["Học đàn guitar được mấy tuần, bấm hợp âm đau tay", "Tập piano bài mới, tay trái chưa theo kịp"],
    &["Nuôi cá cảnh mới mua bể, cá bơi lượn đẹp ghê", "Bể cá nhà mình rêu mọc xanh lè phải thay nước"],
    &["Dọn nhà cuối năm bỏ ra cả đống đồ cũ", "Sắp xếp lại tủ quần áo, thấy đồ từ hồi sinh viên"],
    &["Xem hài độc thoại tối qua cười muốn xỉu", "Chương trình tạp kỹ cuối tuần này khách mời vui ghê"],
    &["Đạp xe cuối tuần ra ngoại thành, gió mát", "Weekend bike ride with friends, legs are dead now"],
    &["Vẽ tranh màu nước thư giãn sau giờ làm", "Lớp vẽ cuối tuần vui, mỗi người một bức"],
    &["Chơi cờ vua online với bạn, thua ba ván liền", "Giải cờ tướng ở câu lạc bộ phường, ông nội được giải ba"],
    &["Đi chợ hoa cuối năm, mua được chậu mai đẹp", "Mua bó hoa hồng tặng vợ ngày kỷ niệm"],
];

/// One day's posts (day 1..=5), created on `date` (the city's date) between 06:00 and 22:00.
pub fn day(day: usize, date: chrono::NaiveDate, reviews: &[String]) -> Vec<Post> {
    let mut posts = Vec::new();
    let at = |i: usize, of: usize| {
        let minute = 360 + (i * 960 / of.max(1)) as u32;
        let local = date.and_hms_opt(minute / 60, minute % 60, (i % 60) as u32).expect("time");
        let tz = chrono_tz::Asia::Ho_Chi_Minh;
        chrono::TimeZone::from_local_datetime(&tz, &local).single().expect("no DST").with_timezone(&chrono::Utc)
    };
    for i in 0..bridge_posts(day) {
        let n = day * 100 + i;
        let text = format!(
            "{}{}{}",
            PREFIX[n % PREFIX.len()],
            fill(BRIDGE[(n * 7) % BRIDGE.len()], n),
            SUFFIX[(n / 3) % SUFFIX.len()]
        );
        posts.push(post(format!("bridge-{day}-{i:03}"), text, at(i, bridge_posts(day)), vec!["district_8"]));
    }
    for i in 0..CHATTER_PER_DAY {
        let n = day * 1000 + i;
        let half = CHATTER.len() / 2;
        let first = if day <= 2 { 0 } else { half };
        let subject = CHATTER[first + (i * 7 + day * 3) % half];
        let text = fill(subject[(n / 7) % subject.len()], n);
        posts.push(post(format!("chatter-{day}-{i:03}"), text, at(i, CHATTER_PER_DAY), vec![]));
    }
    for i in 0..REVIEWS_PER_DAY {
        let text = reviews[(day * REVIEWS_PER_DAY + i) * 37 % reviews.len()].clone();
        posts.push(post(format!("review-{day}-{i:03}"), text, at(i, REVIEWS_PER_DAY), vec![]));
    }
    posts
}

fn fill(template: &str, n: usize) -> String {
    template
        .replace("{time}", TIMES[n % TIMES.len()])
        .replace("{road}", ROADS[(n / 2) % ROADS.len()])
        .replace("{mins}", &(15 + n % 40).to_string())
        .replace("{price}", &format!("{}k", 15 + n % 20))
        .replace("{score}", &format!("{}-{}", n % 4 + 1, n % 2))
        .replace("{n}", &(2 + n % 9).to_string())
}

fn post(id: String, text: String, created_at: chrono::DateTime<chrono::Utc>, places: Vec<&str>) -> Post {
    Post {
        url: Some(format!("https://example.org/stream/{id}")),
        author: format!(
            "{:032x}",
            id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
        ),
        id,
        source: SourceId::new("replay").expect("source id"),
        text,
        lang: None,
        created_at,
        fetched_at: created_at + chrono::Duration::seconds(30),
        places: places.into_iter().map(|p| schema::PlaceId::new(p).expect("place id")).collect(),
        engagement: Engagement::default(),
        created_at_estimated: false,
    }
}

/// The AIVIVN review texts (`../shared/data/aivivn/train.tsv`, column 2), or None when absent.
pub fn reviews() -> Option<Vec<String>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/aivivn/train.tsv");
    let text = std::fs::read_to_string(path).ok()?;
    let out: Vec<String> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once('\t').map(|(_, t)| t.trim().to_owned()))
        .filter(|t| t.chars().count() >= 20 && t.len() < 600)
        .collect();
    (!out.is_empty()).then_some(out)
}
