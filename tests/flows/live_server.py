"""One loopback HTTP server that answers every live source of ``capspread run --profile live``.

Every answer is a recorded real-format response from tests/fixtures/ (provenance in NOTICE), or,
where no whole recording exists, the vendor's layout rebuilt around real recorded values (the same
way the per-source tests under tests/sources/ do). Nothing here invents a market value. Where one
recording answers several requests, this says so:

* ``yahoo`` — ``/v8/finance/chart/<symbol>``: QQQ gets its own recorded chart
  (chart-QQQ-2020-01-01-to-2020-01-03.json). **Every other symbol of the universe gets the one
  recorded AAPL daily chart** (chart-AAPL-2020-08-31-to-2020-11-07.json, with its 4:1 split and a
  dividend) with only ``meta.symbol`` set to the symbol asked for: the closes are AAPL's. The body
  is the same whatever ``period1``/``period2`` ask.
* ``stooq`` — ``/q/d/l/``: ``spy.us`` gets Stooq's daily CSV layout rebuilt from the real SPY rows
  of a Stooq bulk file (spy.us_2024-12-02_2025-01-29.txt); every other symbol gets Stooq's literal
  ``No data`` answer (nothing new), so no SPY value is passed off as another symbol's.
* ``fred`` — ``series/observations`` and ``series/vintagedates`` answered like ALFRED
  (output_type 1: one row per observation and real-time period, ``realtime_start`` clipped to the
  period asked for, paging by ``offset``/``limit``) for **any** ``series_id``: CPIAUCSL from two
  real downloads (the vintage of 2025-01-26 and a download of 2026-01-02, the latter's date
  standing in for its vintage), CPILFESL from a real download (vintage 2026-01-02), and **every
  other series id from the one recorded FEDFUNDS answer** (fred_series_observations_fedfunds_2023.json,
  real-time 2023-07-18), so series added later get an answer.
* ``bls`` — the v2 POST in BLS's layout from real values: CUUR0000SA0 (datasets/cpi-us),
  CUSR0000SA0 and CUSR0000SA0L1E (the FRED copies CPIAUCSL/CPILFESL of those BLS series). No real
  values of CUUR0000SA0L1E are at hand: it is answered as BLS answers a series without data (no
  rows, a ``No Data Available`` message). October 2025 carries BLS's ``-`` placeholder.
* ``finra`` — the Query API POST: the 71 real records of the file of settlement 2021-07-15 as a
  JSON list, paged by ``offset``/``limit`` with ``Record-Offset``/``Record-Limit``/``Record-Total``.
* ``ishares`` — the real IWM (2026-05-05) and IVV (2026-06-19) downloads byte for byte (only these
  two funds were recorded, so the tests set ``CAPSPREAD_ISHARES_FUNDS=IWM,IVV``).
* ``french`` — the real monthly and (sliced) daily three-factor CSVs, zipped as the library names
  them (no download of the zips themselves was recorded).
* ``spdji`` — the real workbook sp-500-eps-est_2025-12.xlsx byte for byte.
* ``consensus`` — the cookie page (404 with ``Set-Cookie``), a crumb, and **the one recorded AAPL
  earningsTrend body for every company asked** (quoteSummary-earningsTrend-AAPL.json).

``LiveServer.log`` keeps every request with the body sent back, for tests to check what was asked
(keys, windows) and what was answered.
"""

from __future__ import annotations

import calendar
import csv
import hashlib
import io
import json
import re
import threading
import zipfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import unquote

from fixture_readers import finra_records as read_finra
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

FIX = Path(__file__).resolve().parents[1] / "fixtures"
API, API2 = FIX / "api", FIX / "api2"

YAHOO_QQQ = API / "yahoo" / "chart-QQQ-2020-01-01-to-2020-01-03.json"
YAHOO_AAPL = API / "yahoo" / "chart-AAPL-2020-08-31-to-2020-11-07.json"
STOOQ_BULK = API / "stooq" / "spy.us_2024-12-02_2025-01-29.txt"
FRED_A = API / "fred" / "fred_CPIAUCSL_vintage-2025-01-26_2019-01_2024-12.csv"
FRED_B = API / "fred" / "fred_CPIAUCSL_monthly_2019-01_2025-11.csv"
FRED_CORE = API / "bls" / "fred_CPILFESL_monthly_2019-01_2025-11.csv"
FRED_FEDFUNDS = API / "fred" / "fred_series_observations_fedfunds_2023.json"
BLS_NSA = API / "bls" / "datasets_cpi-us_cpiai_2019-01_2026-05.csv"
FINRA_PIPE = API / "finra" / "finra_shrt20210715_excerpt_first71rows.txt"
ISHARES = {"IWM": API2 / "ishares" / "iShares_IWM_holdings_2026-05-05.csv",
           "IVV": API2 / "ishares" / "iShares_IVV_holdings_2026-06-19.csv"}
