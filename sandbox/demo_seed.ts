/**
 * The organisation `deno task demo` starts with: 50 Zoho purchase orders (eight vendors, six
 * currencies, line and header discounts, line and order taxes, adjustments), five that are not
 * ready for Xero for the reasons users meet most, and one Xero refuses for a reason it states;
 * plus the Xero side (the shared chart of accounts and tax rates, a supplier contact that already
 * exists) and the app settings that map it all. Sandbox-only data, deterministic for a given start.
 */
import { ORG_CURRENCIES, ORG_SETTINGS, ORG_TAX_RATES } from "./demo_org.ts";
import { generatePurchaseOrder, seededRandom, withZohoTotals } from "./po_generator.ts";
import { DEFAULT_CONTACTS, type SimContactSeed, type SimTaxRateSeed } from "./xero_org.ts";

export interface DemoExpectation {
  /** Ready for Xero: each becomes exactly one bill whose Reference is the PO number. */
  eligible: Array<{ id: string; poNumber: string }>;
  /** Not ready: skipped with a reason, no bill. `reason` is a fragment of that reason. */
  ineligible: Array<{ id: string; poNumber: string; reason: RegExp }>;
  /** Xero refuses it: failed, with Xero's own message. */
  rejected: { id: string; poNumber: string; message: string };
}

export interface DemoSeed {
  records: Record<string, unknown>[];
  xero: { taxRates: SimTaxRateSeed[]; currencies: string[]; contacts: SimContactSeed[] };
  settings: Record<string, unknown>;
  expected: DemoExpectation;
}

/** The org's time zone: Zoho writes Created_Time and Modified_Time in it. */
export const DEMO_UTC_OFFSET = "+05:30";

/** The vendor that already exists in Xero as a supplier contact (matched by name, not created). */
export const EXISTING_SUPPLIER = "Acme Industrial Supply";

const VENDORS = [
  { id: "5876543000000110001", name: EXISTING_SUPPLIER },
  { id: "5876543000000110002", name: "Nordisk Træ & Metal ApS" },
  { id: "5876543000000110003", name: "Müller Bürobedarf GmbH" },
  { id: "5876543000000110004", name: "Kiwi Coffee Roasters Ltd" },
  { id: "5876543000000110005", name: "São Paulo Têxteis" },
  { id: "5876543000000110006", name: "東京部品株式会社" },
  { id: "5876543000000110007", name: "Harbour Freight Logistics" },
  { id: "5876543000000110008", name: "Bengaluru Precision Tools Pvt Ltd" },
];

/** A currency the Xero organisation is not subscribed to: Xero refuses the bill and says so. */
const UNSUBSCRIBED_CURRENCY = "JPY";

const ELIGIBLE = 44;
const ID_BASE = 5876543000001000001n;
const OFFSET_MINUTES = 5 * 60 + 30;

/** A time as Zoho shows it in this org: second precision, with the org's offset. */
function zohoTime(ms: number): string {
  const local = new Date(Math.floor(ms / 1000) * 1000 + OFFSET_MINUTES * 60_000);
  return `${local.toISOString().slice(0, 19)}${DEMO_UTC_OFFSET}`;
}

const dateOf = (ms: number) => zohoTime(ms).slice(0, 10);
const addDays = (date: string, days: number) =>
  new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);

/**
 * The demo organisation. Purchase orders were raised over the last three weeks before `now`, so
 * every sync window ("since the last sync", "last 7 days", "all") finds some of them.
 */
