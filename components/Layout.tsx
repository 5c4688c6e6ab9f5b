/** The page shell: one stylesheet, one island script (only when the page has islands), no CDN. */
import type { ComponentChildren } from "preact";

export interface PageAssets {
  css: string;
  js: string;
  nonce: string;
}

const NAV = [
  ["/", "Sync"],
  ["/runs", "Run history"],
  ["/settings", "Settings"],
  ["/connections", "Connections"],
] as const;

export function Layout(
  { title, assets, path, islands = false, loggedIn = false, csrf, children }: {
    title: string;
    assets: PageAssets;
    path: string;
    islands?: boolean;
    loggedIn?: boolean;
    csrf?: string;
    children: ComponentChildren;
  },
) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${title} · Zoho → Xero bills`}</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href={assets.css} />
        {islands ? <script type="module" src={assets.js} nonce={assets.nonce} /> : null}
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <header class="top">
          <span class="brand">Zoho → Xero bills</span>
          {loggedIn
            ? (
              <>
                <nav aria-label="Main">
                  {NAV.map(([href, label]) => (
                    <a
                      href={href}
                      aria-current={path === href || (href !== "/" && path.startsWith(href))
                        ? "page"
                        : undefined}
                    >
                      {label}
                    </a>
                  ))}
                </nav>
                <form method="post" action="/logout" class="logout">
                  <input type="hidden" name="csrf" value={csrf} />
                  <button type="submit" class="secondary">Log out</button>
                </form>
              </>
            )
            : null}
        </header>
        <main id="main">{children}</main>
      </body>
    </html>
  );
}