ISHARES_PATHS = {"IWM": "/us/products/239710/ishares-russell-2000-etf/1467271812596.ajax",
                 "IVV": "/us/products/239726/ishares-core-sp-500-etf/1467271812596.ajax"}
FRENCH_MONTHLY = API2 / "french" / "F-F_Research_Data_Factors.CSV"
FRENCH_DAILY = API2 / "french" / "F-F_Research_Data_Factors_daily_2023-01-03_2024-08-30.CSV"
FRENCH_FOLDER = "/pages/faculty/ken.french/ftp/"
SPDJI_XLSX = API2 / "spdji" / "sp-500-eps-est_2025-12.xlsx"
SPDJI_PATH = "/spdji/en/documents/additional-material/sp-500-eps-est.xlsx"
EARNINGS_TREND = API2 / "yahoo" / "quoteSummary-earningsTrend-AAPL.json"

CPI_A_START, CPI_B_START = date(2025, 1, 26), date(2026, 1, 2)
END_OF_TIME = date(9999, 12, 31)
CRUMB = "e2eCrumb7Qx"
COOKIE = "A3=d=AQABBe2e; Path=/"


# ----------------------------------------------------------------------------------------------
# the recorded values, read with json/csv only (tests compute their expectations from these too)


def recorded_body(path: Path) -> dict:
    return json.loads(path.read_text())["response"]["bodyJson"]


def chart_body(symbol: str) -> bytes:
    """The chart answer for ``symbol`` (see the module docstring)."""
    if symbol == "QQQ":
        return json.dumps(recorded_body(YAHOO_QQQ)).encode()
    body = recorded_body(YAHOO_AAPL)
    body["chart"]["result"][0]["meta"]["symbol"] = symbol
    return json.dumps(body).encode()


def stooq_rows() -> list[list[str]]:
    return list(csv.reader(STOOQ_BULK.read_text().splitlines()))[1:]


def stooq_daily_csv() -> bytes:
    lines = ["Date,Open,High,Low,Close,Volume"]
    for r in stooq_rows():
        lines.append(f"{r[2][:4]}-{r[2][4:6]}-{r[2][6:]},{r[4]},{r[5]},{r[6]},{r[7]},{r[8]}")
    return ("\r\n".join(lines) + "\r\n").encode()


def monthly_csv(path: Path) -> dict[date, str]:
    """date → value (``"."`` where the download has none) of a two-column monthly CSV."""
    out = {}
    for row in list(csv.reader(path.read_text().splitlines()))[1:]:
        if "/" in row[0]:
            m, d, y = row[0].split("/")
            day = date(int(y), int(m), int(d))
        else:
            day = date.fromisoformat(row[0])
        out[day] = row[1] or "."
    return out


def fred_periods() -> dict[str, list[tuple[date, str, date, date]]]:
    """series → (observation date, value, realtime start, realtime end) of the recordings."""
    a, b = monthly_csv(FRED_A), monthly_csv(FRED_B)
    cpi = []
    for day in sorted(set(a) | set(b)):
        if day in a and day in b and a[day] == b[day]:
            cpi.append((day, a[day], CPI_A_START, END_OF_TIME))
            continue
        if day in a:
            cpi.append((day, a[day], CPI_A_START, CPI_B_START - timedelta(days=1) if day in b else END_OF_TIME))
        if day in b:
            cpi.append((day, b[day], CPI_B_START, END_OF_TIME))
    core = [(d, v, CPI_B_START, END_OF_TIME) for d, v in sorted(monthly_csv(FRED_CORE).items())]
    return {"CPIAUCSL": cpi, "CPILFESL": core}


def fedfunds_periods() -> list[tuple[date, str, date, date]]:
    body = json.loads(FRED_FEDFUNDS.read_text())
    return [(date.fromisoformat(o["date"]), o["value"], date.fromisoformat(o["realtime_start"]), END_OF_TIME)
            for o in body["observations"]]


def bls_values() -> dict[str, dict[date, str]]:
    def table(path: Path) -> dict[date, str]:
        return {date.fromisoformat(r[0]): r[1] for r in list(csv.reader(path.read_text().splitlines()))[1:]}

    return {"CUUR0000SA0": table(BLS_NSA), "CUSR0000SA0": table(FRED_B), "CUSR0000SA0L1E": table(FRED_CORE)}


