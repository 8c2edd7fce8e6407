// README's reconnect recipe with the npm graphql-ws client (web/'s dependency), driven by
// tests/test_node_reconnect.py across a real server restart. Prints one JSON object a line.
//   node reconnect.mjs log <ws-url> <token> <operation id>
//     operationLog, resumed after a lost connection with afterSequence = the last sequence seen.
//   node reconnect.mjs changes <ws-url> <token> <operation id>
//     operationsChanged(includeCurrent: true); after each reconnect the rows still unfinished
//     are refetched with operation(id) (a change made while away is not sent again).
// Node 20 needs --experimental-websocket (Node 22 has WebSocket built in).
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const web = createRequire(new URL("../../web/package.json", import.meta.url));
const { createClient } = await import(pathToFileURL(web.resolve("graphql-ws")).href);

const [mode, wsUrl, token, opId] = process.argv.slice(2);
const httpUrl = wsUrl.replace(/^ws/, "http");
const say = (object) => process.stdout.write(JSON.stringify(object) + "\n");
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// No automatic retry: graphql-ws would re-send the first subscribe (its first variables).
// Each subscription below is made again by hand with what was seen.
let connections = 0;
let onReconnect = async () => {};
const client = createClient({
  url: wsUrl,
  connectionParams: { authorization: `Bearer ${token}` },
  lazy: true,
  retryAttempts: 0,
  on: { connected: () => (connections++ > 0 ? onReconnect() : undefined) },
});

/** Run one subscription to its end: "complete", or the error that ended it (a lost connection). */
function once(query, variables, onData) {
  return new Promise((resolve) => {
    client.subscribe({ query, variables }, {
      next: (result) => (result.errors ? resolve({ errors: result.errors }) : onData(result.data)),
      error: (error) => resolve({ lost: String(error?.code ?? error?.message ?? error) }),
      complete: () => resolve({ complete: true }),
    });
  });
}

async function query(text, variables) {
  const response = await fetch(httpUrl, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: text, variables }),
  });
  return (await response.json()).data;
}

const LOG = `subscription ($id: ID!, $after: Int) {
  operationLog(id: $id, afterSequence: $after) { sequence at message } }`;

async function followLog() {
  let last = 0;
  for (let attempt = 0; ; attempt++) {
    const end = await once(LOG, { id: opId, after: last }, (data) => {
      last = data.operationLog.sequence; // the resume point, should the connection drop now
      say({ line: last, at: data.operationLog.at, message: data.operationLog.message });
    });
    if (end.complete) return say({ done: true, last });
    if (end.errors) return say({ errors: end.errors });
    say({ lost: end.lost, after: last });
    await pause(Math.min(100 * 2 ** Math.min(attempt, 5), 2000)); // the server is coming back
  }
}

const CHANGES = `subscription { operationsChanged(includeCurrent: true) { id status done } }`;

async function followChanges() {
  const rows = new Map(); // id -> status, as a list on a page would show them
  const show = (op, how) => {
    rows.set(op.id, op.status);
    say({ id: op.id, status: op.status, how });
    if (op.id === opId && op.done) {
      say({ done: true, status: op.status, how });
      process.exit(0);
    }
  };
  // The recipe: the starting state lists what is unfinished now; a row still shown as
  // unfinished may have finished while away (it is not sent again): refetch it.
  onReconnect = async () => {
    for (const [id, status] of rows) {
      if (status === "QUEUED" || status === "RUNNING") {
        const found = await query("query ($id: ID!) { operation(id: $id) { id status done } }", { id });
        if (found?.operation) show(found.operation, "refetched");
      }
    }
  };
  for (let attempt = 0; ; attempt++) {
    const end = await once(CHANGES, {}, (data) => show(data.operationsChanged, "event"));
    if (end.errors) return say({ errors: end.errors });
    say({ lost: end.lost ?? "complete" });
    await pause(Math.min(100 * 2 ** Math.min(attempt, 5), 2000));
  }
}

await (mode === "log" ? followLog() : followChanges());
process.exit(0);
