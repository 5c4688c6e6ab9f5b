/** A run's per-record results for the pages: one filtered page at a time, or streamed (CSV). */
export { eachResult, queryResults, resultMatches, type ResultQuery } from "../store/runs.ts";