export function demoSeed(now = Date.now()): DemoSeed {
  const rand = seededRandom(20250601);
  const records: Record<string, unknown>[] = [];
  const expected: DemoExpectation = {
    eligible: [],
    ineligible: [],
    rejected: { id: "", poNumber: "", message: "" },
  };
  let n = 0;

  /** The next purchase order: fresh id, PO number and recent dates; `overrides` shape the rest. */
  const next = (
    overrides: Record<string, unknown> = {},
    opts: Parameters<typeof generatePurchaseOrder>[2] = {},
  ) => {
    const i = n++;
    const id = String(ID_BASE + BigInt(i));
    const poNumber = `PO-${25101 + i}`;
    // Oldest first, a few hours apart, the newest about an hour ago.
    const created = now - (21 * 24 - i * 10) * 3_600_000 - Math.floor(rand() * 3_600_000);
    const modified = Math.min(now - 3_600_000, created + Math.floor(rand() * 48) * 3_600_000);
    const poDate = dateOf(created);
    const record = generatePurchaseOrder(rand, {
      PO_Number: poNumber,
      PO_Date: poDate,
      Due_Date: rand() < 0.6 ? addDays(poDate, rand() < 0.5 ? 14 : 30) : null,
      Created_Time: zohoTime(created),
      Modified_Time: zohoTime(modified),
      ...overrides,
    }, { id, vendors: VENDORS, ...opts });
    records.push(record);
    return { id, poNumber, record };
  };

  // Ready for Xero. A few are pinned so every feature shows up whatever the random draw.
  const pinned: Record<number, [Record<string, unknown>, Parameters<typeof next>[1]?]> = {
    2: [{ Discount: 45 }],
    5: [{ Adjustment: -12.5 }],
    9: [{ Adjustment: 7.25, Currency: "INR", $currency_symbol: "₹" }],
    13: [{}, { documentTax: { name: "GST", percentage: 10 } }],
    17: [{ Discount: 20, Adjustment: 3.1 }, { items: 4 }],
  };
  for (let i = 0; i < ELIGIBLE; i++) {
    const [overrides, opts] = pinned[i] ?? [{}];
    const { id, poNumber } = next(overrides, opts);
    expected.eligible.push({ id, poNumber });
  }

  // Not ready for Xero: each is skipped with the reason a Zoho user would act on.
  for (
    const [overrides, reason] of [
      [{ Add_to_Xero: false }, /Add to Xero/i],
      [{ Add_to_Xero: null }, /Add to Xero/i],
      [{ Vendor_Name: null }, /Client Name/i],
      [{ Purchase_Items: [] }, /purchase item/i],
    ] as const
  ) {
    const { id, poNumber } = next(overrides);
    expected.ineligible.push({ id, poNumber, reason });
  }
  {
    // A tax nobody mapped to a Xero tax type: held back until the admin adds a mapping.
    const { id, poNumber, record } = next({}, { items: 2 });
    const items = record.Purchase_Items as Record<string, unknown>[];
    items[0] = {
      ...items[0],
      Line_Tax: [{
        percentage: 12,
        name: "Luxury Tax",
        id: "5876543000000309999",
        value: 0,
        display_name: "Luxury Tax - 12 %",
      }],
    };
    records[records.length - 1] = withZohoTotals(record);
    expected.ineligible.push({ id, poNumber, reason: /Luxury Tax/ });
  }

  // Ready, but Xero refuses it: the organisation does not trade in this currency.
  {
    const tokyo = VENDORS.find((v) => v.name.startsWith("東京"))!;
    const { id, poNumber } = next(
      { Currency: UNSUBSCRIBED_CURRENCY, $currency_symbol: "¥" },
      { vendors: [tokyo] },
    );
    expected.rejected = {
      id,
      poNumber,
      message: `Organisation is not subscribed to currency ${UNSUBSCRIBED_CURRENCY}`,
    };
  }

  return {
    records,
    xero: {
      taxRates: ORG_TAX_RATES,
      currencies: ORG_CURRENCIES.filter((c) => c !== UNSUBSCRIBED_CURRENCY),
      contacts: [...DEFAULT_CONTACTS, { name: EXISTING_SUPPLIER, emailAddress: "ap@acme.example" }],
    },
    settings: {
      ...ORG_SETTINGS,
      // Coffee goes to cost of goods sold, consulting to general expenses; the rest to 300.
      accountOverrides: [
        { match: "COF-1KG", accountCode: "310" },
        { match: "SVC-HR", accountCode: "429" },
      ],
      paymentTermsDays: 30,
    },
    expected,
  };
}
