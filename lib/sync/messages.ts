/** One sentence per result, fit to show a Zoho user in the button's pop-up. */
import type { Outcome } from "./types.ts";

const STATUS_WORDS: Record<string, string> = {
  DRAFT: "as a draft",
  SUBMITTED: "awaiting approval",
  AUTHORISED: "as approved",
};

export function outcomeMessage(
  outcome: Outcome,
  { number, status, reasons = [], preview = false }: {
    number?: string;
    status?: string;
    reasons?: string[];
    preview?: boolean;
  },
): string {
  const bill = number ? `Bill ${number}` : "The bill";
  const why = sentence(reasons.join("; "));
  if (preview) {
    switch (outcome) {
      case "created":
        return `Preview: ${bill} would be created in Xero ${STATUS_WORDS[status ?? ""] ?? ""}`
          .trim() +
          ".";
      case "updated":
        return `Preview: ${bill} would be updated in Xero.`;
      case "unchanged":
        return `Preview: ${bill} is already up to date in Xero.`;
      case "skipped":
        return `Preview: would not sync: ${why}`;
      case "failed":
        return `Preview failed: ${why}`;
    }
  }
  switch (outcome) {
    case "created":
      return `${bill} created in Xero ${STATUS_WORDS[status ?? ""] ?? ""}`.trim() + ".";
    case "updated":
      return `${bill} updated in Xero.`;
    case "unchanged":
      return `${bill} is already up to date in Xero.`;
    case "skipped":
      return `Not synced: ${why}`;
    case "failed":
      return `Sync failed: ${why}`;
  }
}

/** Joins reason fragments into one sentence ending with a full stop. */
function sentence(text: string): string {
  const t = text.trim().replace(/[.\s]+$/, "");
  return t ? `${t}.` : "no reason was given.";
}
