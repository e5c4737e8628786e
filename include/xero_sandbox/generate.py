"""Deterministic books for architecture, engineering and construction firms.

``build_dataset(name, seed)`` always produces the same organisations, records, ids and journals
for the same arguments. The books read like an AEC practice's: clients and projects (a project
tracking category on every fee line, named per organisation by ``project_category_name``),
progress claims, timesheet billing, milestones, reimbursables, retention held back on
construction-phase claims, partial payments, credit notes, voided and deleted invoices, archived
contacts, supplier bills (sub-consultants, printing, software, rent), a few foreign-currency
clients, several years of history, and the odd values real books contain (long and non-ASCII
names, ``+1300`` offsets, a pre-1970 date, zero-amount lines, four-decimal unit prices). The cost
side (spend money, payroll and other manual journals, purchase orders, retainers, overpayments,
billable expenses) is added by ``costs`` from its own random stream, and transfers between the
firm's bank accounts from another.

Transactions are generated first, then every posting event (approval, payment, void, deletion,
credit note, bank transaction, manual journal, retainer applied, bank transfer) is replayed in CreatedDateUTC
order through ``Books.post_journal``, so journal numbers rise with creation time and every
journal is true double entry.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import date

from . import ids
from .clock import DATA_END_MS
from .ids import DAY_MS, day_of
from .model import (
    RATE_ONE,
    Account,
    Allocation,
    Books,
    Contact,
    CreditNote,
    Dataset,
    Invoice,
    Payment,
    TaxRate,
    TrackingCategory,
    TrackingOption,
    rdiv,
    to_base,
)

END_DAY = DATA_END_MS // DAY_MS - 1  # last day with generated transactions

# Tax-rate slots every organisation has, in this order.
SALE, PURCHASE, NOTAX, EXPORT = 0, 1, 2, 3

COUNTRIES = {
    "NZ": ("NZD", [TaxRate("OUTPUT2", "15% GST on Income", 1500), TaxRate("INPUT2", "15% GST on Expenses", 1500),
                   TaxRate("NONE", "No GST", 0), TaxRate("ZERORATED", "Zero Rated", 0)], "GST", "+1300"),
    # AU's accounts without a tax slot and its NoTax lines say "NONE", so GET /TaxRates lists it too
    # (appended: the slots above keep their indexes).
    "AU": ("AUD", [TaxRate("OUTPUT", "GST on Income", 1000), TaxRate("INPUT", "GST on Expenses", 1000),
                   TaxRate("BASEXCLUDED", "BAS Excluded", 0), TaxRate("EXEMPTEXPORT", "GST Free Exports", 0),
                   TaxRate("NONE", "No GST", 0)],
           "GST", "+1100"),
    "GB": ("GBP", [TaxRate("OUTPUT2", "20% (VAT on Income)", 2000),
                   TaxRate("INPUT2", "20% (VAT on Expenses)", 2000),
                   TaxRate("NONE", "No VAT", 0), TaxRate("ZERORATEDOUTPUT", "Zero Rated Income", 0)],
           "VAT", "+0100"),
}
# Foreign currencies a firm in each country bills some clients in, with a typical rate
# (foreign units per base unit, Xero's convention).
FOREIGN = {
    "NZ": [("AUD", 0.915), ("USD", 0.598), ("GBP", 0.472)],
    "AU": [("NZD", 1.093), ("USD", 0.654), ("SGD", 0.871)],
    "GB": [("EUR", 1.171), ("USD", 1.268)],
}

# (code, name, type, tax slot or None, system account, status)
CHART = [
    ("090", "Business Cheque Account", "BANK", None, "", "ACTIVE"),
    ("091", "Business Savings Account", "BANK", None, "", "ACTIVE"),
    ("610", "Accounts Receivable", "CURRENT", None, "DEBTORS", "ACTIVE"),
    ("615", "Retentions Receivable", "CURRENT", None, "", "ACTIVE"),
    ("620", "Prepayments", "PREPAYMENT", None, "", "ACTIVE"),
    ("710", "Office Equipment", "FIXED", PURCHASE, "", "ACTIVE"),
    ("720", "Computer Equipment", "FIXED", PURCHASE, "", "ACTIVE"),
    ("800", "Accounts Payable", "CURRLIAB", None, "CREDITORS", "ACTIVE"),
    ("804", "Retentions Payable", "CURRLIAB", None, "", "ACTIVE"),
    ("820", "{tax}", "CURRLIAB", None, "GST", "ACTIVE"),
    ("900", "Loan", "TERMLIAB", None, "", "ACTIVE"),
    ("960", "Retained Earnings", "EQUITY", None, "RETAINEDEARNINGS", "ACTIVE"),
    ("970", "Owner A Funds Introduced", "EQUITY", None, "", "ACTIVE"),
    ("200", "Fees — Architecture", "REVENUE", SALE, "", "ACTIVE"),
    ("201", "Fees — Structural Engineering", "REVENUE", SALE, "", "ACTIVE"),
    ("202", "Fees — Building Services (MEP)", "REVENUE", SALE, "", "ACTIVE"),
    ("203", "Fees — Construction Administration", "REVENUE", SALE, "", "ACTIVE"),
    ("205", "Reimbursable Expenses Recovered", "REVENUE", SALE, "", "ACTIVE"),
    ("260", "Other Revenue", "OTHERINCOME", SALE, "", "ACTIVE"),
    ("310", "Sub-consultant Fees", "DIRECTCOSTS", PURCHASE, "", "ACTIVE"),
    ("320", "Printing & Plotting — Project", "DIRECTCOSTS", PURCHASE, "", "ACTIVE"),
    ("330", "Survey & Geotechnical", "DIRECTCOSTS", PURCHASE, "", "ACTIVE"),
    ("404", "Bank Fees", "EXPENSE", NOTAX, "", "ACTIVE"),
    ("412", "Consulting & Accounting", "EXPENSE", PURCHASE, "", "ACTIVE"),
    ("420", "Entertainment", "EXPENSE", PURCHASE, "", "ACTIVE"),
    ("433", "Professional Indemnity Insurance", "EXPENSE", PURCHASE, "", "ACTIVE"),
    ("445", "Light, Power, Heating", "OVERHEADS", PURCHASE, "", "ACTIVE"),
    ("461", "Printing & Stationery", "OVERHEADS", PURCHASE, "", "ACTIVE"),
    ("469", "Rent", "OVERHEADS", PURCHASE, "", "ACTIVE"),
    ("485", "Software Subscriptions (CAD/BIM)", "OVERHEADS", PURCHASE, "", "ACTIVE"),
    ("489", "Telephone & Internet", "OVERHEADS", PURCHASE, "", "ACTIVE"),
    ("493", "Travel — National", "EXPENSE", PURCHASE, "", "ACTIVE"),
    ("494", "Travel — International", "EXPENSE", NOTAX, "", "ACTIVE"),
    ("499", "Drafting Supplies (legacy)", "EXPENSE", PURCHASE, "", "ARCHIVED"),
    # Where Xero posts what converting foreign-currency documents to base currency leaves over.
    ("498", "Realised Currency Gains", "EXPENSE", None, "REALISEDCURRENCYGAIN", "ACTIVE"),
    ("860", "Rounding", "CURRLIAB", None, "ROUNDING", "ACTIVE"),
    # The cost side (see ``costs``): retainers held, payroll, depreciation. Appended, so the
    # accounts above keep their ids.
    ("835", "Client Retainers Held", "CURRLIAB", None, "", "ACTIVE"),
    ("814", "Wages Payable — Payroll", "CURRLIAB", None, "", "ACTIVE"),
    ("315", "Direct Labour — Project Staff Salaries", "DIRECTCOSTS", None, "", "ACTIVE"),
    ("477", "Wages & Salaries — Administration", "EXPENSE", None, "", "ACTIVE"),
    ("416", "Depreciation", "DEPRECIATN", None, "", "ACTIVE"),
    ("721", "Less Accumulated Depreciation on Computer Equipment", "FIXED", None, "", "ACTIVE"),
]

DISCIPLINES = [("Architecture", "200"), ("Structural", "201"), ("Building Services", "202"),
               ("Interiors", "200"), ("Landscape", "200")]

STAGES = ["Stage 1 — Concept Design", "Stage 2 — Preliminary Design", "Stage 3 — Developed Design",
          "Stage 4 — Detailed Design & Documentation", "Stage 5 — Tender & Procurement",
          "Stage 6 — Construction Observation"]
ENG_TASKS = ["Structural design — gravity & lateral system", "Detailed seismic assessment (DSA)",
             "Geotechnical peer review", "Services coordination (BIM clash detection)",
             "Fire engineering brief", "Producer statement PS1 — design"]
ROLES = [("Principal", 2850000), ("Senior Architect", 2150000), ("Project Architect", 1750000),
         ("Graduate Architect", 1150000), ("Senior Structural Engineer", 2250000),
         ("Building Services Engineer", 1950000), ("BIM Technician", 950000), ("Draftsperson", 875000),
         ("Site Observer", 1200000), ("Project Manager", 1950000)]
TASKS = ["design development", "documentation", "site visits", "client meetings", "consent RFIs", "coordination"]
MILESTONES = ["Milestone — Resource consent lodged", "Milestone — Building consent issued",
              "Milestone — Tender documents issued", "Milestone — Practical completion",
              "Milestone — Code compliance certificate"]
REIMBURSABLES = [("Printing & plotting (reimbursable)", 8500, 64000),
                 ("Council lodgement fee (disbursement)", 45000, 380000),
                 ("Courier (reimbursable)", 1800, 9500)]

PLACES = ["Riverside", "Kōwhai", "Harbour", "Summit", "Eastgate", "Te Aro", "Northcote", "Greenlane",
          "Bayview", "Westhaven", "Millbrook", "Ōrākei", "St Clair", "Glenfield", "Parnell", "Fitzroy",
          "Brunswick", "Hawthorn", "Clifton", "Ashburton"]
BUILDINGS = ["Library Extension", "Primary School Classroom Block", "Medical Centre", "Apartments (42 units)",
             "Seismic Strengthening", "Office Fit-out Level 3", "Community Hall", "Warehouse & Office",
             "Footbridge Retrofit", "Aquatic Centre", "Townhouses (8 units)", "Marae Wharekai",
             "Retirement Village Stage 2", "Fire Station Upgrade", "Childcare Centre", "Mixed-use Tower"]
CLIENT_A = ["Riverside", "Summit", "Harbour", "Kōwhai", "Pacific", "Southern", "Meridian", "Tasman",
            "Northern", "Coastal", "Highland", "Eastgate", "Crown", "Totara", "Kauri", "Waratah"]
CLIENT_B = ["City Council", "Property Developments Ltd", "Health Trust", "Hotels Group", "School Board",
            "Holdings Ltd", "Housing Trust", "Retail Partners", "Ports Ltd", "District Council",
            "Investments Ltd", "Community Trust", "Construction Ltd", "Iwi Trust", "University"]
PEOPLE = [("Aroha", "Ngata"), ("James", "O'Brien"), ("Zoë", "Lefèvre"), ("Mei", "Chen"), ("Tomás", "García"),
          ("Priya", "Raghunathan"), ("Liam", "Walker"), ("Sione", "Tupou"), ("Hannah", "Müller"),
          ("Oliver", "Smith"), ("Ngaio", "Marsh"), ("Kenji", "Watanabe"), ("Fatima", "Al-Sayed"),
          ("Siobhán", "Ní Bhriain"), ("Wiremu", "Parata"), ("Isla", "MacDonald")]
ODD_CLIENTS = ["Café Société Développement SARL", "東京建築設計事務所", "Ngāti Whātua Ōrākei Whai Rawa Ltd",
               "Zürich Ingenieure AG (Niederlassung Wellington)", "O'Connor & Sons \"Heritage\" Joinery",
               ("The Trustees of the Estate of the Late Reginald Montgomery Fitzwilliam-Harrington and "
                "the Fitzwilliam-Harrington Family Charitable Trust for the Preservation of Colonial "
                "Architecture, Heritage Buildings and Associated Landscapes in the Greater Region (Inc)")]
SUPPLIERS = [  # (name, account code, description templates, tracked to a project, amount range cents)
    ("Terra Firma Geotechnical Ltd", "330", ["Geotechnical investigation — {p}", "Borehole logging — {p}"], True,
     (180000, 2400000)),
    ("Cost Plan QS Partners", "310", ["Quantity surveying — cost plan — {p}"], True, (150000, 1800000)),
    ("Lineworks Land Survey", "330", ["Topographic survey — {p}"], True, (90000, 650000)),
    ("Ignis Fire Engineering", "310", ["Fire engineering peer review — {p}"], True, (120000, 900000)),
    ("Acoustic Solutions Ltd", "310", ["Acoustic report — {p}"], True, (80000, 450000)),
    ("PlotRoom Print Co", "320", ["A1 plotting — {p}", "Tender set printing — {p}"], True, (4500, 120000)),
    ("Autodesk Inc", "485", ["AEC Collection — annual licence (5 seats)", "Revit subscription renewal"], False,
     (250000, 1200000)),
    ("Bluebeam Inc", "485", ["Revu Complete — annual seats"], False, (60000, 240000)),
    ("Quay Street Properties Ltd", "469", ["Office rent — {m}"], False, (850000, 1250000)),
    ("Vero Liability Insurance", "433", ["Professional indemnity premium {y}"], False, (900000, 2800000)),
    ("Spark Business", "489", ["Phone & fibre — {m}"], False, (25000, 65000)),
    ("Mercury Energy", "445", ["Electricity — {m}"], False, (30000, 95000)),
    ("Air New Zealand", "493", ["Site visit flights — {p}"], True, (29000, 140000)),
    ("Baker Tilly Accountants", "412", ["Annual accounts & tax return {y}"], False, (350000, 900000)),
    ("Officeworks", "461", ["Stationery"], False, (2500, 38000)),
]
SUPPLIER_COUNTRY_NAMES = {"AU": {"Air New Zealand": "Qantas Airways", "Spark Business": "Telstra Business",
                                 "Mercury Energy": "AGL Energy", "Vero Liability Insurance": "QBE Insurance"},
                          "GB": {"Air New Zealand": "British Airways", "Spark Business": "BT Business",
                                 "Mercury Energy": "Octopus Energy", "Vero Liability Insurance": "Hiscox"}}
CITIES = {"NZ": [("Auckland", "Auckland", "1010"), ("Wellington", "Wellington", "6011"),
                 ("Christchurch", "Canterbury", "8011"), ("Dunedin", "Otago", "9016")],
          "AU": [("Sydney", "NSW", "2000"), ("Melbourne", "VIC", "3000"), ("Brisbane", "QLD", "4000")],
          "GB": [("London", "", "EC1A 1BB"), ("Manchester", "", "M1 1AE"), ("Bristol", "", "BS1 4DJ")]}
COUNTRY_NAMES = {"NZ": "New Zealand", "AU": "Australia", "GB": "United Kingdom"}
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]

FIRMS = [("Harbourside Architects Ltd", "NZ"), ("Meridian Structural Engineers Pty Ltd", "AU"),
         ("Brick & Beam Construction Ltd", "GB")]
FIRM_A = ["Atelier", "Studio", "Kahu", "Northgate", "Lattice", "Keystone", "Tui", "Ironbark", "Corbel",
          "Plumbline", "Gable", "Truss", "Mullion", "Parapet", "Lintel", "Plinth", "Rimu", "Matai"]
FIRM_B = ["Architects Ltd", "Engineering Ltd", "Design Build Ltd", "Consulting Engineers", "Architecture",
          "Builders Ltd"]


# What each organisation calls its project tracking category, by its place in the dataset (the first
# organisation of every dataset says "Job", the second "Projects", the rest "Project"). Firms name it
# as they like, so a sync must find projects by configuration, not by the word "Project". This is
# the one place the names are decided.
PROJECT_CATEGORY_NAMES = ("Job", "Projects")
DEFAULT_PROJECT_CATEGORY_NAME = "Project"


def project_category_name(tenant_no: int) -> str:
    """The project tracking category's name in organisation ``tenant_no`` (0-based, /connections order)."""
    if tenant_no < len(PROJECT_CATEGORY_NAMES):
        return PROJECT_CATEGORY_NAMES[tenant_no]
    return DEFAULT_PROJECT_CATEGORY_NAME


