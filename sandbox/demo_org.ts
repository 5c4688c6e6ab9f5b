/**
 * The organisation the demo, the tests and the bench share: Xero tax rates for every tax the
 * purchase order generator uses, and the app settings that map them. Sandbox-only data.
 */
import type { SimTaxRateSeed } from "./xero_org.ts";

export const ORG_TAX_RATES: SimTaxRateSeed[] = [
  { taxType: "INPUT", name: "GST on Expenses", effectiveRate: 10 },
  { taxType: "NONE", name: "No GST", effectiveRate: 0 },
  { taxType: "EXEMPTEXPENSES", name: "GST Free Expenses", effectiveRate: 0 },
  { taxType: "BASEXCLUDED", name: "BAS Excluded", effectiveRate: 0 },
  { taxType: "TAX001", name: "VAT 20% on Purchases", effectiveRate: 20 },
  { taxType: "TAX002", name: "GST 15% (NZ) on Purchases", effectiveRate: 15 },
  { taxType: "TAX003", name: "US Sales Tax 8.875%", effectiveRate: 8.875 },
  { taxType: "TAX004", name: "Reduced VAT 5%", effectiveRate: 5 },
  { taxType: "TAX005", name: "CGST + SGST 18%", effectiveRate: 18 },
];

/** Settings input (SettingsSchema) that maps the generator's Zoho taxes to ORG_TAX_RATES. */
export const ORG_SETTINGS = {
  taxMappings: [
    { zohoTaxName: "GST", percentage: 10, taxType: "INPUT" },
    { zohoTaxName: "GST", percentage: 15, taxType: "TAX002" },
    { zohoTaxName: "VAT", taxType: "TAX001" },
    { zohoTaxName: "Sales Tax", taxType: "TAX003" },
    { zohoTaxName: "Reduced VAT", taxType: "TAX004" },
    { zohoTaxName: "CGST + SGST", taxType: "TAX005" },
  ],
};

export const ORG_CURRENCIES = ["AUD", "USD", "EUR", "GBP", "NZD", "INR"];
