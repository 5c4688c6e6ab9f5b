/**
 * Which Xero contact a Zoho vendor's bills go to. The sync links vendors itself (contact number,
 * then exact name); here an admin sees those links and can point a vendor at another contact.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { AppContext } from "../../lib/context.ts";
import { keys } from "../../lib/store/keys.ts";
import { ZohoIdSchema } from "../../lib/sync/types.ts";
import type { Assets } from "../assets.ts";
import { Csrf, type PageContext, type PageEnv, pageGuard } from "./shared.tsx";

export interface XeroContact {
  contactID: string;
  name: string;
}

export interface ContactLink {
  vendorId: string;
  contactID: string;
  name?: string;
  /** Linked on this page (the sync never replaces it), else found or made by the sync. */
  byAdmin: boolean;
  /** The link is for another Xero organisation than the one connected now. */
  otherTenant: boolean;
}

export interface LinkPage {
  links: ContactLink[];
  /** Opaque KV cursor of the next page, if there is one. */
  next?: string;
  /** Whether this is a later page (so the page offers a way back to the first). */
  later: boolean;
}

const LINKS_PER_PAGE = 100;

const StoredLink = z.union([
  z.string().transform((contactID) => ({
    contactID,
    name: undefined,
    tenantId: undefined,
    linkedBy: undefined,
  })),
  z.looseObject({
    contactID: z.string(),
    name: z.string().optional(),
    tenantId: z.string().optional(),
    linkedBy: z.string().optional(),
  }),
]);

/** KV list cursors are base64url; anything else is ignored (first page). */
const Cursor = z.string().max(500).regex(/^[A-Za-z0-9_=-]+$/);

/** One page of vendor links, in vendor id order. */
export async function contactLinks(ctx: AppContext, cursorIn?: string): Promise<LinkPage> {
  const cursor = Cursor.safeParse(cursorIn).success ? cursorIn : undefined;
  const tenantId = (await ctx.xero.tenant().catch(() => undefined))?.tenantId;
  const read = async (from?: string) => {
    const out: ContactLink[] = [];
    const it = ctx.kv.list({ prefix: keys.contactPrefix() }, {
      limit: LINKS_PER_PAGE,
      cursor: from,
    });
    for await (const e of it) {
      const parsed = StoredLink.safeParse(e.value);
      if (!parsed.success) continue;
      const byAdmin = parsed.data.linkedBy === "admin";
      out.push({
        vendorId: String(e.key.at(-1)),
        contactID: parsed.data.contactID,
        name: parsed.data.name,
        byAdmin,
        // An admin's link without a tenant (saved by an older version) applies to the current one.
        otherTenant: tenantId !== undefined &&
          (parsed.data.tenantId ? parsed.data.tenantId !== tenantId : !byAdmin),
      });
    }
    return { out, next: out.length === LINKS_PER_PAGE && it.cursor ? it.cursor : undefined };
  };
  try {
    const { out, next } = await read(cursor);
    return { links: out, next, later: cursor !== undefined };
  } catch {
    // A cursor from another KV (or tampered with): start again at the first page.
    const { out, next } = await read();
    return { links: out, next, later: false };
  }
}

export function ContactLinks(
  { c, page, contacts }: { c: PageContext; page: LinkPage; contacts: XeroContact[] | null },
) {
  const nameOf = new Map(contacts?.map((x) => [x.contactID, x.name]));
  const { links } = page;
  return (
    <section class="card" aria-labelledby="contacts-h">
      <h2 id="contacts-h">Vendors and their Xero contacts</h2>
      <p class="hint">
        The sync finds or creates a Xero contact for each Zoho vendor. To send a vendor's bills to a
        different contact, pick it here: the sync then always uses your choice.
      </p>
      {links.length
        ? (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Zoho vendor id</th>
                  <th scope="col">Xero contact</th>
                  <th scope="col">Linked by</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {links.map((l) => (
                  <tr>
                    <td class="mono">{l.vendorId}</td>
                    <td>{nameOf.get(l.contactID) ?? l.name ?? l.contactID}</td>
                    <td>
                      {l.byAdmin ? "you" : "the sync"}
                      {l.otherTenant ? " (another Xero organisation)" : ""}
                    </td>
                    <td>
                      <form method="post" action="/settings/contacts/remove" class="inline">
                        <Csrf c={c} />
                        <input type="hidden" name="vendorId" value={l.vendorId} />
                        <button type="submit" class="secondary small-button">
                          Unlink<span class="sr-only">{` vendor ${l.vendorId}`}</span>
                        </button>
                      </form>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )
        : <p class="muted">No vendor is linked yet: the first sync links them.</p>}
      {page.next || page.later
        ? (
          <p class="pager">
            {page.later ? <a href="/settings#contacts-h">First vendors</a> : null}
            {page.later && page.next ? " · " : null}
            {page.next
              ? (
                <a href={`/settings?contacts=${encodeURIComponent(page.next)}#contacts-h`}>
                  Next vendors
                </a>
              )
              : null}
          </p>
        )
        : null}
      {contacts
        ? (
          <form method="post" action="/settings/contacts" class="row-form">
            <Csrf c={c} />
            <div class="field">
              <label for="link-vendor">Zoho vendor id</label>
              <input
                id="link-vendor"
                name="vendorId"
                inputMode="numeric"
                required
                pattern="[0-9]{15,20}"
              />
            </div>
            <div class="field">
              <label for="link-contact">Xero contact</label>
              <select id="link-contact" name="contactID" required>
                <option value="">Choose a contact</option>
                {contacts.map((x) => <option key={x.contactID} value={x.contactID}>{x.name}
                </option>)}
              </select>
            </div>
            <button type="submit">Link vendor</button>
          </form>
        )
        : <p class="muted">Connect Xero to choose contacts from your organisation.</p>}
    </section>
  );
}

const LinkForm = z.object({ vendorId: ZohoIdSchema, contactID: z.string().trim().min(1).max(64) });

export function contactRoutes(ctx: AppContext, assets: Assets) {
  const guard = pageGuard(ctx, assets);
  return new Hono<PageEnv>()
    .post("/settings/contacts", guard, async (c) => {
      const parsed = LinkForm.safeParse(await c.req.parseBody());
      if (!parsed.success) return c.redirect("/settings?notice=contact-invalid#contacts-h", 303);
      const contacts = await ctx.xero.contactsList().catch(() => null);
      const contact = contacts?.find((x) => x.contactID === parsed.data.contactID);
      const tenant = await ctx.xero.tenant().catch(() => null);
      if (!contact || !tenant) {
        return c.redirect("/settings?notice=contact-invalid#contacts-h", 303);
      }
      // The link is for this organisation; the sync uses it and never replaces it.
      await ctx.kv.set(keys.contact(parsed.data.vendorId), {
        contactID: contact.contactID,
        name: contact.name,
        tenantId: tenant.tenantId,
        linkedBy: "admin",
        at: Date.now(),
        checkedAt: Date.now(),
      });
      return c.redirect("/settings?notice=contact-saved#contacts-h", 303);
    })
    .post("/settings/contacts/remove", guard, async (c) => {
      const parsed = ZohoIdSchema.safeParse((await c.req.parseBody())["vendorId"]);
      if (parsed.success) await ctx.kv.delete(keys.contact(parsed.data));
      return c.redirect("/settings?notice=contact-removed#contacts-h", 303);
    });
}