@dataclass(frozen=True)
class TenantSpec:
    sales: int
    bills: int
    start: date


# Every organisation keeps and serves its journals: Xero refuses Journals per app (its partner
# tier), never per organisation, so that gate lives on the OAuth client (``identity``).
DATASETS: dict[str, list[TenantSpec]] = {
    "small": [TenantSpec(300, 110, date(2022, 4, 1)), TenantSpec(240, 90, date(2023, 1, 1))],
    "medium": [TenantSpec(6000, 5200, date(2019, 4, 1)), TenantSpec(1500, 900, date(2020, 7, 1)),
               TenantSpec(700, 400, date(2021, 6, 1))],
    "large": [TenantSpec(60000, 42000, date(2017, 4, 1)), TenantSpec(52000, 36000, date(2018, 1, 1)),
              TenantSpec(12000, 6000, date(2020, 1, 1))],
    # small's first organisation beside a smaller, younger one.
    "mixed": [TenantSpec(300, 110, date(2022, 4, 1)), TenantSpec(120, 40, date(2023, 1, 1))],
    # Many small organisations, for fan-out and scheduling tests (50 by default; --tenants N).
    "many": [TenantSpec(40, 16, date(2024, 1, 1))] * 50,
}


def dataset_specs(name: str, tenants: int | None = None) -> list[TenantSpec]:
    """The tenant specs of a dataset, optionally resized to ``tenants`` (its specs repeated in order)."""
    specs = DATASETS[name]
    if tenants is None or tenants == len(specs):
        return list(specs)
    if tenants < 1:
        raise ValueError("--tenants must be at least 1")
    return [specs[i % len(specs)] for i in range(tenants)]


