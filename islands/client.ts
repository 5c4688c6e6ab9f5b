/// <reference lib="dom" />
/** Browser entry: hydrates each server-rendered island with the props written beside it. */
import { h, hydrate } from "preact";
import { type IslandName, islands } from "./registry.ts";

for (const root of document.querySelectorAll<HTMLElement>("[data-island]")) {
  const name = root.dataset.island as IslandName;
  const Component = islands[name];
  const propsEl = root.nextElementSibling;
  if (!Component || !(propsEl instanceof HTMLScriptElement)) continue;
  const props = JSON.parse(propsEl.textContent || "{}");
  // deno-lint-ignore no-explicit-any -- props come from the matching server render
  hydrate(h(Component as any, props), root);
  root.dataset.hydrated = "true";
}
