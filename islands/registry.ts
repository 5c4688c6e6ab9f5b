/** Every island by name: the server renders from it and the browser bundle hydrates from it. */
import ConnectionStatus from "./ConnectionStatus.tsx";
import RunWatcher from "./RunWatcher.tsx";
import SyncPanel from "./SyncPanel.tsx";

export const islands = {
  ConnectionStatus,
  RunWatcher,
  SyncPanel,
} as const;

export type IslandName = keyof typeof islands;
