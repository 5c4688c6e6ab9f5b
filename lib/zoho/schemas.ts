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
