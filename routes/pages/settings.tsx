/**
 * `/settings`: every mapping setting, with the connected Xero organisation's accounts, tax rates and
 * contacts offered as lists (plain text inputs when Xero cannot be read). Saving validates first and
 * stores nothing when anything is wrong.
 */
import { Hono } from "hono";
import {
  CheckboxField,
  fieldId,
  type Option,
  SelectField,
  TextField,
} from "../../components/Fields.tsx";
import type { AppContext } from "../../lib/context.ts";
import { BILL_STATUSES } from "../../lib/mapping/settings.ts";
import type { Assets } from "../assets.ts";
import { ContactLinks, contactLinks, contactRoutes, type XeroContact } from "./contacts.tsx";
import {
  attempt,
  Csrf,
  Flash,
  type PageContext,
  type PageEnv,
  pageGuard,
  renderPage,
} from "./shared.tsx";
import {
  checkAgainstSystems,
  type FormValues,
  LIFECYCLE_CASES,
  rowCount,
  toValues,
  validate,
  WRITE_BACK_FIELDS,
} from "./settings_form.ts";

const XERO_WAIT_MS = 8000;

interface XeroLists {
  accounts: Option[] | null;
  taxRates: Option[] | null;
  contacts: XeroContact[] | null;
  problem?: string;
}

async function loadXeroLists(ctx: AppContext): Promise<XeroLists> {
  const [accounts, taxRates, contacts] = await Promise.all([
    attempt(XERO_WAIT_MS, () => ctx.xero.accounts()),
    attempt(XERO_WAIT_MS, () => ctx.xero.taxRates()),
    attempt(XERO_WAIT_MS, () => ctx.xero.contactsList()),
  ]);
  const problem = [accounts, taxRates, contacts].find((a) => !a.ok);
  return {
    accounts: accounts.ok
      ? accounts.value.filter((a) => a.code)
        .sort((a, b) => a.code.localeCompare(b.code, "en", { numeric: true }))
        .map((a) => ({ value: a.code, label: `${a.code} — ${a.name} (${a.type})` }))
      : null,
    taxRates: taxRates.ok
      ? taxRates.value.map((t) => ({
        value: t.taxType,
        label: `${t.name} — ${t.taxType} (${t.rate} %)`,
      }))
      : null,
    contacts: contacts.ok ? [...contacts.value].sort((a, b) => a.name.localeCompare(b.name)) : null,
    problem: problem && !problem.ok ? problem.error : undefined,
  };
}

/** A list from Xero when there is one, else a text input saying why. */
function XeroChoice(
  { name, label, value, options, errors, hint, empty }: {
    name: string;
    label: string;
    value: string;
    options: Option[] | null;
    errors?: string[];
    hint?: string;
    empty?: string;
  },
) {
  if (options) {
    const list = empty === undefined ? options : [{ value: "", label: empty }, ...options];
    return (
      <SelectField
        name={name}
        label={label}
        value={value}
        options={list}
        errors={errors}
        hint={hint}
      />
    );
  }
  return (
    <TextField
      name={name}
      label={label}
      value={value}
      errors={errors}
      size="short"
      hint={`${hint ? `${hint} ` : ""}Xero could not be read, so type the code as Xero shows it.`}
    />
  );
}

/** A cell of a list row: the label is there for screen readers, the column header for the eye. */
function Cell(
  { name, label, value, errors, options, type = "text" }: {
    name: string;
    label: string;
    value: string;
    errors?: string[];
    options?: Option[] | null;
    type?: "text" | "number";
  },
) {
  const id = fieldId(name);
  const err = errors?.length ? `${id}-err` : undefined;
  return (
    <td>
      <label for={id} class="sr-only">{label}</label>
      {options
        ? (
          <select
            id={id}
            name={name}
            aria-invalid={err ? "true" : undefined}
            aria-describedby={err}
          >
            <option value="">—</option>
            {value && !options.some((o) => o.value === value)
              ? <option value={value} selected>{`${value} (not found in Xero)`}</option>
              : null}
            {options.map((o) => (
              <option value={o.value} selected={o.value === value}>{o.label}</option>
            ))}
          </select>
        )
        : (
          <input
            id={id}
            name={name}
            type={type}
            value={value}
            step={type === "number" ? "any" : undefined}
            aria-invalid={err ? "true" : undefined}
            aria-describedby={err}
          />
        )}
      {err ? <p class="field-error" id={err}>{errors!.join(" ")}</p> : null}
    </td>
  );
}

