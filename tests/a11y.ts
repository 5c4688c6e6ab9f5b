/**
 * axe-core (npm, pinned in deno.json) run inside the page under test. Its source is evaluated
 * through the DevTools protocol, so the app's CSP (scripts by nonce only) stays on for the test.
 * Every violation is written to test-artifacts/axe-<name>.json; serious and critical ones fail.
 */
import axe from "axe-core";
import type { Page } from "playwright-core";
import { artifactPath } from "./browser.ts";

const SOURCE = (axe as unknown as { source: string }).source;

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: string[]; failureSummary?: string }>;
}

export async function axeViolations(page: Page, name: string): Promise<AxeViolation[]> {
  if (!await page.evaluate(() => "axe" in globalThis)) await page.evaluate(SOURCE);
  const found = await page.evaluate(async () => {
    // deno-lint-ignore no-explicit-any -- axe is the global the evaluated source defines
    const result = await (globalThis as any).axe.run(document, {
      runOnly: {
        type: "tag",
        values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"],
      },
      resultTypes: ["violations"],
    });
    // deno-lint-ignore no-explicit-any
    return result.violations.map((v: any) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      // deno-lint-ignore no-explicit-any
      nodes: v.nodes.map((n: any) => ({ target: n.target, failureSummary: n.failureSummary })),
    }));
  }) as AxeViolation[];
  await Deno.writeTextFile(
    await artifactPath(`axe-${name}.json`),
    JSON.stringify({ url: page.url(), violations: found }, null, 2),
  );
  return found;
}

/** The serious and critical violations, one line each (for an assertion message). */
export function serious(found: AxeViolation[]): string[] {
  return found.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) =>
    `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`
  );
}
