/** Every island by name: the server renders from it and the browser bundle hydrates from it. */
import ConnectionStatus from "./ConnectionStatus.tsx";

export const islands = {
  ConnectionStatus,
} as const;

export type IslandName = keyof typeof islands;
