/**
 * Server side of the island model: renders the component to HTML as usual, then writes its props as
 * escaped JSON next to it and marks its place, so islands/client.ts can hydrate exactly that node.
 */
import type { ComponentType } from "preact";
import { type IslandName, islands } from "../islands/registry.ts";

/** JSON that is safe inside a <script> element (no "</script>", no HTML comment openers). */
export function escapeJson(value: unknown): string {
  return JSON.stringify(value)
    .replaceAll("<", "\\u003c")
    .replaceAll(">", "\\u003e")
    .replaceAll("&", "\\u0026")
    .replaceAll("\u2028", "\\u2028")
    .replaceAll("\u2029", "\\u2029");
}

export function Island<N extends IslandName>(
  { name, props }: { name: N; props: Parameters<(typeof islands)[N]>[0] },
) {
  const Component = islands[name] as ComponentType<typeof props>;
  return (
    <>
      <div data-island={name}>
        <Component {...props} />
      </div>
      <script
        type="application/json"
        data-island-props={name}
        // deno-lint-ignore react-no-danger -- escaped above; this is data, not script
        dangerouslySetInnerHTML={{ __html: escapeJson(props) }}
      />
    </>
  );
}