def build_dataset(name: str, seed: int, tenants: int | None = None) -> Dataset:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    specs = dataset_specs(name, tenants)
    root = random.Random(f"xero-sandbox:{name}:{seed}:{len(specs)}")
    space = ids.IdSpace(root.getrandbits(32))
    books = []
    for no, spec in enumerate(specs):
        rng = random.Random(f"xero-sandbox:{name}:{seed}:tenant:{no}")
        # The cost side draws from its own stream, so adding it left every fee invoice, bill,
        # payment, credit note and contact exactly as it was.
        cost_rng = random.Random(f"xero-sandbox:{name}:{seed}:tenant:{no}:costs")
        # Bank transfers came later still: their own stream again.
        transfer_rng = random.Random(f"xero-sandbox:{name}:{seed}:tenant:{no}:transfers")
        books.append(_Generator(space, no, spec, rng, cost_rng, transfer_rng).run())
    return Dataset(name=name, seed=seed, idspace=space, tenants=books)


def slug(text: str) -> str:
    t = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    out = "".join(ch if ch.isalnum() else "-" for ch in t)
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-")[:40] or "contact"


class _Project:
    __slots__ = ("option", "client", "discipline", "start", "end", "fee", "retention", "name", "stage")

    def __init__(self, option, client, discipline, start, end, fee, retention, name):
        self.option, self.client, self.discipline = option, client, discipline
        self.start, self.end, self.fee, self.retention, self.name = start, end, fee, retention, name
        self.stage = 0


