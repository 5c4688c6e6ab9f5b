/** A run's cost on the run page: Zoho credits and calls by kind, Xero calls and bytes received. */
import type { Usage } from "../lib/sync/types.ts";

const KIND_LABEL: Record<string, string> = {
  list: "list",
  get: "single reads",
  coql: "bulk reads",
  update: "write-back",
  fields: "field list",
};

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / (1024 * 1024)).toFixed(2)} MB`;
}

/** `<dt>`/`<dd>` pairs for the run's summary list; nothing for runs recorded before usage was. */
export function RunUsage({ usage }: { usage?: Usage }) {
  if (!usage) return null;
  const kinds = Object.entries(usage.zohoCalls)
    .map(([k, n]) => `${KIND_LABEL[k] ?? k} ${n.toLocaleString("en-US")}`)
    .join(" · ");
  return (
    <>
      <dt>Zoho credits</dt>
      <dd data-usage="zoho">
        {usage.zohoCredits.toLocaleString("en-US")}
        {kinds ? ` (calls: ${kinds})` : ""}
      </dd>
      <dt>Xero usage</dt>
      <dd data-usage="xero">
        {usage.xeroCalls.toLocaleString("en-US")} calls, {formatBytes(usage.xeroEgressBytes)}{" "}
        received
      </dd>
    </>
  );
}
