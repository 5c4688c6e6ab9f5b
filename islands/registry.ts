/** Every island by name: the server renders from it and the browser bundle hydrates from it. */
import AutoSyncSwitch from "./AutoSyncSwitch.tsx";
import ConnectionStatus from "./ConnectionStatus.tsx";
import RecentRuns from "./RecentRuns.tsx";
import RunWatcher from "./RunWatcher.tsx";
import SyncPanel from "./SyncPanel.tsx";

export const islands = {
  AutoSyncSwitch,
  ConnectionStatus,
  RecentRuns,
  RunWatcher,
  SyncPanel,
} as const;

export type IslandName = keyof typeof islands;