function SettingsForm(
  { c, values, errors, lists }: {
    c: PageContext;
    values: FormValues;
    errors: Record<string, string[]>;
    lists: XeroLists;
  },
) {
  const v = (name: string) => values[name] ?? "";
  const overrides = rowCount(values, "accountOverrides");
  const taxes = rowCount(values, "taxMappings");
  return (
    <form method="post" action="/settings" class="card settings" novalidate>
      <Csrf c={c} />
      <fieldset>
        <legend>Which purchase orders are sent</legend>
        <TextField
          name="checkboxField"
          label="“Add to Xero” checkbox field (Zoho API name)"
          value={v("checkboxField")}
          errors={errors.checkboxField}
          hint="Only purchase orders with this box ticked become bills."
        />
        <TextField
          name="vendorField"
          label="Vendor field (Zoho API name)"
          value={v("vendorField")}
          errors={errors.vendorField}
          hint="The lookup that names the supplier; it becomes the bill's contact."
        />
        <TextField
          name="vendorLabel"
          label="Vendor field label (as your Zoho layout shows it)"
          value={v("vendorLabel")}
          errors={errors.vendorLabel}
          hint="Used in the reasons a purchase order is held back, e.g. “Client Name is empty”."
        />
      </fieldset>

      <fieldset>
        <legend>Bills</legend>
        <SelectField
          name="billStatus"
          label="Status of new bills"
          value={v("billStatus")}
          errors={errors.billStatus}
          options={BILL_STATUSES.map((s) => ({
            value: s,
            label: s === "DRAFT"
              ? "Draft (kept in step with Zoho)"
              : s === "SUBMITTED"
              ? "Awaiting approval (kept in step with Zoho)"
              : "Awaiting payment (approved; later Zoho changes are not sent)",
          }))}
        />
        <TextField
          name="paymentTermsDays"
          label="Payment terms (days after the bill date)"
          type="number"
          min={0}
          max={3650}
          size="short"
          value={v("paymentTermsDays")}
          errors={errors.paymentTermsDays}
          hint="Used for the due date when the purchase order has none."
        />
        <TextField
          name="zohoRecordUrlBase"
          label="Zoho record link (the record id is added at the end)"
          type="url"
          size="long"
          value={v("zohoRecordUrlBase")}
          errors={errors.zohoRecordUrlBase}
          hint="Each bill links back to its purchase order with this address."
        />
        <CheckboxField
          name="sendItemCodes"
          label="Send Zoho product codes as Xero item codes"
          checked={v("sendItemCodes") === "on"}
          hint="Only when every product code exists as an item in Xero."
        />
      </fieldset>

      <fieldset>
        <legend>Accounts</legend>
        <XeroChoice
          name="defaultAccountCode"
          label="Default account for bill lines"
          value={v("defaultAccountCode")}
          options={lists.accounts}
          errors={errors.defaultAccountCode}
        />
        <p class="hint">
          Per-product accounts: a line whose product id or product code matches uses that account
          instead. Leave a row empty to remove it.
        </p>
        <div class="table-wrap">
          <table class="rows">
            <caption class="sr-only">Account per product</caption>
            <thead>
              <tr>
                <th scope="col">Zoho product id or code</th>
                <th scope="col">Xero account</th>
              </tr>
            </thead>
            <tbody>
              {Array.from({ length: overrides }, (_, i) => (
                <tr>
                  <Cell
                    name={`accountOverrides.${i}.match`}
                    label={`Row ${i + 1}: Zoho product id or code`}
                    value={v(`accountOverrides.${i}.match`)}
                    errors={errors[`accountOverrides.${i}.match`]}
                  />
                  <Cell
                    name={`accountOverrides.${i}.accountCode`}
                    label={`Row ${i + 1}: Xero account`}
                    value={v(`accountOverrides.${i}.accountCode`)}
                    errors={errors[`accountOverrides.${i}.accountCode`]}
                    options={lists.accounts}
                  />
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </fieldset>

      <fieldset>
        <legend>Tax</legend>
        <XeroChoice
          name="untaxedTaxType"
          label="Tax for lines without tax (and discount or adjustment lines)"
          value={v("untaxedTaxType")}
          options={lists.taxRates}
          errors={errors.untaxedTaxType}
        />
        <p class="hint">
          Zoho taxes to Xero tax rates: a row matches a Zoho tax by name (and rate, when given), or
          any tax at a rate when the name is empty.
        </p>
        <div class="table-wrap">
          <table class="rows">
            <caption class="sr-only">Zoho tax to Xero tax rate</caption>
            <thead>
              <tr>
                <th scope="col">Zoho tax name</th>
                <th scope="col">Rate (%)</th>
                <th scope="col">Xero tax rate</th>
              </tr>
            </thead>
            <tbody>
              {Array.from({ length: taxes }, (_, i) => (
                <tr>
                  <Cell
                    name={`taxMappings.${i}.zohoTaxName`}
                    label={`Row ${i + 1}: Zoho tax name`}
                    value={v(`taxMappings.${i}.zohoTaxName`)}
                    errors={errors[`taxMappings.${i}.zohoTaxName`]}
                  />
                  <Cell
                    name={`taxMappings.${i}.percentage`}
                    label={`Row ${i + 1}: rate in percent`}
                    type="number"
                    value={v(`taxMappings.${i}.percentage`)}
                    errors={errors[`taxMappings.${i}.percentage`]}
                  />
                  <Cell
                    name={`taxMappings.${i}.taxType`}
                    label={`Row ${i + 1}: Xero tax rate`}
                    value={v(`taxMappings.${i}.taxType`)}
                    errors={errors[`taxMappings.${i}.taxType`]}
                    options={lists.taxRates}
                  />
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <XeroChoice
          name="defaultTaxType"
          label="Tax for Zoho taxes no row matches"
          value={v("defaultTaxType")}
          options={lists.taxRates}
          errors={errors.defaultTaxType}
          empty="None: hold such purchase orders back with a reason"
          hint="Empty: a purchase order with an unmapped tax is skipped and the run says why."
        />
      </fieldset>

      <fieldset>
        <legend>Write back to Zoho</legend>
        <CheckboxField
          name="writeBack.enabled"
          label="Write the bill's id, number and status back to the purchase order"
          checked={v("writeBack.enabled") === "on"}
          hint="Only fields that exist in Zoho are written; leave a name empty to skip that field."
        />
        <div class="grid-fields">
          {WRITE_BACK_FIELDS.map(([key, label]) => (
            <TextField
              name={`writeBack.fields.${key}`}
              label={`${label} field`}
              value={v(`writeBack.fields.${key}`)}
              errors={errors[`writeBack.fields.${key}`]}
            />
          ))}
        </div>
      </fieldset>

      <fieldset>
        <legend>Bills of deleted, cancelled or unticked purchase orders</legend>
        {LIFECYCLE_CASES.map(([key, label]) => (
          <SelectField
            name={`lifecycle.${key}`}
            label={label}
            value={v(`lifecycle.${key}`)}
            errors={errors[`lifecycle.${key}`]}
            options={[
              { value: "leave", label: "Leave the bill in Xero; the run says so" },
              {
                value: "void_or_delete",
                label:
                  "Delete a draft bill, void an approved unpaid one (paid bills are never touched)",
              },
            ]}
          />
        ))}
      </fieldset>

      <p>
        <button type="submit">Save settings</button>
      </p>
    </form>
  );
}

async function settingsPage(
  c: PageContext,
  ctx: AppContext,
  assets: Assets,
  form?: {
    values: FormValues;
    errors: Record<string, string[]>;
    summary: Array<{ name: string; text: string }>;
  },
) {
  const [settings, lists, links] = await Promise.all([
    ctx.sync.settings(),
    loadXeroLists(ctx),
    contactLinks(ctx, c.req.query("contacts")),
  ]);
  const unchecked = new Set((c.req.query("unchecked") ?? "").split(","));
  const values = form?.values ?? toValues(settings);
  return renderPage(
    c,
    assets,
    { title: "Settings", path: "/settings", status: form ? 422 : 200 },
    (
      <>
        <h1>Settings</h1>
        <p class="muted">
          How purchase orders become bills. Saved settings apply from the next run.
        </p>
        <Flash code={c.req.query("notice")} />
        {unchecked.has("xero")
          ? (
            <p class="notice" role="status">
              The account codes could not be checked against Xero's chart of accounts (Xero is not
              connected or did not answer): check them on the Connections page before the next run.
            </p>
          )
          : null}
        {unchecked.has("zoho")
          ? (
            <p class="notice" role="status">
              The write-back fields could not be checked against Zoho's field list (Zoho is not
              connected or did not answer): make sure they are custom fields of their own.
            </p>
          )
          : null}
        {form
          ? (
            <div class="error-box" role="alert" id="settings-errors">
              <p>
                <strong>Nothing was saved.</strong> Please correct:
              </p>
              <ul>
                {form.summary.map((s) => (
                  <li>
                    <a href={`#${fieldId(s.name)}`}>{s.text}</a>
                  </li>
                ))}
              </ul>
            </div>
          )
          : null}
        {lists.problem
          ? (
            <p class="notice">
              Xero's accounts, tax rates and contacts could not be loaded ({lists.problem}).{" "}
              <a href="/connections">Connect Xero</a> to pick them from your organisation.
            </p>
          )
          : null}
        <SettingsForm c={c} values={values} errors={form?.errors ?? {}} lists={lists} />
        <ContactLinks c={c} page={links} contacts={lists.contacts} />
      </>
    ),
  );
}

export function settingsRoutes(ctx: AppContext, assets: Assets) {
  const guard = pageGuard(ctx, assets);
  return new Hono<PageEnv>()
    .get("/settings", guard, (c) => settingsPage(c, ctx, assets))
    .post("/settings", guard, async (c) => {
      const body = await c.req.parseBody();
      const values: FormValues = {};
      for (const [k, val] of Object.entries(body)) {
        if (k !== "csrf" && typeof val === "string") values[k] = val;
      }
      const current = await ctx.sync.settings();
      const checked = validate(values, current);
      if (!checked.ok) return settingsPage(c, ctx, assets, { values, ...checked });
      // Checked against the connected systems too; when one cannot be read, saved with a note.
      const [fields, accounts] = await Promise.all([
        ctx.zoho.fieldMetadata
          ? attempt(XERO_WAIT_MS, () => ctx.zoho.fieldMetadata!())
          : Promise.resolve({ ok: false as const, error: "no field list" }),
        attempt(XERO_WAIT_MS, () => ctx.xero.accounts()),
      ]);
      const found = checkAgainstSystems(values, current, {
        fields: fields.ok ? fields.value : null,
        accounts: accounts.ok ? accounts.value : null,
      });
      if (found.summary.length) return settingsPage(c, ctx, assets, { values, ...found });
      const saved = await ctx.sync.saveSettings(checked.input);
      if (!saved.ok) {
        const summary = saved.errors.map((text) => ({ name: "settings", text }));
        return settingsPage(c, ctx, assets, { values, errors: {}, summary });
      }
      const unchecked = [accounts.ok ? "" : "xero", fields.ok ? "" : "zoho"].filter(Boolean);
      return c.redirect(
        `/settings?notice=settings-saved${unchecked.length ? `&unchecked=${unchecked}` : ""}`,
        303,
      );
    })
    .route("/", contactRoutes(ctx, assets));
}