def finra_records() -> list[dict]:
    return read_finra(FINRA_PIPE)


def zipped(member: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo(member, date_time=(2024, 10, 1, 0, 0, 0)), data)
    return out.getvalue()


FRENCH_ZIPS = {
    "F-F_Research_Data_Factors_CSV.zip": zipped("F-F_Research_Data_Factors.CSV", FRENCH_MONTHLY.read_bytes()),
    "F-F_Research_Data_Factors_daily_CSV.zip": zipped("F-F_Research_Data_Factors_daily.CSV", FRENCH_DAILY.read_bytes()),
}


# ----------------------------------------------------------------------------------------------
# the server


@dataclass
class Exchange:
    source: str
    method: str
    path: str
    args: dict
    body: bytes  # what the client sent
    status: int
    answer: bytes  # what the server sent back
    run: int


@dataclass
class LiveServer:
    """The handlers of every live source on one ``HTTPServer`` (see the module docstring).

    ``fail`` maps a source name to an HTTP status that source answers instead (a failing source),
    with a body that echoes the request (its query string and body, keys included);
    ``run`` is a label the test sets before each CLI run, kept with every exchange.
    """

    server: HTTPServer
    fail: dict[str, int] = field(default_factory=dict)
    run: int = 1
    log: list[Exchange] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.fred = fred_periods()
        self.fedfunds = fedfunds_periods()
        self.bls = bls_values()
        self.finra = finra_records()
        self.stooq = stooq_daily_csv()
        self.trend = json.dumps(recorded_body(EARNINGS_TREND)).encode()
        self.server.expect_request(re.compile(r"^/.*$")).respond_with_handler(self._dispatch)

    # -- what the sources are told

    def environment(self) -> dict[str, str]:
        env = {"CAPSPREAD_CONSENSUS_COOKIE_URL": self.server.url_for("/cookie"),
               "CAPSPREAD_HTTP_ATTEMPTS": "2", "CAPSPREAD_HTTP_BACKOFF": "0.001", "CAPSPREAD_HTTP_TIMEOUT": "20",
               "CAPSPREAD_ISHARES_FUNDS": "IWM,IVV", "CAPSPREAD_CONSENSUS_DAILY_BUDGET": "4"}
        for name in ("yahoo", "stooq", "fred", "bls", "finra", "ishares", "french", "spdji", "consensus"):
            env[f"CAPSPREAD_{name.upper()}_BASE_URL"] = self.server.url_for(f"/{name}").rstrip("/")
            env[f"CAPSPREAD_{name.upper()}_MIN_INTERVAL"] = "0"
        return env

    def exchanges(self, source: str | None = None, run: int | None = None, path: str = "") -> list[Exchange]:
        with self._lock:
            return [e for e in self.log if (source is None or e.source == source) and (run is None or e.run == run)
                    and path in e.path]

    # -- dispatch

    def _dispatch(self, request: Request) -> Response:
        source, _, rest = request.path.lstrip("/").partition("/")
        rest = "/" + rest
        if source in self.fail:
            # a refusal that echoes the request, key and all, as some vendors' error pages do
            echo = f"{source}: HTTP {self.fail[source]} for {request.method} {request.full_path}\n"
            response = Response(echo.encode() + request.get_data(), status=self.fail[source],
                                content_type="text/plain")
        else:
            handler = getattr(self, f"_{source}", None)
            response = handler(request, rest) if handler else Response("no such source", status=404)
        with self._lock:
            self.log.append(Exchange(source, request.method, rest, dict(request.args), request.get_data(),
                                     response.status_code, response.get_data(), self.run))
        return response

    @staticmethod
    def _json(data: object, **headers) -> Response:
        return Response(json.dumps(data), content_type="application/json", headers=headers)

    def _yahoo(self, request: Request, path: str) -> Response:
        m = re.fullmatch(r"/v8/finance/chart/(.+)", path)
        if not m:
            return Response("not found", status=404)
        return Response(chart_body(unquote(m.group(1))), content_type="application/json")

    def _stooq(self, request: Request, path: str) -> Response:
        if path != "/q/d/l/":
            return Response("not found", status=404)
        if request.args.get("s") == "spy.us":
            return Response(self.stooq, content_type="text/csv")
        return Response("No data", content_type="text/plain")

    def _fred(self, request: Request, path: str) -> Response:
        args = request.args
        series = args.get("series_id", "")
        periods = self.fred.get(series, self.fedfunds)
        rs, re_ = date.fromisoformat(args["realtime_start"]), date.fromisoformat(args["realtime_end"])
        if path == "/fred/series/vintagedates":
            dates = sorted({s for _, _, s, _ in periods if rs <= s <= re_})
            return self._json({"realtime_start": rs.isoformat(), "realtime_end": re_.isoformat(),
                               "order_by": "vintage_date", "sort_order": "asc", "count": len(dates), "offset": 0,
                               "limit": 10000, "vintage_dates": [d.isoformat() for d in dates]})
        if path != "/fred/series/observations":
            return Response("not found", status=404)
        first = date.fromisoformat(args.get("observation_start", "1776-07-04"))
        rows = sorted(({"realtime_start": max(s, rs).isoformat(), "realtime_end": min(e, re_).isoformat(),
                        "date": d.isoformat(), "value": v}
                       for d, v, s, e in periods if s <= re_ and e >= rs and d >= first),
                      key=lambda r: (r["date"], r["realtime_start"]))
        offset, limit = int(args.get("offset", 0)), int(args.get("limit", 100000))
        return Response(json.dumps({
            "realtime_start": rs.isoformat(), "realtime_end": re_.isoformat(), "observation_start": first.isoformat(),
            "observation_end": "9999-12-31", "units": "lin", "output_type": 1, "file_type": "json",
            "order_by": "observation_date", "sort_order": "asc", "count": len(rows), "offset": offset, "limit": limit,
            "observations": rows[offset:offset + limit]}, separators=(",", ":")), content_type="application/json")

    def _bls(self, request: Request, path: str) -> Response:
        body = json.loads(request.get_data())
        first, last = int(body["startyear"]), int(body["endyear"])
        series, messages = [], []
        for sid in body["seriesid"]:
            values = self.bls.get(sid, {})
            data = []
            for year in range(last, first - 1, -1):
                months = sorted((d for d in values if d.year == year), reverse=True)
                if year == 2025 and values:  # October 2025 was never published: BLS's placeholder
                    months = sorted({*months, date(2025, 10, 1)}, reverse=True)
                if not months:
                    messages.append(f"No Data Available for Series {sid} Year: {year}")
                for d in months:
                    data.append({"year": str(d.year), "period": f"M{d.month:02d}",
                                 "periodName": calendar.month_name[d.month], "value": values.get(d) or "-",
                                 "footnotes": [{}]})
            if data:
                data[0]["latest"] = "true"
            series.append({"seriesID": sid, "data": data})
        return self._json({"status": "REQUEST_SUCCEEDED", "responseTime": 143, "message": messages,
                           "Results": {"series": series}})

    def _finra(self, request: Request, path: str) -> Response:
        body = json.loads(request.get_data())
        (window,) = body["dateRangeFilters"]
        first, last = date.fromisoformat(window["startDate"]), date.fromisoformat(window["endDate"])
        matching = [r for r in self.finra if first <= date.fromisoformat(r["settlementDate"]) <= last]
        offset, limit = int(body.get("offset", 0)), int(body.get("limit", 1000))
        return Response(json.dumps(matching[offset:offset + limit]), content_type="application/json", headers={
            "Record-Offset": str(offset), "Record-Limit": str(limit), "Record-Total": str(len(matching))})

    def _ishares(self, request: Request, path: str) -> Response:
        for fund, where in ISHARES_PATHS.items():
            if path == where and request.args.get("fileName") == f"{fund}_holdings":
                return Response(ISHARES[fund].read_bytes(), content_type="text/csv")
        return Response("not found", status=404)

    def _french(self, request: Request, path: str) -> Response:
        name = path[len(FRENCH_FOLDER):] if path.startswith(FRENCH_FOLDER) else ""
        if name not in FRENCH_ZIPS:
            return Response("not found", status=404)
        return Response(FRENCH_ZIPS[name], content_type="application/x-zip-compressed")

    def _spdji(self, request: Request, path: str) -> Response:
        if path != SPDJI_PATH:
            return Response("not found", status=404)
        return Response(SPDJI_XLSX.read_bytes(),
                        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")

    def _cookie(self, request: Request, path: str) -> Response:
        return Response("", status=404, headers={"Set-Cookie": COOKIE})

    def _consensus(self, request: Request, path: str) -> Response:
        if path == "/v1/test/getcrumb":
            return Response(CRUMB, content_type="text/plain")
        if path.startswith("/v10/finance/quoteSummary/"):
            if request.args.get("crumb") != CRUMB or "A3" not in request.cookies:
                return Response(json.dumps({"finance": {"result": None, "error": {
                    "code": "Unauthorized", "description": "Invalid Crumb"}}}), status=401,
                    content_type="application/json")
            return Response(self.trend, content_type="application/json")
        return Response("not found", status=404)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
