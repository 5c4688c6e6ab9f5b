/** zod shapes of what Zoho sends back: checked at the border, so the rest of the code can trust them. */
import { z } from "zod";

/** Token endpoint: success or `{"error": "..."}` (often with HTTP 200). */
export const TokenResponse = z.union([
  z.object({
    access_token: z.string().min(1),
    refresh_token: z.string().min(1).optional(),
    api_domain: z.url().optional(),
    expires_in: z.coerce.number().positive().optional(),
    token_type: z.string().optional(),
  }),
  z.object({
    error: z.string(),
    error_description: z.string().optional(),
  }),
]);
export type TokenResponse = z.infer<typeof TokenResponse>;

/** Zoho's API error body. */
export const ErrorBody = z.object({
  code: z.string(),
  message: z.string().optional().default(""),
  details: z.record(z.string(), z.unknown()).optional(),
  status: z.string().optional(),
});

export const ZohoId = z.string().regex(/^\d{1,25}$/, "a Zoho id is a string of digits");

export const ListRecord = z.looseObject({
  id: ZohoId,
  Modified_Time: z.string().min(1),
});
export type ZohoListRecord = { id: string; Modified_Time: string } & Record<string, unknown>;

export const ListResponse = z.object({
  data: z.array(ListRecord),
  info: z.looseObject({
    more_records: z.boolean(),
    next_page_token: z.string().nullish(),
    page: z.number().optional(),
    count: z.number().optional(),
    per_page: z.number().optional(),
  }),
});

export const GetResponse = z.object({
  data: z.array(z.looseObject({ id: ZohoId })),
});

export const UpdateEntry = z.object({
  code: z.string(),
  status: z.string(),
  message: z.string().optional().default(""),
  details: z.record(z.string(), z.unknown()).nullish(),
});

export const UpdateResponse = z.object({ data: z.array(UpdateEntry) });

export const FieldsResponse = z.object({
  fields: z.array(z.looseObject({ api_name: z.string() })),
});

/** What KV holds under keys.zohoToken(): the refresh token (encrypted) and the connection state. */
export const StoredConnection = z.object({
  refreshToken: z.string().optional(),
  apiDomain: z.string().optional(),
  accountsUrl: z.string().optional(),
  connectedAt: z.string().optional(),
  source: z.enum(["env", "oauth"]).optional(),
  seedHash: z.string().optional(),
  lastError: z.string().optional(),
  lastErrorCode: z.string().optional(),
  lastErrorAt: z.string().optional(),
  failedClientHash: z.string().optional(),
  /** ISO time before which no mint is tried (Zoho refused one: too many in its 10-minute window). */
  retryAfter: z.string().optional(),
  disconnectedAt: z.string().optional(),
  disconnectedSeedHash: z.string().optional(),
});
export type StoredConnection = z.infer<typeof StoredConnection>;

/** What KV holds under keys.zohoAccessToken(). */
export const StoredAccessToken = z.object({
  accessToken: z.string(),
  apiDomain: z.string(),
  expiresAt: z.string(),
  mintedAt: z.string().optional(),
});
export type StoredAccessToken = z.infer<typeof StoredAccessToken>;
