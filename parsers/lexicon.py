"""Multilingual vocabulary of lab reports: column headers, header-field labels, value shapes, dates, accreditation.

Used by the layout-free PDF extractor (:mod:`parsers.pdf_layout`). Every term is compared after
:func:`norm_label` (lower case, no punctuation at the ends, single spaces, full-width forms folded), so the
tables below list each wording once. Languages: English, Chinese, German, French, Spanish, Japanese (and the
Portuguese/Italian words that come for free).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

__all__ = [
    "ACCREDITATION_DISTRACTORS",
    "ACCREDITATION_PATTERNS",
    "COLUMN_TERMS",
    "DUAL_VALUE",
    "FIELD_LABELS",
    "classify_header",
    "is_value_shape",
    "norm_label",
    "normalise_date",
    "value_shape",
]

# column key -> header wordings (normalised). Order of keys matters for ties: the first listed wins.
COLUMN_TERMS: dict[str, tuple[str, ...]] = {
    "mdl": (
        "mdl",
        "lod",
        "loq",
        "rl",
        "mrl",
        "pql",
        "lloq",
        "reporting limit",
        "detection limit",
        "limit of detection",
        "limit of quantitation",
        "limit of quantification",
        "method detection limit",
        "检出限",
        "方法检出限",
        "定量限",
        "报告限",
        "nachweisgrenze",
        "bestimmungsgrenze",
        "bg",
        "ng",
        "limite de détection",
        "limite de quantification",
        "ld",
        "lq",
        "límite de detección",
        "límite de cuantificación",
        "検出限界",
        "定量下限",
        "報告下限",
    ),
    "lower": (
        "lsl",
        "min",
        "min.",
        "minimum",
        "lower limit",
        "spec min",
        "lower spec",
        "lower tolerance",
        "lo limit",
        "下限",
        "最小值",
        "untere grenze",
        "unterer grenzwert",
        "min-wert",
        "limite inférieure",
        "límite inferior",
        "下限値",
    ),
    "upper": (
        "usl",
        "max",
        "max.",
        "maximum",
        "upper limit",
        "spec max",
        "upper spec",
        "upper tolerance",
        "hi limit",
        "上限",
        "最大值",
        "obere grenze",
        "oberer grenzwert",
        "max-wert",
        "limite supérieure",
        "límite superior",
        "上限値",
    ),
    "limit": (
        "limit",
        "limits",
        "requirement",
        "requirements",
        "specification",
        "specifications",
        "spec",
        "spec.",
        "tolerance",
        "action level",
        "action limit",
        "regulatory limit",
        "pass limit",
        "criteria",
        "acceptance criteria",
        "permissible limit",
        "standard value",
        "技术要求",
        "标准要求",
        "限值",
        "要求",
        "标准值",
        "标准规定",
        "允许值",
        "grenzwert",
        "anforderung",
        "anforderungen",
        "sollwert",
        "toleranz",
        "vorgabe",
        "limite",
        "limites",
        "exigence",
        "exigences",
        "spécification",
        "valeur limite",
        "límite",
        "límites",
        "especificación",
        "requisito",
        "valor límite",
        "規格値",
        "基準値",
        "限度",
        "規格",
    ),
    "method": (
        "method",
        "methods",
        "test method",
        "analysis method",
        "method reference",
        "standard",
        "test standard",
        "procedure",
        "technique",
        "sop",
        "检测方法",
        "检测依据",
        "试验方法",
        "检验方法",
        "方法",
        "依据",
        "prüfverfahren",
        "verfahren",
        "norm",
        "methode",
        "prüfnorm",
        "méthode",
        "norme",
        "méthode d'essai",
        "método",
        "norma",
        "método de ensayo",
        "試験方法",
        "測定方法",
        "分析方法",
    ),
    "unit": ("unit", "units", "uom", "单位", "einheit", "unité", "unidad", "unidades", "単位"),
    "uncertainty": (
        "uncertainty",
        "u",
        "±",
        "+/-",
        "expanded uncertainty",
        "measurement uncertainty",
        "mu",
        "u (k=2)",
        "不确定度",
        "扩展不确定度",
        "messunsicherheit",
        "unsicherheit",
        "erweiterte messunsicherheit",
        "incertitude",
        "incertidumbre",
        "不確かさ",
        "拡張不確かさ",
    ),
    "verdict": (
        "verdict",
        "pass/fail",
        "pass / fail",
        "status",
        "conformity",
        "assessment",
        "conclusion",
        "judgement",
        "judgment",
        "evaluation",
        "result status",
        "p/f",
        "ok/nok",
        "单项判定",
        "判定",
        "结论",
        "单项结论",
        "判定结果",
        "bewertung",
        "beurteilung",
        "konformität",
        "i.o./n.i.o.",
        "conformité",
        "verdict",
        "conformidad",
        "evaluación",
        "dictamen",
        "合否",
        "判定結果",
    ),
    "value": (
        "result",
        "amt",
        "conc",
        "conc.",
        "results",
        "measured",
        "measured value",
        "measurement",
        "value",
        "reading",
        "found",
        "amount",
        "concentration",
        "test result",
        "test results",
        "actual",
        "actual value",
        "observed",
        "mass",
        "as found",
        "as left",
        "indication",
        "检测结果",
        "检验结果",
        "测试结果",
        "结果",
        "实测值",
        "测定值",
        "检测值",
        "ergebnis",
        "ergebnisse",
        "messwert",
        "messwerte",
        "istwert",
        "wert",
        "prüfergebnis",
        "anzeige",
        "résultat",
        "résultats",
        "valeur",
        "valeur mesurée",
        "resultado",
        "resultados",
        "valor",
        "valor medido",
        "結果",
        "測定値",
        "試験結果",
        "分析結果",
    ),
    "quantity": (
        "parameter",
        "parameters",
        "test item",
        "test items",
        "item",
        "items",
        "analyte",
        "analytes",
        "compound",
        "compounds",
        "characteristic",
        "property",
        "properties",
        "quantity",
        "test",
        "tests",
        "element",
        "elements",
        "measurand",
        "determinand",
        "substance",
        "component",
        "name",
        "description",
        "test parameter",
        "analysis",
        "cannabinoid",
        "cannabinoids",
        "terpene",
        "terpenes",
        "pesticide",
        "pesticides",
        "metal",
        "metals",
        "solvent",
        "solvents",
        "mycotoxin",
        "mycotoxins",
        "microbial",
        "contaminant",
        "target",
        "feature",
        "dimension",
        "检测项目",
        "检验项目",
        "项目",
        "测试项目",
        "试验项目",
        "检测参数",
        "prüfgröße",
        "prüfmerkmal",
        "merkmal",
        "messgröße",
        "kenngröße",
        "prüfpunkt",
        "paramètre",
        "paramètres",
        "caractéristique",
        "essai",
        "analyse",
        "parámetro",
        "parámetros",
        "ensayo",
        "característica",
        "analito",
        "項目",
        "試験項目",
        "測定項目",
        "分析項目",
    ),
    "sample": (
        "sample",
        "sample id",
        "sample no",
        "sample no.",
        "specimen",
        "specimen no",
        "lot",
        "batch",
        "样品",
        "样品编号",
        "试样",
        "probe",
        "proben-nr",
        "probe nr",
        "échantillon",
        "muestra",
        "試料",
        "試料番号",
    ),
}

# header field path -> label wordings (normalised); the longest matching label wins
FIELD_LABELS: dict[str, tuple[str, ...]] = {
    "report_id": (
        "report no",
        "report no.",
        "report number",
        "report #",
        "report id",
        "test report no",
        "test report no.",
        "test report number",
        "certificate no",
        "certificate no.",
        "certificate number",
        "certificate #",
        "coa id",
        "coa no",
        "coa number",
        "calibration certificate no",
        "cert no",
        "cert. no.",
        "our ref",
        "laboratory report no",
        "lab report no",
        "berichtsnummer",
        "bericht-nr",
        "prüfbericht-nr",
        "prüfbericht nr",
        "zertifikat-nr",
        "kalibrierschein-nr",
        "kalibrierzeichen",
        "报告编号",
        "证书编号",
        "报告号",
        "n° de rapport",
        "numéro de rapport",
        "rapport n°",
        "n° du certificat",
        "informe n°",
        "número de informe",
        "no. de informe",
        "certificado n°",
        "報告書番号",
        "証明書番号",
    ),
    "supersedes": (
        "supersedes",
        "supersedes report",
        "supersedes report no",
        "replaces",
        "replaces report",
        "replaces report no",
        "amends report",
        "amendment to report",
        "amends",
        "revision of report",
        "ersetzt",
        "ersetzt bericht",
        "ersetzt prüfbericht",
        "替代报告",
        "替代原报告",
        "代替报告编号",
        "remplace",
        "remplace le rapport",
        "sustituye",
        "reemplaza al informe",
        "差替え",
    ),
    "items[0].id": (
        "sample id",
        "sample no",
        "sample no.",
        "sample number",
        "sample #",
        "lab sample id",
        "laboratory id",
        "lab id",
        "sample code",
        "item id",
        "serial no",
        "serial number",
        "serial no.",
        "identification",
        "probennummer",
        "proben-nr",
        "probe nr",
        "seriennummer",
        "fabrikat/serien-nr",
        "样品编号",
        "样品号",
        "n° échantillon",
        "référence échantillon",
        "número de muestra",
        "試料番号",
    ),
    "items[0].description": (
        "sample name",
        "sample description",
        "product name",
        "product",
        "item description",
        "description of item",
        "test item",
        "sample",
        "matrix",
        "material",
        "gegenstand",
        "prüfgegenstand",
        "kalibriergegenstand",
        "probe",
        "样品名称",
        "产品名称",
        "désignation",
        "description",
        "producto",
        "descripción",
        "試料名",
        "品名",
    ),
    "customer.name": (
        "client",
        "customer",
        "applicant",
        "ordered by",
        "tested for",
        "distributor / tested for",
        "client name",
        "customer name",
        "client info",
        "client information",
        "customer information",
        "client details",
        "customer details",
        "requested by",
        "auftraggeber",
        "kunde",
        "委托单位",
        "委托方",
        "申请单位",
        "客户",
        "demandeur",
        "client(e)",
        "cliente",
        "solicitante",
        "依頼者",
        "依頼者名",
    ),
    "dates.issue": (
        "date of issue",
        "issue date",
        "issued",
        "date issued",
        "issued on",
        "report date",
        "date reported",
        "reported",
        "date of report",
        "completed",
        "date completed",
        "ausstellungsdatum",
        "datum",
        "datum der ausstellung",
        "签发日期",
        "报告日期",
        "发布日期",
        "date d'émission",
        "date du rapport",
        "fecha de emisión",
        "fecha del informe",
        "発行日",
        "報告日",
    ),
    "dates.receipt": (
        "date received",
        "received on",
        "received",
        "date of receipt",
        "receipt date",
        "received date",
        "eingangsdatum",
        "probeneingang",
        "收样日期",
        "接收日期",
        "到样日期",
        "date de réception",
        "fecha de recepción",
        "受領日",
    ),
    "dates.sampling": (
        "date collected",
        "collected on",
        "sampled on",
        "collected",
        "sampling date",
        "date sampled",
        "sampled",
        "date of sampling",
        "probenahmedatum",
        "probenahme",
        "抽样日期",
        "采样日期",
        "date de prélèvement",
        "fecha de muestreo",
        "採取日",
    ),
    "dates.performance": (
        "date of test",
        "test date",
        "date tested",
        "tested",
        "analysis date",
        "date of analysis",
        "date of calibration",
        "calibration date",
        "testing period",
        "test period",
        "prüfdatum",
        "datum der kalibrierung",
        "prüfzeitraum",
        "检测日期",
        "检验日期",
        "试验日期",
        "校准日期",
        "date d'essai",
        "date de l'essai",
        "fecha de ensayo",
        "fecha de análisis",
        "試験日",
        "校正日",
    ),
    "lab.name": (
        "testing laboratory",
        "laboratory",
        "calibration laboratory",
        "lab",
        "issued by",
        "performed by",
        "prüflaboratorium",
        "kalibrierlaboratorium",
        "检测机构",
        "检测单位",
        "laboratoire",
        "laboratorio",
        "試験所",
    ),
}

_NUM = r"[-+−]?\d+(?:[.,]\d+)*(?:[eE][-+]?\d+)?"
_VALUE_TOKENS = {
    "-",
    "—",
    "–",
    "--",
    "---",
    "nd",
    "n.d.",
    "n.d",
    "not detected",
    "none detected",
    "<loq",
    "< loq",
    "<lod",
    "< lod",
    "blq",
    "bql",
    "<mrl",
    "nt",
    "n/a",
    "na",
    "negative",
    "positive",
    "absent",
    "present",
    "pass",
    "passed",
    "fail",
    "failed",
    "detected",
    "not tested",
    "未检出",
    "合格",
    "不合格",
    "阴性",
    "阳性",
    "n.n.",
    "n.b.",
    "nn",
    "nicht nachweisbar",
    "négatif",
    "négative",
    "non détecté",
    "negativo",
    "no detectado",
    "ausente",
    "不検出",
    "陰性",
    "陽性",
    "complies",
    "conforms",
    "ok",
    "i.o.",
    "<lloq",
    "nr",
    "n.r.",
    "not reported",
}
_SHAPE_RE = re.compile(
    rf"^(?:(?P<cmp>[<>≤≥]=?|≦|≧)\s*)?(?P<num>{_NUM})\s*(?P<pct>%)?$|^(?P<range>{_NUM})\s*(?:-|–|~|to|～|至)\s*{_NUM}$"
)


def norm_label(text: str) -> str:
    """Fold full-width forms and letter-spacing (incl. U+3000), lower-case, trim punctuation at the ends."""
    t = unicodedata.normalize("NFKC", text).replace("\u3000", " ")
    t = " ".join(t.split()).lower()
    # "报 告 编 号" (letter-spaced CJK) -> "报告编号"
    if re.fullmatch(r"(?:[\u4e00-\u9fff\u3040-\u30ff] )+[\u4e00-\u9fff\u3040-\u30ff]", t):
        t = t.replace(" ", "")
    return t.strip(" :：.#*()[]/|-")


# one result printed in two units, the second in parentheses: "938.3 mg/g (93.83 %)", "0.52 % (5.2 mg/g)"
DUAL_VALUE = re.compile(
    rf"^(?P<cmp>[<>≤≥]=?\s*)?(?P<num>{_NUM})\s*(?P<unit>%|[a-zA-Zµμ°/]+[a-zA-Z0-9µμ°/²³%]*)\s*"
    rf"\(\s*[<>≤≥]?\s*{_NUM}\s*(?:%|[a-zA-Zµμ°/]+[a-zA-Z0-9µμ°/²³%]*)\s*\)$"
)


def value_shape(text: str) -> str | None:
    """Shape of a table cell: ``number``, ``bound`` (<0.5, ≤ 1000), ``range``, ``token`` (N.D., Negative) or None."""
    t = unicodedata.normalize("NFKC", text).strip()
    if not t:
        return None
    low = t.lower()
    if low in _VALUE_TOKENS:
        return "token"
    m = _SHAPE_RE.match(t)
    if m is None and DUAL_VALUE.match(t):
        return "number"  # "938.3 mg/g (93.83 %)": one result in two units
    if m is None:
        # a number followed by a unit ("0.25 %", "12.5 mg/kg") still has a number's shape
        m2 = re.match(rf"^(?:[<>≤≥]=?\s*)?{_NUM}\s*(?:%|[a-zA-Zµμ°/]+[a-zA-Z0-9µμ°/²³%]*)$", t)
        return "number" if m2 else None
    if m.group("range"):
        return "range"
    return "bound" if m.group("cmp") else "number"


def is_value_shape(text: str) -> bool:
    """True when ``text`` looks like a reported value."""
    return value_shape(text) is not None


_UNIT_ONLY = re.compile(
    r"^\(?(?:%|‰|mg/g|mg/kg|g/kg|mg/l|µg/g|μg/g|ug/g|µg/kg|ug/kg|ppm|ppb|mg/unit|mg/serving|mg/ml|cfu/g|"
    r"% ?\(w/w\)|%\s*w/w|wt\.? ?%|(?:weight|mass|wt\.?|dry weight)\s*%|%\s*(?:weight|mass|by weight)|mg)\)?$",
    re.IGNORECASE,
)
_TERM_KEY: dict[str, str] = {}
for _key, _terms in COLUMN_TERMS.items():
    for _term in _terms:
        _TERM_KEY.setdefault(_term, _key)  # the first key listed wins a shared wording
_MAX_TERM_WORDS = max(len(t.split()) for t in _TERM_KEY)
_CJK = re.compile(r"[\u4e00-\u9fff\u3040-\u30ff]")
# CJK terms have no spaces around them: one alternation, longest first, finds them inside a cell
_CJK_TERMS = re.compile(
    "|".join(
        re.escape(t) for t in sorted((t for t in _TERM_KEY if _CJK.search(t) and len(t) >= 2), key=len, reverse=True)
    )
)


def _word_run_key(cand: str) -> str | None:
    """Key of the longest lexicon term found as a run of whole words in ``cand`` ("检测结果 Result")."""
    words = [w for w in re.split(r"[\s/]+", cand) if w]
    for n in range(min(_MAX_TERM_WORDS, len(words)), 0, -1):
        for i in range(len(words) - n + 1):
            term = " ".join(words[i : i + n])
            key = _TERM_KEY.get(term)
            if key is not None and (len(term) >= 3 or _CJK.search(term)):
                return key
    m = _CJK_TERMS.search(cand)
    return _TERM_KEY[m.group(0)] if m else None


_PERCENT_BY_WEIGHT = re.compile(r"(?i)(?:weight|mass|wt\.?|dry weight)\s*%|%\s*(?:weight|mass|by weight)")


@lru_cache(maxsize=4096)
def classify_header(text: str) -> tuple[str | None, str | None]:
    """Column key for a header cell and a unit found in it: ``"Result (mg/kg)" -> ("value", "mg/kg")``.

    The whole cell is tried first, then the cell without a parenthesised unit, then runs of its words (so
    "Measured value [mm]", "LOD (MG/G)" and bilingual "检测结果 Result" classify). A cell holding only a
    unit ("mg/g", "% (w/w)") is a result column in that unit. ``(None, None)`` when nothing matches.
    """
    raw = unicodedata.normalize("NFKC", text)
    if _UNIT_ONLY.match(raw.strip()):
        # a column headed only by a unit ("mg/g", "% (w/w)") holds results in that unit
        only = raw.strip().strip("()")
        # "Weight %" / "% by weight": the unit is the percent sign
        return "value", "%" if _PERCENT_BY_WEIGHT.fullmatch(only) else only
    unit: str | None = None
    mu = re.search(r"[(\[]\s*([^()\[\]]{1,12})\s*[)\]]", raw)
    if mu:
        unit = mu.group(1).strip()
    t = norm_label(raw)
    candidates = [t, norm_label(re.sub(r"[(\[][^()\[\]]*[)\]]", " ", raw))]
    for cand in candidates:
        key = _TERM_KEY.get(cand)
        if key is not None:
            if unit and unit.lower().startswith("k"):
                unit = None  # "U (k=2)": a coverage factor, not a unit
            return key, unit
    for cand in candidates:
        key = _word_run_key(cand)
        if key is not None:
            return key, unit
    return None, unit


_MONTHS = {
    "jan": 1,
    "january": 1,
    "januar": 1,
    "janvier": 1,
    "enero": 1,
    "jänner": 1,
    "feb": 2,
    "february": 2,
    "februar": 2,
    "février": 2,
    "febrero": 2,
    "mar": 3,
    "march": 3,
    "märz": 3,
    "mars": 3,
    "marzo": 3,
    "mär": 3,
    "apr": 4,
    "april": 4,
    "avril": 4,
    "abril": 4,
    "may": 5,
    "mai": 5,
    "mayo": 5,
    "jun": 6,
    "june": 6,
    "juni": 6,
    "juin": 6,
    "junio": 6,
    "jul": 7,
    "july": 7,
    "juli": 7,
    "juillet": 7,
    "julio": 7,
    "aug": 8,
    "august": 8,
    "août": 8,
    "agosto": 8,
    "sep": 9,
    "sept": 9,
    "september": 9,
    "septembre": 9,
    "septiembre": 9,
    "oct": 10,
    "october": 10,
    "oktober": 10,
    "octobre": 10,
    "octubre": 10,
    "okt": 10,
    "nov": 11,
    "november": 11,
    "novembre": 11,
    "noviembre": 11,
    "dec": 12,
    "december": 12,
    "dezember": 12,
    "décembre": 12,
    "diciembre": 12,
    "dez": 12,
}


def _iso(y: int, m: int, d: int) -> str | None:
    if y < 100:
        y += 2000
    if not (1 <= m <= 12 and 1 <= d <= 31 and 1900 <= y <= 2100):
        return None
    return f"{y:04d}-{m:02d}-{d:02d}"


_DATE_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日"), "ymd"),
    (re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)"), "ymd"),
    (re.compile(r"(?<!\d)(\d{1,2})\.\s?(\d{1,2})\.\s?(\d{4}|\d{2})(?!\d)"), "dmy"),
    (re.compile(r"(?<!\d)(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})(?!\d)"), "us"),
    (re.compile(r"(?<!\d)(\d{1,2})-(\d{1,2})-(\d{4})(?!\d)"), "us"),
    (re.compile(r"(?<!\w)(\d{1,2})\.?\s*(?:de\s+)?([A-Za-zäéûÄ]{3,9})\.?,?\s*(?:de\s+)?(\d{4})"), "dMy"),
    (re.compile(r"(?<!\w)([A-Za-zäéûÄ]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})"), "Mdy"),
    (re.compile(r"(?<!\d)(\d{1,2})-([A-Za-z]{3})-(\d{2,4})(?!\d)"), "dMy"),
    # "30 Sep 21" (a two-digit year after a month name)
    (re.compile(r"(?<!\w)(\d{1,2})\s+([A-Za-z]{3,9})\.?\s+(\d{2})(?![\d:])"), "dMy"),
]


def normalise_date(text: str) -> str | None:
    """The first date in ``text`` as ``YYYY-MM-DD``: Chinese (2021年11月6日), ISO, German (06.11.2021),
    US (11/06/2021; day-first when the first number is above 12), ``6 Nov 2021``, ``November 6, 2021``,
    ``6. November 2021``, ``06-Nov-21``."""
    t = unicodedata.normalize("NFKC", text)
    best: tuple[int, str] | None = None
    for pat, order in _DATE_PATTERNS:
        m = pat.search(t)
        if not m:
            continue
        a, b, c = m.groups()
        iso: str | None = None
        if order == "ymd":
            iso = _iso(int(a), int(b), int(c))
        elif order == "dmy":
            iso = _iso(int(c), int(b), int(a))
        elif order == "us":
            x, y = int(a), int(b)
            iso = _iso(int(c), y, x) if x > 12 else _iso(int(c), x, y)
        elif order == "dMy":
            mon = _MONTHS.get(b.lower())
            iso = _iso(int(c), mon, int(a)) if mon else None
        elif order == "Mdy":
            mon = _MONTHS.get(a.lower())
            iso = _iso(int(c), mon, int(b)) if mon else None
        if iso and (best is None or m.start() < best[0]):
            best = (m.start(), iso)
    return best[1] if best else None


# (body, regex with group "id"); the regex runs on a whole line of text
ACCREDITATION_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("CNAS", re.compile(r"\bCNAS\b[^0-9]{0,40}?(?P<id>L\s?\d{3,5})\b", re.IGNORECASE)),
    ("DAkkS", re.compile(r"(?P<id>D-(?:K|PL|IS|ZE|PL-?)-\d{5}-\d{2}(?:-\d{2})?)")),
    ("A2LA", re.compile(r"\bA2LA\b[^0-9]{0,40}?(?P<id>\d{4}\.\d{2})")),
    ("UKAS", re.compile(r"\bUKAS\b[^0-9]{0,40}?(?P<id>\d{4,5})\b")),
    ("HOKLAS", re.compile(r"\bHOKLAS\b[^0-9]{0,30}?(?P<id>\d{3})\b")),
    ("SWEDAC", re.compile(r"\bSWEDAC\b[^0-9]{0,40}?(?P<id>\d{3,5})\b")),
    ("PJLA", re.compile(r"\bPJLA\b[^0-9]{0,40}?(?P<id>\d{4,6})\b")),
    ("ANAB", re.compile(r"\bANAB\b[^0-9]{0,40}?(?P<id>[A-Z]{0,3}-?\d{4,6})\b")),
    ("NVLAP", re.compile(r"\bNVLAP\b[^0-9]{0,40}?(?P<id>\d{5,6}-\d)\b")),
    ("COFRAC", re.compile(r"\bCOFRAC\b[^0-9]{0,40}?(?P<id>\d-\d{4})\b", re.IGNORECASE)),
    ("ENAC", re.compile(r"\bENAC\b[^0-9]{0,40}?(?P<id>\d{2,4}/LE\s?\d{2,5})", re.IGNORECASE)),
    ("NATA", re.compile(r"\bNATA\b[^0-9]{0,40}?(?P<id>\d{3,5})\b")),
    ("IAS", re.compile(r"\bIAS\b[^0-9]{0,30}?(?P<id>(?:TL|CL)-?\d{2,4})\b")),
]
# a number on a line saying one of these belongs to someone else (CMA licence, a reference standard's lab)
ACCREDITATION_DISTRACTORS = re.compile(
    r"\bCMA\b|计量认证|traceab|rückgeführt|rückführ|reference standard|standards? used|normal(?:e)? |"
    r"溯源|参考标准|étalon|patrón|calibrated by|kalibriert (?:von|durch)",
    re.IGNORECASE,
)
