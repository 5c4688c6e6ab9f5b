/**
 * The COQL part of the Zoho simulator (`POST /crm/v8/coql`), as REFERENCE "Reading line items in
 * bulk" documents it: `select … from MODULE where … limit OFFSET, COUNT` (or `limit COUNT offset
 * OFFSET`), at most 2,000 rows a call and 100,000 through OFFSET, `in` with at most 50 values (the
 * older documented figure; v8's is unverified, the stricter one is simulated), at most 50 columns,
 * 25 criteria. Only the purchase-order line-item module is served. Like real COQL, a lookup comes
 * back as `{id}` only; its other fields are selected with a dot (`Product_Name.Product_Name`).
 */

type Json = Record<string, unknown>;

export const COQL_MAX_ROWS = 2000;
export const COQL_MAX_OFFSET = 100_000;
export const COQL_MAX_IN = 50;
const MAX_COLUMNS = 50;
const MAX_CRITERIA = 25;

/** Columns of a line-item row (the subform's fields, Line_Tax included). */
const LINE_COLUMNS = new Set([
  "id",
  "Parent_Id",
  "Product_Name",
  "Quantity",
  "List_Price",
  "Unit_Price",
  "Quantity_in_Stock",
  "Total",
  "Discount",
  "Total_After_Discount",
  "Tax",
  "Net_Total",
  "Description",
  "Sequence_Number",
  "Line_Tax",
  "Created_Time",
  "Modified_Time",
]);
const LOOKUPS: Record<string, Set<string>> = {
  Product_Name: new Set(["id", "Product_Name", "Product_Code"]),
  Parent_Id: new Set(["id", "PO_Number", "Subject"]),
};

export type CoqlAnswer =
  | { status: 200; body: Json; credits: number }
  | { status: 204; credits: number }
  | { status: 400; body: Json };

const error = (code: string, message: string, details: Json): CoqlAnswer => ({
  status: 400,
  body: { code, details, message, status: "error" },
});
const invalid = (reason: string, clause: string, extra: Json = {}) =>
  error("INVALID_QUERY", "invalid query formed", { reason, clause, ...extra });

/** Credits a COQL call costs by its LIMIT (REFERENCE; the Vertical Solutions figures). */
export function coqlCredits(limit: number): number {
  return limit <= 200 ? 1 : limit <= 1000 ? 2 : 3;
}

interface Criterion {
  column: string;
  op: "in" | "=" | "!=" | "is not null" | "is null";
  values: string[];
}

function parseValues(list: string): string[] | null {
  const out: string[] = [];
  const re = /\s*(?:'((?:[^']|'')*)'|(-?\d+(?:\.\d+)?))\s*(,|$)/y;
  let m: RegExpExecArray | null;
  let at = 0;
  while (at < list.length && (m = re.exec(list))) {
    out.push(m[1] !== undefined ? m[1].replaceAll("''", "'") : m[2]);
    at = re.lastIndex;
    if (m[3] === "") break;
  }
  return at >= list.trimEnd().length ? out : null;
}

function parseWhere(text: string): Criterion[] | CoqlAnswer {
  const parts = text.split(/\s+and\s+/i);
  if (parts.length > MAX_CRITERIA) {
    return error("LIMIT_EXCEEDED", "too many criteria", { limit: MAX_CRITERIA, clause: "where" });
  }
  const out: Criterion[] = [];
  for (const raw of parts) {
    const p = raw.trim().replace(/^\((.*)\)$/s, "$1").trim();
    let m = /^([\w.$]+)\s+in\s*\((.*)\)$/is.exec(p);
    if (m) {
      const values = parseValues(m[2]);
      if (!values || !values.length) return invalid("invalid value in the in clause", "where");
      if (values.length > COQL_MAX_IN) {
        return error("LIMIT_EXCEEDED", "the in clause takes at most 50 values", {
          limit: COQL_MAX_IN,
          clause: "where",
        });
      }
      out.push({ column: m[1], op: "in", values });
      continue;
    }
    m = /^([\w.$]+)\s+is\s+(not\s+)?null$/i.exec(p);
    if (m) {
      out.push({ column: m[1], op: m[2] ? "is not null" : "is null", values: [] });
      continue;
    }
    m = /^([\w.$]+)\s*(=|!=)\s*(.+)$/s.exec(p);
    if (m) {
      const values = parseValues(m[3]);
      if (!values || values.length !== 1) return invalid("invalid value", "where");
      out.push({ column: m[1], op: m[2] as "=" | "!=", values });
      continue;
    }
    return invalid("unsupported criterion", "where");
  }
  return out;
}

/** The value a row has for a column, as COQL shows it (lookups as {id}, dotted lookup fields). */
function cell(row: { line: Json; parent: Json }, column: string): unknown {
  const { line, parent } = row;
  if (column === "Parent_Id") return { id: parent.id };
  if (column.startsWith("Parent_Id.")) {
    const f = column.slice("Parent_Id.".length);
    return parent[f] ?? null;
  }
  if (column === "Product_Name") {
    const p = line.Product_Name as Json | null | undefined;
    return p && typeof p === "object" ? { id: p.id ?? null } : null;
  }
  if (column.startsWith("Product_Name.")) {
    const p = line.Product_Name as Json | null | undefined;
    const f = column.slice("Product_Name.".length);
    // The product's own name field is Product_Name; the order's lookup shows it as `name`.
    return p && typeof p === "object" ? p[f === "Product_Name" ? "name" : f] ?? null : null;
  }
  const v = line[column];
  return v === undefined ? null : structuredClone(v);
}

