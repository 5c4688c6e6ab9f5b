/**
 * Encryption of stored OAuth tokens (AES-GCM) and signing of session cookies (HMAC-SHA256), both
 * keyed from ENCRYPTION_KEY through HKDF so one secret never serves two purposes.
 *
 * A stored token is sealed for the KV key it is stored under (the key is AES-GCM additional
 * data, envelope "v2."): moved to another key it no longer opens. Values sealed before that
 * ("v1.", no additional data) still open, so an upgrade needs no reconnect; `resealLegacy`
 * rewrites them bound at start, and every later write seals bound anyway.
 */
const enc = new TextEncoder();
const dec = new TextDecoder();

function b64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function fromB64url(text: string): Uint8Array<ArrayBuffer> {
  const s = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

export interface Secrets {
  /** Seals `plain` for the KV key it will be stored under (`boundTo`, or the bound key). */
  encrypt(plain: string, boundTo?: Deno.KvKey): Promise<string>;
  /** Opens a value stored under `boundTo` (or the bound key); throws if it was sealed for another. */
  decrypt(sealed: string, boundTo?: Deno.KvKey): Promise<string>;
  /** These secrets with `key` as the default KV key (for a client whose tokens share one key). */
  bind(key: Deno.KvKey): Secrets;
  sign(data: string): Promise<string>;
  verify(data: string, signature: string): Promise<boolean>;
}

/** The additional data binding a ciphertext to a KV key (parts typed, so 1 and "1" differ). */
function keyData(key: Deno.KvKey): Uint8Array<ArrayBuffer> {
  const parts = key.map((p) => p instanceof Uint8Array ? ["bytes", [...p]] : [typeof p, String(p)]);
  return enc.encode(`zoho-xero/kv-key:${JSON.stringify(parts)}`);
}

/** A value sealed before ciphertexts were bound to their KV key. */
export function isLegacySealed(sealed: unknown): boolean {
  return typeof sealed === "string" && sealed.startsWith("v1.");
}

export async function createSecrets(encryptionKey: string): Promise<Secrets> {
  const base = await crypto.subtle.importKey("raw", enc.encode(encryptionKey), "HKDF", false, [
    "deriveKey",
  ]);
  const derive = (info: string, algo: AesKeyGenParams | HmacKeyGenParams, usage: KeyUsage[]) =>
    crypto.subtle.deriveKey(
      { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(32), info: enc.encode(info) },
      base,
      algo,
      false,
      usage,
    );
  const aes = await derive("zoho-xero/tokens", { name: "AES-GCM", length: 256 }, [
    "encrypt",
    "decrypt",
  ]);
  const hmac = await derive("zoho-xero/sessions", { name: "HMAC", hash: "SHA-256" }, [
    "sign",
    "verify",
  ]);
  const make = (bound?: Deno.KvKey): Secrets => ({
    async encrypt(plain, boundTo = bound) {
      if (!boundTo) throw new Error("a stored secret must be bound to its KV key");
      const iv = crypto.getRandomValues(new Uint8Array(12));
      const data = new Uint8Array(
        await crypto.subtle.encrypt(
          { name: "AES-GCM", iv, additionalData: keyData(boundTo) },
          aes,
          enc.encode(plain),
        ),
      );
      return `v2.${b64url(iv)}.${b64url(data)}`;
    },
    async decrypt(sealed, boundTo = bound) {
      const [v, iv, data, extra] = sealed.split(".");
      if (!iv || !data || extra !== undefined || (v !== "v1" && v !== "v2")) {
        throw new Error("stored secret has an unknown format");
      }
      if (v === "v2" && !boundTo) throw new Error("stored secret is bound to a KV key: name it");
      const plain = await crypto.subtle.decrypt(
        v === "v2"
          ? { name: "AES-GCM", iv: fromB64url(iv), additionalData: keyData(boundTo!) }
          : { name: "AES-GCM", iv: fromB64url(iv) },
        aes,
        fromB64url(data),
      );
      return dec.decode(plain);
    },
    bind: (key) => make(key),
    async sign(data) {
      return b64url(new Uint8Array(await crypto.subtle.sign("HMAC", hmac, enc.encode(data))));
    },
    async verify(data, signature) {
      try {
        return await crypto.subtle.verify("HMAC", hmac, fromB64url(signature), enc.encode(data));
      } catch {
        return false;
      }
    },
  });
  return make();
}

/**
 * Rewrites the legacy ("v1.") fields of the value at `key` sealed for that key, once, with an
 * atomic check so a concurrent write wins. Unreadable values are left alone for their owner to
 * report. Returns how many fields were resealed.
 */
export async function resealLegacy(
  kv: Deno.Kv,
  secrets: Secrets,
  key: Deno.KvKey,
  fields: string[],
): Promise<number> {
  const entry = await kv.get<Record<string, unknown>>(key);
  const value = entry.value;
  if (!value || typeof value !== "object") return 0;
  const next: Record<string, unknown> = { ...value };
  let count = 0;
  for (const field of fields) {
    const sealed = value[field];
    if (!isLegacySealed(sealed)) continue;
    try {
      next[field] = await secrets.encrypt(await secrets.decrypt(sealed as string), key);
      count++;
    } catch {
      return 0;
    }
  }
  if (!count) return 0;
  const res = await kv.atomic().check(entry).set(key, next).commit();
  return res.ok ? count : 0;
}

/** Constant-time string comparison for tokens and passwords. */
export function safeEqual(a: string, b: string): boolean {
  const x = enc.encode(a);
  const y = enc.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** Stable hex SHA-256, for content hashes and idempotency keys. */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", enc.encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
