// The GraphQL client: urql over HTTP, graphql-ws (graphql-transport-ws) for subscriptions.
import { Client, cacheExchange, fetchExchange, subscriptionExchange } from "urql";
import { createClient as createWsClient, type Client as WsClient } from "graphql-ws";

export type Connection = { client: Client; ws: WsClient };
export type Listener = (state: "connected" | "reconnecting") => void;

/** A client that sends `token` on every request and in the websocket's connection_init. */
export function connect(token: string, onSocket: Listener): Connection {
  const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;
  let everConnected = false;
  const ws = createWsClient({
    url: wsUrl,
    // A browser cannot set headers on a websocket: the token goes in connection_init.
    connectionParams: { authorization: `Bearer ${token}` },
    lazy: true,
    // Keep trying through a server restart (an apply ends with one); a refused token stops it.
    retryAttempts: Infinity,
    shouldRetry: (event) => !(event instanceof CloseEvent && (event.code === 4403 || event.code === 4401)),
    retryWait: async (retries) => {
      await new Promise((resolve) => setTimeout(resolve, Math.min(500 * 2 ** retries, 5000)));
    },
    on: {
      connected: () => {
        onSocket("connected");
        everConnected = true;
      },
      closed: () => {
        if (everConnected) onSocket("reconnecting");
      },
    },
  });
  const client = new Client({
    url: "/graphql",
    // Lists change under the page (other tabs, schedules): always ask the server.
    requestPolicy: "network-only",
    fetchOptions: () => ({ headers: { authorization: `Bearer ${token}` } }),
    exchanges: [
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query || "" };
          return {
            subscribe(sink) {
              const unsubscribe = ws.subscribe(input, sink);
              return { unsubscribe };
            },
          };
        },
      }),
    ],
  });
  return { client, ws };
}

export type UploadProgress = (sent: number, total: number) => void;

/** A GraphQL multipart request (the jaydenseric spec) by XHR, which reports upload progress. */
export function uploadMultipart(
  token: string,
  query: string,
  variables: Record<string, unknown>,
  fileVariable: string,
  file: File,
  onProgress: UploadProgress,
): Promise<{ data?: any; errors?: { message: string }[] }> {
  const form = new FormData();
  form.append("operations", JSON.stringify({ query, variables: { ...variables, [fileVariable]: null } }));
  form.append("map", JSON.stringify({ "0": [`variables.${fileVariable}`] }));
  form.append("0", file, file.name);
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/graphql");
    // Multipart requests are CORS-simple: the server requires the bearer header on them.
    xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.upload.onprogress = (event) => onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
    xhr.onload = () => {
      try {
        resolve(JSON.parse(xhr.responseText));
      } catch {
        reject(new Error(`The server answered ${xhr.status} without JSON.`));
      }
    };
    xhr.onerror = () => reject(new Error("The upload failed: the server could not be reached."));
    xhr.send(form);
  });
}