function comparable(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === "object") {
    const id = (v as Json).id;
    return id === null || id === undefined ? null : String(id);
  }
  return String(v);
}

/**
 * Runs one COQL query over the purchase orders' line items. `records` are the simulator's
 * purchase orders in the single-record GET shape; only their `Purchase_Items` are rows.
 */
export function runCoql(
  body: unknown,
  records: ReadonlyMap<string, Json>,
  lineItemModule: string,
): CoqlAnswer {
  const query = body && typeof body === "object" ? (body as Json).select_query : undefined;
  if (typeof query !== "string" || !query.trim()) {
    return error("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {
      param: "select_query",
    });
  }
  const m =
    /^\s*select\s+(.+?)\s+from\s+([\w$]+)(?:\s+where\s+(.+?))?(?:\s+order\s+by\s+([\w.]+)(?:\s+(asc|desc))?)?(?:\s+limit\s+(\d+)(?:\s*,\s*(\d+))?(?:\s+offset\s+(\d+))?)?\s*;?\s*$/is
      .exec(query);
  if (!m) return invalid("syntax error", "select");
  const [, columnList, module, where, orderBy, orderDir, l1, l2, offsetWord] = m;
  if (module !== lineItemModule) {
    return invalid("invalid module name", "from", { module });
  }
  const columns = columnList.split(",").map((c) => c.trim());
  if (columns.length > MAX_COLUMNS) {
    return error("LIMIT_EXCEEDED", "too many columns", { limit: MAX_COLUMNS, clause: "select" });
  }
  const known = (c: string) => {
    const [head, sub, ...rest] = c.split(".");
    if (rest.length) return false;
    if (sub === undefined) return LINE_COLUMNS.has(head);
    return LOOKUPS[head]?.has(sub) ?? false;
  };
  const bad = columns.find((c) => !known(c));
  if (bad !== undefined) {
    return invalid("column given seems to be invalid", "select", { column_name: bad });
  }
  let criteria: Criterion[] = [];
  if (where) {
    const parsed = parseWhere(where);
    if (!Array.isArray(parsed)) return parsed;
    criteria = parsed;
    const badWhere = criteria.find((c) => !known(c.column));
    if (badWhere) {
      return invalid("column given seems to be invalid", "where", { column_name: badWhere.column });
    }
  }
  let offset = 0;
  let limit = 200;
  if (l1 !== undefined) {
    if (l2 !== undefined) {
      offset = Number(l1);
      limit = Number(l2);
    } else {
      limit = Number(l1);
      offset = offsetWord !== undefined ? Number(offsetWord) : 0;
    }
  }
  if (limit < 1 || limit > COQL_MAX_ROWS) {
    return error("LIMIT_EXCEEDED", "the limit must be 1 to 2000", {
      limit: COQL_MAX_ROWS,
      clause: "limit",
    });
  }
  if (offset + limit > COQL_MAX_OFFSET) {
    return error("LIMIT_EXCEEDED", "offset and limit reach past 100000 rows", {
      limit: COQL_MAX_OFFSET,
      clause: "limit",
    });
  }

  // Rows of the parents the query names (a large org: not every line for every query).
  const named = criteria.find((c) => c.column === "Parent_Id" && (c.op === "in" || c.op === "="));
  const parents = named
    ? named.values.map((id) => records.get(id)).filter((r): r is Json => !!r)
    : records.values();
  const rows: Array<{ line: Json; parent: Json }> = [];
  for (const parent of parents) {
    const items = parent.Purchase_Items;
    if (!Array.isArray(items)) continue;
    for (const line of items) {
      if (line && typeof line === "object") rows.push({ line: line as Json, parent });
    }
  }
  const matches = rows.filter((row) =>
    criteria.every((c) => {
      const v = comparable(cell(row, c.column));
      switch (c.op) {
        case "in":
          return v !== null && c.values.includes(v);
        case "=":
          return v === c.values[0];
        case "!=":
          return v !== c.values[0];
        case "is null":
          return v === null;
        case "is not null":
          return v !== null;
      }
    })
  );
  const sortColumn = orderBy ?? "id";
  if (!known(sortColumn)) {
    return invalid("column given seems to be invalid", "order by", { column_name: sortColumn });
  }
  const desc = (orderDir ?? "asc").toLowerCase() === "desc";
  const key = (row: { line: Json; parent: Json }) => comparable(cell(row, sortColumn)) ?? "";
  matches.sort((a, b) => {
    const x = key(a);
    const y = key(b);
    // Ids and numbers: shorter first, then text (numeric order without parsing 19-digit ids).
    const c = /^\d+$/.test(x) && /^\d+$/.test(y)
      ? x.length - y.length || (x < y ? -1 : x > y ? 1 : 0)
      : x < y
      ? -1
      : x > y
      ? 1
      : 0;
    return desc ? -c : c;
  });
  const credits = coqlCredits(limit);
  const page = matches.slice(offset, offset + limit);
  if (!page.length) return { status: 204, credits };
  const data = page.map((row) => {
    const out: Json = {};
    for (const c of columns) out[c] = cell(row, c);
    if (!("id" in out)) out.id = row.line.id ?? null;
    return out;
  });
  return {
    status: 200,
    credits,
    body: { data, info: { count: data.length, more_records: offset + limit < matches.length } },
  };
}
