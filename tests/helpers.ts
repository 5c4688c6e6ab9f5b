/** Shared test setup: a valid config, the app on a real KV, a listening server on 127.0.0.1. */
import { type Config, loadConfig } from "../lib/config.ts";
import { boot } from "../boot.ts";

export const TEST_ENV = {
  ADMIN_PASSWORD: "test-admin-password",
  SYNC_API_TOKEN: "test-sync-token-0123456789",
  ENCRYPTION_KEY: "test-encryption-key-0123456789-abcdef",
  DENO_KV_PATH: ":memory:",
  HOST: "127.0.0.1",
};

export function testConfig(env: Record<string, string | undefined> = {}): Config {
  return loadConfig({ ...TEST_ENV, ...env });
}

/** Boots the real app and serves it on a random loopback port. */
export async function serveApp(env: Record<string, string | undefined> = {}) {
  const booted = await boot(testConfig(env));
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    booted.app.fetch,
  );
  const url = `http://127.0.0.1:${server.addr.port}`;
  return {
    ...booted,
    url,
    async close() {
      await server.shutdown();
      await booted.close();
    },
  };
}
