// Sign-in, then the Backups tab: the backup status first, then the restore points (with create), the
// operations (running, then completed), local copies, locations and schedules.
import { useCallback, useEffect, useMemo, useState } from "react";
import { Provider, useClient, useQuery, useSubscription } from "urql";
import { connect, type Connection } from "./client";
import { Me, Operations, SystemChanged } from "./operations";
import { SessionContext, type Session } from "./session";
import type { Role } from "./gql/graphql";
import { OperationsView, type Op } from "./OperationsView";
import { RestorePointsView } from "./RestorePointsView";
import { LocalCopiesView } from "./LocalCopiesView";
import { StatusView } from "./StatusView";
import { SchedulesView } from "./SchedulesView";
import { TokensView } from "./TokensView";
import { NotificationsView } from "./NotificationsView";
import { EmergencyKitView } from "./EmergencyKitView";
import { LocationsView } from "./LocationsView";
import { Errors, topLevel } from "./ui";

const STORAGE_KEY = "backups.token";

export function App() {
  const [token, setToken] = useState<string | null>(() => sessionStorage.getItem(STORAGE_KEY));
  const [socket, setSocket] = useState<"connected" | "reconnecting">("connected");
  const [reconnects, setReconnects] = useState(0);
  const [connects, setConnects] = useState(0);
  const conn = useMemo<Connection | null>(
    () =>
      token
        ? connect(token, (state) => {
            if (state === "connected") setConnects((n) => n + 1);
            setSocket((before) => {
              if (before === "reconnecting" && state === "connected") setReconnects((n) => n + 1);
              return state;
            });
          })
        : null,
    [token],
  );
  useEffect(() => () => void conn?.ws.dispose(), [conn]);

  const signIn = useCallback((value: string) => {
    sessionStorage.setItem(STORAGE_KEY, value);
    setToken(value);
  }, []);
  const signOut = useCallback(() => {
    sessionStorage.removeItem(STORAGE_KEY);
    setToken(null);
  }, []);

  return (
    <>
      <header>
        <h1>Backups</h1>
        {token && (
          <button type="button" onClick={signOut}>
            Sign out
          </button>
        )}
      </header>
      {conn && token ? (
        <Provider value={conn.client}>
          <SignedIn token={token} connects={connects} reconnects={reconnects} socket={socket} onRefused={signOut} />
        </Provider>
      ) : (
        <SignIn onSignIn={signIn} refused={null} />
      )}
    </>
  );
}

function SignIn({ onSignIn, refused }: { onSignIn: (token: string) => void; refused: string | null }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState<string | null>(refused);
  return (
    <main>
      <form
        className="card signin"
        onSubmit={(event) => {
          event.preventDefault();
          const token = value.trim();
          if (!token) setError("Paste an API token (made with `backups token create`).");
          else onSignIn(token);
        }}
      >
        <h2>Sign in</h2>
        <label htmlFor="token">API token</label>
        <input
          id="token"
          type="text"
          autoComplete="off"
          spellCheck={false}
          value={value}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? "token-error" : undefined}
          onChange={(event) => setValue(event.target.value)}
        />
        <Errors errors={error ? [error] : []} id="token-error" />
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}

function SignedIn(props: { token: string; connects: number; reconnects: number; socket: string; onRefused: () => void }) {
  const [me] = useQuery({ query: Me });
  const [finished, setFinished] = useState(0);
  const onFinished = useCallback(() => setFinished((n) => n + 1), []);
  // The operations list, read with `me` and before any view asks: an operation that ends after it
  // is news to every view (see OperationsView), whichever view's answer comes first.
  const client = useClient();
  const [firstOps, setFirstOps] = useState<readonly Op[] | null | undefined>(undefined);
  useEffect(() => {
    let current = true;
    void client
      .query(Operations, {})
      .toPromise()
      .then((answer) => current && setFirstOps(answer.data?.operations.nodes ?? null));
    return () => {
      current = false;
    };
  }, [client]);
  if ((me.fetching && !me.data) || (me.data && firstOps === undefined)) return <main><p role="status">Signing in…</p></main>;
  if (!me.data) {
    const code = me.error?.graphQLErrors[0]?.extensions?.code;
    const message = code === "UNAUTHENTICATED" ? "That token was not accepted: check it, or make a new one." : topLevel(me.error)[0];
    return <RefusedToken message={message ?? "Could not sign in."} onBack={props.onRefused} />;
  }
  const role: Role = me.data.me.role;
  const session: Session = { token: props.token, name: me.data.me.name ?? null, role, connects: props.connects, reconnects: props.reconnects, finished };
  return (
    <SessionContext.Provider value={session}>
      <main>
        <StatusView />
        <p className="who">
          Signed in as <strong>{session.name ?? "(authentication off)"}</strong>, role <strong>{role}</strong>.
        </p>
        {role !== "ADMIN" && (
          <p className="note" id="why-admin">
            Applying and deleting need an admin token.
          </p>
        )}
        {role === "VIEWER" && (
          <p className="note" id="why-operator">
            Creating, exporting, importing, uploading and downloading need an operator token.
          </p>
        )}
        {props.socket === "reconnecting" && (
          <p className="banner" role="status">
            The live connection was lost: reconnecting…
          </p>
        )}
        <SystemBanner />
        <RestorePointsView />
        <OperationsView onFinished={onFinished} first={firstOps} />
        <LocalCopiesView />
        <LocationsView />
        <SchedulesView />
        <NotificationsView />
        {role === "ADMIN" && <TokensView />}
        {role === "ADMIN" && <EmergencyKitView />}
      </main>
    </SessionContext.Provider>
  );
}

function RefusedToken({ message, onBack }: { message: string; onBack: () => void }) {
  return (
    <main>
      <div className="card">
        <Errors errors={[message]} />
        <button type="button" onClick={onBack}>
          Use another token
        </button>
      </div>
    </main>
  );
}

function SystemBanner() {
  const [system] = useSubscription({ query: SystemChanged });
  const state = system.data?.systemChanged.state;
  if (!state || state === "RUNNING") return null;
  return (
    <p className="banner" role="status">
      {state === "APPLYING" ? "A restore point is being applied: changes wait until it is done." : "The system is restarting…"}
    </p>
  );
}