class _Generator:
    def __init__(self, space: ids.IdSpace, no: int, spec: TenantSpec, rng: random.Random,
                 cost_rng: random.Random | None = None, transfer_rng: random.Random | None = None) -> None:
        self.rng, self.spec, self.no = rng, spec, no
        self.cost_rng = cost_rng or random.Random(f"xero-sandbox:costs:{no}")
        self.transfer_rng = transfer_rng or random.Random(f"xero-sandbox:transfers:{no}")
        if no < len(FIRMS):
            name, country = FIRMS[no]
        else:
            country = ("NZ", "AU", "GB")[no % 3]
            name = f"{FIRM_A[no % len(FIRM_A)]} {FIRM_B[(no // len(FIRM_A)) % len(FIRM_B)]} ({no + 1:02d})"
        base, taxes, tax_word, tz = COUNTRIES[country]
        self.tz = tz
        self.b = Books(no=no, tenant_id=space.guid(no, ids.TENANT, 0), name=name,
                       short_code="!" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(5)),
                       country=country, base_currency=base, idspace=space,
                       tax_rates=list(taxes))
        self.tax_word = tax_word
        self.start_day = day_of(spec.start)
        self.b.created_ms = (self.start_day - 30) * DAY_MS + 9 * 3600_000
        self.events: list[tuple[int, int, str, int]] = []
        self.projects: list[_Project] = []
        self.clients: list[int] = []
        self.suppliers: list[tuple[int, tuple]] = []

    # ------------------------------------------------------------------ setup
    def run(self) -> Books:
        self._chart()
        self._tracking_and_clients()
        self._suppliers()
        self._sales()
        self._bills()
        from .costs import CostGenerator  # costs builds on this module's line helpers

        CostGenerator(self.b, self.cost_rng, self.start_day, self.projects, self.suppliers, self.events,
                      self.spec.bills, self.tz, self.transfer_rng).run()
        self._post_events()
        self._finish_contacts()
        self.b.projects = self.projects
        self.b.suppliers = self.suppliers
        return self.b

    def _chart(self) -> None:
        b = self.b
        for code, name, type_, slot, system, status in CHART:
            idx = len(b.accounts)
            tax_type = b.tax_rates[slot].code if slot is not None else ("NONE" if type_ != "BANK" else "")
            acct = Account(idx, code, name.format(tax=self.tax_word), type_, tax_type or "NONE", status=status,
                           system=system, updated_ms=b.created_ms + idx * 1000)
            if type_ == "BANK":
                acct.bank_number = f"{self.rng.randint(10, 99)}-{self.rng.randint(1000, 9999)}-" \
                                   f"{self.rng.randint(1000000, 9999999)}-00"
                acct.currency = b.base_currency
                acct.tax_type = "NONE"
            if status == "ARCHIVED":
                acct.updated_ms = b.created_ms + 400 * DAY_MS
            b.accounts.append(acct)
            b.account_by_code[code] = idx
        b.ar_account = b.account_by_code["610"]
        b.ap_account = b.account_by_code["800"]
        b.gst_account = b.account_by_code["820"]
        b.bank_account = b.account_by_code["090"]
        b.fx_gain_account = b.account_by_code["498"]
        b.rounding_account = b.account_by_code["860"]
        b.retainer_account = b.account_by_code["835"]
        b.wages_payable_account = b.account_by_code["814"]

    def _new_contact(self, name, first="", last="", created_ms=0, currency="") -> int:
        b, rng = self.b, self.rng
        idx = len(b.contacts)
        city, region, postcode = rng.choice(CITIES[b.country])
        dom = slug(name).replace("-", "")[:18] or "mail"
        email = f"{(first or 'accounts').lower()}@{dom}.example" if rng.random() < 0.9 else ""
        phone = (f"{rng.randint(2, 9)}", f"{rng.randint(200, 999)} {rng.randint(1000, 9999)}")
        c = Contact(idx, name[:255], first, last, email, "", created_ms,
                    f"{rng.randint(1, 480)} {rng.choice(PLACES)} Road", city, region, postcode,
                    COUNTRY_NAMES[b.country], phone, currency or b.base_currency,
                    tz=self.tz if idx % 13 == 7 else "+0000")
        b.contacts.append(c)
        return idx

    def _tracking_and_clients(self) -> None:
        b, rng, spec = self.b, self.rng, self.spec
        proj_cat = TrackingCategory(0, project_category_name(self.no))
        disc_cat = TrackingCategory(1, "Discipline")
        legacy = TrackingCategory(2, "Office (legacy)", status="ARCHIVED")
        b.categories = [proj_cat, disc_cat, legacy]
        b.project_category, b.discipline_category = 0, 1
        for dname, _ in DISCIPLINES:
            opt = TrackingOption(len(b.options), 1, dname)
            b.options.append(opt)
            disc_cat.options.append(opt.idx)
        for oname in ("Auckland studio", "Christchurch studio"):
            opt = TrackingOption(len(b.options), 2, oname, status="ARCHIVED")
            b.options.append(opt)
            legacy.options.append(opt.idx)

        n_clients = max(8, spec.sales // 22)
        n_projects = max(6, spec.sales // 12)
        first_day, last_day = self.start_day, END_DAY
        foreign = FOREIGN[b.country]
        odd = list(ODD_CLIENTS)
        for k in range(n_clients):
            created = (first_day - 20) * DAY_MS + rng.randint(0, max(1, (last_day - first_day) // 2)) * DAY_MS
            created = min(created, (first_day + k) * DAY_MS + 36_000_000)
            first = last = ""
            if k < len(odd) and (k % 2 == 0 or spec.sales >= 200):
                name = odd[k]
            elif rng.random() < 0.2:
                first, last = rng.choice(PEOPLE)
                name = f"{first} {last}" + ("" if rng.random() < 0.5 else " & whānau" if b.country == "NZ"
                                             else " Family Trust")
            else:
                name = f"{rng.choice(CLIENT_A)} {rng.choice(CLIENT_B)}"
            if any(c.name == name for c in b.contacts):
                name = f"{name} ({k + 1})"
            cur = ""
            if rng.random() < 0.08 or k == 3:
                cur = rng.choice(foreign)[0]
            self.clients.append(self._new_contact(name, first, last, created, cur))
        span = max(60, last_day - first_day)
        for k in range(n_projects):
            client = self.clients[k % len(self.clients)] if k < len(self.clients) else rng.choice(self.clients)
            start = max(first_day, min(last_day - 60, first_day + rng.randint(-120, span - 30)))
            end = min(last_day, start + rng.randint(90, 1100))
            disc = rng.randrange(len(DISCIPLINES)) if rng.random() < 0.6 else 0
            fee = rng.choice([3, 5, 8, 12, 20, 35, 60, 90, 150, 240]) * 100000 * rng.randint(8, 30) // 10
            yy = date.fromordinal(ids.EPOCH.toordinal() + start).year % 100
            pname = f"P-{yy:02d}{k + 1:03d} · {rng.choice(PLACES)} {rng.choice(BUILDINGS)}"[:100]
            status = "ARCHIVED" if end < last_day - 365 and rng.random() < 0.4 else "ACTIVE"
            opt = TrackingOption(len(b.options), 0, pname, status=status)
            b.options.append(opt)
            proj_cat.options.append(opt.idx)
            self.projects.append(_Project(opt.idx, client, disc, start, end, fee, rng.random() < 0.3, pname))

    def _suppliers(self) -> None:
        b, rng = self.b, self.rng
        rename = SUPPLIER_COUNTRY_NAMES.get(b.country, {})
        for sup in SUPPLIERS:
            name = rename.get(sup[0], sup[0])
            created = (self.start_day - rng.randint(5, 60)) * DAY_MS + rng.randint(0, 86_399_000)
            idx = self._new_contact(name, created_ms=created)
            self.suppliers.append((idx, sup))
        # One client also does work for the firm (both customer and supplier).
        both = self.clients[len(self.clients) // 2]
        self.suppliers.append((both, ("", "310", ["Site services recharge — {p}"], True, (20000, 200000))))

    # ------------------------------------------------------------------ documents
    def _currency_for(self, contact: int) -> tuple[str, int]:
        b = self.b
        cur = b.contacts[contact].currency
        if cur == b.base_currency:
            return cur, RATE_ONE
        base_rate = dict(FOREIGN[b.country])[cur]
        return cur, int(round(base_rate * (1 + self.rng.uniform(-0.04, 0.04)) * RATE_ONE))

    def _make_invoice(self, type_, contact, day, due, lat, specs, reference, number) -> Invoice:
        b = self.b
        cur, rate = self._currency_for(contact)
        if cur != b.base_currency and type_ == "ACCREC":
            lat = "NoTax"
        inv = Invoice(len(b.invoices), type_, number, reference, contact, day, due, lat, cur, rate)
        inv.tz = self.tz if inv.idx % 11 == 5 else "+0000"
        b.set_lines(inv, specs)
        b.invoices.append(inv)
        return inv

    def _sales(self) -> None:
        b, rng, spec = self.b, self.rng, self.spec
        plan = []
        weights = [max(1, (p.end - p.start) // 30) for p in self.projects]
        chosen = rng.choices(range(len(self.projects)), weights=weights, k=spec.sales)
        for pi in chosen:
            p = self.projects[pi]
            plan.append((rng.randint(p.start, p.end), pi))
        plan.sort()
        for n, (day, pi) in enumerate(plan):
            p = self.projects[pi]
            lat = "Exclusive" if rng.random() < 0.88 else "Inclusive"
            foreign = b.contacts[p.client].currency != b.base_currency
            specs = fee_lines(b, rng, p, foreign)
            if n == 0 and self.no == 0:
                day = day_of(date(1969, 7, 21))  # a heritage-archive invoice keyed in from old ledgers
                specs = [("Heritage drawings — 1969 archive retrieval and scanning", 10000, 1250000,
                          b.account_by_code["260"], SALE, p.option, -1)]
            b.invoice_seq += 1
            due = day + (20 if rng.random() < 0.7 else 30)
            ref = p.name.split(" · ")[0] + (f" / claim {rng.randint(1, 24)}" if rng.random() < 0.6 else "")
            inv = self._make_invoice("ACCREC", p.client, day, due, lat, specs, ref, f"INV-{b.invoice_seq:05d}")
            inv.has_attachments = rng.random() < 0.15
            self._lifecycle(inv, p)

    def _bills(self) -> None:
        b, rng, spec = self.b, self.rng, self.spec
        days = sorted(rng.randint(self.start_day, END_DAY) for _ in range(spec.bills))
        for day in days:
            sidx, sup = rng.choice(self.suppliers)
            sname = sup[0]
            p = self._project_at(day)
            specs = bill_lines(b, rng, sup, p, day)
            lat = "Exclusive" if rng.random() < 0.7 else "Inclusive"
            number = f"{slug(sname)[:3].upper() or 'SUP'}-{rng.randint(1000, 99999)}" if rng.random() < 0.9 else ""
            inv = self._make_invoice("ACCPAY", sidx, day, day + rng.choice([7, 14, 20, 30]), lat, specs, "",
                                     number)
            self._lifecycle(inv, None)

    def _project_at(self, day: int) -> _Project:
        return project_at(self.rng, self.projects, day)

    # ------------------------------------------------------------------ lifecycles
    def _stamp(self, day: int, lo_h: int = 1, hi_h: int = 40) -> int:
        ms = day * DAY_MS + self.rng.randint(lo_h * 3600, hi_h * 3600) * 1000 + self.rng.randint(0, 999)
        return min(ms, DATA_END_MS - self.rng.randint(60_000, 3_600_000))

    def _lifecycle(self, inv: Invoice, p: _Project | None) -> None:
        """Decide what happened to a document and queue the postings it caused."""
        b, rng = self.b, self.rng
        created = self._stamp(max(inv.date, self.start_day - 1) if inv.date >= 0 else self.start_day)
        age = END_DAY - inv.date
        r = rng.random()
        inv.updated_ms = created
        if r < 0.02 or (age < 20 and r < 0.08):
            inv.status = "DRAFT"
            return
        if r < 0.035:
            inv.status = "SUBMITTED"
            return
        if r < 0.05:
            inv.status = "DELETED"
            inv.updated_ms = self._stamp(min(END_DAY, inv.date + rng.randint(1, 20)))
            if inv.updated_ms < created:
                inv.updated_ms = created
            return
        inv.status = "AUTHORISED"
        inv.sent = inv.type == "ACCREC" and rng.random() < 0.85
        self.events.append((created, len(self.events), "inv", inv.idx))
        if r < 0.08:
            void_ms = max(created + 60_000, self._stamp(min(END_DAY, inv.date + rng.randint(1, 40))))
            void_ms = min(void_ms, DATA_END_MS - 1000)
            inv.status = "VOIDED"
            inv.updated_ms = void_ms
            self.events.append((void_ms, len(self.events), "void", inv.idx))
            return
        last = created
        # A credit note against the invoice (fee reduction agreed with the client).
        if inv.type == "ACCREC" and rng.random() < 0.035 and inv.total > 0:
            cn_day = min(END_DAY, inv.date + rng.randint(3, 40))
            cn_ms = max(last + 60_000, self._stamp(cn_day))
            cn = self._credit_note_for(inv, cn_day, cn_ms)
            last = max(last, cn.updated_ms)
        # Payments, more likely the older the invoice.
        pay_prob = 0.97 if age > 120 else 0.8 if age > 45 else 0.35
        if inv.due_amount > 0 and rng.random() < pay_prob:
            parts = 1 if rng.random() < 0.78 else rng.randint(2, 3)
            remaining = inv.due_amount
            pay_day = inv.date
            for k in range(parts):
                partial_stop = k == parts - 1 and parts > 1 and rng.random() < 0.3
                amount = remaining if k == parts - 1 else max(1, remaining * rng.randint(25, 60) // 100)
                if partial_stop:
                    amount = max(1, remaining // 2)
                pay_day = min(END_DAY, max(pay_day, inv.date) + rng.randint(5, 55))
                pay_ms = max(last + 60_000, self._stamp(pay_day))
                if pay_ms >= DATA_END_MS:
                    break
                pay = self._payment(inv, pay_day, amount, pay_ms)
                last = max(last, pay_ms)
                if rng.random() < 0.02:
                    # Entered against the wrong invoice and deleted; the real one follows.
                    del_ms = min(DATA_END_MS - 1000, pay_ms + rng.randint(1, 72) * 3_600_000)
                    pay.status = "DELETED"
                    pay.updated_ms = del_ms
                    inv.paid -= amount
                    self.events.append((del_ms, len(self.events), "paydel", pay.idx))
                    last = max(last, del_ms)
                    continue
                remaining -= amount
            inv.updated_ms = max(inv.updated_ms, last)
        if inv.due_amount == 0 and inv.total > 0:
            inv.status = "PAID"
            days = [b.payments[x].date for x in inv.payments if b.payments[x].status == "AUTHORISED"]
            days += [b.allocations[a].date for a in inv.allocations]
            inv.fully_paid_day = max(days) if days else inv.date
        inv.updated_ms = max(inv.updated_ms, last)

    def _payment(self, inv: Invoice, day: int, amount: int, ms: int) -> Payment:
        b = self.b
        pay = Payment(len(b.payments), inv.idx, day, amount, inv.rate,
                      f"{inv.number or 'Bill'} payment" if self.rng.random() < 0.7 else "",
                      b.bank_account, ms)
        pay.reconciled = self.rng.random() < 0.9
        pay.tz = self.tz if pay.idx % 17 == 3 else "+0000"
        b.payments.append(pay)
        inv.payments.append(pay.idx)
        inv.paid += amount
        self.events.append((ms, len(self.events), "pay", pay.idx))
        return pay

    def _credit_note_for(self, inv: Invoice, day: int, ms: int) -> CreditNote:
        b, rng = self.b, self.rng
        b.credit_seq += 1
        cn = CreditNote(len(b.credit_notes), "ACCRECCREDIT" if inv.type == "ACCREC" else "ACCPAYCREDIT",
                        f"CN-{b.credit_seq:04d}", f"Credit against {inv.number}", inv.contact, day, inv.lat,
                        inv.currency, inv.rate)
        ln = b.lines
        i0 = inv.line_start
        pct = rng.choice([5, 10, 15, 25, 50, 100])
        base_amt = max(100, ln.amount[i0] * pct // 100) if ln.amount[i0] > 0 else 10000
        specs = [(f"Fee adjustment ({pct}%) — {b.strings[ln.desc[i0]][:60]}", 10000, base_amt * 100,
                  ln.account[i0], ln.taxrate[i0], ln.track[i0], ln.track2[i0])]
        b.set_lines(cn, specs)
        cn.status = "AUTHORISED"
        cn.updated_ms = ms
        cn.tz = self.tz if cn.idx % 7 == 2 else "+0000"
        b.credit_notes.append(cn)
        self.events.append((ms, len(self.events), "cn", cn.idx))
        alloc_amount = min(cn.total, inv.due_amount)
        if alloc_amount > 0 and rng.random() < 0.9:
            allocate(b, cn, inv, alloc_amount, day)
        return cn

    # ------------------------------------------------------------------ postings
    def _post_events(self) -> None:
        b = self.b
        self.events.sort()
        for ms, _, kind, idx in self.events:
            post_event(b, kind, idx, ms)

    def _finish_contacts(self) -> None:
        b, rng = self.b, self.rng
        last_use: dict[int, int] = {}
        for inv in b.invoices:
            c = b.contacts[inv.contact]
            if inv.type == "ACCREC":
                c.is_customer = True
            else:
                c.is_supplier = True
            last_use[inv.contact] = max(last_use.get(inv.contact, 0), inv.date)
        for c in b.contacts:
            if c.updated_ms >= DATA_END_MS:
                c.updated_ms = DATA_END_MS - 7_200_000
            lu = last_use.get(c.idx)
            if lu is not None and lu < END_DAY - 400 and rng.random() < 0.35:
                c.status = "ARCHIVED"
                c.updated_ms = max(c.updated_ms, self._stamp(min(END_DAY, lu + rng.randint(30, 300))))
            elif lu is None and c.idx not in [s for s, _ in self.suppliers] and rng.random() < 0.5:
                c.status = "ARCHIVED"


def project_at(rng: random.Random, projects: list[_Project], day: int) -> _Project:
    """A project running on ``day`` (a few random draws; any project if none hits)."""
    p = rng.choice(projects)
    for _ in range(12):
        if p.start <= day <= p.end:
            return p
        p = rng.choice(projects)
    return p


def fee_lines(b: Books, rng: random.Random, p: _Project, foreign: bool) -> list[tuple]:
    """Line specs for one fee invoice on project ``p``: what an AEC practice bills."""
    tr = EXPORT if foreign else SALE
    disc_opt = p.discipline  # discipline options are 0..4
    acct = b.account_by_code[DISCIPLINES[p.discipline][1]]
    ca = b.account_by_code["203"]
    specs = []
    roll = rng.random()
    if roll < 0.5:
        stage_ix = min(len(STAGES) - 1, p.stage)
        if rng.random() < 0.3:
            p.stage += 1
        pct = rng.choice([10, 15, 20, 25, 30, 40, 50, 60, 75, 100])
        title = STAGES[stage_ix] if p.discipline in (0, 3, 4) else ENG_TASKS[stage_ix % len(ENG_TASKS)]
        amount = max(50000, p.fee * rng.randint(2, 14) // 100 // 100 * 100)
        use_acct = ca if stage_ix == 5 else acct
        specs.append((f"{title}: progress claim, {pct}% complete", 10000, amount * 100, use_acct, tr,
                      p.option, disc_opt))
        if rng.random() < 0.25:
            specs.append((f"Variation {rng.randint(1, 12)} — additional design scope requested by client",
                          10000, rng.randint(40, 900) * 100000, acct, tr, p.option, disc_opt))
    elif roll < 0.82:
        for _ in range(rng.randint(1, 4)):
            role, rate = rng.choice(ROLES)
            if rng.random() < 0.05:
                rate = rate * 7 // 6 + 1  # a four-decimal charge-out rate
            hours = rng.randint(1, 160) * 2500  # quarter hours, ten-thousandths
            task = rng.choice(TASKS)
            specs.append((f"{role} — {task} ({hours / 10000:g} hrs)",
                          hours, rate, acct, tr, p.option, disc_opt))
    else:
        specs.append((rng.choice(MILESTONES), 10000, max(100000, p.fee // 10 // 100 * 100) * 100, acct, tr,
                      p.option, disc_opt))
    if rng.random() < 0.2:
        desc, lo, hi = rng.choice(REIMBURSABLES)
        specs.append((desc, 10000, rng.randint(lo, hi) * 100, b.account_by_code["205"], tr, p.option, disc_opt))
    if rng.random() < 0.06:
        km = rng.randint(20, 480)
        specs.append((f"Mileage — site visits, {km} km", km * 10000, 8300, b.account_by_code["205"], tr,
                      p.option, disc_opt))
    if rng.random() < 0.03:
        specs.append(("Site visit — no charge", 10000, 0, acct, tr, p.option, disc_opt))
    if rng.random() < 0.01:
        specs.append(("Detailed scope note: " + " ".join(
            ["Coordination of architectural, structural and building-services documentation;"] * 16),
            10000, 0, acct, tr, p.option, disc_opt))
    if p.retention and rng.random() < 0.7:
        gross = sum(rdiv_line(q, u) for _, q, u, *_ in specs)
        held = gross * 5 // 100
        if held > 0:
            specs.append(("Less retention 5% (held until practical completion)", 10000, -held * 100,
                          b.account_by_code["615"], NOTAX, p.option, -1))
    return specs


def bill_lines(b: Books, rng: random.Random, supplier: tuple, p: _Project, day: int) -> list[tuple]:
    """Line specs for one supplier bill."""
    _, code, descs, tracked, (lo, hi) = supplier
    d = date.fromordinal(ids.EPOCH.toordinal() + day)
    n_lines = 1 if rng.random() < 0.8 else rng.randint(2, 3)
    specs = []
    for _ in range(n_lines):
        text = rng.choice(descs).format(p=p.name, m=f"{MONTHS[d.month - 1]} {d.year}", y=d.year)
        acct = b.account_by_code[code]
        tax_slot = NOTAX if b.accounts[acct].tax_type == b.tax_rates[NOTAX].code else PURCHASE
        specs.append((text, 10000, rng.randint(lo, hi) * 100, acct, tax_slot,
                      p.option if tracked else -1, p.discipline if tracked else -1))
    return specs


def rdiv_line(qty: int, unit: int) -> int:
    return rdiv(qty * unit, 1_000_000)


def allocate(b: Books, cn: CreditNote, inv: Invoice, amount: int, day: int) -> None:
    """Apply credit to an invoice. Both sides sit on the control account, so no journal is posted."""
    a = Allocation(len(b.allocations), cn.idx, inv.idx, amount, day)
    b.allocations.append(a)
    cn.allocations.append(a.idx)
    inv.allocations.append(a.idx)
    cn.allocated += amount
    inv.credited += amount
    if cn.remaining == 0:
        cn.status = "PAID"
        cn.fully_paid_day = day


BANK_SOURCE_TYPES = {"SPEND": "CASHPAID", "RECEIVE": "CASHREC", "RECEIVE-PREPAYMENT": "ARPREPAYMENT",
                     "RECEIVE-OVERPAYMENT": "AROVERPAYMENT"}


def post_event(b: Books, kind: str, idx: int, ms: int) -> None:
    """Post the journal one business event causes (shared by generation and activity)."""
    if kind == "inv":
        inv = b.invoices[idx]
        sign, control = (1, b.ar_account) if inv.type == "ACCREC" else (-1, b.ap_account)
        inv.journal = b.post_journal(inv.date, ms, inv.type, idx, b.document_journal_lines(inv, control, sign))
    elif kind == "void":
        inv = b.invoices[idx]
        b.reverse_journal(inv.journal, ms)
    elif kind == "pay":
        pay = b.payments[idx]
        inv = b.invoices[pay.invoice]
        bank = to_base(pay.amount, pay.rate)
        cleared = b.clear_on_control(inv, pay.amount)
        desc = b.s("")
        sign, control, st = (1, b.ar_account, "ACCRECPAYMENT") if inv.type == "ACCREC" else \
            (-1, b.ap_account, "ACCPAYPAYMENT")
        lines = [(pay.account, sign * bank, 0, -1, -1, desc, -1), (control, -sign * cleared, 0, -1, -1, desc, -1),
                 (b.fx_gain_account, sign * (cleared - bank), 0, -1, -1, desc, -1)]
        pay.journal = b.post_journal(pay.date, ms, st, idx, lines)
    elif kind == "paydel":
        pay = b.payments[idx]
        b.cleared_paid[pay.invoice] -= pay.amount
        b.reverse_journal(pay.journal, ms)
    elif kind == "cn":
        cn = b.credit_notes[idx]
        sign, control = (-1, b.ar_account) if cn.type == "ACCRECCREDIT" else (1, b.ap_account)
        cn.journal = b.post_journal(cn.date, ms, cn.type, idx, b.document_journal_lines(cn, control, sign))
    elif kind == "cnvoid":
        b.reverse_journal(b.credit_notes[idx].journal, ms)
    elif kind == "bt":
        bt = b.bank_transactions[idx]
        st = BANK_SOURCE_TYPES[bt.type]
        sign = -1 if bt.type == "SPEND" else 1
        src = bt.idx if st in ("CASHREC", "CASHPAID") else bt.link
        bt.journal = b.post_journal(bt.date, ms, st, src, b.document_journal_lines(bt, bt.account, sign))
    elif kind == "btdel":
        b.reverse_journal(b.bank_transactions[idx].journal, ms)
    elif kind == "mj":
        mj = b.manual_journals[idx]
        ln = b.lines
        lines = [(ln.account[i], ln.amount[i], 0, ln.track[i], ln.track2[i], ln.desc[i], ln.taxrate[i])
                 for i in range(mj.line_start, mj.line_start + mj.line_count)]
        mj.journal = b.post_journal(mj.date, ms, "MANJOURNAL", idx, lines)
    elif kind == "mjvoid":
        b.reverse_journal(b.manual_journals[idx].journal, ms)
    elif kind == "alloc":
        # A retainer applied to an invoice leaves Client Retainers Held for Accounts Receivable.
        a = b.credit_allocations[idx]
        dep = b.prepayments[a.source]
        ln = b.lines
        i0 = b.bank_transactions[dep.bank_txn].line_start
        desc = b.s("")
        a.journal = b.post_journal(a.date, ms, "ARPREPAYMENT", dep.idx, [
            (b.retainer_account, a.amount, 0, ln.track[i0], ln.track2[i0], desc, -1),
            (b.ar_account, -a.amount, 0, -1, -1, desc, -1)])
    elif kind == "xfer":
        x = b.bank_transfers[idx]
        desc = b.s("")
        x.journal = b.post_journal(x.date, ms, "TRANSFER", idx, [
            (x.to_account, x.amount, 0, -1, -1, desc, -1), (x.from_account, -x.amount, 0, -1, -1, desc, -1)])
    elif kind == "payslip":
        # Payroll posts wages against the bank; the Accounting API has no document for it.
        day, cents = b.payslips[idx]
        desc = b.s("")
        b.post_journal(day, ms, "PAYSLIP", idx, [(b.account_by_code["477"], cents, 0, -1, -1, desc, -1),
                                                 (b.bank_account, -cents, 0, -1, -1, desc, -1)])
    else:  # pragma: no cover - programming error
        raise ValueError(kind)
