#!/usr/bin/env python3
"""Writes the demo's sample of city posts, config/demo/posts.jsonl.

The posts are not real: every text comes from the hand-written templates below (written for this
project; none is taken from config/topics.toml or from any training or evaluation data), filled with
places, streets and numbers by a random generator with a fixed seed. Authors are random 32-hex
pseudonyms, not people. Running the script again rewrites the file byte for byte.

Shape: 14 days ending 2026-11-30T16:00:00Z (23:00 in Ho Chi Minh City), 40-45 posts a day with a
daily rhythm, eleven topics, Vietnamese with and without diacritics, some English; in the last three
hours a flood in District 7 (the scripted incident the demo's alert rules must catch).

    python3 scripts/demo_sample.py           # write config/demo/posts.jsonl and print a summary
    python3 scripts/demo_sample.py --check   # only verify the shipped file is what the script makes

Python 3.11+ standard library only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import re
import sys
import tomllib
import unicodedata
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "config" / "demo" / "posts.jsonl"
PLACES_TOML = ROOT / "config" / "places.toml"
TOPICS_TOML = ROOT / "config" / "topics.toml"
ALERTS_TOML = ROOT / "config" / "demo" / "alerts.toml"

SEED = 20261130
SCHEMA_VERSION = "1.1"
LOCAL = dt.timezone(dt.timedelta(hours=7))  # Asia/Ho_Chi_Minh, no daylight saving
END = dt.datetime(2026, 11, 30, 16, 0, 0, tzinfo=dt.timezone.utc)  # 23:00 local
DAYS = 14
FIRST_DAY = (END.astimezone(LOCAL) - dt.timedelta(days=DAYS - 1)).date()  # 2026-11-17 local
INCIDENT_START = dt.datetime(2026, 11, 30, 13, 0, 0, tzinfo=dt.timezone.utc)  # 20:00 local
AUTHORS = 150

# --------------------------------------------------------------------------------------------
# Places: how people write them, by style. Every spelling must be an alias (or the name) of that
# place in config/places.toml; checked at start-up. "vi" = Vietnamese with diacritics, "vn" =
# Vietnamese typed without diacritics, "en" = English.
# --------------------------------------------------------------------------------------------

def _district(n: int) -> dict[str, list[str]]:
    return {
        "vi": [f"Quận {n}", f"Quận {n}", f"Q{n}", f"quận {n}", f"Q.{n}"],
        "vn": [f"quan {n}", f"Q{n}", f"q{n}", f"Quan {n}"],
        "en": [f"District {n}", f"District {n}", f"Q{n}"],
    }


def _named(vi: str, vn: str) -> dict[str, list[str]]:
    return {
        "vi": [vi, vi, vi, f"quận {vi}"],
        "vn": [vn, vn.lower(), vn],
        "en": [vn, vn, f"{vn} District"],
    }


SPELLINGS: dict[str, dict[str, list[str]]] = {
    "district_1": _district(1),
    "district_3": _district(3),
    "district_4": _district(4),
    "district_5": _district(5),
    "district_6": _district(6),
    "district_7": _district(7),
    "district_8": _district(8),
    "district_10": _district(10),
    "district_11": _district(11),
    "district_12": _district(12),
    "binh_thanh": _named("Bình Thạnh", "Binh Thanh"),
    "go_vap": _named("Gò Vấp", "Go Vap"),
    "phu_nhuan": _named("Phú Nhuận", "Phu Nhuan"),
    "tan_binh": _named("Tân Bình", "Tan Binh"),
    "tan_phu": _named("Tân Phú", "Tan Phu"),
    "binh_tan": _named("Bình Tân", "Binh Tan"),
    "binh_chanh": {"vi": ["Bình Chánh", "huyện Bình Chánh"], "vn": ["Binh Chanh", "binh chanh"], "en": ["Binh Chanh"]},
    "nha_be": {"vi": ["Nhà Bè", "huyện Nhà Bè"], "vn": ["Nha Be", "nha be"], "en": ["Nha Be"]},
    "hoc_mon": {"vi": ["Hóc Môn"], "vn": ["Hoc Mon", "hoc mon"], "en": ["Hoc Mon"]},
    "cu_chi": {"vi": ["Củ Chi"], "vn": ["Cu Chi"], "en": ["Cu Chi"]},
    "thu_duc": {
        "vi": ["Thủ Đức", "TP Thủ Đức", "Quận 2", "Q2", "Thảo Điền", "Q9", "Quận 9"],
        "vn": ["Thu Duc", "thu duc", "q2", "q9", "thao dien"],
        "en": ["Thu Duc City", "Thao Dien", "District 2", "Thu Duc"],
    },
    "hcmc": {"vi": ["Sài Gòn", "Sài Gòn", "TP.HCM"], "vn": ["Sai Gon", "sai gon"], "en": ["Saigon", "HCMC"]},
}

# Where a {p} slot may point, with weights (people post more about busy central districts).
POOLS: dict[str, dict[str, float]] = {
    "any": {
        "district_1": 6, "district_3": 4, "district_4": 2, "district_5": 3, "district_6": 2, "district_7": 4,
        "district_8": 3, "district_10": 3, "district_11": 2, "district_12": 3, "binh_thanh": 5, "go_vap": 4,
        "phu_nhuan": 3, "tan_binh": 4, "tan_phu": 3, "binh_tan": 3, "binh_chanh": 2, "nha_be": 1.5,
        "hoc_mon": 1, "cu_chi": 1, "thu_duc": 6,
    },
    # Low-lying and riverside places, for floods and high tides before the incident (not District 7:
    # the sample keeps District 7's floods rare until the incident).
    "flood": {
        "binh_thanh": 5, "district_8": 4, "nha_be": 3, "thu_duc": 5, "district_12": 2, "go_vap": 2,
        "binh_tan": 2, "district_4": 2, "district_6": 2, "tan_phu": 1, "binh_chanh": 2, "phu_nhuan": 1,
        "district_1": 1,
    },
}

STREETS = [
    "Cách Mạng Tháng 8", "Điện Biên Phủ", "Cộng Hòa", "Trường Chinh", "Phạm Văn Đồng", "Lê Văn Sỹ",
    "Hoàng Văn Thụ", "Nguyễn Văn Linh", "Kinh Dương Vương", "Xa lộ Hà Nội", "Nguyễn Thị Minh Khai",
    "Hai Bà Trưng", "Lý Thường Kiệt", "3 Tháng 2", "Phan Văn Trị", "Âu Cơ", "Quang Trung", "Nguyễn Oanh",
    "Lũy Bán Bích", "Tô Ký", "Nguyễn Xí", "Đinh Bộ Lĩnh", "Bạch Đằng", "Lê Đức Thọ", "Nguyễn Kiệm",
]
D7_STREETS = [
    "Nguyễn Hữu Thọ", "Huỳnh Tấn Phát", "Nguyễn Thị Thập", "Lê Văn Lương", "Trần Xuân Soạn",
    "Hoàng Quốc Việt", "Lâm Văn Bền", "Phạm Hữu Lầu", "Nguyễn Lương Bằng", "Tân Mỹ",
]
DEPTH = {
    "vi": ["tới gối", "ngang đùi", "lút bánh xe", "gần tới yên xe", "quá mắt cá", "tới bắp chân"],
    "vn": ["toi goi", "ngang dui", "lut banh xe", "gan toi yen xe"],
    "en": ["knee-deep", "thigh-deep", "waist-deep"],
}
BUSES = ["8", "14", "19", "38", "52", "56", "65", "93", "103", "150"]
MINUTES = [15, 20, 25, 30, 35, 40, 45, 50]

# --------------------------------------------------------------------------------------------
# Templates. (sentiment, style, text[, pool]) with sentiment "-" negative, "0" neutral, "+"
# positive. Slots: {p} a place from the pool (default "any"), {st} a street, {m} minutes, {bus} a
# bus route. «...» marks a place alias written into the template itself (checked, then unmarked).
# --------------------------------------------------------------------------------------------

TEMPLATES: dict[str, list[tuple]] = {
    "traffic": [
        ("-", "vi", "Từ {p} lên công ty có sáu cây số mà sáng nay bò mất {m} phút trên đường {st}, tới nơi áo ướt đẫm."),
        ("-", "vi", "Giao lộ gần chợ ở {p} không có đèn tín hiệu, giờ cao điểm là màn tranh nhau từng mét, ai cũng bấm còi."),
        ("-", "vi", "Một chị đi xe đạp điện bị ô tô quẹt ngã trên {st}, người dân xúm lại đỡ, phía sau dồn ứ cả khúc."),
        ("-", "vi", "Tuyến buýt {bus} giờ tan tầm chật như nêm, đứng ép sát cửa mà tài xế vẫn cho thêm người lên."),
        ("-", "vi", "Chiều nào về ngang {p} cũng thấy xe leo lề, chạy ngược chiều, mà không thấy ai nhắc."),
        ("-", "vi", "Gửi xe máy ở khu trung tâm {p} giờ 30 nghìn một lượt, hỏi vé thì bảo không có, chặt chém quá trời."),
        ("-", "vi", "Có ai thấy đoạn {st} dạo này kẹt hơn hẳn không, hay tại mình xui ngày nào ra đường cũng trúng giờ đó?"),
        ("-", "vi", "Ô tô đậu tràn xuống lòng đường trước mấy quán cà phê ở {p}, xe máy phải lách ra giữa, nguy hiểm ghê."),
        ("-", "vi", "Tài xế xe công nghệ tạt đầu không xi-nhan, suýt hất mình văng ra giữa đường {st}."),
        ("-", "vi", "Xe container chạy giờ cấm trên {st}, cả dòng xe máy phải nép sát lề mà run."),
        ("-", "vi", "Kẹt từ chân cầu tới tận ngã tư, đi học về ngang {p} mất gần tiếng, ko hiểu nổi."),
        ("0", "vi", "Từ thứ Hai tới, tuyến buýt {bus} đổi lộ trình chạy qua {st}, mọi người đi tuyến này lưu ý."),
        ("0", "vi", "CSGT đang phân luồng ở vòng xoay gần {p}, xe tải được hướng dẫn đi đường vòng."),
        ("0", "vi", "Cho hỏi từ {p} lên «sân bay Tân Sơn Nhất» giờ cao điểm chiều nên đi đường nào cho đỡ kẹt?"),
        ("0", "vi", "Sáng nay {st} đông nhưng vẫn nhích đều, khoảng {m} phút là qua khỏi khúc đông nhất."),
        ("0", "vi", "Từ đêm nay đoạn {st} thu hẹp còn một làn để thảm nhựa, xe tải nên tính đường khác."),
        ("0", "vi", "Có ai biết bãi giữ xe gần ga «metro số 1» nào còn chỗ buổi sáng không, để gửi xe rồi đi tàu?"),
        ("+", "vi", "Bỏ xe máy ở nhà, đi «metro số 1» đi làm được một tháng, sáng ngồi đọc sách thay vì hít khói, đáng đồng tiền."),
        ("+", "vi", "Từ hồi có đèn đếm ngược ở giao lộ trên {st}, xe chạy trật tự hơn hẳn, ít ai vượt ẩu."),
        ("+", "vi", "Tuyến buýt {bus} đổi xe mới, máy lạnh mát rượi, tài xế chạy êm, đi làm thấy dễ chịu."),
        ("+", "vi", "Sáng nay đường {st} thông thoáng bất ngờ, chạy từ {p} tới công ty có {m} phút."),
        ("+", "vi", "Mấy anh CSGT dừng dòng xe cho một cụ bà chống gậy qua đường ở {p}, nhìn mà ấm lòng."),
        ("+", "vi", "Nút giao ở {p} làm lại vạch kẻ đường với làn rẽ phải riêng, giờ qua chỉ chờ một nhịp đèn."),
        ("+", "vi", "Ga «metro số 1» có thang máy cho người già, nhân viên hướng dẫn mua vé tận tình, đi rất thích."),
        ("+", "vi", "Tối chạy xe dọc «đại lộ Võ Văn Kiệt» gió sông mát rượi, đường rộng, đèn sáng, đi về nhẹ cả người."),
        ("-", "vn", "«vo van kiet» sang nay ket tu cau Ong Lanh toi tan cau Chu Y, xe tai xe may chen nhau"),
        ("-", "vi", "Giờ tan tầm xe trên «Nguyễn Hữu Cảnh» nối đuôi từ đầu cầu tới tận chân chung cư, nhích mãi không xong."),
        ("+", "vn", "«duong Nguyen Huu Canh» toi nay thong thoang, chay 1 mach ve «Binh Thanh» ko phai dung den nao"),
        ("-", "vn", "ket xe qua troi tren {st}, nhich tung chut mot, tre lam r"),
        ("-", "vn", "vua toi cty da uot dam mo hoi, {m}p cho 6km tu {p}, ai chiu noi"),
        ("-", "vn", "xe buyt {bus} cho hoai ko thay, bo cuoc dat xe om luon"),
        ("-", "vn", "nga tu gan nha o {p} den hu 2 ngay r, xe chen nhau ko ai nhuong ai"),
        ("0", "vn", "ai biet duong {st} gio nay con ket ko, dang tinh chay qua {p}"),
        ("0", "vn", "csgt dang lam viec o dau duong {st}, ae nho doi non day du nha"),
        ("+", "vn", "lan dau di «metro so 1», nhan vien chi tan tinh, toa tau sach bong, me r nha"),
        ("+", "vn", "duong {st} nay thong thoang ghe, chay tu {p} ve nha co {m} phut"),
        ("-", "en", "{m} minutes to move two blocks on {st} this morning. I could have walked to the office in {p} faster."),
        ("-", "en", "Motorbikes riding on the sidewalk again near {p}, walking anywhere here is a contact sport."),
        ("0", "en", "Does the airport bus stop anywhere near {p}, or do I need a Grab to catch it?"),
        ("0", "en", "How early do the «Saigon metro» trains start running on weekends?"),
        ("+", "en", "The «Saigon metro» at 7:30am: air-conditioned, spotless, and a seat by the second stop. Still can't believe it."),
        ("+", "en", "Traffic on {st} was surprisingly light tonight, made it home to {p} in no time."),
        ("-", "en", "Crossing the street in «Saigon» still feels like a video game, nobody stops at the zebra crossings."),
        ("0", "en", "Road works on {st} by the market, one lane closed both ways. Plan extra time."),
        ("+", "en", "Bus {bus} today: cold air-con, a patient driver, on time to the minute. Small wins."),
        ("0", "vn", "tuan sau cam duong {st} de lam cong, ae hay di qua do tinh duong khac nha"),
    ],
    "flooding": [
        ("-", "vi", "Mưa có nửa tiếng mà hẻm nhà mình ở {p} nước đã quá mắt cá, lội về ướt hết giày.", "flood"),
        ("-", "vi", "«Nguyễn Hữu Cảnh» chiều nay lại thành sông, bao nhiêu tiền chống ngập rồi mà vẫn y như cũ."),
        ("-", "vi", "Triều cường lên, nước tràn qua bờ kè vào mấy dãy nhà trọ ở {p}, bà con phải kê đồ lên cao.", "flood"),
        ("-", "vi", "Chiều nay chạy ngang {p} nước lên lưng chừng bánh xe, đếm được chục chiếc tay ga nằm ven đường chờ khô bugi.", "flood"),
        ("-", "vi", "Cống trước nhà ở {p} nghẹt rác, mưa chút xíu là nước không thoát được, sùi bọt lên mặt đường.", "flood"),
        ("-", "vi", "Đợt triều cường này nước lên cao hơn năm ngoái, khu ven sông ở {p} ngập cả buổi chiều.", "flood"),
        ("-", "vi", "Mỗi lần mưa là đường {st} đoạn gần chợ thành cái ao, xe cộ rẽ sóng tạt nước vô tận nhà.", "flood"),
        ("-", "vi", "Triều cường lên, đoạn «Võ Văn Kiệt» gần cầu Chữ Y nước tràn lên mặt đường, xe máy bò từng chút."),
        ("0", "vi", "Lịch triều cường tuần này: cao nhất vào chiều thứ Năm, các hộ sát mé sông ở {p} nên chuẩn bị bao cát.", "flood"),
        ("0", "vi", "Có ai biết đường vào {p} giờ này còn nước không, định chạy qua đón con?", "flood"),
        ("0", "vi", "Thành phố đang thi công tuyến cống lớn dọc {st}, nghe nói xong sẽ giảm ngập cho cả khu này."),
        ("0", "vi", "Sau cơn mưa trưa nay, nước ở {p} rút sau khoảng {m} phút, đường đã đi lại bình thường.", "flood"),
        ("+", "vi", "Hồi xưa khúc này ở {p} mưa là lội, giờ có trạm bơm, mưa xong mười phút đường đã ráo.", "flood"),
        ("+", "vi", "Phải khen cái van ngăn triều mới ở {p}, hôm qua đỉnh triều mà trong hẻm vẫn khô ráo.", "flood"),
        ("+", "vi", "Mưa như trút mà {st} không đọng nước, nạo vét cống xong đúng là khác hẳn."),
        ("-", "vn", "mua to qua, duong {st} ngap het roi, xe chet may dung dai"),
        ("-", "vn", "trieu cuong len nuoc tran vo nha o {p}, chan qua di", "flood"),
        ("0", "vn", "ai o {p} cho hoi gio duong con ngap ko, dang tinh chay ve", "flood"),
        ("+", "vn", "mua xong ma {p} rut nuoc nhanh ghe, ko con loi bi bom nhu may nam truoc", "flood"),
        ("-", "en", "Flash flooding in {p} again after twenty minutes of rain, water up to the footrests.", "flood"),
        ("-", "en", "High tide plus rain and half of {p} is under water, the drainage here is a joke.", "flood"),
        ("-", "en", "«Nguyen Huu Canh» after a thirty-minute shower: one lane open, everyone else wading."),
        ("0", "en", "Heading across {p} in an hour, are the streets still under water after the rain?", "flood"),
        ("+", "en", "Impressed that the new pumping station kept {p} dry during this afternoon's downpour.", "flood"),
        ("+", "en", "The new sewer line on {st} kept our street dry this time, first rainy season in years without wading."),
        ("0", "en", "Is the tide going to be high again this week in {p}? Trying to decide where to park.", "flood"),
        ("+", "vn", "tram bom moi o {p} chay ngon, mua may cung ko lo loi nuoc nua", "flood"),
        ("0", "vn", "lich trieu cuong tuan nay cao nhat vao may gio vay mn, nha o {p} sat song", "flood"),
    ],
    "admin_procedures": [
        ("-", "vi", "Bốc số lúc 7h30 ở phường bên {p}, tới 11h bảng điện tử vẫn còn cách mình 40 số."),
        ("-", "vi", "Xin phép sửa nhà ở {p} mà mỗi lần lên là cán bộ phát hiện thêm một giấy cần bổ sung, y như chơi truy tìm kho báu."),
        ("-", "vi", "Cán bộ tiếp dân ở bộ phận một cửa {p} nói chuyện cộc lốc, hỏi gì cũng bảo tự đọc bảng dán tường."),
        ("-", "vi", "Sang tên sổ hồng mà hẹn tới hẹn lui hơn hai tháng, xin nghỉ phép đi nộp giấy tờ hết cả phép năm."),
        ("-", "vi", "Công chứng hợp đồng mua bán xe ở {p} mà chờ ký cả buổi, phòng chật, máy lạnh hư."),
        ("0", "vi", "Cho hỏi đăng ký tạm trú cho người thuê trọ ở {p} giờ cần mang những giấy tờ gì?"),
        ("0", "vi", "Phường mình ở {p} nhận hồ sơ vào sáng thứ Bảy, ai đi làm giờ hành chính không kịp thì tranh thủ."),
        ("0", "vi", "Nghe nói từ tháng sau bộ phận một cửa ở {p} chuyển sang trụ sở mới, ai biết địa chỉ chưa?"),
        ("+", "vi", "Trích lục khai sinh cho con ở phường bên {p}, nộp buổi sáng chiều đã có, không phải quay lại lần hai."),
        ("+", "vi", "Bộ phận một cửa ở {p} giờ có số thứ tự, ghế ngồi, nước uống, đi làm giấy tờ thấy nhẹ nhàng hẳn."),
        ("+", "vi", "Công chứng hợp đồng thuê nhà ở {p} nhanh gọn, phí niêm yết rõ ràng, nhân viên giải thích từng điều khoản."),
        ("+", "vi", "Anh công an khu vực ở {p} tới tận nhà xác minh cư trú cho bà nội, khỏi phải chở bà lên phường."),
        ("-", "vn", "lam giay tam tru cho nguoi thue tro ma moi lan len la thieu 1 to giay, mat 3 buoi lam roi"),
        ("-", "vn", "nop ho so o ubnd {p} ma hen 15 ngay, gio qua 1 thang chua co, goi dien ko ai bat may"),
        ("0", "vn", "cccd cua minh bi mat, lam lai o {p} co can giay xac nhan gi ko mn"),
        ("+", "vn", "nay len phuong o {p} lam giay to, chi o quay de thuong ghe, chi tung buoc, nua tieng la xong"),
        ("-", "en", "Three trips to the ward office in {p} for one stamped copy of my lease. Three."),
        ("0", "en", "Foreigners in {p}: does the ward police still need the landlord present for temporary residence registration?"),
        ("+", "en", "Renewed my temporary residence at the ward police in {p}, the officer even explained it in English. Painless."),
        ("+", "en", "The one-stop counter in {p} now texts you when your papers are ready. No more wasted trips."),
        ("-", "en", "Queued at the notary in {p} for two hours only to be told the photocopier was broken."),
        ("0", "en", "Does anyone know if the ward office in {p} is open on Saturday mornings for document certification?"),
        ("+", "vn", "xin giay phep xay dung o {p} lan nay nhanh bat ngo, dung hen 15 ngay"),
        ("0", "vn", "mn oi dang ky ket hon o phuong can mang giay to gi vay, minh o {p}"),
    ],
    "healthcare": [
        ("-", "vi", "Con sốt cao, đưa vô viện nhi mà phòng chờ không còn chỗ đứng, điều dưỡng ai cũng bận không hỏi được câu nào."),
        ("-", "vi", "Ba mình nhập viện ở {p} mà phải nằm băng ca ngoài hành lang hai đêm vì hết giường."),
        ("-", "vi", "Khám bảo hiểm y tế mà cứ bị hỏi có muốn chuyển qua khám dịch vụ cho nhanh không, thấy khó chịu."),
        ("-", "vi", "Xóm mình ở {p} mấy tuần nay nhiều nhà có người sốt xuất huyết, mà chưa thấy ai tới phun thuốc muỗi."),
        ("-", "vi", "Đóng viện phí xong mới biết mấy loại thuốc ngoài danh mục bảo hiểm, hóa đơn dài cả gang tay."),
        ("0", "vi", "Trạm y tế phường ở {p} tiêm vắc xin sởi cho trẻ từ 1 đến 5 tuổi vào sáng thứ Bảy, nhớ mang sổ tiêm."),
        ("0", "vi", "Có ai biết phòng khám nào ở {p} khám tai mũi họng cuối tuần mà nhận bảo hiểm không?"),
        ("0", "vi", "Bệnh viện quận ở {p} bắt đầu cho đặt lịch khám qua tổng đài, mỗi khung giờ nhận giới hạn số người."),
        ("+", "vi", "Phòng khám của phường ở {p} khám kỹ cho mẹ mình, bác sĩ dặn dò tận tình cách uống thuốc huyết áp."),
        ("+", "vi", "Gọi 115 lúc nửa đêm, mười phút sau xe cấp cứu đã tới đầu hẻm, cảm ơn các anh nhiều lắm."),
        ("+", "vi", "Khoa nhi mới sửa sang sạch sẽ, có góc chơi cho tụi nhỏ, điều dưỡng nói chuyện nhẹ nhàng, con hết sợ đi viện."),
        ("+", "vi", "Đi mổ ruột thừa ở {p}, từ lúc nhập viện tới lúc ra mọi thứ rõ ràng, bảo hiểm chi trả gần hết."),
        ("-", "vn", "xep hang bhyt tu 6h, 10h moi toi luot, bac si kham dung 3 phut"),
        ("-", "vn", "con bi tay chan mieng, lop o {p} 5 dua bi roi ma truong ko bao phu huynh"),
        ("0", "vn", "mn cho hoi o {p} cho nao tiem ngua cho be uy tin vay"),
        ("+", "vn", "tram y te phuong o {p} kham ky lam, bac si vui tinh, ai o gan nen toi"),
        ("-", "en", "Took my neighbour to the district hospital in {p}, four hours on a plastic chair before anyone took her blood pressure."),
        ("0", "en", "Any English-speaking pediatric clinic in {p} that takes walk-ins on Sundays?"),
        ("+", "en", "Shout-out to the ER team in {p} who stitched up my friend at 2am, fast and kind."),
        ("+", "en", "Got my flu shot at the ward health station in {p}, ten minutes in and out, very friendly nurse."),
        ("-", "en", "Paid for a private room at the hospital in {p} and still shared it with two other patients. Not what we were told."),
        ("0", "en", "Which hospitals in {p} have a proper international department for foreigners without local insurance?"),
        ("+", "vn", "di kham rang o phong kham gan nha {p}, bac si nhe tay, gia hop ly, ung ghe"),
        ("0", "vn", "ai biet benh vien nao o {p} kham mat cho tre em ngay chu nhat ko"),
    ],
    "education": [
        ("-", "vi", "Họp phụ huynh mới biết lớp con ở {p} có 52 bạn, cô đọc tên thôi cũng hết mười phút."),
        ("-", "vi", "Đầu năm học đã thu đủ thứ khoản, quỹ lớp, quỹ hội, tiền máy lạnh, tiền vệ sinh, cộng lại gần chục triệu."),
        ("-", "vi", "Con học lớp 4 mà tối nào cũng ngồi làm bài tới 10h, áp lực quá mức cho một đứa nhỏ."),
        ("-", "vi", "Trường gần nhà ở {p} thiếu phòng, nhiều bé phải học ca chiều, phụ huynh đưa đón cực muốn xỉu."),
        ("0", "vi", "Năm nay thi lớp 10 vẫn ba môn Toán, Văn, Anh, hạn chót đăng ký nguyện vọng là cuối tháng Tư."),
        ("0", "vi", "Có ai biết trường mầm non công lập nào ở {p} còn nhận trẻ giữa năm không?"),
        ("0", "vi", "Trường ở {p} dạy tiếng Anh với giáo viên nước ngoài từ lớp 3, học phí phần này tính riêng."),
        ("+", "vi", "Trường tiểu học mới xây ở {p} sân rộng, thư viện đẹp, con mình đi học về khoe hoài."),
        ("+", "vi", "Cô chủ nhiệm nhắn tin hỏi thăm từng bé khi nghỉ ốm, thấy quý cô vô cùng."),
        ("+", "vi", "Trường cho học sinh đi trải nghiệm ở «Củ Chi», tụi nhỏ về kể chuyện địa đạo say sưa cả tuần."),
        ("+", "vi", "Thư viện trường ở {p} mở cửa cả thứ Bảy cho học sinh tự học, có máy lạnh, yên tĩnh, con mê lắm."),
        ("-", "vn", "hoc them tu thu 2 toi chu nhat, con nit ko co thoi gian choi luon"),
        ("-", "vn", "ktx truong minh o {p} nuoc yeu, phong 8 dua chat choi, chan"),
        ("0", "vn", "be nha minh nam sau thi vao 10, o {p} truong nao vua suc hoc sinh kha vay mn"),
        ("+", "vn", "thay day toan lop minh giang de hieu qua, hoc ma ko buon ngu luon"),
        ("-", "en", "Our daughter's public school in {p} still has no working fans in half the classrooms, the kids are melting."),
        ("0", "en", "Looking for a Vietnamese class for adults around {p}, evenings preferred. Any tips?"),
        ("+", "en", "Parent-teacher meeting at our local school in {p} was actually useful, the teacher knew every kid by name."),
        ("+", "en", "The free weekend coding club at the library in {p} has my kid hooked. Great volunteers."),
        ("-", "en", "Drop-off outside the primary school in {p} is chaos, parents double-parking and blocking the whole street."),
        ("0", "en", "Which public high schools in {p} have the best English programs? Moving here next year."),
        ("+", "vn", "truong con minh o {p} to chuc ngay hoi doc sach, tui nho hao hung lam"),
        ("0", "vn", "lop 1 nam nay hoc may buoi 1 tuan vay mn, truong o {p} bao hoc 2 buoi"),
    ],
    "public_safety": [
        ("-", "vi", "Vừa bị giật túi xách ngay trên {st}, hai thanh niên chạy xe không biển số, mọi người cẩn thận."),
        ("-", "vi", "Hẻm nhà mình ở {p} tuần này mất hai chiếc xe máy, camera quay rõ mặt mà chưa bắt được."),
        ("-", "vi", "Tối nào cũng có nhóm thanh niên tụ tập nẹt pô trên {st}, ồn ào, ông bà già trong xóm sợ không dám ra đường."),
        ("-", "vi", "Mẹ mình suýt chuyển tiền cho kẻ gọi giả danh công an, tụi nó đọc vanh vách cả số căn cước."),
        ("-", "vi", "Tối qua cháy một tiệm sửa xe ở {p}, khói đen cả khúc đường, may mà hàng xóm lấy bình chữa cháy dập kịp."),
        ("0", "vi", "Công an phường ở {p} phát tờ rơi cảnh báo các chiêu lừa qua điện thoại, nhà có người già nên đọc."),
        ("0", "vi", "Ban quản lý tòa nhà ở {p} thông báo thử chuông báo cháy từ 9h đến 10h sáng mai, cư dân đừng hoảng."),
        ("0", "vi", "Đêm qua có vụ xô xát ở quán nhậu gần {st}, công an đã tới lập biên bản."),
        ("+", "vi", "Từ hồi khu phố ở {p} lập nhóm Zalo báo tin, có người lạ lảng vảng là cả xóm biết, hết hẳn trộm vặt."),
        ("+", "vi", "Cảm ơn anh xe ôm đã rượt theo giúp mình lấy lại điện thoại bị giật ở {p}."),
        ("+", "vi", "Khu phố mình ở {p} gắn thêm camera với đèn chiếu sáng đầu hẻm, đi làm về khuya thấy an tâm."),
        ("-", "vn", "vua bi moc tui o «cho Ben Thanh», mat vi voi giay to, xui qua"),
        ("-", "vn", "dem qua tui no dua xe tren {st} tu 1h toi 3h sang, ko ngu dc"),
        ("0", "vn", "canh bao ae: co dua goi tu xung ben giao hang doi chuyen khoan phi ship, dung tin nha"),
        ("+", "vn", "cong an phuong o {p} xu ly nhanh ghe, trinh bao xong 2 ngay la tim dc xe"),
        ("-", "en", "Watch your bags near «Nguyen Hue», a guy on a scooter grabbed my friend's tote right off her shoulder tonight."),
        ("0", "en", "New to {p}: which streets do people avoid on a scooter late at night, if any?"),
        ("+", "en", "Lost my wallet in a taxi in {p} and the driver dropped it off at the ward police station. Honest people here."),
        ("+", "en", "Neighbourhood watch in {p} caught a bike thief red-handed last night, police came within minutes."),
        ("-", "en", "Got a call from a fake 'bank officer' who knew my full name and ID number. The scammers are getting scary."),
        ("0", "en", "Heard sirens for an hour around {p}, anyone know what happened?"),
        ("+", "vn", "may anh dan phong o {p} di tuan toi nao cung ghe hem minh, yen tam ghe"),
        ("0", "vn", "toi qua nghe coi cuu hoa o {p} hoai, ai biet chay o dau ko"),
    ],
    "urban_planning": [
        ("-", "vi", "Dự án mở rộng {st} rào chắn cả năm rồi mà chưa xong, hàng quán hai bên đóng cửa gần hết."),
        ("-", "vi", "Cây cầu ở {p} khởi công từ năm 2019 mà tới giờ vẫn dang dở, sắt thép rỉ sét hết, ai chịu trách nhiệm?"),
        ("-", "vi", "Mười hai năm nay nhà mình ở {p} không được cấp phép sửa vì nằm trong dự án chưa triển khai, mái dột chỉ dám vá tạm."),
        ("-", "vi", "Đoạn lề đường trước nhà mới làm hồi tháng Sáu, giờ lại có đội tới cạy lên chôn cáp, tiền thuế của dân chứ đâu."),
        ("0", "vi", "Thành phố công bố phương án bồi thường cho dự án nâng cấp trục đường chính qua {p}, hộ dân có ba tháng góp ý."),
        ("0", "vi", "Có ai biết dự án công viên bờ sông ở {p} khi nào khởi công không?"),
        ("0", "vi", "Dự án nâng cao mặt đường «Nguyễn Hữu Cảnh» đang làm đoạn gần cầu, xe đi chậm, mọi người tính thêm thời gian."),
        ("0", "vi", "«Tuyến metro số 1» dự kiến kéo dài thêm, đang hỏi ý kiến bà con về vị trí các nhà ga mới."),
        ("+", "vi", "Khu đất trống bỏ hoang ở {p} giờ thành sân chơi có cỏ, có xích đu, chiều con nít ra chơi đông vui."),
        ("+", "vi", "Hầm chui ở nút giao gần {p} thông xe rồi, khỏi phải chờ đèn đỏ ba nhịp như trước."),
        ("+", "vi", "«Phố đi bộ Nguyễn Huệ» nay thêm ghế ngồi và bồn cây, tối ra đây hóng gió thích lắm."),
        ("+", "vi", "Đường ven kênh ở {p} vừa làm xong, lát gạch đẹp, có làn riêng cho người đi bộ, sáng tập thể dục đông vui."),
        ("-", "vn", "du an duong o {p} lam hoai ko xong, bui bam, hang quan dong cua gan het"),
        ("-", "vn", "xay them 3 toa chung cu ma con duong vo khu o {p} van chi 2 lan xe, gio tan tam dung im"),
        ("0", "vn", "ai biet khu dat trong o {p} sap xay gi ko, thay rao ton quanh may thang nay"),
        ("+", "vn", "via he {st} lam lai rong rai, bang phang, di bo suong ghe"),
        ("-", "en", "The road widening in {p} has been a construction site for two years, shops along it are closing one by one."),
        ("0", "en", "Saw surveyors marking out lots along the river in {p}. Does anyone know what's planned there?"),
        ("+", "en", "The new walkway along the «Nhieu Loc canal» is lovely at sunset, great job by the city."),
        ("+", "en", "The new pedestrian bridge in {p} is a game changer, no more sprinting across six lanes."),
        ("-", "en", "The half-finished overpass in {p} has been sitting there for years, just concrete pillars and weeds."),
        ("0", "en", "Is the land clearance for the new road in {p} finished? Friends there are still waiting to be paid."),
        ("+", "vn", "cau moi o {p} thong xe r, tu nha qua cho co 5 phut, truoc phai vong xa lac"),
        ("0", "vn", "nghe noi {p} sap co cong vien moi, ai biet o dau ko"),
    ],
    "environment": [
        ("-", "vi", "Sáng nay nhìn từ tầng 15 ở {p} không thấy nổi tòa nhà đối diện, app đo không khí báo màu đỏ."),
        ("-", "vi", "Con rạch sau nhà ở {p} nước đen kịt, trưa nắng lên là mùi xộc vào tận bếp."),
        ("-", "vi", "Nhà bên cạnh ở {p} chiều nào cũng gom lá khô đốt, cả xóm hít khói, con nhỏ ho mấy hôm nay."),
        ("-", "vi", "Mấy cây me tây cổ thụ trước chợ ở {p} bị cưa sạch để mở rộng mặt đường, trưa giờ nắng cháy da."),
        ("-", "vi", "Xe thu gom rác hai ngày nay không ghé hẻm mình ở {p}, túi rác xếp cao tới đầu gối, chó mèo bới tung."),
        ("-", "vi", "Quán karaoke đầu hẻm ở {p} hát tới 1h sáng, gọi phản ánh mấy lần mà đâu vẫn hoàn đó."),
        ("0", "vi", "Thành phố thí điểm phân loại rác tại nguồn ở {p}, mỗi hộ được phát hai thùng khác màu."),
        ("0", "vi", "Hôm nay chỉ số không khí ở {p} khoảng 95, người có bệnh hô hấp nên hạn chế ra đường sáng sớm."),
        ("0", "vi", "Cho hỏi ở {p} có điểm thu gom pin cũ với đồ điện tử hỏng không?"),
        ("+", "vi", "«Kênh Nhiêu Lộc» dạo này nước trong hơn, chiều ra đi bộ thấy cả cá đớp mồi."),
        ("+", "vi", "Khu phố mình ở {p} vừa trồng thêm cả trăm cây sao, cây dầu, vài năm nữa chắc mát rượi."),
        ("+", "vi", "Đi «Cần Giờ» cuối tuần, rừng đước xanh mướt, gió biển mát, về thấy người nhẹ tênh."),
        ("+", "vi", "Nhóm tình nguyện nhặt rác ven sông ở {p} sáng Chủ nhật, hai tiếng gom được hơn chục bao, vui và ý nghĩa."),
        ("-", "vn", "hem nha minh o {p} rac de lung tung, ko ai don, boc mui ko chiu noi"),
        ("-", "vn", "bui qua, chay xe tu {p} ve ma mat cay xe, phai deo 2 lop khau trang"),
        ("0", "vn", "nay chi so khong khi o «sai gon» bao nhieu vay mn, thay troi mu mu"),
        ("+", "vn", "cong vien o {p} moi trong them cay, sang chay bo mat me ghe"),
        ("-", "en", "Someone burns trash down the alley in {p} every evening, the smoke comes straight through our windows."),
        ("0", "en", "Air quality app says 110 in {p} today, probably skipping my run."),
        ("+", "en", "Day trip to the mangroves in «Can Gio», cleanest air I've breathed in months."),
        ("-", "en", "Dust from the construction site in {p} coats everything, I wipe my desk and it's grey again by noon."),
        ("0", "en", "Does {p} have separate recycling pickup yet, or does everything go in one bin?"),
        ("+", "en", "Spotted herons in the park in {p} this morning, the new trees are already bringing birds back."),
        ("+", "vn", "«kenh Nhieu Loc» gio it mui han xua, toi ra ngoi hong gio dc roi"),
        ("0", "vn", "ai biet diem thu gom rac tai che o {p} ko, nha minh gom dc may bao chai nhua"),
        ("0", "vi", "Mấy hôm nay sáng sớm «Sài Gòn» se lạnh, sương mù mỏng, nhiều người tưởng bụi mịn."),
    ],
    "utilities": [
        ("-", "vi", "Từ 8h sáng khu mình ở {p} mất điện, gọi tổng đài thì bảo chưa rõ lúc nào có lại, đồ trong tủ lạnh chảy nước hết."),
        ("-", "vi", "Nước máy ở {p} yếu xìu ba ngày nay, tối phải thức tới khuya canh hứng từng xô."),
        ("-", "vi", "Tháng này nhà mình xài y như mọi khi mà tiền điện lên hơn 2 triệu, vô lý hết sức."),
        ("-", "vi", "Nắp hố ga trên {st} bị mất cả tuần, chỉ cắm một cành cây làm dấu, tối chạy xe suýt sụp bánh."),
        ("-", "vi", "Mở vòi ra nước vàng như nước trà, phải để chảy cả phút mới trong, ai dám nấu ăn?"),
        ("0", "vi", "Điện lực báo tạm ngưng cấp điện ở {p} ngày mai từ 7h đến 16h để bảo trì trạm biến áp."),
        ("0", "vi", "Công ty cấp nước thông báo giảm áp lực nước một số phường ở {p} tối nay để sửa ống."),
        ("0", "vi", "Ai ở {p} cho hỏi đèn đường hư thì báo ở đâu cho nhanh?"),
        ("+", "vi", "Báo đèn đường hư lúc sáng, chiều đã có xe thang tới thay, nhanh thật."),
        ("+", "vi", "Thay đường ống mới xong, nước ở {p} mạnh và trong hẳn, khỏi phải chạy máy bơm nữa."),
        ("+", "vi", "Điện lực ở {p} nhắn tin báo lịch cắt điện trước ba ngày, nhà ai cũng kịp chuẩn bị."),
        ("-", "vn", "sao dien cup hoai vay troi, tuan nay o {p} cup 3 lan r"),
        ("-", "vn", "nuoc may o {p} may bua nay co can, phai loc 2 lan moi dam xai"),
        ("0", "vn", "mai o {p} cup nuoc tu 22h toi 4h sang nha mn, nho tru nuoc"),
        ("+", "vn", "dien o {p} on dinh han tu hoi thay tram bien ap, ko con chap chon"),
        ("-", "en", "Third power cut this week in {p}, the fan dies and so does my work-from-home day."),
        ("0", "en", "Water supply in parts of {p} will be off tonight for pipe repairs, fill your buckets."),
        ("+", "en", "Called about a broken streetlight in {p} and it was fixed the next evening, impressed."),
        ("+", "en", "Water pressure in {p} is finally decent after the pipe replacement, showers are a joy again."),
        ("-", "en", "No tap water in {p} since this morning and not a word from the water company."),
        ("0", "en", "Who do I call about a missing manhole cover in {p}? It's right in the middle of the lane."),
        ("+", "vn", "bao den duong hu qua app, hom sau co nguoi toi sua lien, dinh"),
        ("0", "vn", "ai o {p} biet so dien thoai dien luc khu vuc ko, nha minh mat dien tu chieu"),
    ],
    "economy": [
        ("-", "vi", "Đi chợ sáng nay ký thịt ba rọi 160 nghìn, bó rau muống 15 nghìn, lương thì vẫn vậy."),
        ("-", "vi", "Tiền thuê mặt bằng ở {p} tăng quá, quán bún bò quen của mình vừa dán giấy sang nhượng."),
        ("-", "vi", "Công ty mình vừa cắt thêm 30 người, Tết này chắc nhiều nhà khó khăn."),
        ("-", "vi", "Giá nhà ở {p} giờ dân văn phòng để dành cả đời cũng không mua nổi một căn nhỏ."),
        ("0", "vi", "Chợ «Bến Thành» mùa cuối năm khách du lịch đông trở lại, nhiều sạp mở cửa sớm hơn."),
        ("0", "vi", "Ở {p} thuê phòng trọ khoảng 20 mét vuông giờ giá bao nhiêu vậy mọi người?"),
        ("0", "vi", "Cuối tuần này nhà văn hóa ở {p} có ngày hội tuyển dụng, chủ yếu tuyển công nhân may và nhân viên kho."),
        ("+", "vi", "Khu chợ đêm mới ở {p} đông vui, mấy cô chú bán hàng nói bán được hơn hẳn năm ngoái."),
        ("+", "vi", "Công ty vừa tăng lương 8% trước Tết, anh em ai cũng phấn khởi."),
        ("+", "vi", "Mấy quán ăn sáng ở {p} vẫn giữ giá 30 nghìn một tô, ngon mà rẻ, thương ghê."),
        ("+", "vi", "Tiệm bánh mì nhỏ đầu hẻm ở {p} mở thêm chi nhánh thứ hai, mừng cho cô chủ chịu khó."),
        ("-", "vn", "com trua van phong gio 45k 1 dia, an 1 thang het nua luong roi"),
        ("-", "vn", "thue phong o {p} 5 trieu ma nho xiu, chu nha con doi tang gia"),
        ("0", "vn", "ai biet cho nao o {p} tuyen nhan vien ban hang part time ko"),
        ("+", "vn", "quan ca phe moi mo o {p} dong khach qua, chu quan noi sap thue them 3 ban tre"),
        ("-", "en", "Rent for a studio in {p} jumped again, landlords are pricing out everyone who isn't on an expat salary."),
        ("0", "en", "How much do locals usually pay for a small apartment in {p}? Trying to budget before moving."),
        ("+", "en", "Bought lacquerware at «Ben Thanh market» tonight and the vendor threw in a free bowl, business seems good again."),
        ("+", "en", "Street food in {p} is still unbeatable value, a full dinner for under four dollars."),
        ("-", "en", "My favourite noodle stall in {p} raised prices twice this year and the portions keep shrinking."),
        ("0", "en", "Any job fairs coming up around {p}? Looking for warehouse or logistics work."),
        ("0", "en", "Is «HCMC» getting more expensive for everyone or is it just my neighbourhood?"),
        ("+", "vn", "cho dem o {p} cuoi tuan dong nghet, co ban che noi ban gap doi thang truoc"),
        ("0", "vn", "gia vang hom nay o tiem gan nha {p} bao nhieu vay ae"),
        ("-", "vi", "Lương tăng không kịp giá, sống ở «TP.HCM» giờ tháng nào cũng phải tính từng đồng."),
    ],
    "digital_services": [
        ("-", "vi", "Điền hồ sơ trên cổng dịch vụ công gần xong thì hết phiên đăng nhập, mất sạch, làm lại từ đầu lần thứ ba."),
        ("-", "vi", "Cập nhật VNeID xong thì app không nhận khuôn mặt nữa, chụp hoài vẫn báo không khớp."),
        ("-", "vi", "Nộp hồ sơ online rồi mà phường vẫn bắt lên nộp bản giấy, vậy online để làm gì?"),
        ("-", "vi", "Nhà mình ở {p} vô tới phòng ngủ là mất sóng, gọi điện phải chạy ra ban công."),
        ("0", "vi", "Từ tháng sau, đóng phí gửi xe ở chung cư bên {p} có thể quét mã QR."),
        ("0", "vi", "Có ai đăng ký khai sinh cho con qua mạng chưa, mất mấy ngày thì có kết quả?"),
        ("0", "vi", "Wifi công cộng ở «phố đi bộ Nguyễn Huệ» đăng nhập bằng số điện thoại, mỗi lượt dùng 30 phút."),
        ("+", "vi", "Đóng tiền điện, tiền nước qua app ngân hàng chỉ mất một phút, khỏi chờ người tới thu."),
        ("+", "vi", "Làm thủ tục đổi bằng lái trên cổng dịch vụ công, hai tuần sau bằng mới gửi về tận nhà, quá đỉnh."),
        ("+", "vi", "Wifi miễn phí ở «sân bay Tân Sơn Nhất» giờ nhanh, vào mạng ổn định, ngồi chờ chuyến bay làm việc được."),
        ("-", "vn", "app dich vu cong lag qua, bam nop ho so 5 lan ko dc, bo tay"),
        ("-", "vn", "song dien thoai o {p} chap chon, goi video toan bi dung hinh"),
        ("0", "vn", "ai biet cach tich hop bang lai vao vneid ko, chi minh voi"),
        ("+", "vn", "vua dong phat nguoi online, nhanh gon ko can ra kho bac, qua tien"),
        ("-", "en", "Tried to renew my work permit online, the portal logged me out twice and lost everything I'd typed."),
        ("0", "en", "Does the VNeID app work with a foreign phone number? Trying to set it up for my residence card."),
        ("+", "en", "Settled a traffic camera fine from my phone in two minutes, no queue at the treasury. Genuinely impressed."),
        ("+", "en", "The online booking for document pickup at the ward in {p} actually works, picked a slot and walked straight in."),
        ("-", "en", "4G in my apartment in {p} is so bad I have to stand by the window to load anything."),
        ("0", "en", "Is there free public wifi anywhere around {p}? My data ran out."),
        ("+", "vn", "nop ho so xin giay phep kinh doanh qua mang, 3 ngay co ket qua, ko can len quan, qua da"),
        ("0", "vn", "co ai biet tra cuu phat nguoi o dau cho chinh xac ko, minh thay may trang web la lam"),
        ("+", "vi", "App phản ánh hiện trường của «TP.HCM» dễ xài, chụp hình gửi lên là có mã theo dõi xử lý."),
    ],
}

# Flooding posts that are good news, one in most evenings before the incident (the demo's flooding
# baseline at that hour is then calm, not absent). Never District 7.
EVENING_FLOOD_GOOD = [
    ("+", "vi", "Tối nay trời đổ mưa hơn tiếng đồng hồ, vậy mà con hẻm ở {p} chỉ đọng chút nước ở rãnh, sáng mai đi làm khỏe re.", "flood"),
    ("+", "vi", "Đỉnh triều tối nay mà khu mình ở {p} vẫn khô ráo, cái van ngăn triều lắp hồi tháng Bảy phát huy tác dụng rồi.", "flood"),
    ("+", "vi", "Cơn mưa tối nay to thật mà {st} thoát nước nhanh, đi về không phải lội, cảm ơn các anh công nhân nạo vét cống."),
    ("+", "vn", "toi nay mua ma hem o {p} kho queo, tu hoi lam lai cong la het canh loi nuoc", "flood"),
    ("+", "en", "Downpour tonight and the lane outside our place in {p} stayed dry, whoever redid the drains deserves a raise.", "flood"),
    ("+", "vi", "Xem camera thấy mưa to tối nay mà mặt đường ở {p} ráo nhanh, mấy năm trước giờ này là bì bõm rồi.", "flood"),
    ("+", "vi", "Nhớ hồi trước cứ tối mưa là hẻm nhà mình ở {p} thành sông, năm nay khô re, mừng muốn khóc.", "flood"),
    ("+", "vi", "Triều cường tối nay không tràn qua được bờ kè mới ở {p}, lần đầu tiên mấy năm nay nhà mình khỏi kê đồ.", "flood"),
    ("+", "vi", "Đi làm về trời mưa tầm tã mà đường sá ở {p} vẫn thông thoáng, công trình chống ngập có tác dụng thật.", "flood"),
]

# District 7 before the incident: a few mild floods in the afternoon, over two weeks.
D7_BEFORE = [
    (dt.date(2026, 11, 19), "15:41", "0", "vi", "Mưa chiều ở «Quận 7» đoạn Huỳnh Tấn Phát ngập nhẹ chừng nửa bánh xe, tầm 20 phút là rút."),
    (dt.date(2026, 11, 23), "16:22", "0", "vi", "Triều cường chiều nay làm mấy hẻm sát sông ở «Q7» ngập lấp xấp, chưa đến nỗi nào."),
    (dt.date(2026, 11, 26), "17:07", "0", "vn", "mua to chieu nay, nguyen huu tho «q7» ngap 1 doan ngan, chay cham la qua dc"),
    (dt.date(2026, 11, 28), "14:53", "0", "en", "Short downpour in «District 7» this afternoon, a bit of water near the bridge but it cleared fast."),
]

# The incident: heavy rain on a king tide, District 7 under water from 20:00 local. Slots: {p7} a
# District 7 spelling, {s7} a District 7 street, {d} a depth, {hm} the post's local time. Phase "E"
# only in the first hour, "L" only after it, "A" any time.
INCIDENT = [
    # negative, with diacritics
    ("-", "vi", "A", "Mưa lớn cộng triều cường, {s7} ({p7}) ngập {d}, xe chết máy nằm đầy đường."),
    ("-", "vi", "E", "Trời ơi {p7} lại ngập nữa rồi, mới mưa chưa tới một tiếng."),
    ("-", "vi", "A", "Đang kẹt giữa biển nước trên {s7}, {p7} ngập {d}, dắt xe mà không biết đi đâu."),
    ("-", "vi", "L", "Nước tràn vô nhà rồi mọi người ơi, hẻm nhà mình ở {p7} ngập sâu quá, đang khiêng đồ lên gác."),
    ("-", "vi", "A", "{p7} ngập kiểu này thì mấy dự án chống ngập làm ra để làm gì vậy?"),
    ("-", "vi", "L", "Xe chết máy lần thứ hai trên {s7}, {p7} ngập như sông, tiền sửa xe lại thêm một mớ."),
    ("-", "vi", "L", "Nhà mình ở {p7} nước ngập vào tận phòng khách, tủ lạnh máy giặt kê không kịp."),
    ("-", "vi", "A", "Cống ở {p7} không thoát nổi, nước ngập càng lúc càng cao, bực hết sức."),
    ("-", "vi", "A", "Tan ca về tới {s7} là hết đường, ngập {d}, đứng chờ cả tiếng rồi, {p7} ơi là {p7}."),
    ("-", "vi", "A", "Ba năm rồi mà cứ triều cường là {p7} ngập, nói chống ngập mãi mà có thấy gì đâu."),
    ("-", "vi", "L", "Mấy chục chiếc xe chết máy dưới chân cầu trên {s7}, {p7} ngập trắng đường, không ai điều tiết."),
    ("-", "vi", "L", "Con nhỏ ở nhà một mình mà {p7} ngập vô tới nhà, mình kẹt ngoài đường chạy về không được, lo quá trời."),
    ("-", "vi", "L", "Hầm xe chung cư mình ở {p7} ngập nước, mấy chiếc ô tô ngâm tới nửa bánh."),
    ("-", "vi", "A", "Đường ngập vậy mà vẫn có ô tô chạy nhanh tạt nước vào người đi xe máy ở {p7}, quá đáng."),
    ("-", "vi", "A", "Khu Phú Mỹ Hưng ở {p7} mà cũng ngập, đường thành kênh luôn rồi."),
    ("-", "vi", "A", "Nước ngập {d} trên {s7}, mình phải gửi xe nhờ nhà dân rồi lội bộ về, {p7} tối nay tệ thật."),
    ("-", "vi", "L", "Đi làm thêm về mà {p7} ngập kinh hoàng, điện thoại hết pin, xe tắt máy, muốn khóc."),
    ("-", "vi", "L", "Tiệm mình trên {s7} ({p7}) nước ngập vô quầy, hàng hóa ướt hết, tối nay lỗ nặng."),
    ("-", "vi", "E", "Chưa bao giờ thấy {p7} ngập nhanh như tối nay, mười lăm phút là nước lên tới bậc thềm."),
    ("-", "vi", "A", "Dân {p7} lại ngập, lại lội, lại dắt xe. Năm nào cũng một bài."),
    ("-", "vi", "L", "Nhà ở {p7}, nước ngập tới ổ điện dưới, phải cúp cầu dao cả nhà ngồi trong tối."),
    ("-", "vi", "A", "Miệng cống bị rác bịt kín nên mới ngập thế này, không ai nạo vét à? {p7} khổ thật."),
    ("-", "vi", "A", "{s7} ngập {d}, xe buýt cũng nằm đơ giữa dòng nước, hành khách phải lội xuống, {p7} tê liệt."),
    ("-", "vi", "L", "Hàng xóm ở {p7} đang tát nước ra khỏi nhà bằng xô, ngập lần này tệ hơn đợt trước nhiều."),
    ("-", "vi", "A", "Triều cường đỉnh tối nay cộng mưa to, {p7} ngập nặng, người già con nhỏ đừng ra đường."),
    ("-", "vi", "L", "Cả khu mình ở {p7} ngập, mất điện luôn, tối thui mà nước vẫn lên."),
    ("-", "vi", "L", "Ai ở {p7} còn ngập không? Nhà mình nước vẫn chưa rút, gần khuya rồi."),
    ("-", "vi", "A", "Mới sửa xe tuần trước, nay lại chết máy vì {p7} ngập, tức ghê."),
    ("-", "vi", "A", "Phải nói thẳng, {p7} ngập như vầy là do quy hoạch, xây cao ốc lấp hết chỗ thoát nước."),
    ("-", "vi", "L", "Lội nước ngập {d} từ {s7} về nhà, chân tay lạnh cóng, dơ hết, {p7} ơi."),
    ("-", "vi", "A", "Shipper tối nay chịu thua, {p7} ngập không vào được hẻm nào, đơn hàng hủy hết."),
    ("-", "vi", "A", "Con đường trước chung cư ở {p7} ngập sâu, bảo vệ phải chăng dây không cho xe vào."),
    ("-", "vi", "E", "Mưa chưa dứt mà {p7} ngập khắp nơi, dọc {s7} không còn thấy lề đường."),
    ("-", "vi", "A", "Đang ngồi taxi kẹt giữa chỗ ngập trên {s7}, tài xế không dám chạy tiếp, {p7} hết cứu."),
    ("-", "vi", "L", "Nước ngập vô tới tiệm tạp hóa của mẹ ở {p7}, bao gạo ướt hết, xót ruột."),
    ("-", "vi", "A", "Mỗi lần triều cường lên là {p7} ngập, vậy mà năm nào cũng hứa sẽ hết."),
    ("-", "vi", "L", "Đường ngập thế này mai đi làm kiểu gì, {s7} ({p7}) như cái hồ."),
    ("-", "vi", "A", "Học sinh học thêm tối về kẹt ở {p7}, đường ngập tới đầu gối, phụ huynh phải lội ra đón."),
    ("-", "vi", "L", "Cả xóm ở {p7} thức tát nước, ngập vào nhà lần thứ hai trong tháng."),
    ("-", "vi", "L", "Xe cứu thương cũng phải bò qua đoạn ngập trên {s7}, {p7} vậy là quá nguy hiểm."),
    ("-", "vi", "L", "Không thể tin được, {p7} ngập tới mức có người chèo thúng giữa đường."),
    ("-", "vi", "L", "Nhà mình ở tầng trệt ở {p7}, nước ngập lên tới chân giường, chắc đêm nay khỏi ngủ."),
    ("-", "vi", "A", "Đường ngập, điện chập chờn, {p7} tối nay đúng là thảm họa."),
    ("-", "vi", "A", "Nói thật dân {p7} chịu hết nổi rồi, cứ mưa là ngập, đóng thuế đầy đủ mà hạ tầng vậy đó."),
    ("-", "vi", "A", "Chiếc xe ga mới mua ngâm trong nước ngập ở {s7}, {p7}, giờ đề không nổ."),
    ("-", "vi", "L", "Nước ngập ở {p7} cuốn theo rác trôi vào nhà, hôi kinh khủng."),
    ("-", "vi", "A", "Camera nhà mình ở {p7} quay cảnh nước ngập lên từng bậc thềm, nửa tiếng mà lên ba bậc."),
    ("-", "vi", "A", "{p7} ngập {d}, ai đang trên đường về thì tránh {s7} ra nha, chết máy hết đó."),
    ("-", "vi", "L", "Lại một đêm {p7} ngập, con hỏi sao nhà mình lúc nào cũng phải kê đồ lên cao."),
    ("-", "vi", "L", "Quán ăn bên {s7} phải đóng cửa sớm vì ngập, khách kẹt lại không về được, {p7} giờ này tê liệt."),
    ("-", "vi", "A", "Mấy ông làm thoát nước ở {p7} có thấy cảnh này không, ngập ngang bụng trẻ con rồi đó."),
    ("-", "vi", "L", "Ba mẹ già ở {p7} gọi điện khóc vì nước ngập vô nhà, mình ở xa không về kịp, sốt ruột quá."),
    # neutral, with diacritics
    ("0", "vi", "A", "Cập nhật lúc {hm}: {s7} ({p7}) đang ngập khoảng 40 cm, nên đi vòng qua cầu khác."),
    ("0", "vi", "L", "Đội thoát nước đang đặt máy bơm ở {s7}, {p7} vẫn còn ngập nhưng nước đã bớt chảy xiết."),
    ("0", "vi", "A", "Mọi người ở {p7} nếu nhà bị ngập thì nhớ ngắt cầu dao điện trước khi dọn đồ nhé."),
    ("0", "vi", "A", "Cho hỏi từ {p7} qua «Quận 4» giờ đi đường nào không ngập vậy?"),
    ("0", "vi", "E", "Theo dự báo đỉnh triều tối nay vào khoảng 22h, các tuyến đường trũng ở {p7} có thể ngập thêm."),
    ("0", "vi", "L", "Đoạn đầu {s7} gần cầu đã bớt ngập, đoạn giữa vẫn còn sâu, các bạn ở {p7} chú ý."),
    ("0", "vi", "A", "Tin nhắn của phường: khu vực {p7} đang ngập, người dân hạn chế di chuyển, đưa xe lên chỗ cao."),
    # positive, with diacritics
    ("+", "vi", "A", "Cảm ơn mấy bạn thanh niên đứng đẩy xe giúp người chết máy trong chỗ ngập trên {s7}, {p7} vẫn còn nhiều người tốt."),
    ("+", "vi", "A", "Quán cà phê ở {p7} mở cửa cho người đi đường trú mưa, sạc điện thoại miễn phí lúc đường ngập, quý quá."),
    ("+", "vi", "L", "Mấy anh sửa xe lưu động ra tận chỗ ngập ở {p7} giúp bà con, lấy giá rẻ, cảm động thật."),
    ("+", "vi", "L", "Nhờ máy bơm lưu động mà hẻm mình ở {p7} bớt ngập, nước rút dần rồi, cảm ơn các anh công nhân."),
    # without diacritics
    ("-", "vn", "A", "{p7} ngap qua troi, duong {s7} nuoc {d}, xe tat may nam la liet"),
    ("-", "vn", "L", "nuoc vo nha r mn oi, hem nha minh o {p7} ngap sau lam"),
    ("-", "vn", "A", "dang ket o {s7}, {p7} ngap ko chay dc, dt sap het pin"),
    ("-", "vn", "A", "{p7} ngap nua r, nam nao cung vay, chong ngap cai j vay troi"),
    ("-", "vn", "A", "xe tat may o {s7} r, {p7} ngap kinh khung, ai co so sua xe luu dong ko"),
    ("-", "vn", "L", "tui o {p7}, nuoc ngap vo toi phong ngu, ko biet ngu dau dem nay"),
    ("-", "vn", "A", "troi oi {p7} ngap nhu song, ko ai thong cong luon ha"),
    ("-", "vn", "L", "ham xe chung cu o {p7} ngap r, ae ai de oto duoi ham thi xuong coi gap"),
    ("-", "vn", "A", "duong ngap vay ma van co oto chay nhanh tat nuoc, {p7} vo van hoa ghe"),
    ("-", "vn", "L", "{p7} ngap qa, di lam ve mat 2 tieng, met xiu"),
    ("-", "vn", "L", "ai o {p7} con ngap ko, nha minh van chua rut"),
    ("-", "vn", "L", "{p7} ngap het ca khu, cup dien luon, toi thui"),
    ("0", "vn", "A", "cap nhat: duong {s7} ({p7}) van ngap khoang 30cm, ae tranh ra nha"),
    ("+", "vn", "A", "cam on may anh dan phong day xe giup o cho ngap {p7}, nguoi tot van nhieu"),
]
# English posts of the incident: "flood", not "ngập".
INCIDENT_EN = [
    ("-", "en", "A", "Massive flood in {p7} tonight, {s7} is a river and scooters are dying everywhere."),
    ("-", "en", "L", "Water is coming into ground-floor homes in {p7}. This flood is the worst I've seen in five years here."),
    ("-", "en", "A", "Stuck in a taxi on {s7}, {p7}. The flood water is up to the doors and the driver won't go on."),
    ("-", "en", "L", "Our building's basement in {p7} is full of water. How is flood drainage still this bad?"),
    ("-", "en", "A", "Heads up: avoid {s7} in {p7}, {d} flood water and dozens of stalled bikes."),
    ("+", "en", "A", "Kind strangers pushing stalled bikes out of the flood in {p7}, «Saigon» people are the best."),
]
# District 7 posts of the incident about something else (traffic, power).
INCIDENT_OTHER = [
    ("traffic", "-", "vi", "A", "Xe đứng im từ cầu Kênh Tẻ vào {p7}, nước chưa rút nên dòng xe nhích từng chút."),
    ("utilities", "-", "vi", "L", "Cả khu ở {p7} bị cắt điện để đảm bảo an toàn vì nước lên cao, tối thui."),
    ("utilities", "-", "vn", "L", "mat dien o {p7} tu 21h, nghe noi do nuoc len cao qua"),
    ("traffic", "0", "vi", "A", "Ứng dụng gọi xe báo tạm không nhận chuyến vào {p7} lúc này vì đường đang nước lớn."),
]

SUFFIX = {
    ("vi", "-"): [" Chán ghê.", " Mệt thật sự.", " 😩", " Haizz.", " Bực mình!", " 😤"],
    ("vi", "+"): [" 👍", " Rất đáng khen!", " ❤️", " Quá ổn luôn.", " Thích ghê."],
    ("vi", "?"): [" Cảm ơn cả nhà!", " Mình cảm ơn trước nha."],
    ("vn", "-"): [", chan that", ", met ghe", " haizz", " :(("],
    ("vn", "+"): [" :))", ", qua da", " =))", ", ok lam"],
    ("vn", "?"): [" thanks mn", " cam on nhieu"],
    ("en", "-"): [" Ugh.", " So frustrating.", " 🙄"],
    ("en", "+"): [" Love it.", " 👏", " 🙌"],
    ("en", "?"): [" Thanks in advance!"],
}

# Local hour weights of the ordinary rhythm; 21 and 22 are set apart (see EVENING).
HOUR_WEIGHTS = {
    0: 0.5, 1: 0.25, 2: 0.1, 3: 0.08, 4: 0.2, 5: 0.6, 6: 1.2, 7: 3.8, 8: 4.4, 9: 3.2, 10: 1.7, 11: 1.5,
    12: 1.8, 13: 1.2, 14: 1.1, 15: 1.3, 16: 1.9, 17: 3.8, 18: 4.4, 19: 3.4, 20: 2.2, 23: 0.8,
}
# 21:00-23:00 local before the incident: three posts an hour, a steady mood (the baseline the
# incident's evening is compared with).
EVENING = {21: 3, 22: 3}
EVENING_MOODS = ["+", "+", "+", "0", "0", "-"]
# 21:00 and 22:00 local posts keep clear of the hour's edges, so a window evaluated a few minutes
# late still sees the same posts.
MINUTE_RANGE = {21: (8, 59), 22: (0, 54), 23: (10, 59)}

TOPIC_WEIGHTS = {
    "traffic": 15, "flooding": 7, "admin_procedures": 9, "healthcare": 9, "education": 10, "public_safety": 8,
    "urban_planning": 9, "environment": 8, "utilities": 9, "economy": 10, "digital_services": 9,
}
MOODS = {"-": 0.30, "0": 0.33, "+": 0.37}
STYLES = {"vi": 0.67, "vn": 0.19, "en": 0.14}

# --------------------------------------------------------------------------------------------
# Text helpers
# --------------------------------------------------------------------------------------------

def fold(s: str) -> str:
    """Without Vietnamese diacritics (đ → d)."""
    s = unicodedata.normalize("NFD", s)
    s = "".join(c for c in s if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", s.replace("đ", "d").replace("Đ", "D"))


def has_diacritics(s: str) -> bool:
    return fold(s) != unicodedata.normalize("NFC", s)


def norm(s: str) -> str:
    """As the gazetteer sees text: NFC, lower-cased, whitespace collapsed."""
    s = unicodedata.normalize("NFC", unicodedata.normalize("NFC", s).lower())
    return " ".join(s.split())


def _word_char(c: str) -> bool:
    return c.isalnum() or unicodedata.combining(c) != 0


def contains_word(hay: str, needle: str) -> bool:
    start = hay.find(needle)
    while start >= 0:
        end = start + len(needle)
        before = hay[start - 1] if start > 0 else ""
        after = hay[end] if end < len(hay) else ""
        if not (before and _word_char(before)) and not (after and _word_char(after)):
            return True
        start = hay.find(needle, start + 1)
    return False


def words(s: str) -> list[str]:
    return re.findall(r"\w+", norm(s))


def whole_word(text: str, word: str) -> bool:
    return word in words(text)


def time_ok(text: str, hour: int) -> bool:
    t = text.lower()
    if any(k in t for k in ("sáng nay", "sang nay", "this morning", "7:30am", "sáng mai")):
        return 5 <= hour <= 11 if "sáng mai" not in t else hour >= 12
    if any(k in t for k in ("trưa nay", "trua nay")):
        return 13 <= hour <= 20
    if any(k in t for k in ("chiều nay", "chieu nay", "this afternoon")):
        return 15 <= hour <= 22
    if any(k in t for k in ("tối nay", "toi nay", "tonight", "đêm nay", "dem nay")):
        return 17 <= hour <= 23
    if "chiều đã có" in t:
        return 15 <= hour <= 23
    if "gọi 115 lúc nửa đêm" in t or "đêm qua" in t or "tối qua" in t or "dem qua" in t:
        return 6 <= hour <= 23
    if "2am" in t:
        return 8 <= hour <= 23
    return True


# --------------------------------------------------------------------------------------------
# Gazetteer (the crawler's rule: NFC, lower case, whole words), from config/places.toml
# --------------------------------------------------------------------------------------------

class Gazetteer:
    def __init__(self, places: list[dict]):
        self.ids = [p["id"] for p in places]
        self.aliases: list[tuple[str, str]] = []
        for p in places:
            for a in list(p.get("aliases", [])) + [p["name"]]:
                self.aliases.append((norm(a), p["id"]))
        self.alias_set = {a for a, _ in self.aliases}
        self.alias_place = {}
        for a, pid in self.aliases:
            self.alias_place.setdefault(a, pid)

    def places_in(self, text: str) -> list[str]:
        t = norm(text)
        hit = {pid for a, pid in self.aliases if contains_word(t, a)}
        return [pid for pid in self.ids if pid in hit]

    def place_of(self, alias: str) -> str | None:
        return self.alias_place.get(norm(alias))


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------

class Generator:
    def __init__(self, gazetteer: Gazetteer, topic_ids: list[str]):
        self.g = gazetteer
        self.rng = random.Random(SEED)
        self.uses: Counter = Counter()
        self.texts: set[str] = set()
        self.aliases_used: Counter = Counter()
        self.topic_ids = topic_ids
        self.posts: list[dict] = []
        self.check_spellings()
        self.check_templates()

    # -- checks of the hand-written material ---------------------------------------------------
    def check_spellings(self) -> None:
        for pid, styles in SPELLINGS.items():
            for style, forms in styles.items():
                for form in forms:
                    if self.g.place_of(form) != pid:
                        sys.exit(f"{form!r} ({pid}, {style}) is not an alias of {pid} in config/places.toml")
        for pool in POOLS.values():
            for pid in pool:
                if pid not in SPELLINGS:
                    sys.exit(f"pool place {pid} has no spellings")

    def check_templates(self) -> None:
        for topic in TEMPLATES:
            if topic not in self.topic_ids:
                sys.exit(f"topic {topic} is not in config/topics.toml")
        every = [t for ts in TEMPLATES.values() for t in ts] + EVENING_FLOOD_GOOD
        every += [(m, s, x) for _, _, m, s, x in D7_BEFORE]
        every += [(m, s, x) for m, s, _, x in INCIDENT + INCIDENT_EN]
        every += [(m, s, x) for _, m, s, _, x in INCIDENT_OTHER]
        for mood, style, text, *_ in every:
            assert mood in "-0+" and style in STYLES, text
            for alias in re.findall(r"«([^»]+)»", text):
                if self.g.place_of(alias) is None:
                    sys.exit(f"«{alias}» in {text!r} is not an alias in config/places.toml")
            if style != "vi" and has_diacritics(re.sub(r"\{\w+\}", "", text)):
                sys.exit(f"a {style} template has diacritics: {text!r}")

    # -- small random helpers -------------------------------------------------------------------
    def pick(self, weights: dict):
        keys = list(weights)
        return self.rng.choices(keys, weights=[weights[k] for k in keys])[0]

    def spelling(self, pid: str, style: str) -> str:
        return self.rng.choice(SPELLINGS[pid][style])

    def street(self, style: str, streets=STREETS) -> str:
        s = self.rng.choice(streets)
        return s if style == "vi" else fold(s)

    def least_used(self, candidates: list):
        low = min(self.uses[c] for c in candidates)
        return self.rng.choice([c for c in candidates if self.uses[c] == low])

    def fill(self, text: str, style: str, pool: str | None, extra: dict | None = None,
             exclude: tuple = ()) -> tuple[str, list[str]]:
        """The template with its slots filled; the places it means to mention."""
        intended = []
        values = {"st": self.street(style), "m": self.rng.choice(MINUTES), "bus": self.rng.choice(BUSES)}
        if "{p}" in text:
            weights = {k: v for k, v in POOLS[pool or "any"].items() if k not in exclude}
            pid = self.pick(weights)
            values["p"] = self.spelling(pid, style)
            self.aliases_used[values["p"]] += 1
            intended.append(pid)
        for key in ("p7",):
            if key in (extra or {}):
                intended.extend(self.g.places_in(extra[key]))
        values.update(extra or {})
        out = text.format(**values)
        for alias in re.findall(r"«([^»]+)»", out):
            # "Saigon metro" names the metro and, by its word "Saigon", the city too.
            intended.extend(self.g.places_in(alias))
            self.aliases_used[alias] += 1
        out = out.replace("«", "").replace("»", "")
        # A place name that starts the post is written with a capital, as people do.
        if out[:1].islower() and style == "vi":
            out = out[0].upper() + out[1:]
        return out, intended

    def suffix(self, text: str, style: str, mood: str) -> str:
        key = (style, "?" if text.rstrip().endswith("?") and mood == "0" else mood)
        if key in SUFFIX and self.rng.random() < 0.28:
            return text + self.rng.choice(SUFFIX[key])
        return text

    def engagement(self, boost: float = 1.0) -> dict:
        if self.rng.random() < 0.12:
            return {}
        likes = int(self.rng.expovariate(1 / (6 * boost)))
        shares = int(self.rng.expovariate(1 / (0.8 * boost)))
        replies = int(self.rng.expovariate(1 / (2.2 * boost)))
        return {"likes": likes, "shares": shares, "replies": replies}

    def add(self, at: dt.datetime, text: str, intended: list[str], topic: str, mood: str, style: str,
            kind: str, boost: float = 1.0) -> None:
        text = unicodedata.normalize("NFC", text)
        found = self.g.places_in(text)
        if sorted(found) != sorted(set(intended)):
            sys.exit(f"places of {text!r}: gazetteer finds {found}, template means {intended}")
        if style != "vi" and has_diacritics(text):
            sys.exit(f"{style} post with diacritics: {text!r}")
        if style == "vi" and not has_diacritics(text):
            sys.exit(f"vi post without diacritics: {text!r}")
        self.texts.add(text)
        self.posts.append({
            "at": at, "text": text, "places": found, "topic": topic, "mood": mood, "style": style,
            "kind": kind, "engagement": self.engagement(boost),
        })

    # -- ordinary posts -------------------------------------------------------------------------
    def topic_weights(self, hour: int, weekend: bool, evening_guard: bool) -> dict:
        w = dict(TOPIC_WEIGHTS)
        if hour in (6, 7, 8, 9, 16, 17, 18, 19):
            w["traffic"] *= 2.2
        if hour <= 5:
            w["public_safety"] *= 1.5
            w["utilities"] *= 1.3
            w["traffic"] *= 0.6
            w["admin_procedures"] *= 0.2
        if 14 <= hour <= 19:
            w["flooding"] *= 1.8
        if hour <= 10:
            w["flooding"] *= 0.5
        if hour >= 20:
            w["admin_procedures"] *= 0.3
        if evening_guard:  # no bad-news floods at night before the incident (see EVENING_FLOOD_GOOD)
            w["flooding"] = 0
        if weekend:
            w["admin_procedures"] *= 0.3
            w["education"] *= 0.6
            w["economy"] *= 1.3
            w["environment"] *= 1.3
            w["traffic"] *= 0.8
        return w

    def ordinary(self, at: dt.datetime, mood: str | None = None, no_d7: bool = False) -> None:
        local = at.astimezone(LOCAL)
        hour = local.hour
        weekend = local.weekday() >= 5
        mood = mood or self.pick(MOODS)
        for _ in range(50):
            topic = self.pick(self.topic_weights(hour, weekend, evening_guard=hour >= 20))
            style = self.pick(STYLES)
            pool = [t for t in TEMPLATES[topic] if t[0] == mood and t[1] == style and time_ok(t[2], hour)]
            if not pool:
                pool = [t for t in TEMPLATES[topic] if t[0] == mood and time_ok(t[2], hour)]
            if not pool:
                continue
            tpl = self.least_used(pool)
            exclude = ("district_7",) if no_d7 else ()
            text, intended = self.fill(tpl[2], tpl[1], tpl[3] if len(tpl) > 3 else None, exclude=exclude)
            text = self.suffix(text, tpl[1], mood)
            if text in self.texts:
                continue
            self.uses[tpl] += 1
            self.add(at, text, intended, topic, mood, tpl[1], "background")
            return
        sys.exit(f"no template for {mood} at {local}")

    def evening_flood_good(self, at: dt.datetime) -> None:
        for _ in range(50):
            tpl = self.least_used(EVENING_FLOOD_GOOD)
            text, intended = self.fill(tpl[2], tpl[1], tpl[3] if len(tpl) > 3 else None)
            if text in self.texts:
                continue
            self.uses[tpl] += 1
            self.add(at, text, intended, "flooding", "+", tpl[1], "background")
            return
        sys.exit("evening flood posts ran out")

    def minute_in(self, day: dt.date, hour: int) -> dt.datetime:
        lo, hi = MINUTE_RANGE.get(hour, (0, 59))
        local = dt.datetime(day.year, day.month, day.day, hour, self.rng.randint(lo, hi), self.rng.randint(0, 59),
                            tzinfo=LOCAL)
        return local.astimezone(dt.timezone.utc)

    def hour_counts(self, total: int, weekend: bool) -> dict[int, int]:
        w = dict(HOUR_WEIGHTS)
        if weekend:
            for h in (7, 8, 9, 17, 18):
                w[h] *= 0.7
            for h in range(10, 17):
                w[h] *= 1.3
        s = sum(w.values())
        counts = {h: int(total * w[h] / s + self.rng.random()) for h in w}
        hours = list(w)
        while sum(counts.values()) != total:
            h = self.rng.choices(hours, weights=[w[x] for x in hours])[0]
            if sum(counts.values()) < total:
                counts[h] += 1
            elif counts[h] > 0:
                counts[h] -= 1
        return counts

    def day(self, day: dt.date, last: bool, flood_evening: bool) -> None:
        weekend = day.weekday() >= 5
        total = self.rng.randint(40, 45)
        counts = self.hour_counts(total - sum(EVENING.values()), weekend)
        for hour in sorted(counts):
            if last and hour >= 20:
                continue  # the incident's evening has its own, quieter background
            for _ in range(counts[hour]):
                self.ordinary(self.minute_in(day, hour))
        if last:
            for hour, n in ((20, 2), (21, 2), (22, 1)):
                for _ in range(n):
                    self.ordinary(self.minute_in(day, hour), mood=self.pick({"0": 0.5, "+": 0.5}), no_d7=True)
            return
        moods = list(EVENING_MOODS)
        self.rng.shuffle(moods)
        slots = [(h, i) for h, n in EVENING.items() for i in range(n)]
        flood_slot = self.rng.choice([k for k, m in enumerate(moods) if m == "+"]) if flood_evening else None
        for k, ((hour, _), mood) in enumerate(zip(slots, moods)):
            at = self.minute_in(day, hour)
            if k == flood_slot:
                self.evening_flood_good(at)
            else:
                self.ordinary(at, mood=mood, no_d7=hour == 22)

    # -- the incident ---------------------------------------------------------------------------
    def incident(self) -> None:
        # Posts per hour (UTC 13, 14, 15 = 20, 21, 22 local): rising to the peak at the end.
        plan = {13: 16, 14: 28, 15: 36}
        # Which kinds of post, in total: Vietnamese "ngập"/"ngap" posts, English "flood" posts,
        # District 7 posts about something else.
        n_en, n_other = len(INCIDENT_EN), len(INCIDENT_OTHER)
        n_ngap = sum(plan.values()) - n_en - n_other
        vi_neg = [t for t in INCIDENT if t[1] == "vi" and t[0] == "-"]
        vi_neu = [t for t in INCIDENT if t[1] == "vi" and t[0] == "0"]
        vi_pos = [t for t in INCIDENT if t[1] == "vi" and t[0] == "+"]
        vn_all = [t for t in INCIDENT if t[1] == "vn"]
        n_vn = len(vn_all)
        n_vi = n_ngap - n_vn
        n_vi_neu, n_vi_pos = len(vi_neu), len(vi_pos)
        n_vi_neg = n_vi - n_vi_neu - n_vi_pos
        chosen = self.rng.sample(vi_neg, n_vi_neg) + vi_neu + vi_pos + vn_all
        items = [("flooding",) + t for t in chosen]
        items += [("flooding",) + t for t in INCIDENT_EN]
        items += [(topic, m, s, ph, x) for topic, m, s, ph, x in INCIDENT_OTHER]
        self.rng.shuffle(items)
        # Times: first-hour ("E") posts first, later ("L") ones after it.
        times = []
        for hour, n in plan.items():
            for _ in range(n):
                times.append(dt.datetime(2026, 11, 30, hour, self.rng.randint(0, 59), self.rng.randint(0, 59),
                                         tzinfo=dt.timezone.utc))
        times.sort()
        first_hour = [t for t in times if t.hour == 13]
        later = [t for t in times if t.hour != 13]
        early_items = [it for it in items if it[3] == "E"]
        late_items = [it for it in items if it[3] == "L"]
        any_items = [it for it in items if it[3] == "A"]
        need_early = len(first_hour) - len(early_items)
        first = early_items + any_items[:need_early]
        rest = late_items + any_items[need_early:]
        self.rng.shuffle(first)
        self.rng.shuffle(rest)
        assert len(first) == len(first_hour) and len(rest) == len(later)
        for at, (topic, mood, style, _, text) in list(zip(first_hour, first)) + list(zip(later, rest)):
            local = at.astimezone(LOCAL)
            extra = {
                "p7": self.spelling("district_7", style),
                "s7": self.street(style, D7_STREETS),
                "d": self.rng.choice(DEPTH[style]),
                "hm": local.strftime("%Hh%M"),
            }
            self.aliases_used[extra["p7"]] += 1
            filled, intended = self.fill(text, style, None, extra)
            if filled in self.texts:
                sys.exit(f"duplicate incident text {filled!r}")
            self.add(at, filled, intended, topic, mood, style, "incident", boost=3.0)

    def d7_before(self) -> None:
        for day, hm, mood, style, text in D7_BEFORE:
            h, m = (int(x) for x in hm.split(":"))
            at = dt.datetime(day.year, day.month, day.day, h, m, self.rng.randint(0, 59), tzinfo=LOCAL)
            filled, intended = self.fill(text, style, None)
            self.add(at.astimezone(dt.timezone.utc), filled, intended, "flooding", mood, style, "d7_before")

    # -- everything -----------------------------------------------------------------------------
    def run(self) -> list[dict]:
        days = [FIRST_DAY + dt.timedelta(days=i) for i in range(DAYS)]
        # Good-news flood posts on nine of the thirteen ordinary evenings.
        flood_evenings = set(self.rng.sample(range(DAYS - 1), 9))
        for i, day in enumerate(days):
            self.day(day, last=i == DAYS - 1, flood_evening=i in flood_evenings)
        self.d7_before()
        self.incident()
        return self.finish()

    def finish(self) -> list[dict]:
        self.posts.sort(key=lambda p: p["at"])
        # Distinct seconds, in order.
        for prev, cur in zip(self.posts, self.posts[1:]):
            if cur["at"] <= prev["at"]:
                cur["at"] = prev["at"] + dt.timedelta(seconds=1)
        assert self.posts[-1]["at"] < END, self.posts[-1]["at"]
        # Authors: every pseudonym posts at least once, a few post often.
        authors = [f"{self.rng.getrandbits(128):032x}" for _ in range(AUTHORS)]
        weights = [1 / (i + 1) ** 0.8 for i in range(AUTHORS)]
        assigned = list(authors) + self.rng.choices(authors, weights=weights, k=len(self.posts) - AUTHORS)
        self.rng.shuffle(assigned)
        for i, (p, author) in enumerate(zip(self.posts, assigned)):
            p["id"] = f"demo-{i:04d}"
            p["author"] = author
            p["fetched"] = p["at"] + dt.timedelta(seconds=self.rng.choice([0, 0, 1, 2, 3, 5, 8, 12, 20]))
        return self.posts


def rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def render(posts: list[dict]) -> str:
    lines = []
    for p in posts:
        obj = {
            "schema_version": SCHEMA_VERSION,
            "id": p["id"],
            "source": "replay",
            "author": p["author"],
            "text": p["text"],
            "created_at": rfc3339(p["at"]),
            "fetched_at": rfc3339(p["fetched"]),
            "places": [],  # the crawler's gazetteer tags places from the text
            "engagement": p["engagement"],
        }
        lines.append(json.dumps(obj, ensure_ascii=False))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Summary and checks
# --------------------------------------------------------------------------------------------

def check_alerts() -> list[str]:
    """The demo's rules keep the validator's baseline rule: at least three seasons."""
    out = []
    if not ALERTS_TOML.exists():
        return ["config/demo/alerts.toml: missing"]
    rules = tomllib.loads(ALERTS_TOML.read_text(encoding="utf-8")).get("rule", [])
    period = {"weekly": 7 * 24 * 60, "daily": 24 * 60}
    for r in rules:
        window = r.get("window_minutes", 60)
        season = period.get(r.get("seasonality", "weekly"))
        p = season or window
        base = r.get("baseline_hours", 672)
        ok = base * 60 >= 3 * p and (season is None or window < season)
        out.append(f"  {r['name']:<26} {r['kind']:<19} baseline {base} h >= 3 x {p // 60} h: {'ok' if ok else 'NO'}")
        if not ok:
            sys.exit(f"alerts.toml rule {r['name']}: baseline_hours {base} holds fewer than 3 periods")
    return out


def summary(posts: list[dict], gen: Generator) -> str:
    out = []
    before = [p for p in posts if p["at"] < INCIDENT_START]
    incident = [p for p in posts if p["kind"] == "incident"]
    out.append(f"posts: {len(posts)} (before the incident {len(before)}, in its last 3 hours "
               f"{len(posts) - len(before)} of which {len(incident)} incident posts)")
    out.append(f"span: {rfc3339(posts[0]['at'])} .. {rfc3339(posts[-1]['at'])} "
               f"({len({p['author'] for p in posts})} distinct authors)")
    out.append("per local day:")
    per_day = Counter(p["at"].astimezone(LOCAL).strftime("%Y-%m-%d %a") for p in posts)
    for d in sorted(per_day):
        out.append(f"  {d} {per_day[d]:>4}")
    out.append("per intended topic (all / incident):")
    topics = Counter(p["topic"] for p in posts)
    inc_topics = Counter(p["topic"] for p in incident)
    for t in gen.topic_ids:
        out.append(f"  {t:<18} {topics[t]:>4} / {inc_topics[t]}")
    moods = Counter(p["mood"] for p in before)
    out.append("mood before the incident: " + ", ".join(
        f"{name} {moods[m] / len(before):.0%}" for m, name in (("-", "negative"), ("0", "neutral"), ("+", "positive"))))
    inc_moods = Counter(p["mood"] for p in incident)
    out.append("mood of the incident: " + ", ".join(
        f"{name} {inc_moods[m] / len(incident):.0%}" for m, name in (("-", "negative"), ("0", "neutral"), ("+", "positive"))))
    styles = Counter(p["style"] for p in posts)
    out.append("styles: " + ", ".join(f"{s} {styles[s] / len(posts):.0%}" for s in ("vi", "vn", "en"))
               + "  (vi = with diacritics, vn = without, en = English)")
    with_place = sum(1 for p in before if p["places"])
    out.append(f"posts naming a place (before the incident): {with_place / len(before):.0%}")
    place_counts = Counter(pid for p in posts for pid in p["places"])
    out.append(f"distinct places mentioned: {len(place_counts)} of {len(gen.g.ids)} in config/places.toml")
    out.append("  " + ", ".join(f"{pid} {n}" for pid, n in place_counts.most_common()))
    bad = [a for a in gen.aliases_used if norm(a) not in gen.g.alias_set]
    out.append(f"aliases written: {len(gen.aliases_used)} distinct, every one an alias in config/places.toml "
               f"(NFC, case-insensitive): {'yes' if not bad else 'NO: ' + ', '.join(bad)}")
    if bad:
        sys.exit("aliases not in config/places.toml: " + ", ".join(bad))

    def ngap_post(p):
        return whole_word(p["text"], "ngập") or (not has_diacritics(p["text"]) and whole_word(p["text"], "ngap"))

    d7 = [p for p in incident if "district_7" in p["places"]]
    d7_ngap = [p for p in d7 if ngap_post(p)]
    exact = [p for p in d7 if "ngập" in re.findall(r"\w+", unicodedata.normalize("NFC", p["text"]))]
    flood_en = [p for p in d7 if whole_word(p["text"], "flood")]
    out.append(f"incident (2026-11-30 20:00-23:00 local, District 7): {len(incident)} posts, {len(d7)} name District 7; "
               f"{len(d7_ngap)} contain \"ngập\" (or \"ngap\" in an unaccented post), {len(exact)} the whole word "
               f"\"ngập\" exactly; {len(flood_en)} English ones say \"flood\"; "
               f"{sum(1 for p in d7_ngap if p['mood'] == '-') / len(d7_ngap):.0%} of the \"ngập\" posts negative")
    per_hour = Counter(p["at"].astimezone(LOCAL).hour for p in d7)
    out.append("  District 7 incident posts per local hour: " + ", ".join(f"{h}:00 {per_hour[h]}" for h in sorted(per_hour)))
    d7_flood_before = [p for p in before if "district_7" in p["places"] and ngap_post(p)]
    out.append(f"District 7 flood posts before the incident: {len(d7_flood_before)}")
    if len(d7_ngap) < 60 or len(exact) < 50 or per_hour[22] < 20:
        sys.exit("the incident is too small for the demo's rules")
    n_templates = sum(len(v) for v in TEMPLATES.values()) + len(EVENING_FLOOD_GOOD) + len(D7_BEFORE) + \
        len(INCIDENT) + len(INCIDENT_EN) + len(INCIDENT_OTHER)
    out.append(f"templates: {n_templates}; distinct texts: {len({p['text'] for p in posts})} of {len(posts)}")
    out.append("config/demo/alerts.toml:")
    out.extend(check_alerts())
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only check that the shipped file is what this script writes")
    args = ap.parse_args()
    places = tomllib.loads(PLACES_TOML.read_text(encoding="utf-8"))["place"]
    topic_ids = [t["id"] for t in tomllib.loads(TOPICS_TOML.read_text(encoding="utf-8"))["topic"]]
    gen = Generator(Gazetteer(places), topic_ids)
    posts = gen.run()
    text = render(posts)
    rel = OUT.relative_to(ROOT)
    if args.check:
        same = OUT.exists() and OUT.read_text(encoding="utf-8") == text
        print(f"{rel}: {'up to date' if same else 'DIFFERS from what scripts/demo_sample.py writes'}")
        sys.exit(0 if same else 1)
    report = summary(posts, gen)  # exits before writing if a check fails
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {rel}")
    print(report)


if __name__ == "__main__":
    main()
