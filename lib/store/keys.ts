/**
 * The one place that knows the Deno KV key layout. Every module reads and writes KV through these
 * builders, so a key can never be spelled two ways.
 */
export type Module = "Purchase_Orders";

export const keys = {
  // OAuth tokens (values encrypted with ENCRYPTION_KEY, see lib/secrets.ts).
  zohoToken: () => ["tokens", "zoho"] as const,
  zohoAccessToken: () => ["tokens", "zoho_access"] as const,
  // Short lease so only one process mints a Zoho access token at a time (Zoho caps mints).
  zohoMintLease: () => ["tokens", "zoho_mint_lease"] as const,
  // Whether Zoho answers COQL over purchase-order line items, and under which module name.
  zohoCoqlLineItems: () => ["zoho", "coql_line_items"] as const,
  xeroToken: () => ["tokens", "xero"] as const,
  xeroAccessToken: () => ["tokens", "xero_access"] as const,
  xeroTenant: () => ["xero", "tenant"] as const,
  // Hash of the XERO_REFRESH_TOKEN seed an admin disconnected (not to be picked up again).
  xeroDisconnectedSeed: () => ["xero", "disconnected_seed"] as const,
  oauthState: (state: string) => ["oauth_state", state] as const,
  // Why the last OAuth callback of an admin session failed, shown once on the connections page.
  oauthError: (sessionId: string) => ["oauth_error", sessionId] as const,

  // Zoho vendor id → Xero ContactID.
  contact: (zohoVendorId: string) => ["contacts", zohoVendorId] as const,
  contactPrefix: () => ["contacts"] as const,

  // Zoho purchase order id → the one Xero bill it owns.
  billMapping: (poId: string) => ["bills", poId] as const,
  billMappingPrefix: () => ["bills"] as const,
  // Write-ahead intent: a bill create was (maybe) sent to Xero for this purchase order.
  billIntent: (poId: string) => ["bill_intent", poId] as const,
  billIntentPrefix: () => ["bill_intent"] as const,
  // Per-record lock so the button, webhook and runs never write the same record at once.
  recordLock: (poId: string) => ["record_lock", poId] as const,
  // Xero tenant already scanned for our bills after a fresh or lost state.
  reconciled: (tenantId: string) => ["reconciled", tenantId] as const,

  watermark: (module: Module) => ["watermark", module] as const,
  retry: (module: Module, poId: string) => ["retry", module, poId] as const,
  retryPrefix: (module: Module) => ["retry", module] as const,
  queue: (module: Module, poId: string) => ["queue", module, poId] as const,
  queuePrefix: (module: Module) => ["queue", module] as const,

  // Xero → Zoho (lib/sync/bill_status.ts): bills a Xero webhook named, waiting to be looked at
  // (one entry per InvoiceID, so an event delivered twice is stored once); the If-Modified-Since
  // watermark of the safety-net poll, per organisation; the lease of the pass that works them.
  xeroEvent: (invoiceId: string) => ["xero_events", invoiceId] as const,
  xeroEventPrefix: () => ["xero_events"] as const,
  billStatusWatermark: (tenantId: string) => ["watermark_xero_bills", tenantId] as const,
  billStatusLease: () => ["bill_status_lease"] as const,
  // Zoho → Xero lifecycle: the Modified-Since watermark of Zoho's deleted-records list.
  deletedWatermark: (module: Module) => ["watermark_deleted", module] as const,

  // Runs: ids sort by start time, so a reverse list is newest first.
  run: (runId: string) => ["runs", runId] as const,
  runPrefix: () => ["runs"] as const,
  runResult: (runId: string, poId: string) => ["run_results", runId, poId] as const,
  runResultPrefix: (runId: string) => ["run_results", runId] as const,
  runLease: (module: Module) => ["run_lease", module] as const,

  settings: () => ["settings"] as const,
  // Written only for its versionstamp: "now" in KV's own order, the same for every instance.
  clock: () => ["clock"] as const,
  session: (id: string) => ["sessions", id] as const,
  rateLimit: (bucket: string, window: number) => ["rate_limit", bucket, window] as const,

  // Auto sync set on the sync page (on/off, interval), and the schedule slot the tick last claimed.
  autoSync: () => ["auto_sync", "settings"] as const,
  autoSyncLast: () => ["auto_sync", "last"] as const,
  // A run as a durable job (lib/store/run_plan.ts): where it stands, and what it listed, in chunks
  // keyed by position, so any instance can go on with it and none holds the whole listing.
  runPlan: (runId: string) => ["run_plan", runId] as const,
  runPlanItems: (runId: string, chunk: number) => ["run_plan_items", runId, chunk] as const,
  runPlanItemsPrefix: (runId: string) => ["run_plan_items", runId] as const,
  // Zoho id → the last position the run listed it at (an order edited while listing shows twice).
  runPlanListed: (runId: string, poId: string) => ["run_plan_listed", runId, poId] as const,
  runPlanListedPrefix: (runId: string) => ["run_plan_listed", runId] as const,
} as const;
