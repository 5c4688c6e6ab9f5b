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
}

const SHOWN_LINKS = 200;

const StoredLink = z.union([
  z.string().transform((contactID) => ({ contactID, name: undefined })),
  z.looseObject({ contactID: z.string(), name: z.string().optional() }),
]);

export async function contactLinks(ctx: AppContext): Promise<ContactLink[]> {
  const out: ContactLink[] = [];
  for await (const e of ctx.kv.list({ prefix: keys.contactPrefix() }, { limit: SHOWN_LINKS })) {
    const parsed = StoredLink.safeParse(e.value);
    if (parsed.success) {
      out.push({
        vendorId: String(e.key.at(-1)),
        contactID: parsed.data.contactID,
        name: parsed.data.name,
      });
    }
  }
  return out;
}

export function ContactLinks(
  { c, links, contacts }: { c: PageContext; links: ContactLink[]; contacts: XeroContact[] | null },
) {
  const nameOf = new Map(contacts?.map((x) => [x.contactID, x.name]));
  return (
    <section class="card" aria-labelledby="contacts-h">
      <h2 id="contacts-h">Vendors and their Xero contacts</h2>
      <p class="hint">
        The sync finds or creates a Xero contact for each Zoho vendor. To send a vendor's bills to a
        different contact, pick it here.
      </p>
      {links.length
        ? (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Zoho vendor id</th>
                  <th scope="col">Xero contact</th>
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
      if (!contact) return c.redirect("/settings?notice=contact-invalid#contacts-h", 303);
      await ctx.kv.set(keys.contact(parsed.data.vendorId), {
        contactID: contact.contactID,
        name: contact.name,
        linkedBy: "admin",
        at: new Date().toISOString(),
      });
      return c.redirect("/settings?notice=contact-saved#contacts-h", 303);
    })
    .post("/settings/contacts/remove", guard, async (c) => {
      const parsed = ZohoIdSchema.safeParse((await c.req.parseBody())["vendorId"]);
      if (parsed.success) await ctx.kv.delete(keys.contact(parsed.data));
      return c.redirect("/settings?notice=contact-removed#contacts-h", 303);
    });
}
