"""The public cell grid of fund-flow statistics: region x institution type x month.

Cells are agreed in the job file (public), never taken from a bank's data, so which
cells a bank has loans in is not revealed by the grid itself.
"""

from __future__ import annotations

from dataclasses import dataclass

REGIONS: dict[str, tuple[str, str]] = {
    "11": ("北京", "Beijing"), "12": ("天津", "Tianjin"), "13": ("河北", "Hebei"),
    "14": ("山西", "Shanxi"), "15": ("内蒙古", "Inner Mongolia"), "21": ("辽宁", "Liaoning"),
    "22": ("吉林", "Jilin"), "23": ("黑龙江", "Heilongjiang"), "31": ("上海", "Shanghai"),
    "32": ("江苏", "Jiangsu"), "33": ("浙江", "Zhejiang"), "34": ("安徽", "Anhui"),
    "35": ("福建", "Fujian"), "36": ("江西", "Jiangxi"), "37": ("山东", "Shandong"),
    "41": ("河南", "Henan"), "42": ("湖北", "Hubei"), "43": ("湖南", "Hunan"),
    "44": ("广东", "Guangdong"), "45": ("广西", "Guangxi"), "46": ("海南", "Hainan"),
    "50": ("重庆", "Chongqing"), "51": ("四川", "Sichuan"), "52": ("贵州", "Guizhou"),
    "53": ("云南", "Yunnan"), "54": ("西藏", "Tibet"), "61": ("陕西", "Shaanxi"),
    "62": ("甘肃", "Gansu"), "63": ("青海", "Qinghai"), "64": ("宁夏", "Ningxia"),
    "65": ("新疆", "Xinjiang"),
}
"""Province-level regions by their GB/T 2260 two-digit code."""

INSTITUTION_TYPES: dict[str, tuple[str, str]] = {
    "large_state": ("大型商业银行", "large state-owned bank"),
    "joint_stock": ("股份制商业银行", "joint-stock bank"),
    "city_commercial": ("城市商业银行", "city commercial bank"),
    "rural": ("农村金融机构", "rural financial institution"),
}

STATISTICS = ("loans", "flagged", "amount", "flagged_amount", "institutions")
"""Per-cell totals: loan count, flagged-loan count, amounts (fen), contributing banks."""


@dataclass(frozen=True)
class Grid:
    """The cells: every (region, institution type, month) in a fixed order."""

    regions: tuple[str, ...]
    types: tuple[str, ...]
    months: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.regions) * len(self.types) * len(self.months)

    def index(self, region: int, kind: int, month: int) -> int:
        return (region * len(self.types) + kind) * len(self.months) + month

    def cells(self) -> list[tuple[str, str, str]]:
        return [(r, t, m) for r in self.regions for t in self.types for m in self.months]


def default_months(year: int = 2026) -> tuple[str, ...]:
    return tuple(f"{year}-{m:02d}" for m in range(1, 13))
