/**
 * Encryption of stored OAuth tokens (AES-GCM) and signing of session cookies (HMAC-SHA256), both
 * keyed from ENCRYPTION_KEY through HKDF so one secret never serves two purposes.
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
  encrypt(plain: string): Promise<string>;
  decrypt(sealed: string): Promise<string>;
  sign(data: string): Promise<string>;
  verify(data: string, signature: string): Promise<boolean>;
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
  return {
    async encrypt(plain) {
      const iv = crypto.getRandomValues(new Uint8Array(12));
      const data = new Uint8Array(
        await crypto.subtle.encrypt({ name: "AES-GCM", iv }, aes, enc.encode(plain)),
      );
      return `v1.${b64url(iv)}.${b64url(data)}`;
    },
    async decrypt(sealed) {
      const [v, iv, data] = sealed.split(".");
      if (v !== "v1" || !iv || !data) throw new Error("stored secret has an unknown format");
      const plain = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: fromB64url(iv) },
        aes,
        fromB64url(data),
      );
      return dec.decode(plain);
    },
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
  };
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
