"""Helpers shared by the seed generators: deterministic names, dates and YAML output.

The generators write the sample records of a layer's `seed/` folder. They are run by hand
(`python3 metadata/tools/generate_seed.py`), never by the engine: the YAML files they write are
committed and are what `crm seed` and `crm demo` load. Everything is drawn from a random
generator with a fixed seed and dated relative to ANCHOR, so a run writes the same files.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import yaml

# The day the sample data is "as of". Payments and expenses never lie after it (the standard
# model refuses future payment dates); open deals close after it. Move it forward and run the
# generators again to refresh the sample data.
ANCHOR = dt.date(2026, 11, 20)

SURNAMES = [("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"),
            ("杨", "yang"), ("赵", "zhao"), ("黄", "huang"), ("周", "zhou"), ("吴", "wu"),
            ("徐", "xu"), ("孙", "sun"), ("胡", "hu"), ("朱", "zhu"), ("高", "gao"),
            ("林", "lin"), ("何", "he"), ("郭", "guo"), ("马", "ma"), ("罗", "luo"),
            ("梁", "liang"), ("宋", "song"), ("郑", "zheng"), ("谢", "xie"), ("韩", "han")]
GIVEN = [("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"),
         ("磊", "lei"), ("强", "qiang"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"),
         ("艳", "yan"), ("杰", "jie"), ("涛", "tao"), ("明", "ming"), ("超", "chao"),
         ("秀英", "xiuying"), ("建国", "jianguo"), ("志强", "zhiqiang"), ("海燕", "haiyan"),
         ("晓东", "xiaodong"), ("丽娟", "lijuan"), ("国庆", "guoqing"), ("文博", "wenbo"),
         ("子涵", "zihan"), ("浩然", "haoran"), ("雪梅", "xuemei"), ("春生", "chunsheng"),
         ("立新", "lixin"), ("建华", "jianhua"), ("红梅", "hongmei"), ("永刚", "yonggang"),
         ("慧敏", "huimin"), ("宇航", "yuhang"), ("佳怡", "jiayi"), ("振宇", "zhenyu")]
CITIES = [("上海", "sh", "east"), ("苏州", "sz", "east"), ("无锡", "wx", "east"),
          ("杭州", "hz", "east"), ("宁波", "nb", "east"), ("南京", "nj", "east"),
          ("合肥", "hf", "east"), ("常州", "cz", "east"), ("北京", "bj", "north"),
          ("天津", "tj", "north"), ("石家庄", "sjz", "north"), ("济南", "jn", "north"),
          ("青岛", "qd", "north"), ("唐山", "ts", "north"), ("郑州", "zz", "central"),
          ("武汉", "wh", "central"), ("长沙", "cs", "central"), ("南昌", "nc", "central"),
          ("广州", "gz", "south"), ("深圳", "szn", "south"), ("佛山", "fs", "south"),
          ("东莞", "dg", "south"), ("厦门", "xm", "south"), ("福州", "fz", "south"),
          ("成都", "cd", "southwest"), ("重庆", "cq", "southwest"), ("昆明", "km", "southwest"),
          ("西安", "xa", "northwest"), ("兰州", "lz", "northwest"), ("沈阳", "sy", "northeast"),
          ("大连", "dl", "northeast"), ("长春", "cc", "northeast"), ("哈尔滨", "hrb", "northeast")]
ROOTS = [("华东", "hd"), ("恒力", "hl"), ("鑫达", "xd"), ("宏远", "hy"), ("中联", "zl"),
         ("金泰", "jt"), ("瑞丰", "rf"), ("海天", "ht"), ("天成", "tc"), ("永信", "yx"),
         ("远大", "yd"), ("新华", "xh"), ("东方", "df"), ("华星", "hx"), ("正泰", "zt"),
         ("盛世", "ss"), ("博远", "by"), ("安达", "ad"), ("德力", "dli"), ("弘毅", "hyi"),
         ("凯达", "kd"), ("明阳", "my"), ("万通", "wt"), ("振华", "zh"), ("龙腾", "lt"),
         ("富源", "fy"), ("长江", "cj"), ("嘉禾", "jh"), ("宝丰", "bf"), ("祥和", "xhe"),
         ("兴业", "xy"), ("汇通", "htg"), ("信诚", "xc"), ("华瑞", "hr"), ("众诚", "zc"),
         ("联捷", "lj"), ("晨光", "cg"), ("蓝天", "lt2"), ("广源", "gy"), ("泰和", "th")]


class Gen:
    """A deterministic source of sample values."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.used_names: set[str] = set()
        self.used_phones: set[str] = set()

    def pick(self, items):
        return self.rng.choice(items)

    def weighted(self, pairs):
        values, weights = zip(*pairs)
        return self.rng.choices(values, weights=weights)[0]

    def person(self, three_chars: bool = False) -> tuple[str, str]:
        """A person's name never used before in this run, and its pinyin."""
        for _ in range(1000):
            surname, sp = self.pick(SURNAMES)
            given, gp = self.pick(GIVEN)
            if three_chars and len(given) == 1:
                extra, ep = self.pick(GIVEN[:15])
                given, gp = given + extra, gp + ep
            if surname + given not in self.used_names:
                self.used_names.add(surname + given)
                return surname + given, f"{sp}.{gp}"
        raise RuntimeError("ran out of names")

    def mobile(self) -> str:
        while True:
            number = f"1{self.pick('3578')}{self.rng.randint(0, 9)}" \
                     f"{self.rng.randint(10000000, 99999999)}"
            if number not in self.used_phones:
                self.used_phones.add(number)
                return number

    def landline(self, area: str = "021") -> str:
        return f"{area}-{self.rng.randint(50000000, 69999999)}"

    def days_ago(self, low: int, high: int) -> dt.date:
        return ANCHOR - dt.timedelta(days=self.rng.randint(low, high))

    def days_ahead(self, low: int, high: int) -> dt.date:
        return ANCHOR + dt.timedelta(days=self.rng.randint(low, high))

    def money(self, low: float, high: float, step: int = 100) -> float:
        return float(round(self.rng.uniform(low, high) / step) * step)


def iso(day) -> str:
    return day.isoformat()


def stamp(day: dt.date, hour: int = 9, minute: int = 0) -> str:
    """A UTC datetime on `day` as the API writes it."""
    return f"{day.isoformat()}T{hour:02d}:{minute:02d}:00Z"


def write_seed(folder: Path, name: str, entity: str, records: list[dict], header: str) -> None:
    """Write one seed file: a comment, the entity, and one record per line."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"# {header}", "# Written by a generator in tools/ (do not edit by hand: change the",
             "# generator and run it again).", f"entity: {entity}", "records:"]
    for record in records:
        clean = {k: v for k, v in record.items() if v is not None}
        text = yaml.safe_dump(clean, allow_unicode=True, default_flow_style=True,
                              sort_keys=False, width=10 ** 9).strip()
        lines.append(f"  - {text}")
    (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
