// The GraphQL over HTTP spec's own audit (npm graphql-http's auditServer, web/'s devDependency)
// against a running server, driven by tests/test_graphql_over_http_audit.py.
//   node http_audit.mjs <http-url of /graphql> <token>
// Prints one JSON object a line per audit: {"id", "name", "status": "ok"|"warn"|"error", "reason"?}.
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const web = createRequire(new URL("../../web/package.json", import.meta.url));
const { auditServer } = await import(pathToFileURL(web.resolve("graphql-http")).href);

const [url, token] = process.argv.slice(2);
// Every request carries the token (the server refuses anonymous requests before parsing them).
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};
const results = await auditServer({ url, fetchFn });
for (const result of results) {
  const line = { id: result.id, name: result.name, status: result.status };
  if (result.status !== "ok") line.reason = result.reason;
  process.stdout.write(JSON.stringify(line) + "\n");
}
