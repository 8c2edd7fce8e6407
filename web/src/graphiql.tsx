// GraphiQL at GET /graphql, bundled from npm by Vite (web/dist/graphiql.html): no CDN, so it
// works on a machine without internet. Monaco's workers are bundled too (setup-workers/vite).
import "graphiql/setup-workers/vite";
import "graphiql/style.css";
import { StrictMode, useMemo, useState, type FormEvent } from "react";
import { createRoot } from "react-dom/client";
import { GraphiQL } from "graphiql";
import { createGraphiQLFetcher } from "@graphiql/toolkit";

// The same key as the page at /: a token given there works here in the same tab, and back.
const STORAGE_KEY = "backups.token";
const HTTP_URL = `${location.origin}/graphql`;
const WS_URL = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;
const FIRST_QUERY = `# Give your token above (or as {"Authorization": "Bearer bk_..."} in the Headers tab),
# then run this with Ctrl-Enter. The Docs button (top left) lists every field.
{
  restorePoints(first: 5) {
    totalCount
    nodes { id label createdAt }
  }
}
`;

/** The Authorization header typed in GraphiQL's Headers tab, if any (the tab holds JSON). */
function headerAuthorization(headers: string): string | null {
  try {
    const parsed: unknown = JSON.parse(headers || "{}");
    if (parsed && typeof parsed === "object") {
      for (const [name, value] of Object.entries(parsed)) {
        if (name.toLowerCase() === "authorization" && typeof value === "string") return value;
      }
    }
  } catch {
    // Half-typed JSON: keep the header last seen whole.
  }
  return null;
}

function Explorer() {
  const [token, setToken] = useState(() => sessionStorage.getItem(STORAGE_KEY) ?? "");
  const [draft, setDraft] = useState(token);
  const [typedAuthorization, setTypedAuthorization] = useState<string | null>(null);
  const authorization = typedAuthorization ?? (token ? `Bearer ${token}` : null);

  // A new fetcher makes GraphiQL introspect again: the schema is fetched with the token as soon
  // as it is given (the field below or the Headers tab), with no reload by hand. Headers typed
  // in the Headers tab are sent too (GraphiQL merges them over these).
  const fetcher = useMemo(
    () =>
      createGraphiQLFetcher({
        url: HTTP_URL,
        subscriptionUrl: WS_URL,
        headers: authorization ? { Authorization: authorization } : {},
        // A browser cannot set headers on a websocket: the token goes in connection_init.
        wsConnectionParams: authorization ? { authorization } : {},
      }),
    [authorization],
  );

  function useToken(event: FormEvent) {
    event.preventDefault();
    const value = draft.trim();
    if (value) sessionStorage.setItem(STORAGE_KEY, value);
    else sessionStorage.removeItem(STORAGE_KEY);
    setToken(value);
  }

  return (
    <div style={{ display: "flex", flexDirection: "column", height: "100vh" }}>
      <form
        onSubmit={useToken}
        style={{ display: "flex", gap: 8, alignItems: "center", padding: "6px 12px", font: "14px system-ui" }}
      >
        <label htmlFor="token">API token</label>
        <input
          id="token"
          type="password"
          autoComplete="off"
          placeholder="bk_..."
          value={draft}
          onChange={(event) => setDraft(event.target.value)}
          style={{ flex: "0 1 28em" }}
        />
        <button type="submit">Use token</button>
        <span>{token ? "The schema is fetched with this token." : "Give a token to load the schema."}</span>
      </form>
      <div style={{ flex: 1, minHeight: 0 }}>
        <GraphiQL
          fetcher={fetcher}
          defaultQuery={FIRST_QUERY}
          onEditHeaders={(headers) => setTypedAuthorization(headerAuthorization(headers))}
        />
      </div>
    </div>
  );
}

createRoot(document.getElementById("graphiql-root")!).render(
  <StrictMode>
    <Explorer />
  </StrictMode>,
);
