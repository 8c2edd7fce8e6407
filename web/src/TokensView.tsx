// The region "Tokens", for admins: every API token (never a secret), a form to make one (its
// secret shown once, here, with how to use it) and Revoke (a second click), as `backups token`
// does on the server. The API keeps the last active admin token; the command line can revoke it.
import { useId, useState } from "react";
import { useMutation } from "urql";
import { ApiTokens, CreateApiToken, RevokeApiToken } from "./operations";
import type { Role } from "./gql/graphql";
import { useRefreshedQuery } from "./refresh";
import { Errors, topLevel, when, type UserErrorShape } from "./ui";

const EXPIRY: readonly [string, number | null][] = [
  ["No expiry", null],
  ["1 day", 86_400],
  ["30 days", 30 * 86_400],
  ["90 days", 90 * 86_400],
  ["1 year", 365 * 86_400],
];

export function TokensView() {
  const [list, refresh] = useRefreshedQuery({ query: ApiTokens }, []);
  const tokens = list.data?.apiTokens;
  return (
    <section className="card" aria-labelledby="tokens-heading">
      <h2 id="tokens-heading">Tokens</h2>
      <Errors errors={topLevel(list.error)} />
      <NewToken onMade={refresh} />
      {tokens && (
        <div className="scroll">
          <table aria-label="API tokens">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Role</th>
                <th scope="col">State</th>
                <th scope="col">Token</th>
                <th scope="col">Made</th>
                <th scope="col">Expires</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {tokens.map((token) => (
                <tr key={token.id}>
                  <th scope="row">{token.name}</th>
                  <td data-label="Role">{token.role}</td>
                  <td data-label="State" className={token.status === "ACTIVE" ? "keep" : "drop"}>{token.status.toLowerCase()}</td>
                  <td data-label="Token">
                    <code>{token.hint}…</code>
                  </td>
                  <td data-label="Made">
                    {when(token.createdAt)}
                    {token.createdBy && <div className="note-text">by {token.createdBy}</div>}
                  </td>
                  <td data-label="Expires">{token.expiresAt ? when(token.expiresAt) : "never"}</td>
                  <td className="actions">{token.status === "ACTIVE" && <Revoke id={token.id} name={token.name} onRevoked={refresh} />}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function Revoke({ id, name, onRevoked }: { id: string; name: string; onRevoked: () => void }) {
  const [confirming, setConfirming] = useState(false);
  const [errors, setErrors] = useState<(UserErrorShape | string)[]>([]);
  const [, revoke] = useMutation(RevokeApiToken);
  if (!confirming)
    return (
      <button type="button" className="danger" aria-label={`Revoke ${name}`} onClick={() => setConfirming(true)}>
        Revoke
      </button>
    );
  return (
    <>
      <button
        type="button"
        className="danger"
        aria-label={`Revoke ${name} now`}
        onClick={async () => {
          const answer = await revoke({ id });
          const problems = [...(answer.data?.revokeApiToken.userErrors ?? []), ...topLevel(answer.error)];
          setErrors(problems);
          if (problems.length === 0) onRevoked();
        }}
      >
        Revoke now: it stops working at once
      </button>
      <button type="button" onClick={() => setConfirming(false)}>
        Keep it
      </button>
      <Errors errors={errors} />
    </>
  );
}

function NewToken({ onMade }: { onMade: () => void }) {
  const id = useId();
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("OPERATOR" as Role);
  const [expiry, setExpiry] = useState(0);
  const [errors, setErrors] = useState<UserErrorShape[]>([]);
  const [other, setOther] = useState<string[]>([]);
  const [made, setMade] = useState<{ name: string; secret: string } | null>(null);
  const [creating, create] = useMutation(CreateApiToken);
  const about = (field: string) => errors.filter((e) => e.field === field);
  return (
    <form
      aria-label="New token"
      onSubmit={async (event) => {
        event.preventDefault();
        const answer = await create({ name: name.trim(), role, expiresInSeconds: EXPIRY[expiry][1] });
        const payload = answer.data?.createApiToken;
        setOther(topLevel(answer.error));
        setErrors(payload?.userErrors ?? []);
        if (payload?.secret && payload.token) {
          setMade({ name: payload.token.name, secret: payload.secret });
          setName("");
          onMade();
        }
      }}
    >
      <div className="field-row">
        <div>
          <label htmlFor={`${id}-name`}>Token name</label>
          <input
            id={`${id}-name`}
            value={name}
            autoComplete="off"
            spellCheck={false}
            onChange={(e) => setName(e.target.value)}
            aria-invalid={about("name").length > 0 || undefined}
            aria-describedby={`${id}-name-errors`}
          />
          <Errors errors={about("name")} id={`${id}-name-errors`} />
        </div>
        <div>
          <label htmlFor={`${id}-role`}>Role</label>
          <select id={`${id}-role`} value={role} onChange={(e) => setRole(e.target.value as Role)}>
            <option value="VIEWER">Viewer: reads</option>
            <option value="OPERATOR">Operator: also creates, exports, downloads</option>
            <option value="ADMIN">Admin: also applies, deletes, changes settings</option>
          </select>
        </div>
        <div>
          <label htmlFor={`${id}-expiry`}>Lifetime</label>
          <select id={`${id}-expiry`} value={expiry} onChange={(e) => setExpiry(Number(e.target.value))}>
            {EXPIRY.map(([label], n) => (
              <option key={label} value={n}>
                {label}
              </option>
            ))}
          </select>
        </div>
      </div>
      <Errors errors={[...errors.filter((e) => e.field !== "name"), ...other]} />
      <div className="actions">
        <button type="submit" disabled={creating.fetching || name.trim() === ""}>
          Create token
        </button>
      </div>
      {made && (
        <div role="status" aria-label="New token made">
          <p>
            The token <strong>{made.name}</strong>: copy it now, it is shown only this once. Send it as{" "}
            <code>Authorization: Bearer …</code>.
          </p>
          <input readOnly aria-label={`Secret of ${made.name}`} value={made.secret} onFocus={(e) => e.target.select()} />
          <button type="button" onClick={() => setMade(null)}>
            I have copied it
          </button>
        </div>
      )}
    </form>
  );
}
